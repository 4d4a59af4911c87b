"""Delivery order and duplication never change what a run decides.

Workers report at least once and in any order. For each workflow below, delivering the start and
completion reports in a random order with random duplicates (driver mode `random`) must end in the same
keyed view (phases, messages, outputs, inputs, retry counts, template types, depths, scopes and record
counts per (scope, taskName)) as in-order delivery, and replaying the history must rebuild the live view.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.driver import Driver, keyed_view

from aether_es.model import phases as ph

ECHO = {"type": "echo"}


def _wf(name: str, entry: str, templates: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "aether/v1",
        "kind": "Workflow",
        "metadata": {"name": name},
        "spec": {"entrypoint": entry, "templates": templates, **spec},
    }


def _outputs(*pairs: tuple[str, str, Any]) -> dict[str, Any]:
    return {"name": "outputs", "value": [{"name": n, "type": t, "value": v} for n, t, v in pairs]}


ECHO_TASK = {"task": {"name": "echo", "executor": ECHO}}

PARALLEL_JOIN = _wf(
    "parallel-join",
    "main",
    [
        {
            "dag": {
                "name": "main",
                "tasks": [
                    {
                        "name": "start",
                        "template": "echo",
                        "arguments": {"parameters": [{"name": "seed", "value": 7}]},
                    },
                    {
                        "name": "left",
                        "template": "echo",
                        "dependencies": ["start"],
                        "arguments": {
                            "parameters": [
                                {
                                    "name": "v",
                                    "valueFrom": {"parameter": "tasks.start.outputs.parameters.seed"},
                                },
                                _outputs(("side", "string", "left")),
                            ]
                        },
                    },
                    {
                        "name": "right",
                        "template": "echo",
                        "dependencies": ["start"],
                        "arguments": {"parameters": [_outputs(("side", "string", "right"), ("n", "int", 3))]},
                    },
                    {
                        "name": "middle",
                        "template": "echo",
                        "dependencies": ["start"],
                        "arguments": {"parameters": [{"name": "m", "value": {"k": [1, 2]}}]},
                    },
                    {
                        "name": "join",
                        "template": "echo",
                        "dependencies": ["left", "right", "middle"],
                        "arguments": {
                            "parameters": [
                                {
                                    "name": "a",
                                    "valueFrom": {"parameter": "tasks.left.outputs.parameters.side"},
                                },
                                {
                                    "name": "b",
                                    "valueFrom": {"parameter": "tasks.right.outputs.parameters.side"},
                                },
                                {"name": "n", "valueFrom": {"parameter": "tasks.right.outputs.parameters.n"}},
                            ]
                        },
                    },
                ],
                "outputs": {
                    "parameters": [
                        {"name": "a", "valueFrom": {"parameter": "tasks.join.outputs.parameters.a"}},
                        {"name": "n", "valueFrom": {"parameter": "tasks.join.outputs.parameters.n"}},
                    ]
                },
            }
        },
        ECHO_TASK,
    ],
)

LOOP_LIST = _wf(
    "loop-list",
    "main",
    [
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
                                    "name": "rows",
                                    "valueFrom": {"parameter": "tasks.fan.outputs.parameters.row"},
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
                "items": ["a", "b", "c", "d", "e"],
                "concurrency": 2,
                "body": "item",
                "arguments": {
                    "parameters": [
                        {"name": "row", "value": "row-{{iterator.index}}-{{iterator.item}}"},
                        {"name": "item", "value": "{{iterator.item}}"},
                    ]
                },
                "aggregate": {"strategy": "list", "parameters": ["row", "item"]},
            }
        },
        {"task": {"name": "item", "executor": ECHO}},
        ECHO_TASK,
    ],
)

RETRY = _wf(
    "retry-then-succeed",
    "main",
    [
        {
            "dag": {
                "name": "main",
                "tasks": [
                    {
                        "name": "prep",
                        "template": "echo",
                        "arguments": {"parameters": [{"name": "p", "value": 1}]},
                    },
                    {
                        "name": "flaky",
                        "template": "echo",
                        "dependencies": ["prep"],
                        "retry": {"limit": 3, "expression": "tasks.flaky.phase != 'Succeeded'"},
                        "arguments": {
                            "parameters": [
                                {"name": "fail-count", "value": 2},
                                {
                                    "name": "from",
                                    "valueFrom": {"parameter": "tasks.prep.outputs.parameters.p"},
                                },
                                _outputs(("status", "string", "ok")),
                            ]
                        },
                    },
                    {
                        "name": "other",
                        "template": "echo",
                        "arguments": {"parameters": [{"name": "q", "value": "x"}]},
                    },
                    {"name": "last", "template": "echo", "dependencies": ["flaky", "other"]},
                ],
            }
        },
        ECHO_TASK,
    ],
)

NESTED = _wf(
    "nested-dag",
    "outer",
    [
        {
            "dag": {
                "name": "outer",
                "tasks": [
                    {"name": "call", "template": "inner"},
                    {"name": "call-2", "template": "inner"},
                    {
                        "name": "final",
                        "template": "echo",
                        "dependencies": ["call", "call-2"],
                        "arguments": {
                            "parameters": [
                                {
                                    "name": "got",
                                    "valueFrom": {"parameter": "tasks.call.outputs.parameters.result"},
                                }
                            ]
                        },
                    },
                ],
                "outputs": {
                    "parameters": [{"name": "got", "valueFrom": {"parameter": "tasks.final.outputs.parameters.got"}}]
                },
            }
        },
        {
            "dag": {
                "name": "inner",
                "tasks": [
                    {
                        "name": "step1",
                        "template": "echo",
                        "arguments": {"parameters": [{"name": "x", "value": "one"}]},
                    },
                    {
                        "name": "step2",
                        "template": "echo",
                        "dependencies": ["step1"],
                        "arguments": {
                            "parameters": [
                                {"name": "y", "valueFrom": {"parameter": "tasks.step1.outputs.parameters.x"}}
                            ]
                        },
                    },
                ],
                "outputs": {
                    "parameters": [{"name": "result", "valueFrom": {"parameter": "tasks.step2.outputs.parameters.y"}}]
                },
            }
        },
        ECHO_TASK,
    ],
)

WHEN_SKIP = _wf(
    "when-skip",
    "main",
    [
        {
            "dag": {
                "name": "main",
                "tasks": [
                    {
                        "name": "check",
                        "template": "echo",
                        "arguments": {"parameters": [{"name": "status", "value": "ok"}]},
                    },
                    {
                        "name": "path-ok",
                        "template": "echo",
                        "dependencies": ["check"],
                        "when": 'tasks.check.outputs.parameters.status == "ok"',
                    },
                    {
                        "name": "path-fail",
                        "template": "echo",
                        "dependencies": ["check"],
                        "when": 'tasks.check.outputs.parameters.status == "fail"',
                    },
                    {"name": "after-skip", "template": "echo", "dependencies": ["path-fail"]},
                    {"name": "done", "template": "echo", "dependencies": ["path-ok", "after-skip"]},
                ],
            }
        },
        ECHO_TASK,
    ],
)

WORKFLOWS = {
    "parallel-join": PARALLEL_JOIN,
    "loop-list": LOOP_LIST,
    "retry": RETRY,
    "nested": NESTED,
    "when-skip": WHEN_SKIP,
}


def _in_order(document: dict[str, Any]) -> dict[str, Any]:
    driver = Driver(mode="fifo")
    assert driver.submit(document) is None
    state = driver.run()
    assert driver.violations == []
    assert driver.replayed().to_dict() == state.to_dict()
    return keyed_view(state)


BASELINES = {name: _in_order(document) for name, document in WORKFLOWS.items()}


def test_baselines_are_the_expected_outcomes() -> None:
    """Pin the in-order results, so the property compares against known-good runs."""
    assert {name: view["phase"] for name, view in BASELINES.items()} == dict.fromkeys(WORKFLOWS, ph.SUCCEEDED)
    join = BASELINES["parallel-join"]
    assert join["outputs"] == [
        {"name": "a", "value": "left"},
        {"name": "n", "value": 3},
    ]
    loop = BASELINES["loop-list"]
    assert len(loop["tasks"]) == 2 + 1 + 5  # main, fan, after + five iterations (distinct scopes)
    assert '"retryCount": 2' in BASELINES["retry"]["tasks"]["main/|flaky"][0]
    assert '"phase": "Skipped"' in BASELINES["when-skip"]["tasks"]["main/|path-fail"][0]
    assert BASELINES["nested"]["outputs"] == [{"name": "got", "value": "one"}]
    assert len(BASELINES["nested"]["tasks"]["call/|step1"]) == 1
    assert len(BASELINES["nested"]["tasks"]["call-2/|step1"]) == 1


@pytest.mark.parametrize("name", sorted(WORKFLOWS))
@pytest.mark.parametrize("mode", ["lifo", "inline"])
def test_other_modes_match_in_order_delivery(name: str, mode: str) -> None:
    driver = Driver(mode=mode)
    assert driver.submit(WORKFLOWS[name]) is None
    state = driver.run()
    assert driver.violations == []
    assert keyed_view(state) == BASELINES[name]
    assert driver.replayed().to_dict() == state.to_dict()


@settings(max_examples=40, deadline=None)
@given(
    name=st.sampled_from(sorted(WORKFLOWS)),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
    duplicate_rate=st.floats(min_value=0.0, max_value=0.7),
)
def test_random_order_with_duplicates_matches_in_order_delivery(name: str, seed: int, duplicate_rate: float) -> None:
    driver = Driver(mode="random", seed=seed, duplicate_rate=duplicate_rate)
    assert driver.submit(WORKFLOWS[name]) is None
    state = driver.run()
    assert driver.violations == []
    assert not driver.queue and not driver.reports
    assert keyed_view(state) == BASELINES[name]
    assert driver.replayed().to_dict() == driver.view().to_dict()
