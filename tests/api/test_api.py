"""The request/reply API on a real nats-server, through `aether_es.Client` and through plain nats-py."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nats
import nats.errors
import pytest
from nats.aio.client import Client as Nats

from aether_es import Client
from aether_es.adapters.idgen import TimeOrderedIdGenerator
from aether_es.adapters.nats.broker import NatsBroker
from aether_es.adapters.nats.connection import connect
from aether_es.adapters.nats.event_store import NatsEventStore
from aether_es.adapters.nats.layout import Layout, ensure
from aether_es.adapters.nats.server import EmbeddedNatsServer
from aether_es.api.service import ApiService, start_api
from aether_es.errors import (
    ApiError,
    ConflictError,
    InvalidStateError,
    NotFoundError,
    NotSupportedError,
    ValidationError,
)
from aether_es.ports.worker_registry import WorkerInfo
from aether_es.runtime.engine import Engine
from aether_es.runtime.stack import Stack, StackOptions, open_stack


def workflow(name: str = "api-probe", labels: dict[str, str] | None = None, suspend: bool = False) -> dict[str, Any]:
    inputs = [{"name": "suspend", "value": True}] if suspend else [{"name": "greeting", "value": "hi"}]
    return {
        "apiVersion": "aether/v1",
        "kind": "Workflow",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {
            "entrypoint": "main",
            "templates": [{"task": {"name": "main", "inputs": {"parameters": inputs}, "executor": {"type": "echo"}}}],
        },
    }


def cron_document(suspend: bool = False) -> dict[str, Any]:
    return {
        "apiVersion": "aether/v1",
        "kind": "CronWorkflow",
        "metadata": {"name": "nightly"},
        "spec": {
            "schedule": "*/5 * * * *",
            "suspend": suspend,
            "workflowSpec": {
                "entrypoint": "main",
                "templates": [{"task": {"name": "main", "executor": {"type": "echo"}}}],
            },
        },
    }


async def until(client: Client, run_id: str, check: Any, timeout: float = 10.0) -> dict[str, Any]:
    """Poll the run's view through the API until `check(view)` holds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        view = await client.get(run_id)
        if check(view):
            return view
        assert asyncio.get_running_loop().time() < deadline, f"run {run_id} stuck: {view['status']}"
        await asyncio.sleep(0.05)


def finished(view: dict[str, Any]) -> bool:
    return view["status"] in ("Succeeded", "Failed", "Error", "Cancelled")


def suspended_task(view: dict[str, Any]) -> dict[str, Any] | None:
    return next((t for t in view["tasks"] if t["status"] == "Suspended"), None)


async def raw(nc: Nats, operation: str, body: bytes) -> tuple[dict[str, Any], dict[str, str]]:
    reply = await nc.request(f"aether.api.v1.{operation}", body, timeout=5)
    return json.loads(reply.data), dict(reply.headers or {})


# --- every operation ---------------------------------------------------------------------------------------


async def test_submit_get_and_list_a_run(client: Client) -> None:
    run_id = await client.submit(workflow(labels={"team": "data"}))
    view = await until(client, run_id, finished)
    assert view["runID"] == run_id and view["status"] == "Succeeded"
    assert [t["taskName"] for t in view["tasks"]] == ["main"]
    from_text = await client.submit(json.dumps(workflow("from-text")))  # a document as a JSON string
    assert (await client.get(from_text))["name"] == "from-text"
    page = await client.list()
    assert [r.run_id for r in page.runs] == [from_text, run_id] and page.next_page_token == ""
    first = page.runs[1]
    assert (first.name, first.labels, first.cron_workflow_id) == ("api-probe", {"team": "data"}, "")
    assert first.created_at == view["createdAt"]


async def test_resume_and_cancel(client: Client) -> None:
    run_id = await client.submit(workflow(suspend=True))
    view = await until(client, run_id, lambda v: suspended_task(v) is not None)
    task = suspended_task(view)
    assert task is not None
    await client.resume(run_id, task["runID"], {"suspend": False})
    assert (await until(client, run_id, finished))["status"] == "Succeeded"

    other = await client.submit(workflow(suspend=True))
    await until(client, other, lambda v: suspended_task(v) is not None)
    await client.cancel(other)
    assert (await until(client, other, finished))["status"] == "Cancelled"
    page = await client.list(status="Cancelled")
    assert [(r.run_id, r.status) for r in page.runs] == [(other, "Cancelled")]
    assert page.runs[0].finished_at


