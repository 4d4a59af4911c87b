"""Comparing values the way the conformance harness does: semantic JSON, booleans never equal numbers."""

from __future__ import annotations

from typing import Any

from aether_es.adapters.vars_sources import go_arch, go_os
from aether_es.projections.diff import differences

_PLACEHOLDERS = {"{{runtime.os}}": go_os, "{{runtime.arch}}": go_arch}


def expand_placeholders(value: Any) -> Any:
    """Replace `{{runtime.os}}` / `{{runtime.arch}}` strings, with Go's spelling of this host."""
    if isinstance(value, str):
        resolver = _PLACEHOLDERS.get(value)
        return resolver() if resolver is not None else value
    if isinstance(value, list):
        return [expand_placeholders(v) for v in value]
    if isinstance(value, dict):
        return {k: expand_placeholders(v) for k, v in value.items()}
    return value


def json_equal(expected: Any, actual: Any) -> bool:
    """Structural equality with numbers compared as doubles and booleans only equal to booleans."""
    if isinstance(expected, bool) or isinstance(actual, bool):
        return isinstance(expected, bool) and isinstance(actual, bool) and expected == actual
    if isinstance(expected, int | float) or isinstance(actual, int | float):
        return (
            isinstance(expected, int | float) and isinstance(actual, int | float) and float(expected) == float(actual)
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(expected) == len(actual)
            and all(json_equal(e, a) for e, a in zip(expected, actual, strict=True))
        )
    if isinstance(expected, dict):
        return (
            isinstance(actual, dict)
            and expected.keys() == actual.keys()
            and all(json_equal(v, actual[k]) for k, v in expected.items())
        )
    return type(expected) is type(actual) and expected == actual


def subset_failures(label: str, expected: dict[str, Any], parameters: list[dict[str, Any]]) -> list[str]:
    """Every expected name must be among the parameters (last one of a name wins) with an equal value."""
    actual = {p.get("name"): p.get("value") for p in parameters}
    failures = []
    for name, want in expected.items():
        if name not in actual:
            failures.append(f"{label}: parameter {name!r} not found")
            continue
        want = expand_placeholders(want)
        if not json_equal(want, actual[name]):
            failures.append(f"{label}: parameter {name!r} is {actual[name]!r}, expected {want!r}")
    return failures


def first_difference(left: Any, right: Any, path: str = "$") -> str | None:
    """The JSON path of the first place two decoded documents differ, or None when they are equal."""
    first = next(differences(left, right, path), None)
    return None if first is None else first.path
