"""Warnings about what a valid document says that Aether will not do, each with its JSON path and the fix."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from aether_es.model.traps import document_warnings

ROOT = Path(__file__).resolve().parents[2]
HELLO = json.loads((ROOT / "examples" / "hello-pipeline.json").read_text())


def _hello() -> dict[str, Any]:
    return copy.deepcopy(HELLO)


def _loop_over_dag(inputs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "aether/v1",
        "kind": "Workflow",
        "metadata": {"name": "loop-dag"},
        "spec": {
            "entrypoint": "each",
            "templates": [
                {"loop": {"name": "each", "items": [1, 2], "body": "body"}},
                {"dag": {"name": "body", "inputs": {"parameters": inputs}, "tasks": [{"name": "t", "template": "e"}]}},
                {"task": {"name": "e", "executor": {"type": "echo"}}},
            ],
        },
    }


@pytest.mark.parametrize("path", sorted((ROOT / "examples").glob("*.json")), ids=lambda p: p.name)
def test_the_examples_have_no_warnings(path: Path) -> None:
    assert document_warnings(path.read_bytes()) == []


def test_a_misspelt_field_names_the_nearest_known_one_and_its_path() -> None:
    doc = _hello()
    doc["spec"]["templates"][0]["dag"]["tasks"][1]["dependancies"] = ["greet"]
    doc["spec"]["templates"][1]["task"]["Timeuot"] = "1s"
    doc["metadata"]["lables"] = {}
    assert [str(w) for w in document_warnings(doc)] == [
        'metadata.lables: unknown field, ignored; did you mean "labels"?',
        'spec.templates[0].dag.tasks[1].dependancies: unknown field, ignored; did you mean "dependencies"?',
        'spec.templates[1].task.Timeuot: unknown field, ignored; did you mean "timeout"?',
    ]


def test_a_field_in_another_case_is_what_go_decodes_and_not_a_warning() -> None:
    doc = _hello()
    doc["spec"]["templates"][1]["task"]["TIMEOUT"] = doc["spec"]["templates"][1]["task"].pop("timeout", "1s")
    assert document_warnings(doc) == []


def test_argo_names_say_what_aether_calls_them() -> None:
    doc = _hello()
    doc["spec"]["templates"][0]["dag"]["tasks"][0]["retryStrategy"] = {"limit": 2}
    (warning,) = document_warnings(doc)
    assert warning.path == "spec.templates[0].dag.tasks[0].retryStrategy"
    assert warning.message == "unknown field, ignored; Aether's name for it is \"retry\" (Argo's retryStrategy)"


def test_fields_a_task_template_ignores_are_named_with_where_they_belong() -> None:
    doc = _hello()
    doc["spec"]["templates"][1]["task"]["retry"] = {"limit": 2}
    doc["spec"]["templates"][1]["task"]["when"] = "true"
    warnings = document_warnings(doc)
    assert [w.path for w in warnings] == ["spec.templates[1].task.retry", "spec.templates[1].task.when"]
    assert warnings[0].message.startswith('ignored on a task template: Aether uses "retry" only on the DAG node')


def test_inline_fields_of_a_node_calling_a_template_are_ignored() -> None:
    doc = _hello()
    node = doc["spec"]["templates"][0]["dag"]["tasks"][0]
    node["outputs"] = {"parameters": [{"name": "x"}]}
    (warning,) = document_warnings(doc)
    assert warning.path == "spec.templates[0].dag.tasks[0].outputs"
    assert f'calls the template "{node["template"]}"' in warning.message


def test_a_placeholder_in_an_argument_value_says_which_value_from_to_write() -> None:
    doc = _hello()
    doc["spec"]["arguments"] = {"parameters": [{"name": "who", "value": "hello {{workflow.parameters.x}}"}]}
    node = doc["spec"]["templates"][0]["dag"]["tasks"][0]
    node["arguments"] = {"parameters": [{"name": "message", "value": "{{ workflow.parameters.who }}"}]}
    root, dag = document_warnings(doc)
    assert root.path == "spec.arguments.parameters[0].value"
    assert '"valueFrom": {"expression": ...}' in root.message
    assert dag.path == "spec.templates[0].dag.tasks[0].arguments.parameters[0].value"
    assert dag.message == (
        "Aether passes {{workflow.parameters.who}} here as literal text, not its value; "
        'write "valueFrom": {"parameter": "workflow.parameters.who"} instead of "value"'
    )


def test_a_loop_whose_dag_body_declares_inputs_loses_the_iteration_values() -> None:
    (warning,) = document_warnings(_loop_over_dag([{"name": "item"}]))
    assert warning.path == "spec.templates[0].loop.body"
    assert "spec 3.10" in warning.message and 'declare no inputs on "body"' in warning.message
    assert document_warnings(_loop_over_dag([])) == []


def test_a_cron_workflow_is_checked_under_its_workflow_spec() -> None:
    cron = {
        "apiVersion": "aether/v1",
        "kind": "CronWorkflow",
        "metadata": {"name": "nightly"},
        "spec": {"schedule": "@daily", "shedule": "x", "workflowSpec": _hello()["spec"]},
    }
    cron["spec"]["workflowSpec"]["templates"][1]["task"]["hooks"] = {"onStart": {"template": "x"}}
    assert [w.path for w in document_warnings(cron)] == [
        "spec.shedule",
        "spec.workflowSpec.templates[1].task.hooks",
    ]
