"""Chaos: kill -9 the engine, a worker or nats-server at random moments, and nothing is lost or doubled.

The production shape, all real processes: a nats-server, `aether-es serve --workers 0` (engine and API) and
two `aether-es worker --executors echo`. A fault-free pass first runs the two documents once: a loop of
2,000 echo tasks (two at a time) and a small DAG with lifecycle hooks. Then the same loop and ten small DAG
runs go in, and while they are in flight a seeded schedule kills (SIGKILL) the serve process, a worker or
the nats-server and starts it again, several times. Afterwards every run must end exactly as its fault-free
twin did, each task attempt be dispatched and finished exactly once in the history, the `<PREFIX>_HOOKS`
stream hold every hook notification of every run once, and `aether-es replay --all --verify` find no
difference.

The seed is printed with the figures; `AETHER_CHAOS_SEED=N` replays a schedule.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import orjson
import pytest
from nats.aio.msg import Msg
from support.attempts import count_attempts
from support.cli import aether
from support.processes import Child
from support.steering import HookKey, hook_counts, hook_key, settle, stored_hooks, submit_for_good

from aether_es import Client
from aether_es.adapters.nats.connection import NatsConnection, connect
from aether_es.adapters.nats.event_store import NatsEventStore
from aether_es.adapters.nats.layout import Layout
from aether_es.adapters.nats.server import EmbeddedNatsServer
from aether_es.events.codec import event_records
from aether_es.model import phases as ph
from aether_es.ports.event_store import StoredCommit
from bench.scenarios import loop_workflow

SEED_ENV = "AETHER_CHAOS_SEED"
LOOP_ITEMS = 2_000
LOOP_CONCURRENCY = 2
"""Iterations of the loop in flight at once: enough to keep it running through every fault."""
SMALL_RUNS = 10
FAULT_KINDS = ("engine", "worker", "nats")
FAULTS_PER_KIND = 2
MOMENTS = (LOOP_ITEMS // 20, LOOP_ITEMS * 9 // 10)
"""Each fault strikes when the loop has finished a number of tasks drawn from this range: a random moment
that is sure to find it in flight, however fast the machine."""
FAULTS_TIMEOUT = 40.0
"""How long the faults may wait for the loop's progress in all (a stalled loop must not hang the test)."""
SETTLE_TIMEOUT = 45.0
"""After the last fault: generous, many times the ack wait after which a lost task or report returns."""
HOOKS_TIMEOUT = 15.0
"""How long hook notifications may trail the commits that fire them."""
LAYOUT = Layout()

_ALL_HOOKS = {
    key: {"template": "note"}
    for key in ("onStart", "onSuccess", "onFailure", "onError", "onSuspend", "onResume", "onCancel", "onExit")
}


def _step(name: str, after: list[str]) -> dict[str, Any]:
    return {
        "name": name,
        "template": "note",
        "dependencies": after,
        "arguments": {"parameters": [{"name": "text", "value": name}]},
        "hooks": _ALL_HOOKS,
    }


SMALL_DAG: dict[str, Any] = {
    "apiVersion": "aether/v1",
    "kind": "Workflow",
    "metadata": {"name": "chaos-diamond"},
    "spec": {
        "entrypoint": "main",
        "hooks": _ALL_HOOKS,
        "templates": [
            {
                "dag": {
                    "name": "main",
                    "tasks": [
                        _step("a", []),
                        _step("b", ["a"]),
                        _step("c", ["a"]),
                        _step("d", ["b", "c"]),
                    ],
                }
            },
            {"task": {"name": "note", "inputs": {"parameters": [{"name": "text"}]}, "executor": {"type": "echo"}}},
        ],
    },
}
"""A diamond a -> (b, c) -> d, every node and the workflow declaring every hook."""


def _loop() -> dict[str, Any]:
    """The benchmarks' loop of echo tasks, LOOP_CONCURRENCY at a time."""
    document = loop_workflow(LOOP_ITEMS)
    document["spec"]["templates"][0]["loop"]["concurrency"] = LOOP_CONCURRENCY
    return document