async def test_cron_operations(client: Client, stack: Stack) -> None:
    cron_id = await client.cron_submit(cron_document())
    assert [c["cronWorkflowID"] for c in await client.cron_list()] == [cron_id]
    await stack.engine.cron().fire(cron_id, datetime(2026, 1, 1, tzinfo=UTC))
    view = await client.cron_get(cron_id)
    assert view["name"] == "nightly" and len(view["runs"]) == 1
    await client.cron_update(cron_id, cron_document(suspend=True))
    assert (await client.cron_get(cron_id))["suspend"] is True
    await client.cron_delete(cron_id)
    assert await client.cron_list() == []
    with pytest.raises(NotFoundError, match=f'cron workflow "{cron_id}" not found'):
        await client.cron_get(cron_id)


async def test_workers_list(client: Client) -> None:
    workers = await client.workers()
    assert workers and all("echo" in w.executor_types for w in workers)
    assert [w.id for w in await client.workers("echo")] == [w.id for w in workers]
    assert await client.workers("nobody-serves-this") == []


# --- errors ------------------------------------------------------------------------------------------------


async def test_malformed_json_is_invalid_argument(client: Client, plain: Nats) -> None:
    body, headers = await raw(plain, "runs.submit", b'{"document": ')
    assert body["error"]["code"] == "invalid_argument" and body["error"]["field"] is None
    assert body["error"]["message"].startswith("aether: validation error: request body is not valid JSON")
    assert headers["Nats-Service-Error-Code"] == "400"
    assert headers["Nats-Service-Error"] == body["error"]["message"]
    body, _ = await raw(plain, "runs.get", b"[1, 2]")
    assert body["error"]["code"] == "invalid_argument" and "must be a JSON object" in body["error"]["message"]


async def test_wrong_request_shape_names_the_field(client: Client, plain: Nats) -> None:
    body, _ = await raw(plain, "runs.get", b"{}")
    assert body["error"] == {
        "code": "invalid_argument",
        "message": "aether: validation error: runID: Field required",
        "field": "runID",
    }
    body, _ = await raw(plain, "runs.get", b'{"runId": "x"}')  # misspelt: refused, not ignored, and the fix named
    assert body["error"]["field"] == "runId"
    assert body["error"]["message"].endswith("runId: unknown field (did you mean runID?)")
    body, _ = await raw(plain, "runs.list", b'{"phase": "Running"}')  # the key's former name
    assert body["error"]["message"].endswith("phase: unknown field (did you mean status?)")
    body, _ = await raw(plain, "crons.get", b'{"id": "c"}')
    assert body["error"]["message"].endswith("id: unknown field (did you mean cronWorkflowID?)")
    body, _ = await raw(plain, "runs.list", b'{"limit": 5000}')
    assert body["error"]["field"] == "limit"
    body, _ = await raw(plain, "runs.get", b'{"runID": "a b"}')
    assert body["error"]["field"] == "runID" and "cannot be used in a NATS subject" in body["error"]["message"]
    with pytest.raises(ValidationError) as bad:
        await client.resume("some-run", "")
    assert bad.value.field == "taskRunID"


async def test_invalid_document_gets_aethers_message_and_writes_nothing(client: Client, stack: Stack) -> None:
    document = {"apiVersion": "aether/v1", "kind": "Workflow", "metadata": {"name": "x"}}
    with pytest.raises(ValidationError) as direct:
        await stack.engine.submit(document)
    with pytest.raises(ValidationError) as through_api:
        await client.submit(document, idempotency_key="k-invalid")
    assert str(through_api.value) == str(direct.value)
    assert "spec.entrypoint is required" in str(through_api.value)
    assert through_api.value.field == "document"
    with pytest.raises(ValidationError, match="aether: validation error: ") as not_json:
        await client.submit("{not json")
    assert not_json.value.field == "document"
    assert (await client.list()).runs == []
    # the refused submission did not use up its key
    assert (await client.submit_info(workflow(), idempotency_key="k-invalid")).created is True


