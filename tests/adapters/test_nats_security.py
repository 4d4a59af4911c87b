"""docker/nats.conf's users on a real nats-server (`support.secured`): the engine and workers run workflows
with nothing refused, producers only reach the API, read-only consumers only read.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import nats.errors
import orjson
import pytest
import pytest_asyncio
from nats.js.api import StreamConfig
from support.cli import aether
from support.secured import (
    ENGINE,
    PRODUCER,
    READER,
    ROOT,
    WORKER,
    connect_as,
    secured_server,
    shipped_config,
    violations,
)

from aether_es.adapters.nats.broker import NatsWorkerChannel
from aether_es.adapters.nats.connection import NatsAuth, NatsConnection, connect
from aether_es.adapters.nats.layout import Layout, ensure, ensure_stream
from aether_es.adapters.nats.object_store import NatsObjectStoreRepository
from aether_es.adapters.nats.run_follower import follow_until
from aether_es.adapters.nats.server import EmbeddedNatsServer
from aether_es.adapters.nats.worker_registry import NatsWorkerRegistry
from aether_es.api.service import start_api
from aether_es.errors import ApiError
from aether_es.events import catalogue as ev
from aether_es.events.codec import encode_commit
from aether_es.events.envelope import commit_of, make_envelopes
from aether_es.events.values import Metrics
from aether_es.model import phases as ph
from aether_es.ports.wire import TaskAssignment, TaskResult, WireParameter
from aether_es.runtime.stack import StackOptions, default_executors, open_stack
from aether_es.worker.artifacts import ArtifactStager
from aether_es.worker.pool import WorkerPool

EXAMPLE = ROOT / "examples" / "hello-pipeline.json"


class Writer:
    """Writes a file into its workdir and returns it as the output artifact `report` (to the object store)."""

    async def execute(self, assignment: TaskAssignment) -> TaskResult:
        (Path(assignment.workdir) / "report.txt").write_text("quarterly numbers")
        return TaskResult(artifacts=[{"name": "report", "path": "report.txt"}])


class Reader:
    """Returns the text of its downloaded input artifact `report` as the parameter `seen`."""

    async def execute(self, assignment: TaskAssignment) -> TaskResult:
        report = next(a for a in assignment.artifacts if a.name == "report")
        return TaskResult(parameters=[WireParameter(name="seen", value=Path(report.path).read_text())])


def relay() -> dict[str, Any]:
    """Two tasks passing an artifact through the NATS Object Store, the default repository."""
    read_args = {"artifacts": [{"name": "report", "from": "tasks.write.outputs.artifacts.report"}]}
    return {
        "apiVersion": "aether/v1",
        "kind": "Workflow",
        "metadata": {"name": "artifact-relay"},
        "spec": {
            "entrypoint": "main",
            "templates": [
                {
                    "dag": {
                        "name": "main",
                        "tasks": [
                            {"name": "write", "template": "writer"},
                            {"name": "read", "template": "reader", "dependencies": ["write"], "arguments": read_args},
                        ],
                    }
                },
                {
                    "task": {
                        "name": "writer",
                        "executor": {"type": "writer"},
                        "outputs": {"artifacts": [{"name": "report"}]},
                    }
                },
                {
                    "task": {
                        "name": "reader",
                        "inputs": {"artifacts": [{"name": "report"}]},
                        "executor": {"type": "reader"},
                    }
                },
            ],
        },
    }


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[EmbeddedNatsServer]:
    server = secured_server(tmp_path)
    try:
        yield server
    finally:
        server.close()


@pytest_asyncio.fixture
async def engine(secured: EmbeddedNatsServer) -> AsyncIterator[NatsConnection]:
    conn = await connect(secured.url, name="engine", auth=ENGINE)
    try:
        yield conn
    finally:
        await conn.close()


async def test_engine_and_worker_users_run_workflows_without_a_single_refusal(
    secured: EmbeddedNatsServer, tmp_path: Path
) -> None:
    """The engine with its API and feed (workers off) and a pool on the worker user's own connection: tasks,
    reports, the registry and object-store artifacts all flow, and the server logs no violation at all."""
    options = StackOptions(nats_url=secured.url, auth=ENGINE, workers=0, state_dir=tmp_path, feed=True)
    stack = await open_stack(options)
    api = await start_api(stack)
    worker = await connect(secured.url, name="worker", auth=WORKER)
    layout = Layout()
    executors = {**default_executors(), "writer": Writer(), "reader": Reader()}
    pool = WorkerPool(
        NatsWorkerChannel(worker.js, worker.nc, layout),
        executors,
        4,
        registry=NatsWorkerRegistry(worker.js, layout, ttl=15.0),
        artifacts=ArtifactStager([NatsObjectStoreRepository(worker.js, "aether_artifacts")], tmp_path / "work"),
    )
    await pool.start()
    try:
        assert [w.id for w in await stack.registry.list_all()] == [pool.worker_id]  # type: ignore[union-attr]
        hello = await stack.engine.submit(EXAMPLE.read_text())
        relayed = await stack.engine.submit(relay())
        hello_view = await stack.engine.wait(hello, timeout=30)
        relay_view = await stack.engine.wait(relayed, timeout=30)
        assert stack.feed is not None
        await stack.feed.caught_up(timeout=10)
        feed = await stack.connection.js.stream_info(stack.layout.feed_stream)
    finally:
        await api.stop()
        await pool.stop()
        await worker.close()
        await stack.close()
    assert feed.state.messages > 0
    assert hello_view["status"] == "Succeeded", hello_view
    assert relay_view["status"] == "Succeeded", relay_view
    seen = next(t for t in relay_view["tasks"] if t["taskName"] == "read")["outputs"]["parameters"]
    assert [(p["name"], p["value"]) for p in seen] == [("seen", "quarterly numbers")]
    assert violations(secured) == []


async def test_a_wrong_password_is_refused(secured: EmbeddedNatsServer) -> None:
    with pytest.raises((nats.errors.Error, OSError)):
        await connect(
            secured.url,
            auth=NatsAuth(user="engine", password="not-the-password"),
            allow_reconnect=False,
            max_reconnect_attempts=1,
        )


async def test_a_worker_cannot_write_history_or_assignments(secured: EmbeddedNatsServer) -> None:
    conn, refusals = await connect_as(secured, WORKER)
    try:
        for subject in ("aether.run.r1", "aether.task.echo.r1", "aether.api.v1.runs.submit"):
            await conn.nc.publish(subject, b"{}")
            await refusals.expect(subject)
    finally:
        await conn.close()
    logged = violations(secured)
    assert len(logged) == 3 and all('"AETHER/user:worker" - Publish Violation' in line for line in logged), logged


async def test_a_read_only_consumer_cannot_submit_or_write_any_stream(
    secured: EmbeddedNatsServer, engine: NatsConnection
) -> None:
    layout = Layout()
    await ensure_stream(engine.js, layout.runs_stream_config())
    await ensure_stream(engine.js, layout.tasks_stream_config())
    await ensure_stream(engine.js, layout.reports_stream_config())
    conn, refusals = await connect_as(secured, READER)
    try:
        # A request: the server refuses the publish itself, so no service ever sees it and nats-py times out.
        submit = layout.api_subject("runs.submit")
        with pytest.raises(nats.errors.TimeoutError):
            await conn.nc.request(submit, orjson.dumps({"document": {}}), timeout=0.5)
        await refusals.expect(submit)
        for subject in ("aether.run.r1", "aether.task.echo.r1", "aether.report.r1", "aether.cancel.t1"):
            await conn.nc.publish(subject, b"{}")
            await refusals.expect(subject)
        # The JetStream API for writes is closed as well: no publish acknowledgement ever comes.
        with pytest.raises(nats.errors.TimeoutError):
            await conn.js.publish("aether.run.r1", b"{}", timeout=0.5)
        with pytest.raises(nats.errors.TimeoutError):
            await conn.js.delete_stream(layout.runs_stream)
        await refusals.expect(f"$JS.API.STREAM.DELETE.{layout.runs_stream}")
    finally:
        await conn.close()
    for stream in (layout.runs_stream, layout.tasks_stream, layout.reports_stream):
        assert (await engine.js.stream_info(stream)).state.messages == 0


async def test_a_read_only_consumer_reads_the_feed_live_and_replayed(
    secured: EmbeddedNatsServer, engine: NatsConnection
) -> None:
    layout = Layout()
    await ensure_stream(engine.js, StreamConfig(name=layout.feed_stream, subjects=[layout.event_subjects]))
    conn, refusals = await connect_as(secured, READER)
    try:
        live = await conn.nc.subscribe(layout.run_event_subjects("r1"))
        await conn.nc.flush()
        for event_type in ("WorkflowSubmitted", "WorkflowStarted"):
            await engine.js.publish(layout.event_subject("r1", event_type), json.dumps({"type": event_type}).encode())
        heard = [(await live.next_msg(timeout=5)).subject for _ in range(2)]
        assert heard == ["aether.events.r1.WorkflowSubmitted", "aether.events.r1.WorkflowStarted"]

        replay = await conn.js.subscribe(layout.event_subject("r1", "WorkflowStarted"), ordered_consumer=True)
        replayed = await replay.next_msg(timeout=5)
        assert json.loads(replayed.data) == {"type": "WorkflowStarted"}
        pull = await conn.js.pull_subscribe(layout.run_event_subjects("r1"), stream=layout.feed_stream)
        assert [m.subject for m in await pull.fetch(2, timeout=5)] == heard
    finally:
        await conn.close()
    assert refusals.errors == []


async def test_a_producer_reaches_the_api_and_nothing_else(secured: EmbeddedNatsServer, engine: NatsConnection) -> None:
    """A responder on the engine's user answers a producer's request; the producer's writes anywhere else are
    refused."""
    layout = Layout()
    await ensure_stream(engine.js, layout.runs_stream_config())

    async def answer(msg: nats.aio.msg.Msg) -> None:
        await msg.respond(b'{"runID": "r1"}')

    service = await engine.nc.subscribe(layout.api_subjects, queue="aether-api", cb=answer)
    await engine.nc.flush()
    conn, refusals = await connect_as(secured, PRODUCER)
    try:
        reply = await conn.nc.request(layout.api_subject("runs.submit"), b"{}", timeout=5)
        assert json.loads(reply.data) == {"runID": "r1"}
        for subject in ("aether.run.r1", "aether.task.echo.r1", "aether.report.r1", "aether.events.r1.X"):
            await conn.nc.publish(subject, b"{}")
            await refusals.expect(subject)
        with pytest.raises(nats.errors.TimeoutError):
            await conn.js.publish("aether.run.r1", b"{}", timeout=0.5)
    finally:
        await conn.close()
        await service.unsubscribe()
    assert (await engine.js.stream_info(layout.runs_stream)).state.messages == 0


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture
def certificates(tmp_path: Path) -> Path:
    """A throwaway CA, a server certificate for 127.0.0.1 and a client certificate, made offline."""
    pki = tmp_path / "pki"
    pki.mkdir()
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=aether test CA",
        "-keyout", "ca-key.pem", "-out", "ca.pem", cwd=pki,
    )  # fmt: skip
    for name, extension in (("server", "subjectAltName=IP:127.0.0.1"), ("client", "extendedKeyUsage=clientAuth")):
        _openssl(
            "req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN=aether {name}",
            "-keyout", f"{name}-key.pem", "-out", f"{name}.csr", cwd=pki,
        )  # fmt: skip
        (pki / f"{name}.ext").write_text(extension + "\n")
        _openssl(
            "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial",
            "-days", "1", "-extfile", f"{name}.ext", "-out", f"{name}.pem", cwd=pki,
        )  # fmt: skip
    return pki


async def test_tls_with_a_client_certificate(tmp_path: Path, certificates: Path) -> None:
    """The documented TLS block, filled in: the TLS options connect; without a client certificate, refused."""
    tls = (
        f'tls {{\n  cert_file: "{certificates / "server.pem"}"\n  key_file: "{certificates / "server-key.pem"}"\n'
        f'  ca_file: "{certificates / "ca.pem"}"\n  verify: true\n  timeout: 2\n}}\n'
    )
    server = EmbeddedNatsServer(tmp_path / "jetstream", config_file=shipped_config(tmp_path, tls))
    server.start()
    try:
        auth = NatsAuth(
            user="engine",
            password="CHANGE-ME-engine-password",
            tls_ca=str(certificates / "ca.pem"),
            tls_cert=str(certificates / "client.pem"),
            tls_key=str(certificates / "client-key.pem"),
        )
        conn = await connect(server.url, auth=auth)
        try:
            assert conn.nc.is_connected
            assert (await conn.js.account_info()).streams == 0
        finally:
            await conn.close()
        without_cert = NatsAuth(user="engine", password="CHANGE-ME-engine-password", tls_ca=auth.tls_ca)
        with pytest.raises((nats.errors.Error, OSError)):
            await connect(server.url, auth=without_cert, allow_reconnect=False, max_reconnect_attempts=1)
    finally:
        server.close()


async def test_commands_take_the_options_by_flag_and_environment(
    secured: EmbeddedNatsServer, engine: NatsConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`workers` (any remote command) as the engine user; wrong credentials and bad combinations are one line."""
    await ensure(engine.js, Layout())
    async with asyncio.timeout(60):
        by_flag = await asyncio.to_thread(
            aether, "workers", "--nats", secured.url, "--user", "engine", "--password", ENGINE.password or "", "--json"
        )
        assert by_flag.returncode == 0, by_flag.stderr
        assert json.loads(by_flag.stdout) == []
        wrong = await asyncio.to_thread(
            aether, "workers", "--nats", secured.url, "--user", "engine", "--password", "wrong"
        )
        assert wrong.returncode == 1
        assert wrong.stderr.startswith(f"aether: workers: cannot connect to {secured.url}: ")
        assert len(wrong.stderr.splitlines()) == 1, wrong.stderr
        alone = await asyncio.to_thread(aether, "workers", "--nats", secured.url, "--password", "pw")
        assert (alone.returncode, alone.stderr) == (
            2,
            "aether: workers: --password ($AETHER_NATS_PASSWORD) needs --user ($AETHER_NATS_USER)\n",
        )
        unauthenticated = await asyncio.to_thread(aether, "workers", "--nats", secured.url)
        assert unauthenticated.returncode == 1 and "Authorization" in unauthenticated.stderr
        monkeypatch.setenv("AETHER_NATS_USER", "engine")
        monkeypatch.setenv("AETHER_NATS_PASSWORD", ENGINE.password or "")
        by_env = await asyncio.to_thread(aether, "workers", "--nats", secured.url, "--json")
        assert by_env.returncode == 0, by_env.stderr
        flag_wins = await asyncio.to_thread(
            aether, "workers", "--nats", secured.url, "--user", "engine", "--password", "wrong"
        )
        assert flag_wins.returncode == 1 and "Authorization" in flag_wins.stderr


