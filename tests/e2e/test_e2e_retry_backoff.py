"""Retry backoff on a real stack: the waits between attempts, and a wait that outlives its engine."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from aether_es.adapters.nats.server import EmbeddedNatsServer
from aether_es.events import catalogue as ev
from aether_es.events.envelope import Envelope
from aether_es.model import phases as ph
from aether_es.model.clock import parse_time, seconds_between
from aether_es.ports.deadlines import retry_key
from aether_es.projections.run_state import TaskRunView
from aether_es.runtime.stack import Stack, StackOptions, open_stack


def workflow(fail_count: int, backoff: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "aether/v1",
        "kind": "Workflow",
        "metadata": {"name": "backoff"},
        "spec": {
            "entrypoint": "main",
            "templates": [
                {
                    "dag": {
                        "name": "main",
                        "tasks": [
                            {
                                "name": "flaky",
                                "template": "echo",
                                "arguments": {"parameters": [{"name": "fail-count", "value": fail_count}]},
                                "retry": {
                                    "limit": 3,
                                    "expression": "tasks.flaky.phase == Failed",
                                    "backoff": backoff,
                                },
                            }
                        ],
                    }
                },
                {"task": {"name": "echo", "executor": {"type": "echo"}}},
            ],
        },
    }


async def history(stack: Stack, run_id: str) -> list[Envelope]:
    return [env for stored in await stack.store.load(run_id) for env in stored.commit.envelopes]


def attempts(envelopes: list[Envelope]) -> tuple[list[str], dict[int, str], dict[int, str]]:
    """When each attempt failed (TaskRetried), and when each attempt was dispatched and started."""
    failed = [e.time for e in envelopes if isinstance(e.event, ev.TaskRetried)]
    dispatched = {e.event.attempt: e.time for e in envelopes if isinstance(e.event, ev.TaskDispatched)}
    started = {
        e.event.attempt: e.event.started_at
        for e in envelopes
        if isinstance(e.event, ev.TaskStarted) and e.event.attempt
    }
    return failed, dispatched, started


async def waiting(stack: Stack, run_id: str) -> TaskRunView:
    for _ in range(400):
        state = await stack.engine.state(run_id)
        task = next((t for t in state.tasks.values() if t.task_name == "flaky"), None)
        if task is not None and task.phase == ph.CREATED and task.retry_at:
            return task
        await asyncio.sleep(0.025)
    raise AssertionError("the retry never started waiting")


async def test_attempts_are_spaced_by_the_backoff(nats_server: EmbeddedNatsServer, tmp_path: Path) -> None:
    stack = await open_stack(StackOptions(nats_url=nats_server.url, state_dir=tmp_path, prefix="spaced"))
    try:
        run_id = await stack.engine.submit(workflow(2, {"duration": "300ms", "factor": 2}))
        view = await stack.engine.wait(run_id, timeout=30)
        envelopes = await history(stack, run_id)
    finally:
        await stack.close()
    assert view["status"] == ph.SUCCEEDED, view
    (task,) = view["tasks"][1:]
    assert (task["status"], task["retryCount"]) == (ph.SUCCEEDED, 2)
    failed, dispatched, started = attempts(envelopes)
    assert len(failed) == 2 and sorted(dispatched) == [1, 2, 3]
    for n, wait in ((1, 0.3), (2, 0.6)):
        # Dispatch is decided on the watcher's report; the start is the worker's own clock.
        assert seconds_between(failed[n - 1], dispatched[n + 1]) >= wait
        assert seconds_between(failed[n - 1], started[n + 1]) >= wait


async def test_a_waiting_retry_survives_an_engine_restart(nats_server: EmbeddedNatsServer, tmp_path: Path) -> None:
    """The first engine stops during the wait and its retry deadline is lost; the next engine re-arms it
    from the history and dispatches the retry once due, not at recovery."""
    options = StackOptions(nats_url=nats_server.url, state_dir=tmp_path, prefix="moved")
    first = await open_stack(options)
    try:
        run_id = await first.engine.submit(workflow(1, {"duration": "1500ms"}))
        task = await waiting(first, run_id)
        await first.deadlines.clear([retry_key(task.id, task.attempt)])
    finally:
        await first.close()

    second = await open_stack(options)
    try:
        view = await second.engine.wait(run_id, timeout=30)
        envelopes = await history(second, run_id)
    finally:
        await second.close()
    assert view["status"] == ph.SUCCEEDED, view
    assert view["tasks"][1]["retryCount"] == 1
    _, dispatched, started = attempts(envelopes)
    assert sorted(dispatched) == [1, 2]
    assert parse_time(dispatched[2]) >= parse_time(task.retry_at)
    assert parse_time(started[2]) >= parse_time(task.retry_at)


async def deadlines_drained(stack: Stack) -> None:
    for _ in range(200):
        if stack.deadlines.pending == 0:
            return
        await asyncio.sleep(0.025)
    raise AssertionError(f"{stack.deadlines.pending} deadlines left")


async def test_cancel_during_the_wait_clears_the_retry(nats_server: EmbeddedNatsServer, tmp_path: Path) -> None:
    stack = await open_stack(StackOptions(nats_url=nats_server.url, state_dir=tmp_path, prefix="cancelled"))
    try:
        run_id = await stack.engine.submit(workflow(1, {"duration": "1m"}))
        task = await waiting(stack, run_id)
        assert task.message == f"retrying at {task.retry_at} (retry 1 of 3)"
        await stack.engine.cancel(run_id)
        view = await stack.engine.wait(run_id, timeout=10)
        await deadlines_drained(stack)
    finally:
        await stack.close()
    assert view["status"] == ph.CANCELLED
    assert (view["tasks"][1]["status"], view["tasks"][1]["retryCount"]) == (ph.CANCELLED, 1)


async def test_the_run_deadline_keeps_running_during_the_wait(nats_server: EmbeddedNatsServer, tmp_path: Path) -> None:
    stack = await open_stack(StackOptions(nats_url=nats_server.url, state_dir=tmp_path, prefix="late"))
    try:
        document = workflow(1, {"duration": "1m"})
        document["spec"]["timeout"] = "1s"
        run_id = await stack.engine.submit(document)
        await waiting(stack, run_id)
        view = await stack.engine.wait(run_id, timeout=20)
        await deadlines_drained(stack)
        envelopes = await history(stack, run_id)
    finally:
        await stack.close()
    assert view["status"] == ph.TIMEOUT
    assert view["tasks"][1]["status"] == ph.TIMEOUT
    assert sum(isinstance(e.event, ev.TaskDispatched) for e in envelopes) == 1
