"""The decider's limits: task runs per run, loop items, children unfinished at once, and the cost of
expressions, all given to the decision as input (so replay decides alike) and each refusal naming its limit."""

from __future__ import annotations

from typing import Any

import pytest
from support.driver import Driver, keyed_view

from aether_es.adapters.evaluator_simpleeval import SimpleEvalEvaluator
from aether_es.engine.decision import DecideContext
from aether_es.engine.requirements import check_limits
from aether_es.engine.triggers import Continue
from aether_es.limits import LimitExceeded, Limits
from aether_es.model import phases as ph
from aether_es.model.defaults import fill_defaults
from aether_es.model.loading import load_workflow

ECHO = {"task": {"name": "echo", "executor": {"type": "echo"}}}


def _workflow(templates: list[dict[str, Any]], arguments: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"entrypoint": "main", "templates": templates}
    if arguments is not None:
        spec["arguments"] = {"parameters": arguments}
    return {"apiVersion": "aether/v1", "kind": "Workflow", "metadata": {"name": "limits"}, "spec": spec}


def _loop(items: int) -> dict[str, Any]:
    return _workflow([{"loop": {"name": "main", "items": list(range(items)), "body": "echo"}}, ECHO])


def _dag(nodes: int, when: str = "") -> dict[str, Any]:
    tasks: list[dict[str, Any]] = [{"name": "first", "template": "echo"}]
    for index in range(nodes):
        node: dict[str, Any] = {"name": f"n{index}", "template": "echo", "dependencies": ["first"]}
        if when:
            node["when"] = when
        tasks.append(node)
    return _workflow([{"dag": {"name": "main", "tasks": tasks}}, ECHO])


def _driver(limits: Limits, budget: int = 1000) -> Driver:
    return Driver(context=DecideContext(evaluator=SimpleEvalEvaluator(limits), budget=budget, limits=limits))


def _finish(driver: Driver, document: dict[str, Any]) -> Any:
    assert driver.submit(document) is None
    state = driver.run()
    assert driver.violations == []
    assert driver.replayed().to_dict() == state.to_dict()
    return state


def test_a_run_past_its_task_runs_ends_as_an_error_naming_the_limit() -> None:
    driver = _driver(Limits(tasks_per_run=10))
    state = _finish(driver, _loop(20))
    assert state.phase == ph.ERROR
    assert state.message == (
        "workflow run stopped: the number of task runs is 11, over the limit of 10 "
        "(raise it with AETHER_LIMIT_TASKS_PER_RUN)"
    )
    assert len(state.order) == 10
    assert any(report.operation == "limits" for report in driver.errors)


def test_items_from_past_the_loop_limit_fails_the_loop_naming_the_limit() -> None:
    document = _workflow(
        [{"loop": {"name": "main", "itemsFrom": "{{workflow.parameters.items}}", "body": "echo"}}, ECHO],
        [{"name": "items", "value": list(range(6))}],
    )
    state = _finish(_driver(Limits(loop_items=5)), document)
    assert state.phase in (ph.ERROR, ph.FAILED)
    (loop,) = [task for task in state.tasks.values() if task.template_type == "loop"]
    assert loop.phase == ph.ERROR
    assert 'loop "main"\'s item count is 6, over the limit of 5 (raise it with AETHER_LIMIT_LOOP_ITEMS)' in (
        loop.message
    )
    assert _finish(_driver(Limits(loop_items=6)), document).phase == ph.SUCCEEDED


@pytest.mark.parametrize("document", [_loop(50), _dag(30)], ids=["loop", "dag"])
def test_a_wide_scope_keeps_at_most_its_room_unfinished(document: dict[str, Any]) -> None:
    limited = _driver(Limits(active_per_scope=5))
    widest = 0

    def watch(assignment: Any, state: Any) -> None:
        nonlocal widest
        widest = max(widest, state.children_of(state.tasks[assignment.task_run_id].parent_id).active)

    limited.on_dispatch = watch
    state = _finish(limited, document)
    assert state.phase == ph.SUCCEEDED
    assert widest == 5
    assert keyed_view(state) == keyed_view(_finish(_driver(Limits()), document))


def test_long_expressions_split_a_decision_and_change_nothing() -> None:
    """150 `when`s of nearly 4 KiB: their evaluation is paid from the decision's budget, so it takes many
    decisions, each bounded, with the same outcome as one big decision."""
    clause = "tasks.first.phase == Succeeded"
    when = " && ".join([clause] * (4000 // (len(clause) + 4)))
    document = _dag(150, when)
    split = _driver(Limits())
    state = _finish(split, document)
    assert state.phase == ph.SUCCEEDED
    continuations = sum(isinstance(trigger, Continue) for trigger in split.triggers)
    assert continuations >= 150 * len(when) // 64 // 1000
    whole = _driver(Limits(), budget=10**9)
    assert keyed_view(_finish(whole, document)) == keyed_view(state)
    assert not any(isinstance(trigger, Continue) for trigger in whole.triggers)


@pytest.mark.parametrize(
    ("document", "limits", "message"),
    [
        (
            _dag(10),
            Limits(tasks_per_run=10),
            'template "main": the number of DAG tasks is 11, over the limit of 10 '
            "(raise it with AETHER_LIMIT_TASKS_PER_RUN)",
        ),
        (
            _loop(6),
            Limits(loop_items=5),
            'template "main": the number of loop items is 6, over the limit of 5 '
            "(raise it with AETHER_LIMIT_LOOP_ITEMS)",
        ),
        (
            _dag(1, "a == a"),
            Limits(expression_chars=5),
            'template "main" task "n0": when is 6, over the limit of 5 (raise it with AETHER_LIMIT_EXPRESSION_CHARS)',
        ),
    ],
    ids=["dag-tasks", "loop-items", "expression"],
)
def test_sizes_known_up_front_are_refused_before_the_run(
    document: dict[str, Any], limits: Limits, message: str
) -> None:
    workflow = fill_defaults(load_workflow(document))
    with pytest.raises(LimitExceeded) as info:
        check_limits(workflow, limits)
    assert str(info.value) == message
    check_limits(workflow, Limits())
