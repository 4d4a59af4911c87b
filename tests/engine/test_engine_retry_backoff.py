"""Retry backoff (a protocol extension) in the pure decider: the wait is recorded, only a due report for
the waiting attempt dispatches the retry, and cancel, workflow timeout and recovery all see the wait."""

from __future__ import annotations

from typing import Any

import pytest
from support.driver import Driver

from aether_es.engine.decider import handle, pending_effects
from aether_es.engine.decision import Decision
from aether_es.engine.effects import ClearDeadlines, DispatchTask, Effect, SetDeadline
from aether_es.engine.retries import MAX_BACKOFF_SECONDS, backoff_seconds
from aether_es.engine.triggers import Cancel, RetryDue, Trigger, WorkflowTimeout
from aether_es.errors import ValidationError
from aether_es.events import catalogue as ev
from aether_es.model import phases as ph
from aether_es.model.clock import add_seconds, seconds_between
from aether_es.model.defaults import fill_defaults
from aether_es.model.documents import Backoff
from aether_es.model.loading import load_workflow
from aether_es.model.validation import validate_workflow
from aether_es.ports.deadlines import RETRY, retry_key
from aether_es.projections.run_state import TaskRunView, fold

BACKOFF = {"duration": "1s", "factor": 2}


def workflow(backoff: Any = BACKOFF, fail_count: int = 2, siblings: bool = False) -> dict[str, Any]:
    retry: dict[str, Any] = {"limit": 3, "expression": "tasks.flaky.phase == Failed"}
    if backoff is not None:
        retry["backoff"] = backoff
    tasks: list[dict[str, Any]] = [
        {
            "name": "flaky",
            "template": "echo",
            "arguments": {"parameters": [{"name": "fail-count", "value": fail_count}]},
            "retry": retry,
        }
    ]
    if siblings:
        tasks.append({"name": "steady", "template": "echo"})
    return {
        "apiVersion": "aether/v1",
        "kind": "Workflow",
        "metadata": {"name": "backoff"},
        "spec": {
            "entrypoint": "main",
            "templates": [
                {"dag": {"name": "main", "tasks": tasks}},
                {"task": {"name": "echo", "executor": {"type": "echo"}}},
            ],
        },
    }


def started(document: dict[str, Any]) -> Driver:
    driver = Driver()
    assert driver.submit(document) is None
    driver.run()
    assert driver.violations == []
    return driver


def flaky(driver: Driver) -> TaskRunView:
    task: TaskRunView = driver.task("flaky")
    return task


def effects_of(driver: Driver, trigger: Trigger) -> list[Effect]:
    """The effects `trigger` has on the recorded history, then delivered to the driver for real."""
    decision = Decision(fold(driver.history), driver.context)
    handle(decision, trigger, driver.run_id)
    before = len(driver.history)
    driver.deliver(trigger)
    assert [e.event for e in driver.history[before:]] == [e.event for e in decision.envelopes]
    return decision.effects


def due(driver: Driver, at: str | None = None, attempt: int | None = None) -> RetryDue:
    task = flaky(driver)
    return RetryDue(
        actor="watcher",
        cause="due",
        at=at or task.retry_at,
        task_id=task.id,
        attempt=task.attempt if attempt is None else attempt,
    )


def retried(driver: Driver) -> list[ev.TaskRetried]:
    return [e.event for e in driver.history if isinstance(e.event, ev.TaskRetried)]


def test_a_failed_attempt_waits_in_created_with_its_retry_time() -> None:
    driver = started(workflow())
    task = flaky(driver)
    (event,) = retried(driver)
    finished_at = driver.history[-1].time
    assert event.not_before == add_seconds(finished_at, 1.0)
    assert (event.retry_count, event.retry_limit, event.attempt) == (1, 3, 1)
    assert (task.phase, task.retry_at, task.retry_count, task.attempt) == (ph.CREATED, event.not_before, 1, 1)
    assert task.message == f"retrying at {event.not_before} (retry 1 of 3)"
    assert task.to_dict()["retryAt"] == event.not_before
    assert len(driver.dispatched) == 1
    assert driver.replayed().to_dict() == driver.view().to_dict()