LOOP = _loop()

HOOKS_PER_SMALL_RUN = 3 * (1 + 4)
"""A successful run fires onStart, onSuccess and onExit for the workflow and for each of its 4 DAG nodes."""


class Progress:
    """When tasks and runs finish, seen live on the history's subjects: the time to recover, runs in flight."""

    def __init__(self) -> None:
        self.tasks_finished: list[float] = []
        self.leaves_finished: Counter[str] = Counter()
        self.runs_finished: dict[str, float] = {}

    async def on_commit(self, msg: Msg) -> None:
        now = time.monotonic()
        _, records = event_records(msg.data, 0)
        for record in records:
            if record["type"] == "TaskFinished" and record["data"].get("attempt", 0) > 0:
                self.leaves_finished[record["runID"]] += 1
            elif record["type"] == "RunFinished":
                self.runs_finished.setdefault(record["runID"], now)
        if any(r["type"] == "TaskFinished" for r in records):
            self.tasks_finished.append(now)

    async def reached(self, run_id: str, leaves: int, deadline: float) -> None:
        """Wait until `leaves` of the run's leaf tasks finished (or it did), at most until `deadline`."""
        while self.leaves_finished[run_id] < leaves and run_id not in self.runs_finished:
            if time.monotonic() > deadline:
                return
            await asyncio.sleep(0.01)

    def first_finish_after(self, moment: float) -> float | None:
        return next((t for t in self.tasks_finished if t >= moment), None)

    def longest_pause(self, since: float, until: float) -> float:
        """The longest time no task finished between `since` and `until`: what a stalled recovery costs."""
        moments = [since, *(t for t in self.tasks_finished if since <= t <= until), until]
        return max(b - a for a, b in pairwise(moments))

    def in_flight(self, runs: dict[str, float], moment: float) -> list[str]:
        """The runs submitted before `moment` that had not finished by then."""
        return [r for r, at in runs.items() if at <= moment and self.runs_finished.get(r, moment + 1) > moment]


class Hooks:
    """Hook notifications seen live on core NATS, by run: what a fault-free run fires."""

    def __init__(self) -> None:
        self.by_run: dict[str, Counter[HookKey]] = {}

    async def on_hook(self, msg: Msg) -> None:
        hook = orjson.loads(msg.data)
        self.by_run.setdefault(hook["workflowRunID"], Counter())[hook_key(hook)] += 1

    async def of(self, run_id: str, at_least: int) -> Counter[HookKey]:
        """The run's notifications once `at_least` came (or HOOKS_TIMEOUT passed), and a second more for any
        extra: hooks follow the commit that fires them, so they may still be on their way when the run ends."""
        deadline = time.monotonic() + HOOKS_TIMEOUT
        while self.by_run.get(run_id, Counter()).total() < at_least and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)
        return Counter(self.by_run.get(run_id, Counter()))


@dataclass
class Fault:
    kind: str
    at: float
    """When the process was killed (monotonic)."""
    restarted: float
    """When its successor was ready."""
    in_flight: int
    loop_done: int
    recovered: float | None = None
    """When the first task finished after the restart."""

    def describe(self, began: float) -> str:
        recovery = "no task finished after it" if self.recovered is None else f"{self.recovered - self.restarted:.1f} s"
        return (
            f"{self.kind:6} killed at {self.at - began:5.1f} s with {self.in_flight:2} runs in flight "
            f"(loop {self.loop_done:4}/{LOOP_ITEMS} tasks done), "
            f"back in {self.restarted - self.at:.1f} s, next task finished after {recovery}"
        )


