"""`aether-es worker` as an OS process: it drains on SIGTERM, hands back what it cannot finish in time, and
a worker killed with SIGKILL mid-task loses nothing: the task is redelivered and completes exactly once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from aether_es.adapters.nats.server import EmbeddedNatsServer
from aether_es.model import phases as ph
from aether_es.runtime.stack import Stack, StackOptions, open_stack

ROOT = Path(__file__).resolve().parents[2]
ACK_WAIT = 3.0
LONG_ACK_WAIT = 60.0

MODULE = """
import asyncio
import os
from pathlib import Path

from aether_es.worker import executor


@executor("slow")
async def slow(seconds: float, marker: str) -> dict:
    Path(marker).write_text(str(os.getpid()))
    await asyncio.sleep(seconds)
    return {"pid": os.getpid()}
"""


def workflow(seconds: float, marker: Path) -> dict[str, Any]:
    return {
        "apiVersion": "aether/v1",
        "kind": "Workflow",
        "metadata": {"name": "slow-work"},
        "spec": {
            "entrypoint": "main",
            "templates": [
                {"dag": {"name": "main", "tasks": [{"name": "work", "template": "slow"}]}},
                {
                    "task": {
                        "name": "slow",
                        "inputs": {
                            "parameters": [
                                {"name": "seconds", "value": seconds},
                                {"name": "marker", "value": str(marker)},
                            ]
                        },
                        "executor": {"type": "slow"},
                    }
                },
            ],
        },
    }


class Worker:
    """An `aether-es worker` process serving the `slow` executor of the test module."""

    def __init__(self, url: str, module: Path, *extra: str) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "aether_es.cli.main",
                "worker",
                "--executors",
                "slow,echo",
                "--import",
                str(module),
                "--nats",
                url,
                *extra,
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    async def serving(self) -> str:
        """Wait for its start line; returns its worker id."""
        assert self.process.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(self.process.stdout.readline), 20)
        assert line.startswith("worker "), line + self.stop_and_read()
        return line.split()[1]

    async def exited(self, timeout: float) -> int:
        return await asyncio.wait_for(asyncio.to_thread(self.process.wait), timeout)

    def stop_and_read(self) -> str:
        if self.process.poll() is None:
            self.process.kill()
        _, err = self.process.communicate(timeout=10)
        return err

    @property
    def pid(self) -> int:
        return self.process.pid


@pytest.fixture
def module(tmp_path: Path) -> Path:
    path = tmp_path / "slow_executors.py"
    path.write_text(MODULE)
    return path


@pytest_asyncio.fixture
async def engine(nats_server: EmbeddedNatsServer, tmp_path: Path) -> AsyncIterator[Stack]:
    stack = await open_stack(
        StackOptions(nats_url=nats_server.url, state_dir=tmp_path, workers=0, task_ack_wait=ACK_WAIT, tune_gc=False)
    )
    try:
        yield stack
    finally:
        await stack.close()


async def running(marker: Path, worker: Worker, timeout: float = 20) -> None:
    """Wait until `worker` runs the task (it writes its pid to the marker)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if marker.exists() and marker.read_text() == str(worker.pid):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the task never started on the worker")


def outputs(view: dict[str, Any]) -> dict[str, Any]:
    task = next(t for t in view["tasks"] if t["taskName"] == "work")
    return {p["name"]: p["value"] for p in task["outputs"]["parameters"]}


async def test_sigterm_drains_the_held_task_and_unregisters(
    engine: Stack, nats_server: EmbeddedNatsServer, module: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    worker = Worker(nats_server.url, module, "--task-ack-wait", str(ACK_WAIT))
    try:
        worker_id = await worker.serving()
        assert engine.registry is not None
        [info] = await engine.registry.list_all()
        assert info.id == worker_id and set(info.executor_types) == {"slow", "echo"}
        assert info.schemas["slow"]["required"] == ["seconds", "marker"]

        run_id = await engine.engine.submit(workflow(2.0, marker))
        await running(marker, worker)
        worker.process.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.5)
        assert await engine.registry.list_all() == []  # unregistered while it still finishes the task
        assert worker.process.poll() is None
        assert await worker.exited(15) == 0
        view = await engine.engine.wait(run_id, timeout=5)
        assert view["status"] == ph.SUCCEEDED, view
        assert outputs(view)["pid"] == worker.pid  # finished by the draining worker, not redelivered
    finally:
        worker.stop_and_read()


