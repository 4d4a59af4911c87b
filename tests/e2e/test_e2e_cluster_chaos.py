"""Cluster chaos: three engines and two workers on a 3-node JetStream cluster, and kill -9 an engine, a worker
and the node leading the history at random moments: every run ends as one engine alone would end it.

All real processes: three nodes routed on loopback (`support.cluster`), three `aether-es serve --replicas 3
--partitions 6` sharing the runs, two `aether-es worker --executors echo,sleep`. The engines' cron scheduler
fires every few seconds (`serve_ticking.py`: 5-field cron cannot say that); the rest is the shipped command.
The workload mixes loops, DAGs with hooks, a task that fails twice and then succeeds after a backoff, a
task that outlives its timeout, and tasks that suspend and are resumed, alternately through the Client and
the CLI, while engines die. Runs keep coming in while the faults strike, so the killed engine's partitions
have runs in flight.

Afterwards: every run ends in its workflow's phase; each task attempt is dispatched and finished exactly
once; each scheduled time of the cron is decided once, and none is missing but while an engine or node was
down; each hook notification is sent, under one id (heard live on some node or kept by the hooks stream);
`aether-es replay --all --verify` finds the live views. Printed: the seed (`AETHER_CHAOS_SEED=N` replays the
schedule), each fault, and an engine's failover: from its kill to the others holding all its partitions, and
to each partition's next commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import nats
import nats.aio.client
import nats.errors
import orjson
import pytest
import pytest_asyncio
from nats.aio.msg import Msg
from nats.js.kv import KeyValue
from support.attempts import count_attempts
from support.cli import aether
from support.cluster import LocalCluster
from support.processes import Child
from support.steering import hook_counts, settle, stored_hooks, submit_for_good

from aether_es import Client
from aether_es.adapters.nats.connection import NatsConnection, connect
from aether_es.adapters.nats.event_store import NatsEventStore
from aether_es.adapters.nats.layout import Layout
from aether_es.adapters.nats.membership import EngineInfo, list_engines
from aether_es.cluster.partitions import partition_of
from aether_es.errors import AetherError
from aether_es.model import phases as ph
from aether_es.runtime.crons import aggregate_id
from aether_es.runtime.ownership import partition_key
from bench.scenarios import loop_workflow

HERE = Path(__file__).resolve().parent
SEED_ENV = "AETHER_CHAOS_SEED"
LAYOUT = Layout()
RUN_SUBJECT = LAYOUT.run_subjects.removesuffix(">")
ENGINES = 3
PARTITIONS = 6
LEASE_TTL = 6.0
"""`serve --lease-ttl`'s default: a dead engine's partitions move within 4/3 of it."""
ENGINE_DOWN = LEASE_TTL * 4 / 3 + 4.0
"""A killed engine stays down past its leases, so its partitions move to the others before it is back."""
DOWN = (1.0, 2.0)
"""How long a killed worker or node stays down (seeded)."""
GAP = (2.0, 5.0)
"""The random wait before each fault (seeded)."""
CRON_PERIOD = 2
CRON_GRACE = LEASE_TTL * 4 / 3 + 3.0
"""After a fault that stops an engine or a node, scheduled times may pass undecided until the cron's lease
has moved: so long after the restart."""
SUBMIT_EVERY = 1.0
SETTLE_TIMEOUT = 75.0
"""Seconds for every submission and resume to be done after the last fault, and every run to end: more than a
submission may keep trying (`submit_for_good`'s 60 s), since a command waits while its partition changes hands."""
HOOKS_TIMEOUT = 15.0

_ECHO = {"task": {"name": "note", "inputs": {"parameters": [{"name": "text"}]}, "executor": {"type": "echo"}}}
_HOOKS = {key: {"template": "note"} for key in ("onStart", "onSuccess", "onFailure", "onError", "onExit")}


def _workflow(name: str, tasks: list[dict[str, Any]], *templates: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "aether/v1",
        "kind": "Workflow",
        "metadata": {"name": name},
        "spec": {"entrypoint": "main", "templates": [{"dag": {"name": "main", "tasks": tasks}}, *templates], **spec},
    }


def _node(name: str, after: list[str], template: str = "note", **fields: Any) -> dict[str, Any]:
    arguments = fields.pop("arguments", [{"name": "text", "value": name}])
    return {
        "name": name,
        "template": template,
        "dependencies": after,
        "arguments": {"parameters": arguments},
        **fields,
    }


def _loop() -> dict[str, Any]:
    document = loop_workflow(40)
    document["spec"]["templates"][0]["loop"]["concurrency"] = 2
    return document


HOOKED = _workflow(
    "chaos-hooked",
    [
        _node("a", [], hooks=_HOOKS),
        _node("b", ["a"], hooks=_HOOKS),
        _node("c", ["a"], hooks=_HOOKS),
        _node("d", ["b", "c"], hooks=_HOOKS),
    ],
    _ECHO,
    hooks=_HOOKS,
)
"""A diamond, the workflow and each node declaring hooks: a success fires onStart, onSuccess, onExit each."""
HOOKED_KEYS = {("workflow", "", hook) for hook in ("onStart", "onSuccess", "onExit")} | {
    ("task", node, hook) for node in "abcd" for hook in ("onStart", "onSuccess", "onExit")
}

RETRY = _workflow(
    "chaos-retry",
    [
        _node(
            "flaky",
            [],
            template="flaky",
            arguments=[],
            retry={"limit": 3, "expression": "tasks.flaky.phase != 'Succeeded'", "backoff": {"duration": "1s"}},
        ),
        _node("after", ["flaky"]),
    ],
    {
        "task": {
            "name": "flaky",
            "inputs": {"parameters": [{"name": "fail-count", "value": 2}]},
            "executor": {"type": "echo"},
        }
    },
    _ECHO,
)
"""Fails twice, succeeds on the third attempt, a second after each failure."""

TIMEOUT = _workflow(
    "chaos-timeout",
    [
        _node("slow", [], template="nap", timeout="2s", arguments=[{"name": "duration", "value": "60s"}]),
        _node("after", ["slow"]),
    ],
    {"task": {"name": "nap", "inputs": {"parameters": [{"name": "duration"}]}, "executor": {"type": "sleep"}}},
    _ECHO,
)
"""A task that would sleep a minute, timed out after two seconds: the run ends as an Error."""

SUSPEND = _workflow(
    "chaos-suspend",
    [
        _node("before", []),
        _node("gate", ["before"], template="gate", arguments=[]),
        _node("after", ["gate"]),
    ],
    {
        "task": {
            "name": "gate",
            "inputs": {"parameters": [{"name": "suspend", "value": True}]},
            "executor": {"type": "echo"},
        }
    },
    _ECHO,
)
"""Its `gate` waits to be resumed (echo's suspend gate, ended by a payload with `__resumed`)."""

CRON = {
    "apiVersion": "aether/v1",
    "kind": "CronWorkflow",
    "metadata": {"name": "chaos-tick"},
    "spec": {
        "schedule": "* * * * *",
        "workflowSpec": {"entrypoint": "note", "templates": [{"task": {"name": "note", "executor": {"type": "echo"}}}]},
    },
}
"""Scheduled every CRON_PERIOD seconds by the engines' ticking scheduler (its schedule names no time)."""

WORKLOAD: dict[str, tuple[dict[str, Any], str, int]] = {
    "loop": (_loop(), ph.SUCCEEDED, 40),
    "hooked": (HOOKED, ph.SUCCEEDED, 4),
    "retry": (RETRY, ph.SUCCEEDED, 4),
    "timeout": (TIMEOUT, ph.ERROR, 1),
    "suspend": (SUSPEND, ph.SUCCEEDED, 4),
    "cron": (CRON["spec"]["workflowSpec"], ph.SUCCEEDED, 1),
}
"""Each kind of run: its document, the phase it ends in, and how many task attempts it dispatches."""
FIRST = ("loop", "loop", "hooked", "retry", "timeout", "suspend", "suspend", "hooked")
"""The runs submitted before the faults; then one more every SUBMIT_EVERY, of these kinds in turn:"""
TRICKLE = ("hooked", "suspend", "retry", "timeout", "hooked", "suspend")


class Commits:
    """When the runs' commits were stored, as the history stream dates them, read back afterwards (an observer
    cut off by a node's loss would miss some; an event's own time may be a worker's, not its decision's)."""

    def __init__(self, moments: list[tuple[float, str]]) -> None:
        self.moments = sorted(moments)

    @classmethod
    async def of(cls, connection: NatsConnection, run_ids: set[str]) -> Commits:
        last = (await connection.js.stream_info(LAYOUT.runs_stream)).state.last_seq
        sub = await connection.js.subscribe(LAYOUT.run_subjects, ordered_consumer=True)
        moments = []
        try:
            while True:
                msg = await sub.next_msg(timeout=10)
                run_id = msg.subject.removeprefix(RUN_SUBJECT)
                if run_id in run_ids:
                    moments.append((msg.metadata.timestamp.timestamp(), run_id))
                if msg.metadata.sequence.stream >= last:
                    return cls(moments)
        finally:
            await sub.unsubscribe()

    def first_after(self, moment: float, partitions: set[int]) -> dict[int, float]:
        """Per partition, its first commit after `moment`: when a run of it progressed again."""
        firsts: dict[int, float] = {}
        for at, run_id in self.moments:
            partition = partition_of(run_id, PARTITIONS)
            if at > moment and partition in partitions:
                firsts.setdefault(partition, at)
        return firsts


@dataclass
class Fault:
    kind: str
    target: str
    at: float
    """When the process was killed (epoch seconds, as all times here)."""
    restarted: float
    """When its successor was ready."""
    partitions: set[int] = field(default_factory=set)
    """An engine's: the partitions it held when killed."""
    moved: float | None = None
    """An engine's: when the other engines held all its partitions (None: not before it was back)."""
    progressed: dict[int, float] = field(default_factory=dict)
    """When each partition (an engine's: each of its own) next stored a commit."""

    def describe(self, began: float) -> str:
        line = (
            f"{self.kind:6} {self.target} killed at {self.at - began:5.1f} s, "
            f"back after {self.restarted - self.at:.1f} s"
        )
        if self.kind != "engine":
            resumed = min(self.progressed.values(), default=None)
            return line if resumed is None else f"{line}; the next commit after {resumed - self.at:.1f} s"
        held = ",".join(map(str, sorted(self.partitions)))
        moved = "not before it was back" if self.moved is None else f"after {self.moved - self.at:.1f} s"
        progressed = ", ".join(f"{p} after {t - self.at:.1f} s" for p, t in sorted(self.progressed.items()))
        return f"{line}; its partitions {held} moved {moved}; runs progressed again in {progressed or 'none'}"

    def covers(self, moment: float) -> bool:
        """Whether a scheduled time at `moment` (epoch seconds) fell while this fault could leave it undecided."""
        return self.kind != "worker" and self.at <= moment <= self.restarted + CRON_GRACE


@dataclass
class System:
    cluster: LocalCluster
    engines: list[Child]
    workers: list[Child]
    rng: random.Random
    faults: list[Fault] = field(default_factory=list)

    def children(self) -> Iterator[Child]:
        yield from self.engines
        yield from self.workers

    def diagnostics(self) -> str:
        return "\n".join(child.tail(15) for child in self.children())

    async def engine_fault(self, connection: NatsConnection) -> None:
        engine = self.rng.choice(self.engines)
        assert engine.process is not None
        record = await _record(connection, engine.process.pid)
        fault = Fault("engine", engine.name, time.time(), 0.0, set(record.partitions))
        await asyncio.to_thread(engine.kill)
        leases = await connection.js.key_value(LAYOUT.leases_bucket)
        while fault.moved is None and time.time() < fault.at + ENGINE_DOWN:
            if all([await _holder(leases, p) not in ("", record.engine_id) for p in fault.partitions]):
                fault.moved = time.time()
            await asyncio.sleep(0.1)
        await asyncio.sleep(fault.at + ENGINE_DOWN - time.time())
        await engine.start("serving on")
        fault.restarted = time.time()
        self.faults.append(fault)

    async def worker_fault(self) -> None:
        worker = self.rng.choice(self.workers)
        at = time.time()
        await asyncio.to_thread(worker.kill)
        await asyncio.sleep(self.rng.uniform(*DOWN))
        await worker.start("serving")
        self.faults.append(Fault("worker", worker.name, at, time.time()))

    async def node_fault(self) -> None:
        leader = await self.cluster.leader_of(LAYOUT.runs_stream)
        node = self.cluster.node_named(leader)
        at = time.time()
        await asyncio.to_thread(node.kill)
        await asyncio.sleep(self.rng.uniform(*DOWN))
        await asyncio.to_thread(node.start)
        self.faults.append(Fault("nats", leader, at, time.time()))


async def _record(connection: NatsConnection, pid: int, timeout: float = 30.0) -> EngineInfo:
    """The membership record of the engine process `pid` once the engines hold every partition between them:
    after a node's loss they may still be taking them back (an engine that cannot renew gives all it holds up)."""
    deadline = time.time() + timeout
    while True:
        with contextlib.suppress(nats.errors.Error, TimeoutError):
            engines = await list_engines(connection.js, LAYOUT)
            held = {p for engine in engines for p in engine.partitions}
            mine = [engine for engine in engines if engine.pid == pid and engine.partitions]
            if mine and held == set(range(PARTITIONS)):
                return mine[0]
        assert time.time() < deadline, f"engine pid {pid} holds no partition, or some have no engine"
        await asyncio.sleep(0.2)


async def _holder(leases: KeyValue, partition: int) -> str:
    """The engine holding the partition's lease ("" when none does, or the bucket does not answer now)."""
    try:
        entry = await leases.get(partition_key(partition))
    except (nats.errors.Error, TimeoutError):
        return ""
    return (entry.value or b"").decode()


class Heard:
    """The hook notifications heard live, by run: a subscriber on each node, so that one is always up (the
    hooks stream keeps them too, but a notification sent while its leader is being elected reaches only
    live subscribers)."""

    def __init__(self) -> None:
        self.by_run: dict[str, list[dict[str, Any]]] = {}
        self._clients: list[nats.aio.client.Client] = []

    async def listen(self, cluster: LocalCluster) -> None:
        for url in cluster.urls:
            nc = await nats.connect(url, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
            await nc.subscribe(LAYOUT.hook_subjects, cb=self._on_hook)
            self._clients.append(nc)

    async def _on_hook(self, msg: Msg) -> None:
        hook = orjson.loads(msg.data)
        self.by_run.setdefault(hook["workflowRunID"], []).append(hook)

    async def close(self) -> None:
        for nc in self._clients:
            await nc.close()


class Workload:
    """The runs submitted, by kind, and the resumes of the suspended ones' gates: each submission and each
    resume is a task of its own, so one that waits for a dead engine's partition holds back no other."""

    def __init__(self, client: Client, url: str) -> None:
        self.client = client
        self.url = url
        self.runs: dict[str, str] = {}
        self.resumed_by: Counter[str] = Counter()
        self._tasks: set[asyncio.Task[None]] = set()

    def submit(self, kind: str, key: str) -> None:
        self._spawn(self._submit(kind, key))

    async def trickle(self, stop: asyncio.Event) -> None:
        """One more run every SUBMIT_EVERY, of the TRICKLE kinds in turn, until `stop` is set."""
        for n in itertools.count():
            if stop.is_set():
                return
            self.submit(TRICKLE[n % len(TRICKLE)], f"trickle-{n}")
            await asyncio.sleep(SUBMIT_EVERY)

    async def submitted(self) -> None:
        """Until every submission and resume is done."""
        while self._tasks:
            await asyncio.gather(*self._tasks)

    def cancel(self) -> None:
        for task in self._tasks:
            task.cancel()

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _submit(self, kind: str, key: str) -> None:
        run_id = await submit_for_good(self.client, WORKLOAD[kind][0], key)
        self.runs[run_id] = kind
        if kind == "suspend":
            await self._resume(run_id)

    async def _resume(self, run_id: str) -> None:
        """Resume the run's gate once it waits, alternately through the Client and the CLI, trying again while
        an engine is dying (a resume whose reply was lost is refused next time: the gate has gone on)."""
        while True:
            with contextlib.suppress(AetherError, TimeoutError):
                tasks = {task["taskName"]: task for task in (await self.client.get(run_id))["tasks"]}
                gate = tasks.get("gate", {})
                if gate.get("status") in ph.TERMINAL:
                    return
                if gate.get("status") == ph.SUSPENDED:
                    await self._resume_gate(run_id, gate["runID"])
            await asyncio.sleep(0.5)

    async def _resume_gate(self, run_id: str, gate: str) -> None:
        if self.resumed_by.total() % 2:
            args = ("resume", run_id, gate, "--payload", '{"__resumed": true}', "--nats", self.url)
            if (await asyncio.to_thread(aether, *args)).returncode == 0:
                self.resumed_by["cli"] += 1
        else:
            await self.client.resume(run_id, gate, {"__resumed": True})
            self.resumed_by["client"] += 1


@pytest.fixture
def seed() -> int:
    chosen = int(os.environ.get(SEED_ENV) or random.randrange(2**32))
    print(f"cluster chaos seed {chosen} ({SEED_ENV}={chosen} replays it)")
    return chosen


@pytest_asyncio.fixture
async def system(tmp_path: Path, seed: int) -> AsyncIterator[System]:
    """The cluster, and the engine and worker roles on it (not started); every process ends with the test."""
    folder = tmp_path / "cluster"
    folder.mkdir()
    cluster = LocalCluster(folder)
    await asyncio.to_thread(cluster.start)
    logs = tmp_path / "logs"
    ticking = [str(HERE / "serve_ticking.py"), str(CRON_PERIOD)]
    serve = ["serve", "--nats", cluster.url, "--replicas", "3", "--partitions", str(PARTITIONS)]
    serve += ["--workers", "0", "--no-feed"]
    worker = ["worker", "--executors", "echo,sleep", "--nats", cluster.url]
    engines = [
        Child(f"engine{i}", [*serve, "--state-dir", str(tmp_path / f"state{i}")], logs, ticking) for i in range(ENGINES)
    ]
    system = System(cluster, engines, [Child(f"worker{i}", worker, logs) for i in range(2)], random.Random(seed))
    try:
        await cluster.wait_ready()
        yield system
    finally:
        # A short drain: a worker may still run an assignment delivered again after its first worker died,
        # whose attempt had meanwhile ended (a timeout): nothing the checks need is left to finish.
        await asyncio.gather(*(asyncio.to_thread(child.stop, 5) for child in system.children()))
        cluster.close()


async def _trail(store: NatsEventStore, run_id: str) -> str:
    """A run's history, one line per commit: when, who, and its events (with the task and attempt)."""
    lines = []
    for stored in await store.load(run_id):
        first = stored.commit.envelopes[0]
        events = []
        for envelope in stored.commit.envelopes:
            event: Any = envelope.event
            task = getattr(event, "task_id", "").removeprefix(run_id)
            events.append(f"{event.type}{task}#{getattr(event, 'attempt', '')}" if task else event.type)
        lines.append(f"{first.time} {first.actor}: {' '.join(events)}")
    return "\n".join(["", *lines])


async def _cron_decisions(store: NatsEventStore, cron_id: str) -> list[tuple[str, str, str]]:
    """Every scheduled time the cron's history decided: (time, CronFired or CronSkipped, run id or reason)."""
    decided = []
    for stored in await store.load(aggregate_id(cron_id)):
        for envelope in stored.commit.envelopes:
            event: Any = envelope.event
            if event.type == "CronFired":
                decided.append((event.scheduled_at, event.type, event.run_id))
            elif event.type == "CronSkipped":
                decided.append((event.scheduled_at, event.type, event.reason))
    return decided


async def test_killing_engines_workers_and_nodes_changes_no_outcome(
    system: System, seed: int, capsys: pytest.CaptureFixture[str]
) -> None:
    url = system.cluster.url
    began = time.time()
    await system.engines[0].start("serving on")  # creates the streams; the others join it
    await asyncio.gather(*(engine.start("serving on") for engine in system.engines[1:]))
    await asyncio.gather(*(worker.start("serving") for worker in system.workers))
    connection = await connect(url, name="cluster-chaos-observer")
    heard = Heard()
    workload: Workload | None = None
    try:
        await heard.listen(system.cluster)
        client = await Client.connect(connection, timeout=10.0)
        store = NatsEventStore(connection.nc, LAYOUT)
        workload = Workload(client, url)
        cron_id = await client.cron_submit(CRON)
        cron_began = time.time()
        for n, kind in enumerate(FIRST):
            workload.submit(kind, f"first-{n}")
        stop = asyncio.Event()
        trickle = asyncio.create_task(workload.trickle(stop))

        faults_began = time.time()
        kinds = ["engine", "worker", "nats"]
        system.rng.shuffle(kinds)
        for kind in kinds:
            await asyncio.sleep(system.rng.uniform(*GAP))
            if kind == "engine":
                await system.engine_fault(connection)
            elif kind == "worker":
                await system.worker_fault()
            else:
                await system.node_fault()
        stop.set()
        await trickle
        try:
            await asyncio.wait_for(workload.submitted(), SETTLE_TIMEOUT)
        except TimeoutError:
            raise AssertionError(f"seed {seed}: submissions or resumes still waiting\n{system.diagnostics()}") from None
        await client.cron_suspend(cron_id)
        cron_ended = time.time()
        decisions = await _cron_decisions(store, cron_id)
        runs = workload.runs | {run_id: "cron" for _, decision, run_id in decisions if decision == "CronFired"}
        phases = await settle(client, list(runs), SETTLE_TIMEOUT)
        settled = time.time()

        commits = await Commits.of(connection, set(runs))
        for fault in system.faults:
            fault.progressed = commits.first_after(fault.at, fault.partitions or set(range(PARTITIONS)))
        attempts = {run_id: await count_attempts(store, run_id) for run_id in runs}
        with capsys.disabled():
            print(
                f"\ncluster chaos seed {seed}: {ENGINES} engines, {PARTITIONS} partitions, {len(runs)} runs "
                f"({', '.join(f'{k} {n}' for k, n in sorted(Counter(runs.values()).items()))}), "
                f"{sum(len(a[0]) for a in attempts.values())} task attempts; gates resumed through the client "
                f"{workload.resumed_by['client']}, the CLI {workload.resumed_by['cli']}; faults from "
                f"{faults_began - began:.1f} s, all terminal at {settled - began:.1f} s"
            )
            for n, fault in enumerate(system.faults, 1):
                print(f"  fault {n}: {fault.describe(began)}")

        wrong = {r: (runs[r], p) for r, p in phases.items() if p != WORKLOAD[runs[r]][1]}
        assert not wrong, (
            f"seed {seed}: runs that ended otherwise: {wrong}"
            f"{''.join([await _trail(store, run_id) for run_id in wrong])}\n{system.diagnostics()}"
        )
        for run_id, kind in runs.items():
            dispatched, finished = attempts[run_id]
            assert len(dispatched) == WORKLOAD[kind][2], f"seed {seed}: {kind} {run_id}: {await _trail(store, run_id)}"
            assert set(dispatched.values()) == {1}, f"seed {seed}: {run_id} dispatched an attempt twice"
            assert set(finished.values()) == {1}, f"seed {seed}: {run_id} finished an attempt twice"
            assert set(dispatched) <= set(finished), f"seed {seed}: {run_id} has an unfinished attempt"

        times = Counter(scheduled for scheduled, _, _ in decisions)
        assert max(times.values()) == 1, f"seed {seed}: scheduled times decided twice: {times.most_common(3)}"
        assert {decision for _, decision, _ in decisions} == {"CronFired"}, decisions
        fired = {datetime.fromisoformat(scheduled).timestamp() for scheduled in times}
        missed = [
            t
            for t in range(int(min(fired)), int(cron_ended), CRON_PERIOD)
            if t not in fired and t > cron_began + CRON_PERIOD
        ]
        unexplained = [t for t in missed if not any(f.covers(t) for f in system.faults)]
        assert not unexplained, f"seed {seed}: scheduled times never decided: {unexplained}"
        print(f"cron: {len(fired)} scheduled times fired once each, {len(missed)} passed while a lease moved")

        hooked = [run_id for run_id, kind in runs.items() if kind == "hooked"]
        kept = await stored_hooks(connection, LAYOUT, len(HOOKED_KEYS) * len(hooked), HOOKS_TIMEOUT)
        unkept = 0
        for run_id in hooked:
            notified = {hook["id"]: hook for hook in [*kept.get(run_id, []), *heard.by_run.get(run_id, [])]}
            unkept += len(notified) - len(kept.get(run_id, []))
            assert set(hook_counts(list(notified.values()))) == HOOKED_KEYS, (
                f"seed {seed}: {run_id} notified {hook_counts(list(notified.values()))}: {await _trail(store, run_id)}"
            )
            assert len(notified) == len(HOOKED_KEYS), f"seed {seed}: {run_id} notified under other ids: {notified}"
        print(f"hooks: every notification of {len(hooked)} runs sent under one id; {unkept} missing from the stream")

        replay = await asyncio.to_thread(aether, "replay", "--all", "--verify", "--nats", url, timeout=120)
        assert replay.returncode == 0, f"seed {seed}: {replay.stdout}{replay.stderr}"
    finally:
        if workload is not None:
            workload.cancel()
        await heard.close()
        await connection.close()
