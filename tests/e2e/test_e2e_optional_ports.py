"""Optional ports that are absent: the workflows that need them are refused at submit, clearly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from aether_es.adapters.nats.server import EmbeddedNatsServer
from aether_es.engine.requirements import expression_uses
from aether_es.errors import ValidationError
from aether_es.model.loading import load_workflow
from aether_es.runtime.stack import StackOptions, open_stack

WHEN: dict[str, Any] = {
    "apiVersion": "aether/v1",
    "kind": "Workflow",
    "metadata": {"name": "needs-evaluator"},
    "spec": {
        "entrypoint": "main",
        "templates": [
            {"dag": {"name": "main", "tasks": [{"name": "a", "template": "t", "when": "x == y"}]}},
            {"task": {"name": "t", "executor": {"type": "echo"}}},
        ],
    },
}


async def test_a_workflow_using_when_is_refused_without_an_evaluator(
    nats_server: EmbeddedNatsServer, tmp_path: Path
) -> None:
    stack = await open_stack(StackOptions(nats_url=nats_server.url, state_dir=tmp_path, evaluator=None, workers=0))
    try:
        with pytest.raises(ValidationError) as refused:
            await stack.engine.submit(WHEN)
        assert str(refused.value) == (
            'aether: validation error: template "main" task "a": when needs an expression evaluator, '
            "but the engine has none configured"
        )
        assert await stack.store.summaries() == []
    finally:
        await stack.close()


@pytest.mark.parametrize(
    ("fragment", "where"),
    [
        (
            {"loop": {"name": "l", "body": "t", "repeatCondition": "true", "maxIterations": 2}},
            'template "l": repeatCondition',
        ),
        ({"loop": {"name": "l", "body": "t", "itemsFrom": "a.b"}}, 'template "l": itemsFrom expression'),
        (
            {"task": {"name": "p", "executor": {"type": "echo"}, "phaseConditions": {"failed": "x"}}},
            'template "p": phaseConditions',
        ),
        (
            {
                "task": {
                    "name": "v",
                    "executor": {"type": "echo"},
                    "inputs": {"parameters": [{"name": "q", "valueFrom": {"expression": "1"}}]},
                }
            },
            'template "v" parameter "q": valueFrom.expression',
        ),
    ],
)
def test_every_expression_site_is_found(fragment: dict[str, Any], where: str) -> None:
    document = {
        "apiVersion": "aether/v1",
        "kind": "Workflow",
        "metadata": {"name": "w"},
        "spec": {"entrypoint": "t", "templates": [{"task": {"name": "t", "executor": {"type": "echo"}}}, fragment]},
    }
    assert list(expression_uses(load_workflow(document))) == [where]


def test_a_single_placeholder_items_from_needs_no_evaluator() -> None:
    document = {
        "apiVersion": "aether/v1",
        "kind": "Workflow",
        "metadata": {"name": "w"},
        "spec": {
            "entrypoint": "l",
            "templates": [
                {"loop": {"name": "l", "body": "t", "itemsFrom": "{{inputs.parameters.xs}}"}},
                {"task": {"name": "t", "executor": {"type": "echo"}}},
            ],
        },
    }
    assert list(expression_uses(load_workflow(document))) == []