async def test_a_task_outlasting_the_drain_is_handed_back_at_once(
    nats_server: EmbeddedNatsServer, module: Path, tmp_path: Path
) -> None:
    # A long ack wait: only the hand-back (a nak) gets the task to another worker within seconds.
    engine = await open_stack(
        StackOptions(
            nats_url=nats_server.url, state_dir=tmp_path, workers=0, task_ack_wait=LONG_ACK_WAIT, tune_gc=False
        )
    )
    marker = tmp_path / "marker"
    long_wait = ("--task-ack-wait", str(LONG_ACK_WAIT))
    first = Worker(nats_server.url, module, "--drain-timeout", "0.3", *long_wait)
    second: Worker | None = None
    try:
        await first.serving()
        run_id = await engine.engine.submit(workflow(3.0, marker))
        await running(marker, first)
        first.process.send_signal(signal.SIGTERM)
        assert await first.exited(10) == 0
        second = Worker(nats_server.url, module, *long_wait)
        await second.serving()
        await running(marker, second, timeout=10)
        view = await engine.engine.wait(run_id, timeout=10)
        assert view["status"] == ph.SUCCEEDED, view
        assert outputs(view)["pid"] == second.pid
    finally:
        first.stop_and_read()
        if second is not None:
            second.stop_and_read()
        await engine.close()


async def test_kill_9_mid_task_redelivers_and_records_one_completion(
    engine: Stack, nats_server: EmbeddedNatsServer, module: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    first = Worker(nats_server.url, module, "--task-ack-wait", str(ACK_WAIT))
    second: Worker | None = None
    try:
        await first.serving()
        run_id = await engine.engine.submit(workflow(2.0, marker))
        await running(marker, first)
        await asyncio.sleep(0.5)
        os.kill(first.pid, signal.SIGKILL)
        assert await first.exited(5) == -signal.SIGKILL
        second = Worker(nats_server.url, module, "--task-ack-wait", str(ACK_WAIT))
        await second.serving()
        await running(marker, second, timeout=ACK_WAIT + 10)  # redelivered once the ack wait ran out
        view = await engine.engine.wait(run_id, timeout=15)
        assert view["status"] == ph.SUCCEEDED, view
        assert outputs(view)["pid"] == second.pid

        history = [e.event for c in await engine.store.load(run_id) for e in c.commit.envelopes]
        task_id = next(t["runID"] for t in view["tasks"] if t["taskName"] == "work")
        finished = [e for e in history if e.type == "TaskFinished" and getattr(e, "task_id", "") == task_id]
        dispatched = [e for e in history if e.type == "TaskDispatched" and getattr(e, "task_id", "") == task_id]
        assert len(dispatched) == 1  # the same attempt, run again by the second worker
        assert [(e.attempt, e.phase) for e in finished] == [(1, ph.SUCCEEDED)]
    finally:
        first.stop_and_read()
        if second is not None:
            second.stop_and_read()


async def test_cancelling_the_run_stops_the_task_in_the_worker_process(
    engine: Stack, nats_server: EmbeddedNatsServer, module: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    worker = Worker(nats_server.url, module, "--task-ack-wait", str(ACK_WAIT))
    try:
        await worker.serving()
        run_id = await engine.engine.submit(workflow(60.0, marker))
        await running(marker, worker)
        await engine.engine.cancel(run_id)
        view = await engine.engine.wait(run_id, timeout=10)
        assert view["status"] == ph.CANCELLED, view
        await asyncio.sleep(0.5)  # the cancel request reaches the worker
        began = time.monotonic()
        worker.process.send_signal(signal.SIGTERM)
        assert await worker.exited(15) == 0
        assert time.monotonic() - began < 5  # it held nothing more to drain: the task was stopped
    finally:
        worker.stop_and_read()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--executors", "nope"], 'aether: worker: --executors: unknown executor type "nope" (known: '),
        (["--executors", "echo", "--import", "no_such_module_here"], "aether: worker: --import no_such_module_here: "),
        (["--executors", "echo", "--concurrency", "0"], "aether: worker: --concurrency must be at least 1"),
        (["--executors", "echo", "--tag", "zone"], "aether: worker: --tag: expected KEY=VALUE, got 'zone'"),
    ],
)
def test_bad_flags_exit_2_naming_the_flag(flags: list[str], message: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "aether_es.cli.main", "worker", *flags, "--nats", "nats://127.0.0.1:1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert done.stderr.startswith(message), done.stderr
