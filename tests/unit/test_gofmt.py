"""Go `%v` renderings and truthiness (spec §2.4, §8, §9 item 32)."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aether_es.model.gofmt import go_format_float, go_sprint, is_truthy


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("hello", "hello"),
        ("", ""),
        (True, "true"),
        (False, "false"),
        (None, "<nil>"),
        (0, "0"),
        (-42, "-42"),
        (10**25, "10000000000000000000000000"),
    ],
)
def test_scalars(value: Any, text: str) -> None:
    assert go_sprint(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (2.0, "2"),
        (100.0, "100"),
        (95.0, "95"),
        (-3.0, "-3"),
        (0.0, "0"),
        (-0.0, "-0"),
        (1.5, "1.5"),
        (0.1, "0.1"),
        (123456789.123, "123456789.123"),
        (1e20, "100000000000000000000"),
        (1e21, "1e+21"),
        (1.5e21, "1.5e+21"),
        (-1e21, "-1e+21"),
        (1e100, "1e+100"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
        (0.0001, "0.0001"),
        (0.00012, "0.00012"),
        (0.00001, "1e-05"),
        (1e-7, "1e-07"),
        (-2.5e-10, "-2.5e-10"),
        (5e-324, "5e-324"),
        (math.inf, "+Inf"),
        (-math.inf, "-Inf"),
        (math.nan, "NaN"),
    ],
)
def test_floats_like_go_g_shortest(value: float, text: str) -> None:
    assert go_sprint(value) == text
    assert go_format_float(value) == text


def test_lists_and_maps() -> None:
    assert go_sprint([]) == "[]"
    assert go_sprint(["a", "b"]) == "[a b]"
    assert go_sprint([1, 2.0, None, True, [1.5]]) == "[1 2 <nil> true [1.5]]"
    assert go_sprint({}) == "map[]"
    assert go_sprint({"b": 2.0, "a": "x", "c": {"z": [], "y": None}}) == "map[a:x b:2 c:map[y:<nil> z:[]]]"


def test_map_keys_sorted_bytewise() -> None:
    assert go_sprint({"b": 1, "B": 2, "a": 3, "é": 4}) == "map[B:2 a:3 b:1 é:4]"


@given(st.integers())
def test_ints_render_like_str(value: int) -> None:
    assert go_sprint(value) == str(value)


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_floats_round_trip(value: float) -> None:
    text = go_sprint(value)
    parsed = float(text)
    assert parsed == value
    assert math.copysign(1.0, parsed) == math.copysign(1.0, value)
    if value.is_integer() and abs(value) < 1e21:
        assert "." not in text and "e" not in text


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_float_exponent_form_only_outside_go_range(value: float) -> None:
    text = go_sprint(value)
    if value == 0 or 1e-4 <= abs(value) < 1e21:
        assert "e" not in text
    else:
        _, exponent = text.split("e")
        assert exponent[0] in "+-" and len(exponent) >= 3


@pytest.mark.parametrize("value", [True, "true"])
def test_truthy(value: Any) -> None:
    assert is_truthy(value)


@pytest.mark.parametrize("value", [False, "false", "True", "TRUE", 1, 1.0, None, "", [True], {"a": True}, "yes"])
def test_not_truthy(value: Any) -> None:
    assert not is_truthy(value)


class _RendersTrue:
    def __str__(self) -> str:
        return "true"


def test_truthy_by_rendering() -> None:
    assert is_truthy(_RendersTrue())
