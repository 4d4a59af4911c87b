"""The benchmark scenarios, one function each, every one on its own fresh embedded nats-server.

Engine scenarios submit a workflow (or many) to a full stack (engine plus an in-process worker pool running
the instant `echo` executor), wait until terminal, then read the whole history back with
`store.load_all()` for event/byte counts and latencies. `replay` bulk-loads a synthetic history and folds it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import shutil
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nats.aio.msg import Msg

from aether_es.adapters.nats.connection import connect
from aether_es.adapters.nats.event_store import NatsEventStore
from aether_es.adapters.nats.layout import Layout, ensure
from aether_es.adapters.nats.server import EmbeddedNatsServer
from aether_es.events import catalogue as ev
from aether_es.events.codec import decode_commit, encode_commit
from aether_es.events.envelope import commit_of, make_envelopes
from aether_es.events.values import Metrics, ResultOutputs
from aether_es.model import phases as ph
from aether_es.model.documents import Parameter
from aether_es.projections.run_state import RunState, apply, start
from aether_es.runtime.gc_tuning import tune_for_engine
from aether_es.runtime.stack import Stack, StackOptions, open_stack
from bench import floor as fl
from bench.metrics import HistoryStats, RssSampler, history_stats, percentile

WORKERS = 64


@dataclass
class ScenarioResult:
    name: str
    tasks: int
    workflows: int
    seconds: float
    status: str
    peak_rss_mb: float
    floor_ratio: float
    start_p50_ms: float | None = None
    start_p99_ms: float | None = None
    handoff_p50_ms: float | None = None
    handoff_p99_ms: float | None = None
    cycle_p50_ms: float | None = None
    cycle_p99_ms: float | None = None
    """Latencies the engine scenarios time inside the engine; None where a scenario cannot see them."""
    rss_growth_kb_per_task: float = 0.0
    events: int = 0
    bytes: int = 0
    events_per_task: float = 0.0
    bytes_per_task: float = 0.0
    target: str = ""
    target_met: bool | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    tasks_per_s: float = field(init=False)
    workflows_per_s: float = field(init=False)

    def __post_init__(self) -> None:
        self.tasks_per_s = self.tasks / self.seconds if self.seconds else 0.0
        self.workflows_per_s = self.workflows / self.seconds if self.seconds else 0.0


@dataclass
class Sizes:
    fanout: int = 10_000
    wide: int = 1_000
    chain: int = 1_000
    runs: int = 1_000
    scale: int = 100_000
    replay_events: int = 1_000_000
    replay_tasks_per_run: int = 100
    floor_tasks: int = 10_000
    floor_sequential: int = 500
    run_loop: int = 10_000
    run_chain: int = 1_000
    served_loop: int = 10_000
    small_runs: int = 1_000
    engine_runs: int = 200
    """Runs of a 10-task DAG the `engines` scenario puts through each engine count."""
    engine_settle: float = 12.0
    """Seconds the `engines` scenario lets the partitions' handover settle before it times anything."""

    @classmethod
    def quick(cls) -> Sizes:
        return cls(1_000, 100, 100, 100, 10_000, 100_000, 100, 2_000, 200, 1_000, 100, 1_000, 100, 40, 0.0)

    @classmethod
    def tiny(cls) -> Sizes:
        return cls(200, 50, 30, 30, 1_000, 20_000, 50, 500, 50, 200, 30, 200, 30, 10, 0.0)


# --- workflow documents ------------------------------------------------------------------------------

_ECHO = {"task": {"name": "one", "inputs": {"parameters": [{"name": "item"}]}, "executor": {"type": "echo"}}}


def loop_workflow(items: int) -> dict[str, Any]:
    """One loop over `items` echo tasks, unbounded concurrency."""
    return {
        "apiVersion": "aether/v1",
        "kind": "Workflow",
        "metadata": {"name": "bench-loop"},
        "spec": {
            "entrypoint": "fan",
            "templates": [
                {
                    "loop": {
                        "name": "fan",
                        "items": list(range(items)),
                        "concurrency": 0,
                        "body": "one",
                        "arguments": {"parameters": [{"name": "item", "value": "{{iterator.item}}"}]},
                    }
                },
                _ECHO,
            ],
        },
    }


