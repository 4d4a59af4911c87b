"""Durations: Aether's ParseDuration (Go syntax plus `d`), Go's ParseDuration errors, Duration.String()."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aether_es.model.durations import (
    format_go_duration,
    format_go_duration_ns,
    parse_duration,
    parse_duration_ns,
    parse_go_duration_strict,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("", 0.0),
        ("0", 0.0),
        ("-0", 0.0),
        ("300ms", 0.3),
        ("1.5s", 1.5),
        (".5s", 0.5),
        ("1.s", 1.0),
        ("+5s", 5.0),
        ("1h30m", 5400.0),
        ("2h45m10s", 9910.0),
        ("1h0.5m", 3630.0),
        ("100ns", 1e-7),
        ("7us", 7e-6),
        ("7\u00b5s", 7e-6),
        ("7\u03bcs", 7e-6),
        ("1.5h", 5400.0),
    ],
)
def test_go_syntax(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(("text", "days"), [("1d", 1), ("7d", 7), ("0d", 0), ("30d", 30)])
def test_day_suffix(text: str, days: int) -> None:
    assert parse_duration(text) == days * 86400.0


@pytest.mark.parametrize("text", ["-1s", "-1h30m", "-0.5s"])
def test_negative_is_no_deadline(text: str) -> None:
    assert parse_duration(text) is None


@pytest.mark.parametrize(
    "text",
    ["abc", "5x", "1 d", " 1s", "1s ", "1.5d", "1d2h", "-1d", "d", "s", ".s", "1e3s", "1h2", "\uff11s", "1D"],
)
def test_junk_is_no_deadline(text: str) -> None:
    assert parse_duration(text) is None


def test_exact_nanoseconds() -> None:
    assert parse_duration_ns("1.000000001s") == 1_000_000_001
    assert parse_duration_ns("9223372036854775807ns") == 2**63 - 1
    assert parse_duration_ns("9223372036854775808ns") is None
    assert parse_duration_ns("106751d") == 106751 * 86400 * 10**9
    assert parse_duration_ns("106752d") is None  # beyond int64 nanoseconds: Go would wrap around


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", 'time: invalid duration ""'),
        ("abc", 'time: invalid duration "abc"'),
        ("-", 'time: invalid duration "-"'),
        (".s", 'time: invalid duration ".s"'),
        ("1", 'time: missing unit in duration "1"'),
        ("1h2", 'time: missing unit in duration "1h2"'),
        ("1d", 'time: unknown unit "d" in duration "1d"'),
        ("5 s", 'time: unknown unit " s" in duration "5 s"'),
        ("1\u00e9", 'time: unknown unit "\\xc3\\xa9" in duration "1\\xc3\\xa9"'),
        ("9999999999999999999h", 'time: invalid duration "9999999999999999999h"'),
    ],
)
def test_strict_errors_are_gos(text: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_go_duration_strict(text)
    assert str(info.value) == message


def test_strict_accepts_go_syntax_including_negative() -> None:
    assert parse_go_duration_strict("200ms") == pytest.approx(0.2)
    assert parse_go_duration_strict("1m30s") == 90.0
    assert parse_go_duration_strict("-1.5s") == -1.5


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.0004, "0s"),
        (0.0005, "1ms"),
        (0.5, "500ms"),
        (0.0015, "2ms"),
        (1.234, "1.234s"),
        (1.2344, "1.234s"),
        (59.9999, "1m0s"),
        (123.5, "2m3.5s"),
        (3600, "1h0m0s"),
        (3661.001, "1h1m1.001s"),
        (90061.25, "25h1m1.25s"),
        (-1.5, "-1.5s"),
        (-0.0005, "-1ms"),
    ],
)
def test_format_like_go_after_millisecond_rounding(seconds: float, text: str) -> None:
    assert format_go_duration(seconds) == text


@pytest.mark.parametrize(
    ("nanos", "text"),
    [(1, "1ns"), (1500, "1.5\u00b5s"), (1_500_000, "1.5ms"), (1_000_000_001, "1.000000001s"), (-1, "-1ns")],
)
def test_format_sub_millisecond_units(nanos: int, text: str) -> None:
    assert format_go_duration_ns(nanos) == text


def test_format_rejects_non_finite() -> None:
    with pytest.raises(ValueError):
        format_go_duration(float("nan"))


@given(st.integers(min_value=0, max_value=10**12))
def test_format_round_trips_through_parse(millis: int) -> None:
    text = format_go_duration(millis / 1000)
    assert parse_duration_ns(text) == millis * 1_000_000


@given(st.text(max_size=20))
def test_parse_never_raises(text: str) -> None:
    result = parse_duration(text)
    assert result is None or result >= 0
