"""`printable` and `json_text`: no character a terminal acts on survives, and nothing else changes."""

from __future__ import annotations

import orjson
from hypothesis import given
from hypothesis import strategies as st

from aether_es.cli.tables import table
from aether_es.cli.terminal import json_text, printable

STEERING = {
    *map(chr, range(0x20)),
    *map(chr, range(0x7F, 0xA0)),
    "\u061c",
    "\u200e",
    "\u200f",
    "\u2028",
    "\u2029",
    *map(chr, range(0x202A, 0x202F)),
    *map(chr, range(0x2066, 0x206A)),
}
"""Written out here rather than imported, so a character dropped from the module fails these tests."""

hostile = st.text(
    st.one_of(st.sampled_from(sorted(STEERING)), st.characters(codec="utf-8")),
)


@given(hostile)
def test_no_steering_character_survives(text: str) -> None:
    assert not STEERING & set(printable(text))


@given(st.text(st.characters(codec="utf-8").filter(lambda c: c not in STEERING)))
def test_text_without_steering_characters_is_unchanged(text: str) -> None:
    assert printable(text) == text


@given(hostile, hostile)
def test_each_character_is_escaped_on_its_own(left: str, right: str) -> None:
    """Linear: the rendering of a concatenation is the concatenation of the renderings."""
    assert printable(left + right) == printable(left) + printable(right)
    assert printable(printable(left)) == printable(left)


json_values = st.recursive(
    hostile | st.integers(-(2**53), 2**53), lambda inner: st.lists(inner) | st.dictionaries(hostile, inner)
)


@given(json_values)
def test_json_text_keeps_the_value_and_drops_raw_controls(value: object) -> None:
    text = json_text(orjson.dumps(value).decode())
    assert orjson.loads(text) == value
    assert not STEERING & set(text)


def test_the_escapes_name_the_character() -> None:
    assert printable("\x1b[2J\x1b]0;title\x07\r\b\t\n\x85\u202e\u2067") == (
        "\\x1b[2J\\x1b]0;title\\x07\\r\\x08\\t\\n\\x85\\u202e\\u2067"
    )


def test_table_columns_are_measured_on_the_escaped_cells() -> None:
    lines = table(("A", "B"), [("\x1b", "x"), ("ab", "y")])
    assert lines == ["A     B", "\\x1b  x", "ab    y"]
