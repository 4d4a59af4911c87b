"""Retrying a finished run from its failed steps: new attempts in the same history, successes kept."""

from __future__ import annotations

from typing import Any

import pytest
from support.driver import Driver

from aether_es.engine.triggers import RetryRun
from aether_es.errors import InvalidStateError
from aether_es.events import catalogue as ev
from aether_es.model import phases as ph


def _pipeline(fail_count: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": "aether/v1",
        "kind": "Workflow",
        "metadata": {"name": "pipeline"},
        "spec": {
            "entrypoint": "main",
            "templates": [
                {
                    "dag": {
                        "name": "main",
                        "tasks": [
                            {"name": "a", "template": "echo"},
                            {
                                "name": "b",
                                "template": "echo",
                                "dependencies": ["a"],
                                "arguments": {"parameters": [{"name": "fail-count", "value": fail_count}]},
                            },
                            {"name": "c", "template": "echo", "dependencies": ["b"]},
                            {"name": "d", "template": "echo", "dependencies": ["a"]},
                        ],
                    }
                },
                {"task": {"name": "echo", "executor": {"type": "echo"}}},
            ],
        },
    }


def _retry(driver: Driver, *task_ids: str) -> Any:
    return driver.deliver(RetryRun(actor="user", cause="retry", at=driver.now(), task_ids=task_ids))


def _dispatches(driver: Driver, name: str) -> int:
    ids = {e.event.task_id for e in driver.history if isinstance(e.event, ev.TaskCreated) and e.event.task_name == name}
    return sum(1 for e in driver.history if isinstance(e.event, ev.TaskDispatched) and e.event.task_id in ids)


def test_retry_from_the_failed_step_succeeds_without_rerunning_what_succeeded() -> None:
    driver = Driver()
    driver.submit(_pipeline(fail_count=1))
    state = driver.run()
    assert state.phase == ph.FAILED
    assert driver.task("b").phase == ph.FAILED and driver.task("d").phase == ph.SUCCEEDED
    assert "c" not in {t.task_name for t in state.tasks.values()}  # held back by the failure
    assert _retry(driver) is None
    state = driver.run()
    assert state.phase == ph.SUCCEEDED, state.message
    assert [driver.task(n).phase for n in "abcd"] == [ph.SUCCEEDED] * 4
    assert (_dispatches(driver, "a"), _dispatches(driver, "b"), _dispatches(driver, "d")) == (1, 2, 1)
    assert driver.task("b").retry_count == 1 and driver.task("b").attempt == 2
    types = [e.type for e in driver.history]
    assert types.count("RunReopened") == 1 and types.count("RunFinished") == 2
    assert driver.replayed().to_dict() == state.to_dict()


def test_a_step_that_still_fails_fails_the_run_again_and_can_be_retried_once_more() -> None:
    driver = Driver()
    driver.submit(_pipeline(fail_count=2))
    assert driver.run().phase == ph.FAILED
    assert _retry(driver) is None
    assert driver.run().phase == ph.FAILED
    assert _retry(driver, driver.task("b").id) is None
    assert driver.run().phase == ph.SUCCEEDED


def test_only_finished_runs_and_failed_tasks_are_retried() -> None:
    driver = Driver(mode="fifo")
    driver.submit(_pipeline(fail_count=0))
    with pytest.raises(InvalidStateError, match="only a finished run"):
        raise _retry(driver)  # still running
    assert driver.run().phase == ph.SUCCEEDED
    with pytest.raises(InvalidStateError, match="no failed task"):
        raise _retry(driver)
    with pytest.raises(InvalidStateError, match="only a failed"):
        raise _retry(driver, driver.task("a").id)
    with pytest.raises(InvalidStateError, match="does not belong"):
        raise _retry(driver, "nope")


def test_a_cancelled_run_is_retried_from_its_cancelled_tasks() -> None:
    document = _pipeline(fail_count=0)
    document["spec"]["templates"][0]["dag"]["tasks"][0]["arguments"] = {
        "parameters": [{"name": "suspend", "value": True}]
    }
    driver = Driver()
    driver.submit(document)
    driver.run()
    assert driver.task("a").phase == ph.SUSPENDED
    driver.cancel()
    assert driver.view().phase == ph.CANCELLED
    assert _retry(driver) is None
    driver.run()
    assert driver.task("a").phase == ph.SUSPENDED  # it suspends again, as its definition says
    assert driver.resume(driver.task("a").id, {"__resumed": True}) is None
    assert driver.run().phase == ph.SUCCEEDED


def test_retry_from_a_step_reruns_it_and_what_depends_on_it_only() -> None:
    driver = Driver()
    driver.submit(_pipeline(fail_count=0))
    assert driver.run().phase == ph.SUCCEEDED
    old_c = driver.task("c").id
    assert driver.deliver(RetryRun(actor="user", cause="retry", at=driver.now(), from_task=driver.task("b").id)) is None
    state = driver.run()
    assert state.phase == ph.SUCCEEDED, state.message
    assert (_dispatches(driver, "a"), _dispatches(driver, "b"), _dispatches(driver, "d")) == (1, 2, 1)
    assert _dispatches(driver, "c") == 2  # its old record and the new one
    new_c = driver.task("c")
    assert new_c.id != old_c and new_c.phase == ph.SUCCEEDED
    assert state.tasks[old_c].message == "superseded by a retry"
    assert old_c not in state.tasks[new_c.parent_id].kids.children
    assert driver.replayed().to_dict() == state.to_dict()


def test_retry_from_needs_a_finished_leaf() -> None:
    driver = Driver()
    driver.submit(_pipeline(fail_count=0))
    driver.run()
    dag_id = driver.task("a").parent_id
    with pytest.raises(InvalidStateError, match="retried from a finished task"):
        raise driver.deliver(RetryRun(actor="user", cause="r", at=driver.now(), from_task=dag_id))  # type: ignore[misc]
    with pytest.raises(InvalidStateError, match="does not belong"):
        raise driver.deliver(RetryRun(actor="user", cause="r", at=driver.now(), from_task="nope"))  # type: ignore[misc]
