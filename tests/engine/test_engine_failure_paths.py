"""The engine's failure paths on the in-memory adapters: an effect raising, a decision raising, a store
refusing, a report that cannot be decided, a secret that cannot be resolved, and the commit's outbox.

Each test checks the two promises: every caller gets an answer, and the run's state stays exactly what its
log says (the live view equals the view rebuilt from the log).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio

from aether_es.adapters.idgen import CounterIdGenerator
from aether_es.adapters.memory.broker import MemoryBroker
from aether_es.adapters.memory.event_store import MemoryEventStore
from aether_es.adapters.recording import RecordingErrorSink, RecordingNotifier
from aether_es.adapters.secrets import EnvSecretProvider
from aether_es.engine.decision import Decision
from aether_es.engine.effects import Notify
from aether_es.engine.triggers import Completed, Trigger
from aether_es.errors import AetherError
from aether_es.events.envelope import Commit
from aether_es.ports.error_sink import Severity
from aether_es.runtime import engine as engine_module
from aether_es.runtime.engine import Engine
from aether_es.runtime.outbox import decode_outbox
from aether_es.worker.executors.echo import EchoExecutor
from aether_es.worker.pool import WorkerPool


def dag(*names: str, hooks: bool = False) -> dict[str, Any]:
    """A DAG of independent echo tasks, each echoing its own name."""
    tasks = [
        {"name": name, "template": "echo", "arguments": {"parameters": [{"name": "say", "value": name}]}}
        for name in names
    ]
    template: dict[str, Any] = {
        "name": "echo",
        "inputs": {"parameters": [{"name": "say"}]},
        "executor": {"type": "echo"},
    }
    spec: dict[str, Any] = {
        "entrypoint": "main",
        "templates": [{"dag": {"name": "main", "tasks": tasks}}, {"task": template}],
    }
    if hooks:
        spec["hooks"] = {"onStart": {"template": "echo"}, "onExit": {"template": "echo"}}
    return {"apiVersion": "aether/v1", "kind": "Workflow", "metadata": {"name": "paths"}, "spec": spec}


@dataclass
class System:
    engine: Engine
    store: MemoryEventStore
    broker: MemoryBroker
    notifier: RecordingNotifier
    errors: RecordingErrorSink

    async def finished(self, run_id: str) -> dict[str, Any]:
        view = await self.engine.wait(run_id, timeout=10)
        assert view["status"] not in ("Pending", "Running"), view
        assert view == (await self.engine.rebuild(run_id)).to_dict()  # nothing lives only in memory
        return view


@pytest_asyncio.fixture
async def system(request: pytest.FixtureRequest) -> AsyncIterator[System]:
    options: dict[str, Any] = getattr(request, "param", {})
    store = MemoryEventStore()
    broker = MemoryBroker(report_ack_wait=0.5, handler_retry_delay=0.1)
    notifier, errors = RecordingNotifier(), RecordingErrorSink()
    engine = Engine(
        store=store,
        broker=broker,
        ids=CounterIdGenerator(),
        notifier=notifier,
        error_sink=errors,
        secrets=EnvSecretProvider(environ={}),
        **options,
    )
    pool = WorkerPool(broker.channel(), {"echo": EchoExecutor()}, 4, fetch_timeout=0.1)
    await pool.start()
    await engine.start()
    try:
        yield System(engine, store, broker, notifier, errors)
    finally:
        await pool.stop()
        await engine.stop()


async def test_failing_dispatch_is_tried_again_and_the_caller_answered(
    system: System, caplog: pytest.LogCaptureFixture
) -> None:
    system.broker.fail_next("dispatch", 3)
    run_id = await asyncio.wait_for(system.engine.submit(dag("a", "b")), 5)
    view = await system.finished(run_id)
    assert view["status"] == "Succeeded"
    retried = [r for r in caplog.records if "effects not carried out" in r.getMessage()]
    assert len(retried) == 3 and all(r.levelno == logging.WARNING for r in retried)


async def test_a_dispatch_that_landed_before_failing_is_not_doubled(system: System) -> None:
    system.broker.fail_next("dispatch", 1, landed=True)
    run_id = await system.engine.submit(dag("a"))
    view = await system.finished(run_id)
    assert view["status"] == "Succeeded"
    assert len([t for t in view["tasks"] if t["taskName"] == "a"]) == 1


async def test_a_refused_append_answers_the_caller_and_keeps_nothing(system: System) -> None:
    system.store.fail_next("append", 1)
    with pytest.raises(ConnectionError):
        await asyncio.wait_for(system.engine.submit(dag("a")), 5)
    assert await system.store.summaries() == []
    run_id = await system.engine.submit(dag("a"))  # the engine goes on as before
    assert (await system.finished(run_id))["status"] == "Succeeded"


async def test_a_refused_append_of_a_report_is_decided_when_it_comes_again(
    system: System, caplog: pytest.LogCaptureFixture
) -> None:
    def finishing(commit: object) -> bool:
        return isinstance(commit, Commit) and any(env.type == "TaskFinished" for env in commit.envelopes)

    system.store.fail_next("append", 1, match=finishing)
    run_id = await system.engine.submit(dag("a"))
    view = await system.finished(run_id)
    assert view["status"] == "Succeeded"
    finished = [
        env.event.task_id  # type: ignore[attr-defined]
        for c in await system.store.load(run_id)
        for env in c.commit.envelopes
        if env.type == "TaskFinished"
    ]
    assert len(finished) == len(set(finished)) == 2  # the task and its DAG, each once
    assert any("append failed" in r.getMessage() for r in caplog.records)  # it was refused once


async def test_a_run_whose_engine_died_right_after_its_first_commit_is_recovered(system: System) -> None:
    system.broker.fail_next("dispatch", 10_000)  # the engine dies before its effects and its summary update
    system.store.fail_next("put_summary", 10_000, match=lambda summary: summary.phase != "Created")
    run_id = await system.engine.submit(dag("a"))
    await system.engine.stop()
    assert [s.phase for s in await system.store.summaries()] == ["Created"]
    system.broker.heal()
    system.store.heal()
    successor = Engine(store=system.store, broker=system.broker, ids=CounterIdGenerator())
    await successor.start()
    try:
        view = await successor.wait(run_id, timeout=10)
        assert view["status"] == "Succeeded"
        assert [s.phase for s in await system.store.summaries()] == ["Succeeded"]
    finally:
        await successor.stop()


async def test_recovery_removes_the_summary_of_a_run_that_never_landed(system: System) -> None:
    system.store.fail_next("append", 1)
    system.store.fail_next("delete_summary", 1)  # and the engine could not tidy up at once
    with pytest.raises(ConnectionError):
        await system.engine.submit(dag("a"))
    assert len(await system.store.summaries()) == 1
    await system.engine.stop()
    successor = Engine(store=system.store, broker=system.broker, ids=CounterIdGenerator())
    await successor.start()
    await successor.stop()
    assert await system.store.summaries() == []


def raising_on(predicate: Callable[[Trigger], bool]) -> Callable[[Decision, Trigger, str], AetherError | None]:
    """The decider, except that it raises half-way through a trigger the predicate picks (its events are
    already applied to the state by then, as a bug deep in a decision would leave them)."""
    real = engine_module.handle

    def handle(decision: Decision, trigger: Trigger, run_id: str) -> AetherError | None:
        error = real(decision, trigger, run_id)
        if predicate(trigger):
            raise RuntimeError(f"cannot decide {trigger.cause}")
        return error

    return handle


def is_first_completion_of(task_name: str, engine: Engine) -> Callable[[Trigger], bool]:
    def predicate(trigger: Trigger) -> bool:
        return (
            isinstance(trigger, Completed)
            and trigger.actor != "engine"
            and trigger.result.parameters[:1] != []
            and any(p.value == task_name for p in trigger.result.parameters)
        )

    return predicate


async def test_a_report_that_cannot_be_decided_ends_its_attempt_as_an_error(
    system: System, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_module, "handle", raising_on(is_first_completion_of("poison", system.engine)))
    run_id = await system.engine.submit(dag("fine", "poison", "also-fine"))
    view = await system.finished(run_id)
    tasks = {t["taskName"]: t for t in view["tasks"]}
    assert tasks["fine"]["status"] == tasks["also-fine"]["status"] == "Succeeded"  # decided despite the poison
    assert tasks["poison"]["status"] == "Error"
    assert "could not be decided: RuntimeError" in tasks["poison"]["message"]
    assert view["status"] == "Error"
    (report,) = [r for r in system.errors.reports if r.operation == "decide"]
    assert report.severity == Severity.ERROR and report.task_run_id == tasks["poison"]["runID"]
    await asyncio.sleep(0.8)  # longer than the reports' ack wait: the poison report was acked, not redelivered
    assert len([r for r in system.errors.reports if r.operation == "decide"]) == 1


async def test_a_command_that_cannot_be_decided_answers_with_the_cause(
    system: System, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = await system.engine.submit(dag("a"))
    await system.finished(run_id)
    monkeypatch.setattr(engine_module, "handle", raising_on(lambda trigger: trigger.cause.startswith("retry:")))
    with pytest.raises(AetherError, match="could not be decided: RuntimeError"):
        await asyncio.wait_for(system.engine.retry(run_id), 5)
    view = await system.finished(run_id)  # the state is the committed one, not the half-decided retry
    assert view["status"] == "Succeeded"


async def test_a_secret_that_cannot_be_resolved_fails_the_attempt_through_retries(system: System) -> None:
    document = dag("a")
    document["spec"]["templates"][0]["dag"]["tasks"][0]["retry"] = {"limit": 1}
    document["spec"]["templates"][1]["task"]["inputs"]["parameters"].append(
        {"name": "token", "valueFrom": {"secretKeyRef": {"name": "db", "key": "pw"}}}
    )
    run_id = await system.engine.submit(document)
    view = await system.finished(run_id)
    assert view["status"] == "Error"
    (task,) = [t for t in view["tasks"] if t["taskName"] == "a"]
    assert task["status"] == "Error" and task["retryCount"] == 1  # the retry ran, and failed the same way
    assert task["message"] == (
        'input "token": secret "db" key "pw" not found (environment variable AETHER_SECRET_DB_PW is not set)'
    )


@pytest.mark.parametrize("system", [{"outbox": True}], indirect=True)
async def test_with_an_outbox_notifications_travel_in_the_commit(
    system: System, monkeypatch: pytest.MonkeyPatch
) -> None:
    appended: list[Commit] = []
    append = system.store.append

    async def keep(commit: Commit, expected_seq: int) -> int:
        appended.append(commit)
        return await append(commit, expected_seq)

    monkeypatch.setattr(system.store, "append", keep)
    run_id = await system.engine.submit(dag("a", hooks=True))
    await system.finished(run_id)
    assert system.notifier.events == []  # left to the outbox relay
    carried = [effect for commit in appended for effect in decode_outbox(commit.commit_id, commit.outbox)]
    hooks = [effect.event for effect in carried if isinstance(effect, Notify)]
    assert [h.hook_type for h in hooks] == ["onStart", "onExit"]
    assert len({h.id for h in hooks}) == 2 and all(h.id.startswith(run_id) for h in hooks)
