"""A decision budget only changes how work is split across commits, never what the run decides.

`DecideContext.budget` caps the events one decision may emit; the rest is left to a continuation. With a
small budget and an effectively unlimited one, a wide loop and a wide DAG must end in the same keyed view,
and (with the small budget) every commit, one per driver delivery, must stay near the budget.
"""

from __future__ import annotations

from typing import Any

import pytest
from support.driver import Driver, keyed_view

from aether_es.adapters.evaluator_simple import SimpleEvaluator
from aether_es.engine.decision import DecideContext
from aether_es.engine.triggers import Continue
from aether_es.model import phases as ph

SMALL, UNLIMITED = 50, 100_000
SLACK = 10
"""Events a decision may add after its last budget check (a leaf's dispatch, its ancestors, a finish)."""

LOOP_ITEMS = 500
DAG_TASKS = 300


def _loop_workflow() -> dict[str, Any]:
    return {
        "apiVersion": "aether/v1",
        "kind": "Workflow",
        "metadata": {"name": "wide-loop"},
        "spec": {
            "entrypoint": "main",
            "templates": [
                {
                    "dag": {
                        "name": "main",
                        "tasks": [
                            {"name": "fan", "template": "each"},
                            {
                                "name": "after",
                                "template": "echo",
                                "dependencies": ["fan"],
                                "arguments": {
                                    "parameters": [
                                        {
                                            "name": "n",
                                            "valueFrom": {"parameter": "tasks.fan.outputs.parameters.i"},
                                        }
                                    ]
                                },
                            },
                        ],
                    }
                },
                {
                    "loop": {
                        "name": "each",
                        "items": list(range(LOOP_ITEMS)),
                        "concurrency": 0,
                        "body": "echo",
                        "arguments": {"parameters": [{"name": "i", "value": "{{iterator.item}}"}]},
                        "aggregate": {"strategy": "list", "parameters": ["i"]},
                    }
                },
                {"task": {"name": "echo", "executor": {"type": "echo"}}},
            ],
        },
    }


def _dag_workflow() -> dict[str, Any]:
    tasks = [
        {"name": f"t{i}", "template": "echo", "arguments": {"parameters": [{"name": "i", "value": i}]}}
        for i in range(DAG_TASKS)
    ]
    return {
        "apiVersion": "aether/v1",
        "kind": "Workflow",
        "metadata": {"name": "wide-dag"},
        "spec": {
            "entrypoint": "main",
            "templates": [
                {
                    "dag": {
                        "name": "main",
                        "tasks": tasks,
                        "outputs": {
                            "parameters": [
                                {
                                    "name": "last",
                                    "valueFrom": {"parameter": f"tasks.t{DAG_TASKS - 1}.outputs.parameters.i"},
                                }
                            ]
                        },
                    }
                },
                {"task": {"name": "echo", "executor": {"type": "echo"}}},
            ],
        },
    }


WORKFLOWS = {"loop-500": _loop_workflow, "dag-300": _dag_workflow}


def _run(document: dict[str, Any], budget: int, mode: str = "fifo") -> Driver:
    driver = Driver(mode=mode, context=DecideContext(evaluator=SimpleEvaluator(), budget=budget))
    assert driver.submit(document) is None
    state = driver.run()
    assert driver.violations == []
    assert state.phase == ph.SUCCEEDED
    assert driver.replayed().to_dict() == state.to_dict()
    return driver


@pytest.fixture(scope="module")
def runs() -> dict[tuple[str, int], Driver]:
    return {(name, budget): _run(make(), budget) for name, make in WORKFLOWS.items() for budget in (SMALL, UNLIMITED)}


@pytest.mark.parametrize("name", sorted(WORKFLOWS))
def test_budget_does_not_change_the_result(runs: dict[tuple[str, int], Driver], name: str) -> None:
    small, unlimited = runs[(name, SMALL)], runs[(name, UNLIMITED)]
    assert keyed_view(small.view()) == keyed_view(unlimited.view())
    records = len(small.view().order)
    assert records == (3 + LOOP_ITEMS if name == "loop-500" else 1 + DAG_TASKS)
    assert len(small.dispatched) == len(unlimited.dispatched) == records - (2 if name == "loop-500" else 1)
    assert len({a.task_run_id for a in small.dispatched}) == len(small.dispatched)


def test_loop_aggregate_is_complete_and_ordered(runs: dict[tuple[str, int], Driver]) -> None:
    driver = runs[("loop-500", SMALL)]
    fan = driver.task("fan")
    assert [p.name for p in fan.outputs.parameters] == ["i"]
    assert fan.outputs.parameters[0].value == list(range(LOOP_ITEMS))
    assert driver.task("after").inputs[0].value == list(range(LOOP_ITEMS))


@pytest.mark.parametrize("name", sorted(WORKFLOWS))
def test_small_budget_needs_continuations(runs: dict[tuple[str, int], Driver], name: str) -> None:
    assert any(isinstance(t, Continue) for t in runs[(name, SMALL)].triggers)
    assert not any(isinstance(t, Continue) for t in runs[(name, UNLIMITED)].triggers)


def test_loop_commits_stay_within_budget(runs: dict[tuple[str, int], Driver]) -> None:
    batches = runs[("loop-500", SMALL)].batches
    assert max(batches) <= SMALL + SLACK, sorted(batches)[-5:]


def test_dag_commits_stay_within_budget(runs: dict[tuple[str, int], Driver]) -> None:
    batches = runs[("dag-300", SMALL)].batches
    assert max(batches) <= SMALL + SLACK, sorted(batches)[-5:]


@pytest.mark.parametrize("name", sorted(WORKFLOWS))
def test_budget_with_inline_delivery(runs: dict[tuple[str, int], Driver], name: str) -> None:
    """Re-entrant reports inside a budget-limited dispatch still converge on the same result."""
    driver = _run(WORKFLOWS[name](), SMALL, mode="inline")
    assert keyed_view(driver.view()) == keyed_view(runs[(name, UNLIMITED)].view())
