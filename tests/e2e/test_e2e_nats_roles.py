"""Each user of docker/nats.conf does its whole job through `aether-es` on a real nats-server, and no more.

One system per module: the shipped configuration (`support.secured`), `aether-es serve` as `engine` with
in-process worker slots (they share the engine's connection, cancels included). Producers submit, steer
and read runs through the API but may not purge or read a stream; readers follow the feed but may not
publish or call the API; an operator removes finished runs with `retention`, which the engine carries
out by purging the runs' subjects. A second system runs its tasks on an `aether-es worker` process.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats.errors
import orjson
import pytest
from support.cli import EXAMPLE, aether, write
from support.processes import Child, alive, until
from support.secured import ENGINE, OPERATOR, PRODUCER, READER, WORKER, connect_as, flags, secured_server, violations

from aether_es.adapters.nats.connection import NatsAuth
from aether_es.adapters.nats.layout import Layout
from aether_es.adapters.nats.server import EmbeddedNatsServer
from aether_es.model import phases as ph


class System:
    """A secured nats-server and the `aether-es` processes serving it."""

    def __init__(self, server: EmbeddedNatsServer) -> None:
        self.server = server

    def run(self, auth: NatsAuth, *args: str) -> subprocess.CompletedProcess[str]:
        """An `aether-es` command logged in as `auth`."""
        return aether(*args, "--nats", self.server.url, *flags(auth))

    def json(self, auth: NatsAuth, *args: str) -> Any:
        result = self.run(auth, *args, "--json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def finished(self, run_id: str, timeout: float = 30) -> dict[str, Any]:
        """The run's view, read by a producer, once it ended."""
        views: list[dict[str, Any]] = []

        def ended() -> bool:
            views[:] = [self.json(PRODUCER, "get", run_id)]
            return views[0]["status"] in ph.TERMINAL

        assert until(ended, timeout), views
        return views[0]

    def refused(self, user: str) -> list[str]:
        """The violations the server logged for `user`."""
        return [line for line in violations(self.server) if f'"AETHER/user:{user}"' in line]


def serving(server: EmbeddedNatsServer, logs: Path, *roles: tuple[str, list[str], str]) -> Iterator[System]:
    """`server` with the `aether-es` processes of `roles` (name, arguments, what it says once ready)."""
    children = [Child(name, args, logs) for name, args, _ in roles]
    try:
        for child, (_, _, ready) in zip(children, roles, strict=True):
            asyncio.run(child.start(ready))
        yield System(server)
    finally:
        for child in reversed(children):
            child.stop()
        server.close()


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    """`serve` as the engine with two in-process worker slots."""
    tmp = tmp_path_factory.mktemp("roles")
    server = secured_server(tmp)
    serve = ["serve", "--nats", server.url, *flags(ENGINE), "--workers", "2", "--state-dir", str(tmp / "state")]
    yield from serving(server, tmp / "logs", ("serve", serve, "serving on"))


def sleeper(pid_file: Path) -> dict[str, Any]:
    """One shell task that writes its shell's and its `sleep`'s process ids, then waits for the sleep."""
    command = f"sleep 30 & echo $$ $! > {pid_file}; wait; echo finished"
    return {
        "apiVersion": "aether/v1",
        "kind": "Workflow",
        "metadata": {"name": "sleeper"},
        "spec": {
            "entrypoint": "main",
            "templates": [{"task": {"name": "main", "executor": {"type": "shell", "config": {"command": command}}}}],
        },
    }


def test_a_producer_runs_a_workflow_on_the_engines_worker_slots(system: System) -> None:
    run_id = system.json(PRODUCER, "submit", str(EXAMPLE))["runID"]
    assert system.finished(run_id)["status"] == ph.SUCCEEDED
    assert run_id in [run["runID"] for run in system.json(PRODUCER, "list")["runs"]]
    assert system.refused("engine") == []


def test_cancelling_a_running_shell_task_stops_its_processes(system: System, tmp_path: Path) -> None:
    pid_file = tmp_path / "pids"
    run_id = system.json(PRODUCER, "submit", str(write(tmp_path, "sleeper.json", sleeper(pid_file))))["runID"]
    assert until(lambda: pid_file.exists() and len(pid_file.read_text().split()) == 2, 30), "never started"
    pids = [int(pid) for pid in pid_file.read_text().split()]
    cancelled = system.run(PRODUCER, "cancel", run_id)
    assert cancelled.returncode == 0, cancelled.stderr
    assert until(lambda: not any(alive(pid) for pid in pids), 15), "the command outlived its cancel"
    assert system.finished(run_id)["status"] == ph.CANCELLED
    assert system.refused("engine") == []