async def test_a_reader_follows_a_run_and_a_producer_is_told_it_may_not(
    secured: EmbeddedNatsServer, engine: NatsConnection
) -> None:
    layout = Layout()
    await ensure_stream(engine.js, layout.runs_stream_config())
    moment = "2026-01-01T00:00:00Z"
    events = [
        ev.RunSubmitted(workflow={"metadata": {"name": "followed"}}, created_at=moment),
        ev.RunFinished(phase=ph.SUCCEEDED, metrics=Metrics(started_at=moment, finished_at=moment)),
    ]
    commit = commit_of("r1", make_envelopes("r1", 1, events, moment, "engine", "test"))
    await engine.js.publish(layout.run_subject("r1"), encode_commit(commit))
    reader, refusals = await connect_as(secured, READER)
    try:
        progress = await follow_until(reader.nc, layout, "r1", timeout=10)
        assert progress.state is not None and progress.state.phase == ph.SUCCEEDED
    finally:
        await reader.close()
    assert refusals.errors == []
    producer, _ = await connect_as(secured, PRODUCER)
    try:
        with pytest.raises(ApiError, match="cannot read the history of run r1 from AETHER_RUNS"):
            await follow_until(producer.nc, layout, "r1", timeout=30)
    finally:
        await producer.close()