def dag_workflow(tasks: int, chained: bool) -> dict[str, Any]:
    """A DAG of `tasks` echo tasks: independent, or each depending on the previous one."""
    entries = []
    for i in range(tasks):
        entry: dict[str, Any] = {
            "name": f"t{i}",
            "template": "one",
            "arguments": {"parameters": [{"name": "item", "value": str(i)}]},
        }
        if chained and i:
            entry["dependencies"] = [f"t{i - 1}"]
        entries.append(entry)
    return {
        "apiVersion": "aether/v1",
        "kind": "Workflow",
        "metadata": {"name": "bench-chain" if chained else "bench-wide"},
        "spec": {"entrypoint": "main", "templates": [{"dag": {"name": "main", "tasks": entries}}, _ECHO]},
    }


def small_workflow() -> dict[str, Any]:
    return dag_workflow(1, chained=False)


# --- plumbing ----------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def fresh_server() -> AsyncIterator[tuple[EmbeddedNatsServer, Path]]:
    root = Path(tempfile.mkdtemp(prefix="aether-bench-"))
    server = EmbeddedNatsServer(root / "nats")
    server.start()
    try:
        yield server, root
    finally:
        server.close()
        shutil.rmtree(root, ignore_errors=True)


@contextlib.asynccontextmanager
async def fresh_stack(workers: int = WORKERS) -> AsyncIterator[Stack]:
    async with fresh_server() as (server, root):
        stack = await open_stack(StackOptions(nats_url=server.url, state_dir=root / "state", workers=workers))
        try:
            yield stack
        finally:
            await stack.close()


def _result(
    name: str,
    tasks: int,
    workflows: int,
    seconds: float,
    status: str,
    stats: HistoryStats,
    rss: RssSampler,
    floor_ratio: float,
    extra: dict[str, Any] | None = None,
) -> ScenarioResult:
    lat = stats.summary()
    return ScenarioResult(
        name=name,
        tasks=tasks,
        workflows=workflows,
        seconds=seconds,
        status=status,
        start_p50_ms=lat["start_p50_ms"],
        start_p99_ms=lat["start_p99_ms"],
        handoff_p50_ms=lat["handoff_p50_ms"],
        handoff_p99_ms=lat["handoff_p99_ms"],
        cycle_p50_ms=lat["cycle_p50_ms"],
        cycle_p99_ms=lat["cycle_p99_ms"],
        peak_rss_mb=rss.peak_kb / 1024.0,
        rss_growth_kb_per_task=rss.growth_kb / tasks if tasks else 0.0,
        events=stats.events,
        bytes=stats.bytes,
        events_per_task=stats.events / tasks if tasks else 0.0,
        bytes_per_task=stats.bytes / tasks if tasks else 0.0,
        floor_ratio=floor_ratio,
        extra=dict(extra or {}),
    )


class DispatchClock:
    """Arrival times (perf_counter) of the commits that dispatch a task, seen live on the history subjects:
    event timestamps have millisecond resolution, too coarse for a per-task cycle of about a millisecond."""

    def __init__(self) -> None:
        self.arrivals: list[float] = []

    async def on_commit(self, msg: Msg) -> None:
        commit = decode_commit(msg.data)
        if any(isinstance(env.event, ev.TaskDispatched) for env in commit.envelopes):
            self.arrivals.append(time.perf_counter())

    def cycles_ms(self) -> list[float]:
        return [1000.0 * (b - a) for a, b in itertools.pairwise(self.arrivals)]


async def _run_workflows(
    name: str, docs: list[dict[str, Any]], tasks: int, floor: fl.TaskFloor, clock: DispatchClock | None = None
) -> ScenarioResult:
    timeout = 120.0 + tasks / 20.0
    async with fresh_stack() as stack:
        if clock is not None:
            await stack.connection.nc.subscribe(stack.layout.run_subjects, cb=clock.on_commit)
        async with RssSampler() as rss:
            began = time.perf_counter()
            run_ids = await asyncio.gather(*(stack.engine.submit(doc) for doc in docs))
            states = await asyncio.gather(*(stack.engine.wait_state(run_id, timeout=timeout) for run_id in run_ids))
            seconds = time.perf_counter() - began
        # Outside the RSS window: what the engine holds per task, not the harness's copy of every record.
        views = [state.to_dict() for state in states]
        statuses = {view["status"] for view in views}
        status = ph.SUCCEEDED if statuses == {ph.SUCCEEDED} else ",".join(sorted(statuses))
        stats = await history_stats(stack.store.load_all())
    tps = tasks / seconds
    return _result(
        name, tasks, len(docs), seconds, status, stats, rss, tps / floor.tasks_per_s, {"commits": stats.commits}
    )


