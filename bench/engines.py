"""The `engines` scenario: one fixed workload through 1, 2 and 3 `aether-es serve` engines sharing a system.

Each engine count gets a fresh nats-server, that many `serve --workers 0 --no-feed` processes (the runs'
partitions spread over them) and one `aether-es worker --executors echo`. Once every partition has its engine,
the scenario waits `Sizes.engine_settle` seconds (12; none in `--quick`): for several seconds after partitions
change hands, some of their runs' reports wait out an ack wait (5 s), which would be timed otherwise. A tenth
of the runs then goes through untimed, to warm every engine up; then `Client` submits the runs of a 10-task
DAG all at once and the clock stops at the last run's `RunFinished`.
Each count's tasks/s is given beside the raw JetStream floor of the same bench run and beside one engine's.

What limits it is in each result's `extra`: the CPU seconds the engines, the worker and the nats-server took
while the runs ran (over the run's seconds: the cores each kept busy), and the machine's core count.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from nats.aio.msg import Msg

from aether_es.adapters.nats.connection import NatsConnection, connect
from aether_es.adapters.nats.layout import Layout, recorded_partitions
from aether_es.adapters.nats.membership import list_engines
from aether_es.client import Client
from aether_es.events.catalogue import RunFinished
from aether_es.events.codec import decode_commit
from aether_es.model import phases as ph
from bench import floor as fl
from bench.scenarios import ScenarioResult, Sizes, dag_workflow, fresh_server
from bench.user_paths import COMMAND, START_TIMEOUT, _started, _stop, peak_rss_mb

ENGINE_COUNTS = (1, 2, 3)
TASKS_PER_RUN = 10
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int | None) -> float:
    """User plus system CPU time a live process has used so far (0 where /proc does not tell)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


class Ends:
    """The runs whose `RunFinished` was committed, with their phases, seen on the history's subjects, and when
    the last came."""

    def __init__(self) -> None:
        self.ended: dict[str, str] = {}
        self.last = 0.0

    async def on_commit(self, msg: Msg) -> None:
        commit = decode_commit(msg.data)
        for envelope in commit.envelopes:
            event = envelope.event
            if isinstance(event, RunFinished):
                self.ended[commit.run_id] = event.phase
                self.last = time.perf_counter()


async def engines(sizes: Sizes, floor: fl.TaskFloor) -> list[ScenarioResult]:
    """One result per engine count, each with its ratio to the floor and to one engine."""
    results = [await _measure(count, sizes.engine_runs, sizes.engine_settle, floor) for count in ENGINE_COUNTS]
    one = results[0].tasks_per_s
    for result in results:
        result.extra["vs_one_engine"] = result.tasks_per_s / one if one else 0.0
    return results


