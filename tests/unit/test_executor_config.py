"""`executor.config` and `resumedWith` in assignments: validation, interpolation at dispatch, secrets kept
out, and the resume signal an executor reads instead of a magic input."""

from __future__ import annotations

import json
from typing import Any

import pytest
from support.driver import Driver

from aether_es.engine.decision import DecideContext
from aether_es.errors import ValidationError
from aether_es.model.defaults import fill_defaults
from aether_es.model.loading import load_workflow
from aether_es.model.validation import validate_workflow
from aether_es.worker.executors.echo import RESUMED_MARKER

CONFIG = {
    "url": "http://example.test/{{inputs.parameters.path}}?n={{inputs.parameters.count}}",
    "count": "{{inputs.parameters.count}}",
    "nested": [{"token": "Bearer {{inputs.parameters.token}}"}, 3, None],
    "unknown": "{{inputs.parameters.nope}}",
}


def workflow(config: Any, *, suspend: bool = False) -> dict[str, Any]:
    inputs: list[dict[str, Any]] = [
        {"name": "path", "value": "items"},
        {"name": "count", "type": "int", "value": 3},
        {"name": "token", "valueFrom": {"secretKeyRef": {"name": "api", "key": "token"}}},
    ]
    if suspend:
        inputs.append({"name": "suspend", "value": True})
    return {
        "apiVersion": "aether/v1",
        "kind": "Workflow",
        "metadata": {"name": "config"},
        "spec": {
            "entrypoint": "main",
            "templates": [
                {"dag": {"name": "main", "tasks": [{"name": "call", "template": "t"}]}},
                {
                    "task": {
                        "name": "t",
                        "inputs": {"parameters": inputs},
                        "executor": {"type": "echo", "config": config},
                    }
                },
            ],
        },
    }


def driver() -> Driver:
    return Driver(context=DecideContext(secrets=True))


def test_config_strings_are_interpolated_from_inputs_and_secrets_stay_out() -> None:
    d = driver()
    assert d.submit(workflow(CONFIG)) is None
    [assignment] = d.dispatched
    assert assignment.config == {
        "url": "http://example.test/items?n=3",
        "count": 3,  # a whole-string placeholder keeps the value's type
        "nested": [{"token": "Bearer {{inputs.parameters.token}}"}, 3, None],
        "unknown": "{{inputs.parameters.nope}}",
    }
    assert assignment.templates == [["nested", 0, "token"]]  # the one string the worker fills, in one pass
    assert assignment.resumed_with is None
    log = json.dumps([e.event.model_dump(mode="json") for e in d.history])
    assert "example.test/items" not in log  # the interpolated config is in the assignment only, never an event


def test_resumed_attempt_says_which_payload_keys_resumed_it() -> None:
    d = driver()
    d.submit(workflow({"message": "approve?"}, suspend=True))
    d.run()
    [task_id] = d.suspended()
    d.resume(task_id, {"approved": True, RESUMED_MARKER: True})
    first, resumed = d.dispatched
    assert first.resumed_with is None
    assert resumed.resumed_with == ["approved", RESUMED_MARKER]
    assert resumed.config == {"message": "approve?"}
    assert d.replayed().tasks[task_id].resumed_with == ("approved", RESUMED_MARKER)


def test_no_config_means_none() -> None:
    d = driver()
    d.submit(workflow(None))
    assert d.dispatched[0].config is None


@pytest.mark.parametrize("config", ["echo hi", [1, 2], 5, True])
def test_a_config_that_is_not_an_object_is_a_validation_error(config: Any) -> None:
    with pytest.raises(ValidationError, match=r'template "t": executor\.config must be a JSON object'):
        validate_workflow(fill_defaults(load_workflow(workflow(config))))


def test_an_inline_executor_config_is_checked_too() -> None:
    document = workflow(None)
    document["spec"]["templates"][0]["dag"]["tasks"] = [{"name": "call", "executor": {"type": "echo", "config": "x"}}]
    with pytest.raises(ValidationError, match=r'task "call": executor\.config must be a JSON object'):
        validate_workflow(fill_defaults(load_workflow(document)))


def test_a_value_that_looks_like_a_secret_placeholder_is_never_listed_for_the_worker() -> None:
    document = workflow({"args": ["{{inputs.parameters.path}}"], "token": "{{inputs.parameters.token}}"})
    document["spec"]["templates"][1]["task"]["inputs"]["parameters"][0]["value"] = "{{inputs.parameters.token}}"
    d = driver()
    d.submit(document)
    [assignment] = d.dispatched
    assert assignment.config == {"args": ["{{inputs.parameters.token}}"], "token": "{{inputs.parameters.token}}"}
    assert assignment.templates == [["token"]]  # the value's text stays text: the worker fills only the author's


@pytest.mark.parametrize(
    ("executor", "config"),
    [
        ("shell", {"command": "echo {{inputs.parameters.path}}", "args": ["{{inputs.parameters.path}}"]}),
        ("shell", {"command": ["{{inputs.parameters.path}}", "{{inputs.parameters.path}}"]}),
        ("python", {"callable": "{{inputs.parameters.path}}:f"}),
    ],
)
def test_the_key_that_chooses_the_code_is_left_as_written(executor: str, config: dict[str, Any]) -> None:
    document = workflow(config)
    document["spec"]["templates"][1]["task"]["executor"]["type"] = executor
    d = driver()
    d.submit(document)
    [assignment] = d.dispatched
    assert assignment.config is not None
    code_key = "command" if executor == "shell" else "callable"
    assert assignment.config[code_key] == config[code_key]
    assert assignment.config.get("args") == (["items"] if "args" in config else None)
    assert assignment.templates == []