# --- scenarios ---------------------------------------------------------------------------------------


async def measure_floor(sizes: Sizes) -> fl.TaskFloor:
    async with fresh_server() as (server, _root):
        conn = await connect(server.url)
        try:
            return await fl.task_floor(conn.js, sizes.floor_tasks, sizes.floor_sequential)
        finally:
            await conn.close()


async def fanout(sizes: Sizes, floor: fl.TaskFloor) -> ScenarioResult:
    result = await _run_workflows("fan-out", [loop_workflow(sizes.fanout)], sizes.fanout, floor)
    result.target = ">= 0.5 x floor tasks/s"
    result.target_met = result.floor_ratio >= 0.5
    return result


async def wide_dag(sizes: Sizes, floor: fl.TaskFloor) -> ScenarioResult:
    result = await _run_workflows("wide DAG", [dag_workflow(sizes.wide, chained=False)], sizes.wide, floor)
    result.target = ">= 0.5 x floor tasks/s"
    result.target_met = result.floor_ratio >= 0.5
    return result


async def chain(sizes: Sizes, floor: fl.TaskFloor) -> ScenarioResult:
    clock = DispatchClock()
    result = await _run_workflows("chain", [dag_workflow(sizes.chain, chained=True)], sizes.chain, floor, clock)
    # Per task, a chain pays one full round trip; the floor's is one sequential task.
    cycles = clock.cycles_ms()
    per_task_ms = percentile(cycles, 50) or 1000.0 * result.seconds / result.tasks
    overhead = per_task_ms - floor.cycle_p50_ms
    result.floor_ratio = floor.cycle_p50_ms / per_task_ms if per_task_ms else 0.0
    result.extra |= {
        "median_overhead_ms": overhead,
        "floor_cycle_p50_ms": floor.cycle_p50_ms,
        "cycle_p50_ms_measured": per_task_ms,
        "cycle_p99_ms_measured": percentile(cycles, 99),
    }
    result.target = f"median overhead <= 2 ms (is {overhead:.1f} ms)"
    result.target_met = overhead <= 2.0
    return result


async def many_runs(sizes: Sizes, floor: fl.TaskFloor) -> ScenarioResult:
    docs = [small_workflow() for _ in range(sizes.runs)]
    result = await _run_workflows("many runs", docs, sizes.runs, floor)
    result.target = f">= 500 workflows/s (is {result.workflows_per_s:.0f})"
    result.target_met = result.workflows_per_s >= 500
    return result


async def scale(sizes: Sizes, floor: fl.TaskFloor, reference: ScenarioResult | None) -> ScenarioResult:
    result = await _run_workflows("scale", [loop_workflow(sizes.scale)], sizes.scale, floor)
    result.name = "scale"
    cost_ratio = None
    if reference is not None and reference.tasks_per_s:
        cost_ratio = reference.tasks_per_s / result.tasks_per_s
    result.extra |= {"per_task_cost_vs_fanout": cost_ratio, "reference_tasks": reference.tasks if reference else None}
    growth = result.rss_growth_kb_per_task
    ratio_text = "n/a" if cost_ratio is None else f"{cost_ratio:.2f}x"
    result.target = f"RSS growth <= 2 KB/task (is {growth:.2f}), cost <= 1.2x fan-out (is {ratio_text})"
    result.target_met = result.status == ph.SUCCEEDED and growth <= 2.0 and (cost_ratio is None or cost_ratio <= 1.2)
    return result


# --- replay ------------------------------------------------------------------------------------------

_RUN_ID_TEMPLATE = "bench-r0000000"