def test_the_wait_sets_a_retry_deadline_keyed_by_task_and_attempt() -> None:
    """The failing completion, decided again on the history before it, sets the deadline and dispatches nothing."""
    driver = started(workflow())
    replay = Decision(fold(driver.history[: -driver.batches[-1]]), driver.context)
    handle(replay, driver.triggers[-1], driver.run_id)
    deadlines = [e.deadline for e in replay.effects if isinstance(e, SetDeadline)]
    task = flaky(driver)
    assert [(d.kind, d.key, d.at, d.attempt) for d in deadlines] == [(RETRY, retry_key(task.id, 1), task.retry_at, 1)]
    assert not any(isinstance(e, DispatchTask) for e in replay.effects)


def test_only_a_due_report_for_the_waiting_attempt_dispatches_the_retry() -> None:
    driver = started(workflow())
    task = flaky(driver)
    waiting_at = task.retry_at
    events = len(driver.history)
    assert effects_of(driver, due(driver, at=add_seconds(waiting_at, -0.001))) == []
    assert effects_of(driver, due(driver, attempt=0)) == []
    assert len(driver.history) == events
    effects = effects_of(driver, due(driver))
    assert ClearDeadlines((retry_key(task.id, 1),)) in effects
    assert [e.assignment.attempt for e in effects if isinstance(e, DispatchTask)] == [2]
    dispatched = driver.history[events].event
    assert isinstance(dispatched, ev.TaskDispatched) and dispatched.attempt == 2
    assert (flaky(driver).phase, flaky(driver).retry_at, flaky(driver).message) == (ph.READY, "", "")
    events = len(driver.history)
    late = RetryDue(actor="watcher", cause="due", at=waiting_at, task_id=task.id, attempt=1)
    assert effects_of(driver, late) == []
    assert len(driver.history) == events
    assert len(driver.dispatched) == 2


def test_waits_grow_by_the_factor_and_the_run_succeeds() -> None:
    driver = started(workflow())
    driver.deliver(due(driver))
    driver.run()
    second = retried(driver)[-1]
    assert second.retry_count == 2
    failed_at = next(e.time for e in reversed(driver.history) if isinstance(e.event, ev.TaskRetried))
    assert seconds_between(failed_at, second.not_before) == pytest.approx(2.0)
    driver.deliver(due(driver))
    state = driver.run()
    assert state.phase == ph.SUCCEEDED
    assert (flaky(driver).phase, flaky(driver).retry_count) == (ph.SUCCEEDED, 2)
    assert [a.retry_count for a in driver.dispatched] == [0, 1, 2]
    assert driver.violations == []
    assert driver.replayed().to_dict() == driver.view().to_dict()


def test_a_sibling_finishing_during_the_wait_does_not_dispatch_the_retry() -> None:
    driver = started(workflow(siblings=True))
    assert driver.task("steady").phase == ph.SUCCEEDED
    assert flaky(driver).phase == ph.CREATED
    assert [a.task_name for a in driver.dispatched] == ["flaky", "steady"]


def test_cancel_during_the_wait_cancels_the_task_and_clears_its_retry_deadline() -> None:
    driver = started(workflow())
    task = flaky(driver)
    decision = Decision(fold(driver.history), driver.context)
    cancel = Cancel(actor="user", cause="cancel", at=driver.now())
    handle(decision, cancel, driver.run_id)
    cleared = [key for e in decision.effects if isinstance(e, ClearDeadlines) for key in e.keys]
    assert retry_key(task.id, 1) in cleared
    assert driver.cancel() is None
    assert (flaky(driver).phase, driver.view().phase) == (ph.CANCELLED, ph.CANCELLED)
    events = len(driver.history)
    driver.deliver(due(driver, attempt=1))
    assert len(driver.history) == events
    assert len(driver.dispatched) == 1
    assert "retryAt" not in flaky(driver).to_dict()
    assert driver.replayed().to_dict() == driver.view().to_dict()