async def test_a_producer_may_not_purge_or_read_a_stream(system: System) -> None:
    layout = Layout()
    conn, refusals = await connect_as(system.server, PRODUCER)
    try:
        purge = layout.api_subject("runs.purge")
        with pytest.raises(nats.errors.TimeoutError):
            await conn.nc.request(purge, orjson.dumps({"runIDs": ["r1"]}), timeout=0.5)
        await refusals.expect(purge)
        for stream in (layout.runs_stream, layout.feed_stream):
            for operation in ("INFO", "PURGE"):
                subject = f"$JS.API.STREAM.{operation}.{stream}"
                with pytest.raises(nats.errors.TimeoutError):
                    await conn.nc.request(subject, b"", timeout=0.5)
                await refusals.expect(subject)
    finally:
        await conn.close()
    events = await asyncio.to_thread(system.run, PRODUCER, "events")
    assert events.returncode != 0


async def test_a_reader_follows_the_feed_but_may_not_publish_or_call_the_api(system: System) -> None:
    run_id = system.json(PRODUCER, "submit", str(EXAMPLE))["runID"]
    assert system.finished(run_id)["status"] == ph.SUCCEEDED

    def followed() -> bool:
        result = system.run(READER, "events", "--run", run_id, "--json")
        return result.returncode == 0 and '"RunFinished"' in result.stdout

    assert await asyncio.to_thread(until, followed, 30)
    layout = Layout()
    conn, refusals = await connect_as(system.server, READER)
    try:
        get = layout.api_subject("runs.get")
        with pytest.raises(nats.errors.TimeoutError):
            await conn.nc.request(get, orjson.dumps({"runID": run_id}), timeout=0.5)
        await refusals.expect(get)
        for subject in (layout.run_subject(run_id), layout.cancel_subject("t1"), "aether.events.r1.X"):
            await conn.nc.publish(subject, b"{}")
            await refusals.expect(subject)
    finally:
        await conn.close()


def test_a_reader_follows_a_run_whose_values_go_by_reference(system: System, tmp_path: Path) -> None:
    """A value over the inline limit is in the values bucket, not in the history: following the run reads it."""
    big = "v" * 300_000
    document = {
        "apiVersion": "aether/v1",
        "kind": "Workflow",
        "metadata": {"name": "big-value"},
        "spec": {
            "entrypoint": "main",
            "templates": [
                {
                    "task": {
                        "name": "main",
                        "inputs": {"parameters": [{"name": "big", "value": big}]},
                        "executor": {"type": "echo"},
                    }
                }
            ],
        },
    }
    run_id = system.json(PRODUCER, "submit", str(write(tmp_path, "big.json", document)))["runID"]
    assert system.finished(run_id)["status"] == ph.SUCCEEDED
    refused = len(system.refused("reader"))
    followed = system.run(READER, "watch", run_id, "--json")
    assert followed.returncode == 0, followed.stderr
    assert big in followed.stdout
    assert system.refused("reader")[refused:] == []


def test_an_operator_removes_the_finished_runs_with_retention(system: System, tmp_path: Path) -> None:
    """Runs last: it removes every finished run the tests before it left."""
    finished = [run["runID"] for run in system.json(PRODUCER, "list")["runs"]]
    assert finished
    archive = tmp_path / "archive"
    result = system.run(OPERATOR, "retention", "--keep", "0", "--archive", str(archive), "--reason", "tested")
    assert result.returncode == 0, result.stderr
    assert sorted(path.stem for path in archive.iterdir()) == sorted(finished)
    assert system.json(PRODUCER, "list")["runs"] == []
    for run_id in finished:
        assert system.run(OPERATOR, "history", run_id).returncode == 3
        feed = system.run(OPERATOR, "events", "--run", run_id, "--json")
        assert (feed.returncode, feed.stdout) == (3, "") and "no event of run" in feed.stderr, feed.stderr
    assert system.refused("engine") == [] and system.refused("operator") == []


@pytest.fixture
def worker_system(tmp_path: Path) -> Iterator[System]:
    """`serve` with no worker slots and an `aether-es worker` process as the worker user."""
    server = secured_server(tmp_path)
    serve = ["serve", "--nats", server.url, *flags(ENGINE), "--state-dir", str(tmp_path / "state")]
    worker = ["worker", "--executors", "echo", "--nats", server.url, *flags(WORKER)]
    yield from serving(server, tmp_path / "logs", ("serve", serve, "serving on"), ("worker", worker, "serving"))


def test_a_worker_process_runs_the_tasks(worker_system: System) -> None:
    run_id = worker_system.json(PRODUCER, "submit", str(EXAMPLE))["runID"]
    assert worker_system.finished(run_id)["status"] == ph.SUCCEEDED
    assert violations(worker_system.server) == []
