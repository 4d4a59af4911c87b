"""Scenarios on the user's paths: real `aether-es` processes, as a user starts them, timed from exec to exit.

The engine scenarios (`bench.scenarios`) time the engine in the harness's own process; these time what a user
waits for: `aether-es run` of a workflow (its own nats-server, engine and workers, following the run to the
end), and a served system (`serve` with defaults plus one `aether-es worker` with defaults) taking a workflow
from `aether-es submit --wait` or many small runs from `aether_es.Client`. Each prints its ratio to the raw
JetStream floor measured in the same bench run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from nats.aio.msg import Msg

from aether_es.adapters.nats.layout import Layout
from aether_es.client import Client
from aether_es.model import phases as ph
from bench import floor as fl
from bench.scenarios import ScenarioResult, Sizes, dag_workflow, loop_workflow, small_workflow

COMMAND = [sys.executable, "-m", "aether_es.cli.main"]
START_TIMEOUT = 60.0
"""Seconds `serve` and `worker` get to say they are serving."""


@dataclass
class Exited:
    """A finished command: its exit code, wall time from exec to exit, peak RSS (sampled) and CPU time."""

    code: int | None
    seconds: float
    peak_rss_mb: float
    cpu_seconds: float

    @property
    def status(self) -> str:
        if self.code is None:
            return "Timeout"
        return ph.SUCCEEDED if self.code == 0 else f"exit {self.code}"


def _write(folder: Path, name: str, document: dict[str, Any]) -> Path:
    path = folder / name
    path.write_bytes(orjson.dumps(document))
    return path


def peak_rss_mb(pid: int) -> float:
    """A live process's peak RSS so far (VmHWM), 0 where /proc does not tell."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


async def _sample_peak(pid: int, peak: list[float]) -> None:
    """Keep `peak[0]` at the process's VmHWM until cancelled: after it exits /proc no longer tells, and the
    rusage of a child counts the memory it had before exec, the harness's own."""
    while True:
        peak[0] = max(peak[0], peak_rss_mb(pid))
        await asyncio.sleep(0.1)


