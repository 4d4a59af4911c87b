"""A result the worker could never report, or whose value is over the hard cap, becomes an Error naming it."""

from __future__ import annotations

from aether_es.limits import Limits
from aether_es.ports.wire import TaskResult, WireParameter
from aether_es.worker.pool import within_limits


def result(value: object) -> TaskResult:
    return TaskResult(parameters=[WireParameter(name="out", value=value)])


def test_a_value_over_the_cap_names_the_parameter_both_sizes_and_the_variable() -> None:
    failed = within_limits(result("x" * 100), Limits(value_bytes=50))
    assert failed.code == 3
    assert failed.message == (
        "output parameter 'out' is 102 bytes, over the limit of 50 bytes (raise it with AETHER_LIMIT_VALUE_BYTES)"
    )
    assert within_limits(result("x" * 48), Limits(value_bytes=50)).code == 0


def test_a_value_that_is_not_json_names_the_parameter() -> None:
    failed = within_limits(result(object()), Limits())
    assert failed.code == 3 and failed.message.startswith("output parameter 'out': Unable to serialize")