async def _measure(count: int, runs: int, settle: float, floor: fl.TaskFloor) -> ScenarioResult:
    layout = Layout()
    async with fresh_server() as (server, root):
        procs: list[subprocess.Popen[bytes]] = []
        try:
            serves = [
                _spawn(
                    root,
                    "serve",
                    "--nats",
                    server.url,
                    "--workers",
                    "0",
                    "--no-feed",
                    "--state-dir",
                    str(root / f"state{i}"),
                )
                for i in range(count)
            ]
            procs += serves
            await _ready(serves[:1], "serve", b"serving on")  # the first creates the streams
            await _ready(serves[1:], "serve", b"serving on")
            worker = _spawn(root, "worker", "--executors", "echo", "--nats", server.url)
            procs.append(worker)
            await _ready([worker], "worker", b"serving")
            pids: dict[str, list[int | None]] = {
                "engines": [p.pid for p in serves],
                "worker": [worker.pid],
                "nats": [server.pid],
            }
            connection = await connect(server.url, name="aether-bench-engines")
            try:
                await _partitions_spread(connection, layout, count)
                await asyncio.sleep(settle)
                await _run(connection, layout, max(1, runs // 10))  # warm-up
                before = _cpu(pids)
                seconds, status = await _run(connection, layout, runs)
                cpu = {role: spent - before[role] for role, spent in _cpu(pids).items()}
            finally:
                await connection.close()
            peak = max(peak_rss_mb(p.pid) for p in serves)
        finally:
            await asyncio.gather(*(asyncio.to_thread(_stop, proc) for proc in procs))
    tasks = runs * TASKS_PER_RUN
    result = ScenarioResult(
        name=f"{count} engine{'s' if count > 1 else ''}",
        tasks=tasks,
        workflows=runs,
        seconds=seconds,
        status=status,
        peak_rss_mb=peak,
        floor_ratio=0.0,
        extra={"user_path": True, "engines": count, "cpu_seconds": cpu, "cores": os.cpu_count()},
    )
    result.floor_ratio = result.tasks_per_s / floor.tasks_per_s
    return result


def _cpu(pids: dict[str, list[int | None]]) -> dict[str, float]:
    return {role: sum(cpu_seconds(pid) for pid in members) for role, members in pids.items()}


def _spawn(root: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([*COMMAND, *args], cwd=root, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)


async def _ready(procs: Sequence[subprocess.Popen[bytes]], what: str, says: bytes) -> None:
    waits = (asyncio.to_thread(_started, proc, what, says) for proc in procs)
    await asyncio.wait_for(asyncio.gather(*waits), START_TIMEOUT)


async def _partitions_spread(connection: NatsConnection, layout: Layout, count: int) -> None:
    """Until `count` engines hold every partition between them: runs submitted earlier would all go to the
    first engine, and partitions moving mid-run would be timed too."""
    partitions = set(range(await recorded_partitions(connection.js, layout) or layout.partitions))
    async with asyncio.timeout(START_TIMEOUT):
        while True:
            live = await list_engines(connection.js, layout)
            if len(live) == count and {p for engine in live for p in engine.partitions} == partitions:
                return
            await asyncio.sleep(0.2)


async def _run(connection: NatsConnection, layout: Layout, runs: int) -> tuple[float, str]:
    """Submit the runs at once; seconds until the last one ended, and Succeeded or what else they ended as."""
    ends = Ends()
    sub = await connection.nc.subscribe(layout.run_subjects, cb=ends.on_commit)
    try:
        return await _timed(connection, ends, runs)
    finally:
        await sub.unsubscribe()


async def _timed(connection: NatsConnection, ends: Ends, runs: int) -> tuple[float, str]:
    client = await Client.connect(connection, timeout=60.0)
    document = dag_workflow(TASKS_PER_RUN, chained=False)
    began = time.perf_counter()
    run_ids = set(await asyncio.gather(*(client.submit(document) for _ in range(runs))))
    listed = began
    try:
        async with asyncio.timeout(120.0 + runs * TASKS_PER_RUN / 10.0):
            while not run_ids <= ends.ended.keys():
                await asyncio.sleep(0.05)
                if time.perf_counter() - max(ends.last, listed) > 2.0:  # a RunFinished the subscription dropped?
                    listed = time.perf_counter()
                    if all(phase in ph.TERMINAL for phase in (await _phases(client, run_ids)).values()):
                        break
    except TimeoutError:
        return time.perf_counter() - began, "Timeout"
    seconds = (ends.last if run_ids <= ends.ended.keys() else listed) - began
    phases = ends.ended if run_ids <= ends.ended.keys() else await _phases(client, run_ids)
    ended = {phases[run_id] for run_id in run_ids}
    return seconds, ph.SUCCEEDED if ended == {ph.SUCCEEDED} else ",".join(sorted(ended))


async def _phases(client: Client, run_ids: set[str]) -> dict[str, str]:
    listed = {info.run_id: info.status async for info in client.runs(page_size=1000)}
    return {run_id: listed.get(run_id, "not listed") for run_id in run_ids}