async def test_strict_refuses_a_document_with_warnings_naming_each_path(client: Client, plain: Nats) -> None:
    document = workflow()
    document["spec"]["templates"][0]["task"]["retries"] = 2  # Aether ignores it: a warning
    cron = cron_document()
    cron["spec"]["workflowSpec"]["entrypont"] = "main"
    submitted = await client.submit_info(document)
    assert [(w.path, w.message) for w in submitted.warnings] == [
        ("spec.templates[0].task.retries", 'unknown field, ignored; did you mean "retry"?')
    ]
    cron_submitted = await client.cron_submit_info(cron)
    assert [w.path for w in cron_submitted.warnings] == ["spec.workflowSpec.entrypont"]
    with pytest.raises(ValidationError) as refused:
        await client.submit(document, idempotency_key="k-strict", strict=True)
    assert str(refused.value) == (
        "aether: validation error: refused by strict, the document has 1 warning: "
        'spec.templates[0].task.retries: unknown field, ignored; did you mean "retry"?'
    )
    assert refused.value.field == "document"
    body, headers = await raw(plain, "crons.submit", json.dumps({"document": cron, "strict": True}).encode())
    assert body["error"]["code"] == "invalid_argument" and headers["Nats-Service-Error-Code"] == "400"
    assert "spec.workflowSpec.entrypont: unknown field" in body["error"]["message"]
    assert [r.run_id for r in (await client.list()).runs] == [submitted.run_id]  # strict started nothing
    assert [c["cronWorkflowID"] for c in await client.cron_list()] == [cron_submitted.cron_workflow_id]
    assert (await client.submit_info(workflow(), idempotency_key="k-strict", strict=True)).warnings == []


async def test_unknown_run_is_not_found(client: Client) -> None:
    with pytest.raises(NotFoundError) as missing:
        await client.get("no-such-run")
    assert str(missing.value) == 'aether: not found: workflow run "no-such-run" not found'
    with pytest.raises(NotFoundError):
        await client.cancel("no-such-run")
    with pytest.raises(NotFoundError):
        await client.resume("no-such-run", "t-1")


async def test_finished_run_is_invalid_state(client: Client) -> None:
    run_id = await client.submit(workflow())
    await until(client, run_id, finished)
    with pytest.raises(InvalidStateError) as cancelled:
        await client.cancel(run_id)
    assert str(cancelled.value) == f'aether: invalid state: workflow "{run_id}" already in terminal state Succeeded'
    with pytest.raises(InvalidStateError, match=f'task "other-1" does not belong to workflow "{run_id}"'):
        await client.resume(run_id, "other-1", {})