async def timed(args: Sequence[str], cwd: Path, timeout: float) -> Exited:
    """Run `aether-es ARGS` to its exit (killed after `timeout`: code None); its output goes nowhere."""
    began = time.perf_counter()
    proc = subprocess.Popen(
        [*COMMAND, *args], cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    assert proc.stderr is not None
    errors = asyncio.create_task(asyncio.to_thread(proc.stderr.read))
    peak = [0.0]
    sampling = asyncio.create_task(_sample_peak(proc.pid, peak))
    waiting = asyncio.ensure_future(asyncio.to_thread(os.wait4, proc.pid, 0))
    try:
        _, status, usage = await asyncio.wait_for(asyncio.shield(waiting), timeout)
    except TimeoutError:
        proc.kill()
        _, status, usage = await waiting  # the one wait4 in flight reaps it
        code = None
    else:
        code = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - began
    sampling.cancel()
    proc.returncode = -1  # reaped by wait4: Popen must not wait for it again
    stderr = (await errors).decode(errors="replace").strip()
    if code != 0 and stderr:
        print(f"aether-es {args[0]}: {stderr.splitlines()[-1]}", file=sys.stderr)
    return Exited(code, seconds, peak[0], usage.ru_utime + usage.ru_stime)


@dataclass
class Served:
    """A `serve` process on its own state folder (and a `worker` process, unless serve has worker slots)."""

    url: str
    root: Path
    serve: subprocess.Popen[bytes]

    def serve_peak_rss_mb(self) -> float:
        return peak_rss_mb(self.serve.pid)


def _started(proc: subprocess.Popen[bytes], what: str, says: bytes) -> bytes:
    """The first line of `proc`'s output, which must contain `says`."""
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if says not in line:
        proc.kill()
        proc.wait()
        raise RuntimeError(f"aether-es {what} did not start: {line.decode(errors='replace')!r}")
    return line


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.asynccontextmanager
async def served(*serve_args: str, worker: bool = True) -> AsyncIterator[Served]:
    """`aether-es serve` (defaults, or `serve_args`) and `aether-es worker --executors echo` (defaults) on a
    fresh state folder; without `worker`, serve's own `--workers` slots run the tasks."""
    root = Path(tempfile.mkdtemp(prefix="aether-bench-served-"))
    serve = subprocess.Popen(
        [*COMMAND, "serve", "--state-dir", str(root / "state"), *serve_args],
        cwd=root,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
    )
    worker_proc: subprocess.Popen[bytes] | None = None
    try:
        line = await asyncio.wait_for(asyncio.to_thread(_started, serve, "serve", b"serving on"), START_TIMEOUT)
        url = line.decode().split("serving on ", 1)[1].split()[0]
        if worker:
            worker_proc = subprocess.Popen(
                [*COMMAND, "worker", "--executors", "echo", "--nats", url],
                cwd=root,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
            )
            await asyncio.wait_for(asyncio.to_thread(_started, worker_proc, "worker", b"serving"), START_TIMEOUT)
        yield Served(url, root, serve)
    finally:
        for proc in (worker_proc, serve):
            if proc is not None:
                await asyncio.to_thread(_stop, proc)
        shutil.rmtree(root, ignore_errors=True)


def _result(
    name: str, tasks: int, workflows: int, seconds: float, status: str, ratio: float, peak_rss_mb: float
) -> ScenarioResult:
    return ScenarioResult(
        name=name,
        tasks=tasks,
        workflows=workflows,
        seconds=seconds,
        status=status,
        peak_rss_mb=peak_rss_mb,
        floor_ratio=ratio,
        extra={"user_path": True},
    )


def _timeout(tasks: int) -> float:
    """Generous: a user path far off its target still ends, marked Timeout, and the bench goes on."""
    return 120.0 + tasks / 10.0


async def run_loop(sizes: Sizes, floor: fl.TaskFloor) -> ScenarioResult:
    """`aether-es run` of one loop, its own embedded nats-server and in-process workers, exec to exit."""
    tasks = sizes.run_loop
    with tempfile.TemporaryDirectory(prefix="aether-bench-run-") as folder:
        root = Path(folder)
        doc = _write(root, "loop.json", loop_workflow(tasks))
        exited = await timed(["run", str(doc), "--state-dir", str(root / "state")], root, _timeout(tasks))
    tps = tasks / exited.seconds
    result = _result("run loop", tasks, 1, exited.seconds, exited.status, tps / floor.tasks_per_s, exited.peak_rss_mb)
    result.extra |= {"cpu_seconds": exited.cpu_seconds}
    result.target = f">= 0.5 x floor tasks/s (is {result.floor_ratio:.2f})"
    result.target_met = exited.status == ph.SUCCEEDED and result.floor_ratio >= 0.5
    return result


async def run_chain(sizes: Sizes, floor: fl.TaskFloor) -> ScenarioResult:
    """`aether-es run` of a chain: per task, the whole round trip as the user's process sees it."""
    tasks = sizes.run_chain
    with tempfile.TemporaryDirectory(prefix="aether-bench-run-") as folder:
        root = Path(folder)
        doc = _write(root, "chain.json", dag_workflow(tasks, chained=True))
        exited = await timed(["run", str(doc), "--state-dir", str(root / "state")], root, _timeout(tasks))
    per_task_ms = 1000.0 * exited.seconds / tasks
    ratio = floor.cycle_p50_ms / per_task_ms
    result = _result("run chain", tasks, 1, exited.seconds, exited.status, ratio, exited.peak_rss_mb)
    result.extra |= {"ms_per_task": per_task_ms, "cpu_seconds": exited.cpu_seconds}
    result.target = f"<= 2 ms per task (is {per_task_ms:.2f})"
    result.target_met = exited.status == ph.SUCCEEDED and per_task_ms <= 2.0
    return result


async def served_loop(sizes: Sizes, floor: fl.TaskFloor, *serve_args: str, worker: bool = True) -> ScenarioResult:
    """`serve` + `worker` (defaults) + `aether-es submit --wait` of one loop: the submit process's wall time."""
    tasks = sizes.served_loop
    async with served(*serve_args, worker=worker) as system:
        doc = _write(system.root, "loop.json", loop_workflow(tasks))
        exited = await timed(["submit", str(doc), "--wait", "--nats", system.url], system.root, _timeout(tasks))
        peak = system.serve_peak_rss_mb()
    tps = tasks / exited.seconds
    result = _result("served loop", tasks, 1, exited.seconds, exited.status, tps / floor.tasks_per_s, peak)
    result.target = f">= 0.5 x floor tasks/s (is {result.floor_ratio:.2f})"
    result.target_met = exited.status == ph.SUCCEEDED and result.floor_ratio >= 0.5
    return result


class RunEnds:
    """The runs whose `RunFinished` the event feed has shown, with their phases: one subscription for every
    run, instead of one `get` per run per poll."""

    def __init__(self) -> None:
        self.phases: dict[str, str] = {}
        self.changed = asyncio.Event()

    async def on_event(self, msg: Msg) -> None:
        record = orjson.loads(msg.data)
        self.phases[record["runID"]] = record["data"].get("status", "")
        self.changed.set()

    async def wait_for(self, run_ids: Sequence[str], timeout: float) -> None:
        async with asyncio.timeout(timeout):
            while not all(run_id in self.phases for run_id in run_ids):
                self.changed.clear()
                await self.changed.wait()


async def small_runs(sizes: Sizes, floor: fl.TaskFloor) -> ScenarioResult:
    """Many one-task runs submitted at once through the API by `Client`, each followed to its end by the feed."""
    runs = sizes.small_runs
    layout = Layout()
    async with served() as system:
        client = await Client.connect(system.url, timeout=60.0)
        try:
            ends = RunEnds()
            subject = f"{layout.prefix}.events.*.RunFinished"  # the bench's run ids are one token each
            await client.nc.jetstream().subscribe(subject, ordered_consumer=True, cb=ends.on_event)
            began = time.perf_counter()
            run_ids = await asyncio.gather(*(client.submit(small_workflow()) for _ in range(runs)))
            try:
                await ends.wait_for(run_ids, _timeout(runs))
                seconds = time.perf_counter() - began
                phases = {ends.phases[run_id] for run_id in run_ids}
                status = ph.SUCCEEDED if phases == {ph.SUCCEEDED} else ",".join(sorted(phases))
            except TimeoutError:
                seconds, status = time.perf_counter() - began, "Timeout"
        finally:
            await client.close()
        peak = system.serve_peak_rss_mb()
    result = _result("api runs", runs, runs, seconds, status, 0.0, peak)
    result.floor_ratio = result.workflows_per_s / floor.tasks_per_s
    result.target = f">= 500 runs/s (is {result.workflows_per_s:.0f})"
    result.target_met = status == ph.SUCCEEDED and result.workflows_per_s >= 500
    return result
