"""The echo executor (conformance README §3.1, spec §8)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aether_es.ports.wire import TaskAssignment, TaskResult, WireParameter
from aether_es.worker.executors.echo import ECHO_TYPE, SUSPEND_MESSAGE, EchoExecutor, run_echo


def assignment(*inputs: tuple[str, Any] | tuple[str, str, Any], retry_count: int = 0) -> TaskAssignment:
    params = []
    for item in inputs:
        if len(item) == 2:
            params.append(WireParameter(name=item[0], value=item[1]))
        else:
            params.append(WireParameter(name=item[0], type=item[1], value=item[2]))
    return TaskAssignment(
        taskRunID="tr-1",
        workflowRunID="wf-1",
        task_name="t",
        executor_type="echo",
        attempt=1,
        inputs=params,
        retry_count=retry_count,
    )


async def run(*inputs: tuple[str, Any] | tuple[str, str, Any], retry_count: int = 0) -> TaskResult:
    return await EchoExecutor().execute(assignment(*inputs, retry_count=retry_count))


def triples(result: TaskResult) -> list[tuple[str, str, Any]]:
    return [(p.name, p.type, p.value) for p in result.parameters]


def test_type_name() -> None:
    assert EchoExecutor.executor_type == ECHO_TYPE == "echo"


async def test_no_inputs_succeeds_empty() -> None:
    result = await run()
    assert (result.code, result.message, result.parameters) == (0, "", [])


async def test_echoes_other_inputs_in_order_with_type() -> None:
    result = await run(("b", "string", "x"), ("a", "int", 3.0), ("c", "", [1, {"k": None}]), ("n", "", None))
    assert result.code == 0
    assert triples(result) == [
        ("b", "string", "x"),
        ("a", "int", 3.0),
        ("c", "", [1, {"k": None}]),
        ("n", "", None),
    ]


async def test_control_inputs_not_echoed() -> None:
    result = await run(
        ("__resumed", True),
        ("suspend", False),
        ("fail-count", 0),
        ("outputs", []),
        ("auto-resume-after", "1s"),
        ("keep", "v"),
    )
    assert triples(result) == [("keep", "", "v")]


async def test_camel_case_fail_count_is_just_echoed() -> None:
    result = await run(("failCount", 3))
    assert result.code == 0
    assert triples(result) == [("failCount", "", 3)]


# Suspend gate


@pytest.mark.parametrize("flag", [True, "true"])
async def test_suspend_gate(flag: Any) -> None:
    result = await run(("suspend", flag), ("x", 1), ("outputs", [{"name": "o", "type": "int", "value": 1}]))
    assert result.code == 1
    assert result.message == SUSPEND_MESSAGE == "suspended; awaiting external resume signal"
    assert result.parameters == []


@pytest.mark.parametrize("flag", [False, "false", "yes", 1, None, "True"])
async def test_suspend_false_or_unparsable(flag: Any) -> None:
    assert (await run(("suspend", flag))).code == 0


@pytest.mark.parametrize("marker", [True, False, None, "anything"])
async def test_resumed_marker_presence_passes_gate(marker: Any) -> None:
    result = await run(("suspend", True), ("__resumed", marker), ("approver", "alice"))
    assert result.code == 0
    assert triples(result) == [("approver", "", "alice")]


async def test_resumed_marker_before_suspend_also_counts() -> None:
    assert (await run(("__resumed", True), ("suspend", True))).code == 0


async def test_unparsable_later_suspend_keeps_earlier_value() -> None:
    assert (await run(("suspend", True), ("suspend", "nope"))).code == 1
    assert (await run(("suspend", True), ("suspend", False))).code == 0


async def test_suspend_checked_before_failure() -> None:
    result = await run(("suspend", True), ("fail-count", 5))
    assert result.code == 1


# Failure gate


@pytest.mark.parametrize("count", [2, 2.0, "2", " 2 ", "2.0"])
async def test_fail_count_spellings(count: Any) -> None:
    for retry in (0, 1):
        result = await run(("fail-count", count), ("x", 1), retry_count=retry)
        assert result.code == 2
        assert result.message == f"simulated failure on attempt {retry + 1} (failCount=2)"
        assert result.parameters == []
    result = await run(("fail-count", count), ("x", 1), retry_count=2)
    assert result.code == 0
    assert triples(result) == [("x", "", 1)]


@pytest.mark.parametrize("count", [0, -1, 2.5, "abc", True, None, [], {}, float("inf"), float("nan")])
async def test_fail_count_ignored(count: Any) -> None:
    assert (await run(("fail-count", count))).code == 0


async def test_failure_gate_message_example_09() -> None:
    result = await run(("fail-count", 2.0), retry_count=1)
    assert result.message == "simulated failure on attempt 2 (failCount=2)"


# Output declarations


async def test_declared_outputs_appended_with_zero_values() -> None:
    decl = [
        {"name": n, "type": t}
        for n, t in [("i", "int"), ("b", "bool"), ("s", "string"), ("a", "array"), ("o", "object")]
    ]
    result = await run(("outputs", decl))
    assert triples(result) == [
        ("i", "int", 0),
        ("b", "bool", False),
        ("s", "string", ""),
        ("a", "array", []),
        ("o", "object", {}),
    ]


async def test_zero_values_are_not_shared() -> None:
    decl = [{"name": "a", "type": "array"}, {"name": "o", "type": "object"}]
    first = await run(("outputs", decl))
    first.parameters[0].value.append(1)
    first.parameters[1].value["k"] = 1
    second = await run(("outputs", decl))
    assert triples(second) == [("a", "array", []), ("o", "object", {})]


async def test_declared_values_used_and_mismatch_only_warns(caplog: pytest.LogCaptureFixture) -> None:
    decl = [
        {"name": "approved", "type": "bool", "value": True},
        {"name": "n", "type": "int", "value": "not-a-number"},
        {"name": "rows", "type": "array", "value": [100, 100]},
    ]
    result = await run(("outputs", decl))
    assert triples(result) == [
        ("approved", "bool", True),
        ("n", "int", "not-a-number"),
        ("rows", "array", [100, 100]),
    ]
    assert any("does not match" in r.message for r in caplog.records)


@pytest.mark.parametrize("declared_type", ["float", "", "number", "INT", "list"])
async def test_unknown_type_becomes_string(declared_type: str) -> None:
    result = await run(("outputs", [{"name": "x", "type": declared_type}]))
    assert triples(result) == [("x", "string", "")]


async def test_missing_or_non_string_type_becomes_string() -> None:
    result = await run(("outputs", [{"name": "x"}, {"name": "y", "type": 5, "value": 1}]))
    assert triples(result) == [("x", "string", ""), ("y", "string", 1)]


async def test_json_schema_type_spellings() -> None:
    result = await run(("outputs", [{"name": "i", "type": "integer"}, {"name": "b", "type": "boolean"}]))
    assert triples(result) == [("i", "int", 0), ("b", "bool", False)]


async def test_empty_or_invalid_names_skipped() -> None:
    decl = [
        {"name": "", "type": "int"},
        {"type": "int"},
        {"name": 3, "type": "int"},
        "x",
        None,
        7,
        {"name": "ok", "type": "int"},
    ]
    result = await run(("outputs", decl))
    assert triples(result) == [("ok", "int", 0)]


async def test_same_name_input_keeps_value_without_declared_value() -> None:
    # Examples 14/15/22: the declared type wins, the echoed input value stays.
    result = await run(("os", "", "linux"), ("outputs", [{"name": "os", "type": "string"}]))
    assert triples(result) == [("os", "string", "linux")]


async def test_same_name_input_replaced_by_declared_value() -> None:
    result = await run(("x", "string", "in"), ("y", "", 1), ("outputs", [{"name": "x", "type": "int", "value": 7}]))
    assert triples(result) == [("x", "int", 7), ("y", "", 1)]


async def test_declared_null_value_counts_as_present() -> None:
    # Go keeps `"value": null` as the RawMessage `null` (length 4), so it replaces / is used as-is.
    result = await run(
        ("x", "string", "in"),
        (
            "outputs",
            [{"name": "x", "type": "string", "value": None}, {"name": "y", "type": "int", "value": None}],
        ),
    )
    assert triples(result) == [("x", "string", None), ("y", "int", None)]


async def test_same_name_input_position_kept_and_order_follows_declarations() -> None:
    decl = [
        {"name": "z", "type": "int", "value": 1},
        {"name": "a", "type": "bool"},
        {"name": "m", "type": "string"},
    ]
    result = await run(("a", "", "x"), ("b", "", "y"), ("outputs", decl))
    assert triples(result) == [("a", "bool", "x"), ("b", "", "y"), ("z", "int", 1), ("m", "string", "")]


async def test_duplicate_declarations_merge_into_first() -> None:
    decl = [{"name": "d", "type": "int", "value": 1}, {"name": "d", "type": "string"}]
    result = await run(("outputs", decl))
    assert triples(result) == [("d", "string", 1)]


async def test_duplicate_inputs_declaration_targets_last() -> None:
    result = await run(("d", "", 1), ("d", "", 2), ("outputs", [{"name": "d", "type": "int", "value": 9}]))
    assert triples(result) == [("d", "", 1), ("d", "int", 9)]


async def test_outputs_as_json_string() -> None:
    encoded = json.dumps([{"name": "approved", "type": "bool", "value": True}])
    result = await run(("outputs", encoded))
    assert triples(result) == [("approved", "bool", True)]


@pytest.mark.parametrize("bad", ["not json", '{"name": "x"}', {"name": "x"}, 5, None, True, '"[]"'])
async def test_outputs_not_a_list_is_ignored(bad: Any) -> None:
    result = await run(("x", 1), ("outputs", bad))
    assert result.code == 0
    assert triples(result) == [("x", "", 1)]


async def test_unparsable_later_outputs_keeps_earlier() -> None:
    result = await run(("outputs", [{"name": "a", "type": "int"}]), ("outputs", "garbage"))
    assert triples(result) == [("a", "int", 0)]


async def test_inputs_not_mutated() -> None:
    task = assignment(("x", "string", "in"), ("outputs", [{"name": "x", "type": "int", "value": 1}]))
    before = task.model_dump()
    await EchoExecutor().execute(task)
    assert task.model_dump() == before


def test_run_echo_is_synchronous_core() -> None:
    result = run_echo(assignment(("x", 1)))
    assert triples(result) == [("x", "", 1)]


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=10,
)
_decl = st.dictionaries(
    st.sampled_from(["name", "type", "value", "other"]), _json | st.sampled_from(["int", "bool", "x"])
)
_names = st.sampled_from(["__resumed", "suspend", "fail-count", "outputs", "auto-resume-after", "a", "b", ""])
_values = (
    _json | st.lists(_decl, max_size=4) | st.lists(_decl, max_size=3).map(json.dumps) | st.sampled_from(["true", "2"])
)


@settings(max_examples=300)
@given(
    st.lists(st.tuples(_names, st.text(max_size=4), _values), max_size=8),
    st.integers(min_value=0, max_value=5),
)
async def test_never_raises(inputs: list[tuple[str, str, Any]], retry_count: int) -> None:
    result = await run(*inputs, retry_count=retry_count)
    assert result.code in (0, 1, 2)
    if result.code:
        assert result.parameters == []
        return
    control = {"__resumed", "suspend", "fail-count", "outputs", "auto-resume-after"}
    echoed = [name for name, _, _ in inputs if name not in control]
    assert [p.name for p in result.parameters][: len(echoed)] == echoed