class FailingRegistry:
    """A worker registry whose listing fails the way `error` says (to see how the API reports it)."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    async def list_all(self) -> list[WorkerInfo]:
        raise self.error

    async def list_by_executor_type(self, executor_type: str) -> list[WorkerInfo]:
        raise self.error


async def bare_api(server: EmbeddedNatsServer, prefix: str, **ports: Any) -> tuple[ApiService, Any]:
    """An API on an engine with only the required ports (plus `ports`), under its own prefix."""
    connection = await connect(server.url)
    layout = Layout(prefix=prefix)
    await ensure(connection.js, layout)
    engine = Engine(
        store=NatsEventStore(connection.nc, layout),
        broker=NatsBroker(connection.js, connection.nc, layout),
        ids=TimeOrderedIdGenerator(),
        **ports,
    )
    api = ApiService(engine, connection.nc, layout, connection.js)
    await api.start()
    return api, connection


async def test_engine_without_ports_is_not_supported(nats_server: EmbeddedNatsServer) -> None:
    api, connection = await bare_api(nats_server, "bare")
    try:
        async with await Client.connect(nats_server.url, prefix="bare") as client:
            with pytest.raises(NotSupportedError, match="CronScheduler not configured") as no_cron:
                await client.cron_list()
            assert no_cron.value.field is None
            with pytest.raises(NotSupportedError, match="WorkerRegistry not configured"):
                await client.workers()
    finally:
        await api.stop()
        await connection.close()


async def test_engine_failures_are_internal_or_unavailable(
    nats_server: EmbeddedNatsServer, caplog: pytest.LogCaptureFixture
) -> None:
    broken, broken_conn = await bare_api(
        nats_server, "broken", worker_registry=FailingRegistry(RuntimeError("registry exploded"))
    )
    slow, slow_conn = await bare_api(nats_server, "slow", worker_registry=FailingRegistry(nats.errors.TimeoutError()))
    try:
        async with await Client.connect(nats_server.url, prefix="broken") as client:
            with caplog.at_level(logging.ERROR, logger="aether_es.api"), pytest.raises(ApiError) as internal:
                await client.workers()
        assert internal.value.code == "internal"
        assert str(internal.value) == "aether: internal error: RuntimeError: registry exploded"
        assert "Traceback" not in str(internal.value)
        assert any("registry exploded" in record.getMessage() for record in caplog.records)
        async with await Client.connect(nats_server.url, prefix="slow") as client:
            with pytest.raises(ApiError) as unavailable:
                await client.workers()
        assert unavailable.value.code == "unavailable"
    finally:
        for api, connection in ((broken, broken_conn), (slow, slow_conn)):
            await api.stop()
            await connection.close()


async def test_no_engine_on_the_prefix_is_a_clear_error(nats_server: EmbeddedNatsServer) -> None:
    async with await Client.connect(nats_server.url, prefix="nobody", timeout=1.0) as client:
        with pytest.raises(ApiError) as unavailable:
            await client.get("r-1")
    assert unavailable.value.code == "unavailable"
    assert "no engine serves the API on prefix 'nobody'" in str(unavailable.value)


# --- idempotent submit -------------------------------------------------------------------------------------


async def test_same_key_twice_gives_one_run(client: Client, stack: Stack) -> None:
    first = await client.submit_info(workflow(), idempotency_key="order-42")
    again = await client.submit_info(workflow(), idempotency_key="order-42")
    assert first.created is True and again.created is False
    assert again.run_id == first.run_id
    other = await client.submit(workflow(), idempotency_key="order-43")
    assert other != first.run_id
    assert sorted(r.run_id for r in (await client.list()).runs) == sorted([first.run_id, other])
    history = await stack.store.load(first.run_id)
    submitted = [e for c in history for e in c.commit.envelopes if e.event.type == "RunSubmitted"]
    assert len(submitted) == 1


async def test_concurrent_submits_with_one_key_across_engines(
    client: Client, stack: Stack, nats_server: EmbeddedNatsServer
) -> None:
    # A second engine process serving the same prefix: its own connection and in-memory state.
    second, connection = await bare_api(nats_server, "aether")
    try:
        replies = await asyncio.gather(*(client.submit_info(workflow(), idempotency_key="burst") for _ in range(10)))
    finally:
        await second.stop()
        await connection.close()
    assert len({r.run_id for r in replies}) == 1
    assert sum(r.created for r in replies) == 1
    run_id = replies[0].run_id
    history = await stack.store.load(run_id)
    submitted = [e for c in history for e in c.commit.envelopes if e.event.type == "RunSubmitted"]
    assert len(submitted) == 1
    assert [r.run_id for r in (await client.list()).runs] == [run_id]


async def test_idempotency_survives_an_engine_restart(nats_server: EmbeddedNatsServer, tmp_path: Path) -> None:
    replies = []
    for _ in range(2):
        opened = await open_stack(StackOptions(nats_url=nats_server.url, state_dir=tmp_path, workers=1))
        api = await start_api(opened)
        try:
            async with await Client.connect(opened.connection) as client:
                replies.append(await client.submit_info(workflow(), idempotency_key="restart-key"))
        finally:
            await api.stop()
            await opened.close()
    assert replies[0].created and not replies[1].created
    assert replies[0].run_id == replies[1].run_id


# --- listing -----------------------------------------------------------------------------------------------


async def test_list_filters(client: Client, stack: Stack) -> None:
    done = await client.submit(workflow("etl", labels={"team": "data", "tier": "gold"}))
    await until(client, done, finished)
    held = await client.submit(workflow("report", labels={"team": "web"}, suspend=True))
    await until(client, held, lambda v: suspended_task(v) is not None)
    cron_id = await client.cron_submit(cron_document())
    await stack.engine.cron().fire(cron_id, datetime(2026, 1, 1, tzinfo=UTC))
    fired = (await client.cron_get(cron_id))["runs"][0]["runID"]
    await until(client, fired, finished)

    async def ids(**filters: Any) -> list[str]:
        return [r.run_id async for r in client.runs(**filters)]

    assert await ids() == [fired, held, done]
    assert await ids(status="Succeeded") == [fired, done]
    assert await ids(status="Running") == [held]  # a suspended task leaves its run Running
    assert await ids(status="Suspended") == [held]  # ... and finds it as waiting
    assert await ids(status=["Running", "Cancelled"]) == [held]
    assert await ids(name="report") == [held]
    assert await ids(labels={"team": "data"}) == [done]
    assert await ids(labels={"team": "data", "tier": "silver"}) == []
    assert await ids(cron_workflow_id=cron_id) == [fired]
    held_at = (await client.get(held))["createdAt"]
    assert await ids(created_after=held_at) == [fired, held]
    assert await ids(created_before=held_at) == [done]
    assert await ids(created_after=held_at, created_before=held_at) == []
    assert await ids(created_after=datetime(2100, 1, 1, tzinfo=UTC)) == []
    (cron_run,) = (await client.list(cron_workflow_id=cron_id)).runs
    assert cron_run.cron_workflow_id == cron_id and cron_run.name == "nightly"


async def test_list_refuses_bad_filters(client: Client) -> None:
    with pytest.raises(ValidationError, match="unknown phase 'Done'") as phase:
        await client.list(status="Done")
    assert phase.value.field == "status"
    with pytest.raises(ValidationError) as after:
        await client.list(created_after="yesterday")
    assert after.value.field == "createdAfter"
    with pytest.raises(ValidationError) as token:
        await client.list(page_token="not-a-token")
    assert token.value.field == "pageToken"


async def test_pages_never_repeat_or_skip_a_run(client: Client) -> None:
    submitted = [await client.submit(workflow(f"w{i}")) for i in range(23)]
    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        page = await client.list(limit=5, page_token=token)
        pages += 1
        seen += [r.run_id for r in page.runs]
        if pages == 2:  # a run submitted mid-way is newer than the token: not on a later page
            late = await client.submit(workflow("late"))
        token = page.next_page_token
        if not token:
            break
    assert pages == 5
    assert seen == list(reversed(submitted))
    assert late not in seen
    assert (await client.list(limit=1)).runs[0].run_id == late


# --- a producer that knows nothing of aether_es ------------------------------------------------------------


async def test_plain_nats_py_producer(client: Client, plain: Nats) -> None:
    reply = await plain.request(
        "aether.api.v1.runs.submit",
        json.dumps({"document": workflow("plain"), "idempotencyKey": "plain-1"}).encode(),
        timeout=5,
    )
    body = json.loads(reply.data)
    assert body["created"] is True and body["runID"]
    run_id = body["runID"]
    view = await until(client, run_id, finished)
    assert view["status"] == "Succeeded" and view["name"] == "plain"
    body, headers = await raw(plain, "runs.get", json.dumps({"runID": run_id}).encode())
    assert body["run"]["runID"] == run_id and "Nats-Service-Error-Code" not in headers
    body, _ = await raw(plain, "runs.list", b"")
    assert [r["runID"] for r in body["runs"]] == [run_id] and body["nextPageToken"] == ""
    assert set(body["runs"][0]) == {
        "runID", "name", "namespace", "status", "suspendedTasks", "createdAt", "finishedAt", "cronWorkflowID", "labels",
    }  # fmt: skip


# --- refusals ----------------------------------------------------------------------------------------------


async def test_refusals_are_structured_errors(client: Client, plain: Nats) -> None:
    """What cannot be done answers an error with its code and status, never a reply that did nothing."""
    body, _ = await raw(plain, "runs.submit", json.dumps({"document": workflow(), "idempotencyKey": "k-1"}).encode())
    first = body["runID"]
    other = json.dumps({"document": workflow("other"), "idempotencyKey": "k-1"}).encode()
    body, headers = await raw(plain, "runs.submit", other)
    assert (body["error"]["code"], headers["Nats-Service-Error-Code"]) == ("conflict", "409")
    assert f'already started run "{first}" with another document' in body["error"]["message"]
    with pytest.raises(ConflictError):
        await client.submit(workflow("other"), idempotency_key="k-1")
    done = await until(client, first, finished)
    body, _ = await raw(
        plain, "runs.resume", json.dumps({"runID": first, "taskRunID": done["tasks"][0]["runID"]}).encode()
    )
    assert body["error"]["code"] == "invalid_state" and "terminal state Succeeded" in body["error"]["message"]

    cron_id = await client.cron_submit(cron_document())
    body, _ = await raw(plain, "crons.submit", json.dumps({"document": cron_document()}).encode())
    assert body["error"]["code"] == "conflict" and cron_id in body["error"]["message"]
    with pytest.raises(InvalidStateError, match="is not suspended"):
        await client.cron_resume(cron_id)
    await client.cron_suspend(cron_id)
    run_id = await client.cron_trigger(cron_id)
    assert [r.run_id for r in (await client.list(cron_workflow_id=cron_id)).runs] == [run_id]
    await client.cron_delete(cron_id)
    body, headers = await raw(plain, "crons.delete", json.dumps({"cronWorkflowID": cron_id}).encode())
    assert (body["error"]["code"], headers["Nats-Service-Error-Code"]) == ("not_found", "404")
    with pytest.raises(NotFoundError):
        await client.cron_trigger(cron_id)