def _synthetic_run(tasks: int) -> list[bytes]:
    """The encoded commits of one finished run of `tasks` echo leaves under one DAG (ids to be replaced)."""
    run_id = _RUN_ID_TEMPLATE
    t0 = "2026-01-01T00:00:00.000Z"
    t1 = "2026-01-01T00:00:00.005Z"
    doc = dag_workflow(tasks, chained=False)
    dag_id = f"{run_id}-dag"
    batches: list[list[ev.Event]] = [
        [
            ev.RunSubmitted(workflow=doc, created_at=t0),
            ev.TaskCreated(task_id=dag_id, task_name="main", template_name="main", template_type="dag", created_at=t0),
        ]
    ]
    for i in range(tasks):
        leaf = f"{run_id}-t{i}"
        params = [Parameter(name="item", value=str(i))]
        batches.append(
            [
                ev.TaskCreated(
                    task_id=leaf,
                    parent_id=dag_id,
                    depth=1,
                    scope="main",
                    task_name=f"t{i}",
                    template_name="one",
                    template_type="task",
                    created_at=t0,
                    inputs=params,
                ),
                ev.TaskDispatched(task_id=leaf, attempt=1, executor_type="echo", inputs=params),
            ]
        )
        batches.append(
            [
                ev.TaskStarted(task_id=leaf, attempt=1, started_at=t0),
                ev.TaskFinished(
                    task_id=leaf,
                    attempt=1,
                    phase=ph.SUCCEEDED,
                    outputs=ResultOutputs(phase=ph.SUCCEEDED, code=0, parameters=params),
                    metrics=Metrics(started_at=t0, finished_at=t1, duration="5ms"),
                ),
            ]
        )
    batches.append(
        [
            ev.TaskFinished(task_id=dag_id, phase=ph.SUCCEEDED),
            ev.RunFinished(phase=ph.SUCCEEDED, metrics=Metrics(started_at=t0, finished_at=t1, duration="5ms")),
        ]
    )
    encoded: list[bytes] = []
    number = 1
    for events in batches:
        envelopes = make_envelopes(run_id, number, events, t1, "bench", f"bench:{number}")
        number += len(events)
        encoded.append(encode_commit(commit_of(run_id, envelopes)))
    return encoded


async def replay(sizes: Sizes) -> ScenarioResult:
    """Bulk-load >= `replay_events` events of synthetic runs, then fold every commit into run views."""
    template = _synthetic_run(sizes.replay_tasks_per_run)
    events_per_run = 4 * sizes.replay_tasks_per_run + 4
    runs = -(-sizes.replay_events // events_per_run)
    layout = Layout(prefix="aether")
    async with fresh_server() as (server, _root):
        conn = await connect(server.url)
        try:
            js = conn.js
            await ensure(js, layout)
            began = time.perf_counter()
            placeholder = _RUN_ID_TEMPLATE.encode()
            for r in range(runs):
                run_id = f"bench-r{r:07d}"
                subject = layout.run_subject(run_id)
                new = run_id.encode()
                for data in template:
                    await js.publish_async(subject, data.replace(placeholder, new))
            await js.publish_async_completed()
            load_seconds = time.perf_counter() - began
            events = runs * events_per_run
            floor = await fl.replay_floor(js, layout.runs_stream, layout.run_subjects, events)
            store = NatsEventStore(conn.nc, layout)
            tune_for_engine()  # a replay keeps every view alive, as an engine does: the same collector settings
            states: dict[str, RunState] = {}
            folded = 0
            async with RssSampler() as rss:
                began = time.perf_counter()
                async for stored in store.load_all():
                    for env in stored.commit.envelopes:
                        state = states.get(env.run_id)
                        if state is None:
                            states[env.run_id] = start(env)
                        else:
                            apply(state, env)
                        folded += 1
                seconds = time.perf_counter() - began
        finally:
            await conn.close()
    succeeded = sum(1 for s in states.values() if s.phase == ph.SUCCEEDED)
    status = ph.SUCCEEDED if succeeded == runs and folded == events else f"{succeeded}/{runs} runs, {folded} events"
    tasks = runs * sizes.replay_tasks_per_run
    eps = folded / seconds
    stats = HistoryStats(events=folded, bytes=runs * sum(len(c) for c in template), runs=runs)
    result = _result("replay", tasks, runs, seconds, status, stats, rss, eps / floor.events_per_s)
    result.extra |= {
        "events_per_s": eps,
        "floor_events_per_s": floor.events_per_s,
        "floor_seconds": floor.seconds,
        "messages": floor.messages,
        "bulk_load_seconds": load_seconds,
    }
    result.target = f">= 0.5 x floor events/s (is {eps:,.0f} vs {floor.events_per_s:,.0f})"
    result.target_met = result.floor_ratio >= 0.5
    return result