@dataclass
class System:
    """The processes under test and the seeded fault schedule played against them."""

    server: EmbeddedNatsServer
    serve: Child
    workers: list[Child]
    rng: random.Random
    progress: Progress
    faults: list[Fault] = field(default_factory=list)

    def children(self) -> Iterator[Child]:
        yield self.serve
        yield from self.workers

    async def inject(self, kind: str, runs: dict[str, float], loop: str) -> None:
        """SIGKILL one process of `kind` and start its successor on the same store, port and arguments."""
        at = time.monotonic()
        in_flight = len(self.progress.in_flight(runs, at))
        loop_done = self.progress.leaves_finished[loop]
        if kind == "engine":
            self.serve.kill()
            await self.serve.start("serving on")
        elif kind == "worker":
            worker = self.rng.choice(self.workers)
            worker.kill()
            await worker.start("serving")
        else:
            await asyncio.to_thread(self.server.restart, hard=True)
        self.faults.append(Fault(kind, at, time.monotonic(), in_flight, loop_done))

    def diagnostics(self) -> str:
        return "\n".join(child.tail() for child in self.children())


def _outcome(view: dict[str, Any]) -> tuple[Any, ...]:
    """What a run ended with, without ids and times: the run's phase and outputs, each task's (no metrics)."""

    def timeless(outputs: dict[str, Any] | None) -> bytes:
        kept = {k: v for k, v in outputs.items() if k != "metrics"} if outputs is not None else None
        return orjson.dumps(kept, option=orjson.OPT_SORT_KEYS)

    tasks = sorted((t["taskName"], t["status"], timeless(t["outputs"])) for t in view["tasks"])
    return view["status"], timeless(view["outputs"]), tasks


def _last_events(history: list[StoredCommit]) -> list[str]:
    """The event types of a history's last commit: where a run that did not finish stopped."""
    return [envelope.type for envelope in history[-1].commit.envelopes] if history else []


@pytest.fixture
def seed() -> int:
    chosen = int(os.environ.get(SEED_ENV) or random.randrange(2**32))
    print(f"chaos seed {chosen} ({SEED_ENV}={chosen} replays it)")
    return chosen


@pytest.fixture
def system(tmp_path: Path, seed: int) -> Iterator[System]:
    """A nats-server, and the serve and two worker roles on it (not started); every process ends with the test."""
    server = EmbeddedNatsServer(tmp_path / "jetstream")
    url = server.start()
    logs = tmp_path / "logs"
    serve = ["serve", "--nats", url, "--workers", "0", "--state-dir", str(tmp_path / "state")]
    worker = ["worker", "--executors", "echo", "--nats", url]
    system = System(
        server,
        Child("serve", serve, logs),
        [Child(f"worker{i}", worker, logs) for i in range(2)],
        random.Random(seed),
        Progress(),
    )
    try:
        yield system
    finally:
        for child in system.children():
            child.stop()
        server.close()