def test_workflow_timeout_during_the_wait_times_the_task_out() -> None:
    driver = started(workflow())
    task = flaky(driver)
    timeout = WorkflowTimeout(actor="watcher", cause="wt", at=driver.now())
    effects = effects_of(driver, timeout)
    cleared = [key for e in effects if isinstance(e, ClearDeadlines) for key in e.keys]
    assert retry_key(task.id, 1) in cleared
    assert (flaky(driver).phase, driver.view().phase) == (ph.TIMEOUT, ph.TIMEOUT)
    assert effects_of(driver, due(driver, attempt=1)) == []


def test_recovery_rearms_the_retry_deadline_instead_of_dispatching() -> None:
    driver = started(workflow())
    task = flaky(driver)
    effects = pending_effects(Decision(fold(driver.history), driver.context))
    assert not any(isinstance(e, DispatchTask) for e in effects)
    deadlines = [e.deadline for e in effects if isinstance(e, SetDeadline) and e.deadline.task_run_id]
    assert [(d.kind, d.key, d.at) for d in deadlines] == [(RETRY, retry_key(task.id, 1), task.retry_at)]


def test_without_backoff_the_retry_is_dispatched_at_once() -> None:
    driver = started(workflow(backoff=None))
    assert driver.view().phase == ph.SUCCEEDED
    assert [e.not_before for e in retried(driver)] == ["", ""]
    assert all(not e.retry_limit for e in retried(driver))
    assert [a.attempt for a in driver.dispatched] == [1, 2, 3]


@pytest.mark.parametrize(
    ("backoff", "waits"),
    [
        (Backoff(duration="1s", factor=2, max_duration="5s"), [1, 2, 4, 5, 5]),
        (Backoff(duration="300ms", factor=2), [0.3, 0.6, 1.2]),
        (Backoff(duration="2s"), [2, 2, 2]),
        (Backoff(duration="1s", factor=1.5), [1, 1.5, 2.25]),
    ],
)
def test_backoff_seconds(backoff: Backoff, waits: list[float]) -> None:
    assert [backoff_seconds(backoff, n) for n in range(1, len(waits) + 1)] == pytest.approx(waits)


def test_backoff_without_a_maximum_stops_growing() -> None:
    assert backoff_seconds(Backoff(duration="1s", factor=10), 5000) == MAX_BACKOFF_SECONDS


def _validate(backoff: Any) -> None:
    validate_workflow(fill_defaults(load_workflow(workflow(backoff))))


@pytest.mark.parametrize(
    ("backoff", "message"),
    [
        ({}, 'task "flaky" retry.backoff.duration is required'),
        (
            {"duration": "soon"},
            'task "flaky" retry.backoff.duration must be a positive duration such as "1s", got "soon"',
        ),
        ({"duration": "-1s"}, 'retry.backoff.duration must be a positive duration such as "1s", got "-1s"'),
        ({"duration": "0s"}, 'retry.backoff.duration must be a positive duration such as "1s", got "0s"'),
        ({"duration": "1s", "factor": 0.5}, "retry.backoff.factor must be at least 1, got 0.5"),
        (
            {"duration": "1s", "maxDuration": "x"},
            'retry.backoff.maxDuration must be a positive duration such as "1m", got "x"',
        ),
        (
            {"duration": "10s", "maxDuration": "1s"},
            'retry.backoff.maxDuration "1s" must not be shorter than retry.backoff.duration "10s"',
        ),
    ],
)
def test_invalid_backoff_is_rejected_naming_the_field(backoff: Any, message: str) -> None:
    with pytest.raises(ValidationError) as raised:
        _validate(backoff)
    assert message in str(raised.value)
    assert str(raised.value).startswith('aether: validation error: template "main": task "flaky" retry.backoff.')


def test_a_backoff_of_the_wrong_type_names_its_path() -> None:
    with pytest.raises(ValidationError) as raised:
        _validate({"duration": "1s", "factor": "2"})
    assert "factor" in str(raised.value)


def test_valid_backoff_with_unknown_keys_is_accepted() -> None:
    _validate({"duration": "1s", "factor": 2, "maxDuration": "1m", "jitter": True})
    _validate({"duration": "1d"})
