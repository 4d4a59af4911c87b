"""Loading: JSON text or objects into documents, Go's decoding rules, errors that name the JSON path."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aether_es.errors import DocumentError, ValidationError
from aether_es.model.defaults import fill_cron_defaults, fill_defaults
from aether_es.model.documents import CronWorkflow, Workflow
from aether_es.model.loading import load_cron_workflow, load_document, load_workflow
from aether_es.model.validation import validate_cron_workflow, validate_workflow


def doc_error(data: Any) -> str:
    with pytest.raises(DocumentError) as info:
        load_document(data)
    text = str(info.value)
    assert "\n" not in text
    assert text.startswith("aether: validation error: invalid document: ")
    return info.value.detail


def test_kind_selects_the_model() -> None:
    assert isinstance(load_document({"kind": "CronWorkflow"}), CronWorkflow)
    assert isinstance(load_document({"kind": "Workflow"}), Workflow)
    assert isinstance(load_document({"kind": "Something"}), Workflow)
    assert isinstance(load_document({}), Workflow)
    assert isinstance(load_document(b'{"kind": "CronWorkflow"}'), CronWorkflow)
    assert isinstance(load_document('{"Kind": "CronWorkflow"}'), CronWorkflow)


def test_explicit_loaders_ignore_kind() -> None:
    assert isinstance(load_workflow({"kind": "CronWorkflow"}), Workflow)
    assert isinstance(load_cron_workflow({"kind": "Workflow"}), CronWorkflow)


def test_fields_and_aliases() -> None:
    wf = load_workflow(
        b"""{"apiVersion": "aether/v1", "kind": "Workflow", "metadata": {"name": "x", "labels": {"a": "b"}},
            "spec": {"entrypoint": "main", "maxNestedDepth": 4, "priority": 7, "unknownKey": [1, 2],
                     "templates": [{"task": {"name": "main", "executor": {"type": "echo", "config": {"k": 1}},
                                             "retry": {"limit": 2}, "continueOn": {"failed": true},
                                             "inputs": {"parameters": [{"name": "p",
                                                 "type": "integer", "value": 5, "enum": [1, null]}]}}}]}}"""
    )
    assert wf.api_version == "aether/v1" and wf.metadata.labels == {"a": "b"}
    assert (wf.spec.max_nested_depth, wf.spec.priority) == (4, 7)
    task = wf.spec.templates[0].task
    assert task is not None and task.retry is not None and task.retry.limit == 2
    assert task.continue_on is not None and task.continue_on.failed
    assert task.inputs is not None
    param = task.inputs.parameters[0]
    assert (param.type, param.value, param.enum) == ("integer", 5, [1, None])


@pytest.mark.parametrize("type_name", ["int", "bool", "integer", "boolean", "string", "json", "whatever"])
def test_parameter_type_is_free_text(type_name: str) -> None:
    wf = load_workflow({"spec": {"arguments": {"parameters": [{"name": "p", "type": type_name}]}}})
    assert wf.spec.arguments is not None and wf.spec.arguments.parameters[0].type == type_name


def test_keys_match_case_insensitively_last_wins() -> None:
    wf = load_workflow({"APIVERSION": "a", "apiVersion": "b", "Metadata": {"NAME": "n"}, "api_version": "ignored"})
    assert wf.api_version == "b"
    assert wf.metadata.name == "n"
    assert load_workflow({"apiversion": "x"}).api_version == "x"
    assert load_workflow({"\u212aind": "Workflow"}).kind == "Workflow"  # Kelvin sign folds to K, as in Go


def test_snake_case_python_names_are_not_json_names() -> None:
    wf = load_workflow({"spec": {"max_nested_depth": 4, "maxNestedDepth": 2}})
    assert wf.spec.max_nested_depth == 2


def test_null_means_zero_value() -> None:
    wf = load_workflow(
        {
            "apiVersion": None,
            "metadata": {"name": "n", "labels": {"a": None}},
            "spec": {
                "priority": None,
                "hooks": None,
                "templates": [
                    None,
                    {"dag": {"name": "d", "entrypoints": None, "tasks": [{"dependencies": [None]}]}},
                ],
                "arguments": {"parameters": [{"name": "p", "value": None}]},
            },
        }
    )
    assert wf.api_version == "" and wf.metadata.labels == {"a": ""}
    assert wf.spec.priority == 0 and wf.spec.hooks is None
    assert wf.spec.templates[0].type == ""
    dag = wf.spec.templates[1].dag
    assert dag is not None and dag.entrypoints == [] and dag.tasks[0].dependencies == [""]
    with pytest.raises(ValidationError) as info:
        validate_workflow(fill_defaults(wf))
    assert info.value.detail == "unsupported apiVersion: "


def test_null_does_not_reset_an_earlier_key() -> None:
    assert load_workflow({"kind": "Workflow", "Kind": None}).kind == "Workflow"


def test_raw_json_values_kept() -> None:
    wf = load_workflow({"spec": {"templates": [{"loop": {"name": "l", "items": [None, {"a": None}, 1.5, "x"]}}]}})
    loop = wf.spec.templates[0].loop
    assert loop is not None and loop.items == [None, {"a": None}, 1.5, "x"]


def test_cron_starting_deadline_null_is_absent() -> None:
    cw = load_cron_workflow({"spec": {"startingDeadlineSeconds": None}})
    assert cw.spec.starting_deadline_seconds is None
    assert load_cron_workflow({"spec": {"startingDeadlineSeconds": 30}}).spec.starting_deadline_seconds == 30


def test_input_dict_not_mutated() -> None:
    data = {"metadata": {"Name": "x", "namespace": None}}
    load_workflow(data)
    assert data == {"metadata": {"Name": "x", "namespace": None}}


# --- errors ----------------------------------------------------------------------------------------------


def test_wrong_type_names_the_json_path() -> None:
    data = {"spec": {"templates": [{}, {}, {"task": {"retry": {"limit": "3"}}}]}}
    assert doc_error(data) == "invalid document: spec.templates[2].task.retry.limit: expected an integer, got a string"


@pytest.mark.parametrize(
    ("data", "detail"),
    [
        ({"apiVersion": 1}, "apiVersion: expected a string, got a number"),
        ({"kind": ["Workflow"]}, "kind: expected a string, got an array"),
        ({"metadata": "x"}, "metadata: expected an object, got a string"),
        ({"metadata": {"labels": []}}, "metadata.labels: expected an object, got an array"),
        ({"metadata": {"labels": {"a b": 1}}}, 'metadata.labels["a b"]: expected a string, got a number'),
        (
            {"metadata": {"annotations": {"note": True}}},
            "metadata.annotations.note: expected a string, got a boolean",
        ),
        ({"spec": {"priority": 1.5}}, "spec.priority: expected an integer, got a number"),
        ({"spec": {"priority": 10.0}}, "spec.priority: expected an integer, got a number"),
        ({"spec": {"priority": "500"}}, "spec.priority: expected an integer, got a string"),
        ({"spec": {"maxNestedDepth": True}}, "spec.maxNestedDepth: expected an integer, got a boolean"),
        ({"spec": {"templates": {}}}, "spec.templates: expected an array, got an object"),
        ({"spec": {"templates": [1]}}, "spec.templates[0]: expected an object, got a number"),
        (
            {"spec": {"templates": [{"dag": {"tasks": [{"dependencies": "a"}]}}]}},
            "spec.templates[0].dag.tasks[0].dependencies: expected an array, got a string",
        ),
        (
            {"spec": {"templates": [{"task": {"resources": {"cpu": True}}}]}},
            "spec.templates[0].task.resources.cpu: expected a string or a number, got a boolean",
        ),
        (
            {"spec": {"templates": [{"task": {"continueOn": {"failed": "yes"}}}]}},
            "spec.templates[0].task.continueOn.failed: expected a boolean, got a string",
        ),
        (
            {"spec": {"templates": [{"task": {"outputs": {"artifacts": [{"from": 3}]}}}]}},
            "spec.templates[0].task.outputs.artifacts[0].from: expected a string, got a number",
        ),
        (
            {"spec": {"hooks": {"onExit": {"template": 5}}}},
            "spec.hooks.onExit.template: expected a string, got a number",
        ),
        (
            {"spec": {"templates": [{"loop": {"items": {"a": 1}}}]}},
            "spec.templates[0].loop.items: expected an array, got an object",
        ),
    ],
)
def test_wrong_types(data: dict[str, Any], detail: str) -> None:
    assert doc_error(data) == f"invalid document: {detail}"


def test_cron_paths() -> None:
    data = {"kind": "CronWorkflow", "spec": {"workflowSpec": {"templates": [{"task": {"timeout": 30}}]}}}
    assert doc_error(data) == (
        "invalid document: spec.workflowSpec.templates[0].task.timeout: expected a string, got a number"
    )
    assert doc_error({"kind": "CronWorkflow", "spec": {"startingDeadlineSeconds": "60"}}) == (
        "invalid document: spec.startingDeadlineSeconds: expected an integer, got a string"
    )


def test_malformed_json_names_line_and_column() -> None:
    text = b'{\n  "apiVersion": "aether/v1",\n  "kind": x\n}'
    assert doc_error(text) == (
        "invalid document: malformed JSON at line 3 column 11: unexpected character, expected a JSON value"
    )


@pytest.mark.parametrize("text", [b"", "   ", b"{", b'{"a": 1,}', b"\xff\xfe", b'{"a": 1} {}', "{'a': 1}", b"NaN"])
def test_malformed_json(text: bytes | str) -> None:
    assert doc_error(text).startswith("invalid document: malformed JSON at line ")


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        (b"[]", "an array"),
        (b"null", "null"),
        (b'"x"', "a string"),
        (b"1", "a number"),
        (b"true", "a boolean"),
    ],
)
def test_top_level_must_be_an_object(text: bytes, kind: str) -> None:
    assert doc_error(text) == f"invalid document: the top level must be a JSON object, got {kind}"


def test_non_json_input_type() -> None:
    assert doc_error(42) == "invalid document: expected JSON text or an object, got int"


def test_document_error_is_a_validation_error() -> None:
    with pytest.raises(ValidationError):
        load_document(b"[")


# --- property: nothing but our errors, whatever the input ---------------------------------------------------

_FIELD_NAMES = [
    "apiVersion", "kind", "metadata", "name", "namespace", "labels", "spec", "entrypoint", "templates",
    "dag", "task", "loop", "tasks", "dependencies", "template", "executor", "type", "inputs", "parameters",
    "value", "hooks", "onSuccess", "onExit", "retry", "limit", "items", "body", "repeatCondition",
    "maxIterations", "concurrency", "aggregate", "strategy", "entrypoints", "schedule", "timezone",
    "startAt", "endAt", "workflowSpec", "maxNestedDepth", "priority", "timeout", "resources", "cpu",
    "startingDeadlineSeconds", "concurrencyPolicy", "successfulJobsHistoryLimit", "itemsFrom", "continueOn",
]  # fmt: skip
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["aether/v1", "Workflow", "CronWorkflow", "main", "echo", "@daily", "UTC", "1h"])
)
_JSONISH = st.recursive(
    _SCALARS,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(_FIELD_NAMES) | st.text(max_size=6), children, max_size=6)
    ),
    max_leaves=40,
)


def _load_and_validate(data: Any) -> None:
    try:
        document = load_document(data)
        if isinstance(document, CronWorkflow):
            validate_cron_workflow(fill_cron_defaults(document))
        else:
            validate_workflow(fill_defaults(document))
    except (DocumentError, ValidationError):
        pass


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(_JSONISH)
def test_any_jsonish_object_only_raises_our_errors(data: Any) -> None:
    _load_and_validate(data)
    try:
        text = orjson.dumps(data)
    except (TypeError, orjson.JSONEncodeError):
        return
    _load_and_validate(text)
    _load_and_validate(text.decode())


@given(st.binary(max_size=64) | st.text(max_size=64))
def test_any_text_only_raises_our_errors(data: bytes | str) -> None:
    _load_and_validate(data)