async def test_kill_9_at_random_moments_loses_and_doubles_nothing(
    system: System, seed: int, capsys: pytest.CaptureFixture[str]
) -> None:
    connection: NatsConnection | None = None
    try:
        await system.serve.start("serving on")
        for worker in system.workers:
            await worker.start("serving")
        connection = await connect(system.server.url, name="chaos-observer")
        live_hooks = Hooks()
        await connection.nc.subscribe(LAYOUT.run_subjects, cb=system.progress.on_commit)
        await connection.nc.subscribe(LAYOUT.hook_subjects, cb=live_hooks.on_hook)
        client = await Client.connect(connection)
        store = NatsEventStore(connection.nc, LAYOUT)

        # The fault-free twins: how each document ends, and which hooks it fires.
        began = time.monotonic()
        twins = {"loop": await submit_for_good(client, LOOP, "twin-loop")}
        twins["small"] = await submit_for_good(client, SMALL_DAG, "twin-small")
        twin_phases = await settle(client, list(twins.values()), 60)
        fault_free = time.monotonic() - began
        assert set(twin_phases.values()) == {ph.SUCCEEDED}, f"seed {seed}: {twin_phases}\n{system.diagnostics()}"
        expected_hooks = {"small": await live_hooks.of(twins["small"], HOOKS_PER_SMALL_RUN)}
        expected_hooks["loop"] = await live_hooks.of(twins["loop"], 0)
        assert expected_hooks["small"].total() == HOOKS_PER_SMALL_RUN, expected_hooks

        # The same documents again, with faults while they are in flight.
        began = time.monotonic()
        kinds = list(FAULT_KINDS) * FAULTS_PER_KIND
        system.rng.shuffle(kinds)
        moments = sorted(system.rng.sample(range(*MOMENTS), len(kinds)))
        loop = await submit_for_good(client, LOOP, "loop")
        runs = {loop: "loop"}
        first_small = SMALL_RUNS - len(kinds)
        for i in range(first_small):
            runs[await submit_for_good(client, SMALL_DAG, f"small-{i}")] = "small"
        submitted = dict.fromkeys(runs, began)
        faults_deadline = time.monotonic() + FAULTS_TIMEOUT
        for i, (kind, moment) in enumerate(zip(kinds, moments, strict=True)):
            await system.progress.reached(loop, moment, faults_deadline)
            await system.inject(kind, submitted, loop)
            run_id = await submit_for_good(client, SMALL_DAG, f"small-{first_small + i}")
            runs[run_id], submitted[run_id] = "small", time.monotonic()
        phases = await settle(client, list(runs), SETTLE_TIMEOUT)
        settled = time.monotonic()

        attempts = {run_id: await count_attempts(store, run_id) for run_id in [*runs, *twins.values()]}
        for fault in system.faults:
            fault.recovered = system.progress.first_finish_after(fault.restarted)
        by_kind = Counter(f.kind for f in system.faults)
        with capsys.disabled():
            print(
                f"\nchaos seed {seed}: {len(system.faults)} faults "
                f"({', '.join(f'{k} {by_kind[k]}' for k in FAULT_KINDS)}), {len(runs)} runs, "
                f"{sum(len(attempts[r][0]) for r in runs)} task attempts; fault-free twins {fault_free:.1f} s, "
                f"under faults {settled - began:.1f} s until all terminal, "
                f"longest pause without a finished task {system.progress.longest_pause(began, settled):.1f} s"
            )
            for n, fault in enumerate(system.faults, 1):
                print(f"  fault {n}: {fault.describe(began)}")

        unfinished = {r: _last_events(await store.load(r)) for r, phase in phases.items() if phase != ph.SUCCEEDED}
        assert not unfinished, f"seed {seed}: {phases}\nlast commits: {unfinished}\n{system.diagnostics()}"
        outcomes = {kind: _outcome(await client.get(run_id)) for kind, run_id in twins.items()}
        for run_id, kind in runs.items():
            assert _outcome(await client.get(run_id)) == outcomes[kind], f"seed {seed}: {run_id} ended otherwise"
            dispatched, finished = attempts[run_id]
            twin = attempts[twins[kind]][0]
            assert len(dispatched) == len(twin), f"seed {seed}: {run_id} ran other attempts than its twin"
            assert set(dispatched.values()) == {1}, f"seed {seed}: {run_id} dispatched an attempt twice"
            assert set(finished.values()) == {1}, f"seed {seed}: {run_id} finished an attempt twice"
            assert set(dispatched) <= set(finished), f"seed {seed}: {run_id} has an unfinished attempt"

        replay = await asyncio.to_thread(aether, "replay", "--all", "--verify", "--nats", system.server.url)
        assert replay.returncode == 0, f"seed {seed}: {replay.stdout}{replay.stderr}"

        everyone = [*runs.items(), *((r, k) for k, r in twins.items())]
        total = sum(expected_hooks[kind].total() for _, kind in everyone)
        stored = await stored_hooks(connection, LAYOUT, total, HOOKS_TIMEOUT)
        for run_id, kind in everyone:
            found, expected = hook_counts(stored.get(run_id, [])), expected_hooks[kind]
            assert found == expected, (
                f"seed {seed}: {run_id} kept {found.total()} of {expected.total()} hook notifications: "
                f"missing {dict(expected - found)}, extra {dict(found - expected)}"
            )
    finally:
        if connection is not None:
            await connection.close()
