"""The engine's Python API on a real nats-server: construction, errors, idempotence, secrets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from aether_es.adapters.nats.server import EmbeddedNatsServer
from aether_es.errors import InvalidStateError, NotFoundError, ValidationError
from aether_es.ports.wire import Report, TaskResult
from aether_es.runtime.engine import Engine
from aether_es.runtime.stack import Stack, StackOptions, open_stack
from aether_es.worker.redaction import REDACTED


def workflow(*inputs: dict[str, Any], name: str = "api-probe") -> dict[str, Any]:
    return {
        "apiVersion": "aether/v1",
        "kind": "Workflow",
        "metadata": {"name": name},
        "spec": {
            "entrypoint": "main",
            "templates": [
                {
                    "dag": {
                        "name": "main",
                        "tasks": [{"name": "step", "template": "work"}],
                    }
                },
                {
                    "task": {
                        "name": "work",
                        "inputs": {"parameters": list(inputs)},
                        "executor": {"type": "echo"},
                    }
                },
            ],
        },
    }


class Vault:
    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []

    async def get(self, name: str, key: str) -> str:
        self.asked.append((name, key))
        return "s3cr3t-value-" + key


@pytest_asyncio.fixture
async def stack(nats_server: EmbeddedNatsServer, tmp_path: Path) -> AsyncIterator[Stack]:
    opened = await open_stack(StackOptions(nats_url=nats_server.url, state_dir=tmp_path, secrets=Vault()))
    try:
        yield opened
    finally:
        await opened.close()


def test_required_ports_are_checked_in_aethers_order() -> None:
    with pytest.raises(ValidationError, match=r"^aether: validation error: Store is required"):
        Engine(store=None, broker=None, ids=None)


async def test_start_twice_is_an_invalid_state(stack: Stack) -> None:
    with pytest.raises(InvalidStateError, match="engine already started, call stop"):
        await stack.engine.start()


async def test_invalid_submit_writes_nothing(stack: Stack) -> None:
    with pytest.raises(ValidationError, match=r"spec\.entrypoint is required"):
        await stack.engine.submit({"apiVersion": "aether/v1", "kind": "Workflow", "metadata": {"name": "x"}})
    info = await stack.connection.js.stream_info(stack.layout.runs_stream)
    assert info.state.messages == 0
    assert await stack.store.summaries() == []


async def test_unknown_run_and_state_errors(stack: Stack) -> None:
    with pytest.raises(NotFoundError, match='workflow run "nope" not found'):
        await stack.engine.get("nope")
    run_id = await stack.engine.submit(workflow())
    view = await stack.engine.wait(run_id, timeout=10)
    assert view["status"] == "Succeeded"
    with pytest.raises(InvalidStateError) as cancelled:
        await stack.engine.cancel(run_id)
    assert str(cancelled.value) == f'aether: invalid state: workflow "{run_id}" already in terminal state Succeeded'
    with pytest.raises(InvalidStateError, match=f'task "other-1" does not belong to workflow "{run_id}"'):
        await stack.engine.resume(run_id, "other-1", {})
    step = next(t for t in view["tasks"] if t["taskName"] == "step")
    with pytest.raises(InvalidStateError, match="already in terminal state Succeeded"):  # refused, not a no-op
        await stack.engine.resume(run_id, step["runID"], {"late": True})
    assert await stack.engine.get(run_id) == view


async def test_stale_and_duplicate_reports_change_nothing(stack: Stack) -> None:
    run_id = await stack.engine.submit(workflow({"name": "greeting", "value": "hi"}))
    view = await stack.engine.wait(run_id, timeout=10)
    step = next(t for t in view["tasks"] if t["taskName"] == "step")
    history = len(await stack.store.load(run_id))
    stale = TaskResult(code=2, message="late failure")
    await stack.broker.report(
        [
            Report(kind="completed", runID=run_id, taskRunID=step["runID"], attempt=1, result=stale, workerID="x"),
            Report(kind="started", runID=run_id, taskRunID=step["runID"], attempt=1, workerID="x"),
            Report(kind="completed", runID=run_id, taskRunID=step["runID"], attempt=7, result=stale, workerID="y"),
        ]
    )
    for _ in range(20):  # the reports are consumed and acked without effect
        await stack.engine.wait(run_id, timeout=0.05)
    assert await stack.engine.get(run_id) == view
    assert len(await stack.store.load(run_id)) == history


async def test_secret_values_reach_the_worker_but_never_the_log(stack: Stack) -> None:
    secret = {"name": "token", "valueFrom": {"secretKeyRef": {"name": "vault", "key": "api"}}}
    run_id = await stack.engine.submit(workflow(secret))
    view = await stack.engine.wait(run_id, timeout=10)
    assert view["status"] == "Succeeded"
    step = next(t for t in view["tasks"] if t["taskName"] == "step")
    echoed = {p["name"]: p.get("value") for p in step["outputs"]["parameters"]}
    assert echoed["token"] == REDACTED  # echo returned the resolved value; the worker scrubbed it
    raw = b""
    for stored in await stack.store.load(run_id):
        for envelope in stored.commit.envelopes:
            raw += envelope.event.model_dump_json().encode()
    inputs = [p for p in step["inputs"]["parameters"] if p["name"] == "token"]
    assert inputs == [{"name": "token", "valueFrom": {"secretKeyRef": {"name": "vault", "key": "api"}}}]
    assert b"s3cr3t" not in raw  # ... but no event holds it
    assert stack.options.secrets is not None


async def test_finished_runs_are_evicted_and_reloaded_from_the_log(stack: Stack) -> None:
    stack.engine._keep_finished = 1
    first = await stack.engine.submit(workflow(name="first"))
    first_view = await stack.engine.wait(first, timeout=10)
    second = await stack.engine.submit(workflow(name="second"))
    await stack.engine.wait(second, timeout=10)
    assert first not in stack.engine._runs
    assert await stack.engine.get(first) == first_view


async def test_wait_state_returns_the_committed_state_the_view_is_built_from(stack: Stack) -> None:
    run_id = await stack.engine.submit(workflow({"name": "greeting", "value": "hi"}))
    state = await stack.engine.wait_state(run_id, timeout=10)
    assert state.terminal and state.phase == "Succeeded"
    assert state.to_dict() == await stack.engine.wait(run_id, timeout=10)


async def test_asking_for_unknown_runs_keeps_nothing_in_memory(stack: Stack) -> None:
    before = len(stack.engine._runs)
    for n in range(50):
        with pytest.raises(NotFoundError):
            await stack.engine.get(f"made-up-{n}")
        with pytest.raises(NotFoundError):
            await stack.engine.cancel(f"made-up-{n}")
    assert len(stack.engine._runs) == before


async def test_the_stack_creates_its_streams_with_the_replicas_asked_for(nats_server: EmbeddedNatsServer) -> None:
    stack = await open_stack(StackOptions(nats_url=nats_server.url, workers=0, replicas=1, prefix="rep"))
    try:
        info = await stack.connection.js.stream_info(stack.layout.runs_stream)
        assert info.config.num_replicas == 1 and stack.layout.replicas == 1
    finally:
        await stack.close()
    with pytest.raises(Exception, match="replicas"):
        await open_stack(StackOptions(nats_url=nats_server.url, workers=0, replicas=3, prefix="rep3"))


async def test_purge_removes_only_finished_runs_and_records_itself(stack: Stack) -> None:
    done = await stack.engine.submit(workflow(name="done"))
    await stack.engine.wait(done, timeout=10)
    waiting = await stack.engine.submit(workflow({"name": "suspend", "value": True}, name="waiting"))
    for _ in range(100):
        if (await stack.engine.state(waiting)).phase == "Running":
            break
        await asyncio.sleep(0.05)
    with pytest.raises(InvalidStateError, match="only finished runs"):
        await stack.engine.purge([done, waiting])
    assert await stack.store.load(done)  # nothing was removed
    purge_id = await stack.engine.purge([done], actor="user:ops", reason="old")
    assert await stack.store.load(done) == []
    with pytest.raises(NotFoundError):
        await stack.engine.get(done)
    assert done not in {s.run_id for s in await stack.store.summaries()}
    (record,) = [env for stored in await stack.store.load(purge_id) for env in stored.commit.envelopes]
    assert (record.type, record.actor, record.reason) == ("RunsPurged", "user:ops", "old")
    assert record.event.run_ids == [done]  # type: ignore[attr-defined]
