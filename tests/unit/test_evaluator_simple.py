"""SimpleEvaluator rules (conformance README §4, spec §8)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aether_es.adapters.evaluator_simple import SimpleEvaluator
from aether_es.model.gofmt import go_sprint
from aether_es.ports.evaluator import Evaluator, ExpressionError

EV = SimpleEvaluator()


def test_implements_protocol() -> None:
    evaluator: Evaluator = EV
    assert evaluator.evaluate("true", {}) is True


@pytest.mark.parametrize(
    ("expr", "result"), [("true", True), ("false", False), ("  true\n", True), ("\tfalse ", False)]
)
def test_literals(expr: str, result: bool) -> None:
    assert EV.evaluate(expr, {}) is result


def test_literal_true_wins_over_env_key() -> None:
    assert EV.evaluate("true", {"true": False}) is True


@pytest.mark.parametrize(
    ("expr", "env", "result"),
    [
        (
            'tasks.check.outputs.parameters.status == "ok"',
            {"tasks.check.outputs.parameters.status": "ok"},
            True,
        ),
        (
            "tasks.check.outputs.parameters.status == 'ok'",
            {"tasks.check.outputs.parameters.status": "bad"},
            False,
        ),
        ("loop_iter.index != 2", {"loop_iter.index": 2.0}, False),
        ("loop_iter.index != 2", {"loop_iter.index": 1.0}, True),
        ("loop_iter.index == 0", {"loop_iter.index": 0}, True),
        ("tasks.t.phase == Failed", {"tasks.t.phase": "Failed"}, True),
        ("tasks.t.phase != Failed", {"tasks.t.phase": "Succeeded"}, True),
        ("x == true", {"x": True}, True),
        ("x == 'true'", {"x": True}, True),
        ("x == false", {"x": "false"}, True),
        ("x == <nil>", {"x": None}, True),
        ("x == '[a b]'", {"x": ["a", "b"]}, True),
        ("x == 'map[a:1 b:2]'", {"x": {"b": 2.0, "a": 1}}, True),
        ("x == 100", {"x": 100.0}, True),
        ("x == 1.5", {"x": 1.5}, True),
        ("a == b", {"a": 3, "b": 3.0}, True),
        ("system.os == darwin", {"system.os": "linux"}, False),
    ],
)
def test_comparisons(expr: str, env: Mapping[str, Any], result: bool) -> None:
    assert EV.evaluate(expr, env) is result


def test_unknown_name_is_its_own_text() -> None:
    assert EV.evaluate("darwin == darwin", {}) is True
    assert EV.evaluate("missing.key == 'missing.key'", {}) is True
    assert EV.evaluate("missing.key != other", {}) is True


def test_quoted_literal_is_not_looked_up() -> None:
    env = {"x": "value", "'x'": "quoted-key"}
    assert EV.evaluate("'x' == x", env) is False
    assert EV.evaluate("'x' == 'x'", env) is True


def test_quotes_no_escapes_and_mismatched_quotes() -> None:
    assert EV.evaluate(r"'a\n' == 'a\n'", {}) is True
    assert EV.evaluate("\"it's\" == 'it's'", {}) is True
    # Mismatched quotes are not a literal: the token, quotes included, is the text.
    assert EV.evaluate("'a\" == 'a\"", {}) is True
    assert EV.evaluate("'a\" == a", {}) is False
    # A single quote character is not a quoted literal.
    assert EV.evaluate("' == '", {}) is True
    assert EV.evaluate("'' == \"\"", {}) is True


def test_quoted_inner_text_is_not_trimmed() -> None:
    assert EV.evaluate("' a ' == a", {}) is False
    assert EV.evaluate("' a ' == ' a '", {}) is True


def test_splits_at_first_double_equals() -> None:
    # "a == b == c" -> left "a", right "b == c".
    assert EV.evaluate("a == b == c", {"a": "b == c"}) is True


def test_double_equals_wins_over_not_equals() -> None:
    # "a != b == c" splits at "==": left "a != b", right "c".
    assert EV.evaluate("a != b == c", {"a != b": "c"}) is True
    assert EV.evaluate("x != y == z", {}) is False


def test_not_equals_splits_at_first() -> None:
    assert EV.evaluate("a != b != c", {"a": "b != c"}) is False


def test_empty_operands() -> None:
    assert EV.evaluate("==", {}) is True
    assert EV.evaluate(" != x", {"": "x"}) is False


@pytest.mark.parametrize("expr", ["", "   ", "a", "a < b", "a && b", "TRUE", "a = b", "!a"])
def test_unsupported(expr: str) -> None:
    with pytest.raises(ExpressionError) as info:
        EV.evaluate(expr, {})
    assert str(info.value) == f"unsupported expression: {expr.strip()}"


def test_go_whitespace_rules() -> None:
    # Go's TrimSpace does not trim \x1c..\x1f, Python's strip() would.
    assert EV.evaluate("\x1ca == a", {}) is False
    assert EV.evaluate("\u3000a == a\u00a0", {}) is True


class _LazyEnv(Mapping[str, Any]):
    """An env that may only be probed, never iterated."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data
        self.lookups: list[str] = []

    def __getitem__(self, key: str) -> Any:
        self.lookups.append(key)
        return self._data[key]

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __iter__(self) -> Iterator[str]:
        raise AssertionError("env must not be iterated")

    def __len__(self) -> int:
        raise AssertionError("env must not be sized")


def test_lazy_env_only_probed() -> None:
    env = _LazyEnv({"a": 1.0})
    assert EV.evaluate("a == 1", env) is True
    assert env.lookups == ["a"]


def test_present_none_value_is_used() -> None:
    assert EV.evaluate("x == '<nil>'", {"x": None}) is True
    assert EV.evaluate("x == x", {"x": None}) is True


_token = (
    st.text(alphabet=st.characters(exclude_characters="=!'\"", exclude_categories=["Cs"]), min_size=1)
    .map(str.strip)
    .filter(lambda s: s not in ("", "true", "false"))
)


@given(_token, _token)
def test_equals_and_not_equals_are_complements(a: str, b: str) -> None:
    env: dict[str, Any] = {}
    assert EV.evaluate(f"{a} == {b}", env) is not EV.evaluate(f"{a} != {b}", env)
    assert EV.evaluate(f"{a} == {a}", env) is True


@given(st.one_of(st.integers(), st.floats(allow_nan=False), st.booleans(), st.text(alphabet="abc xyz")))
def test_env_value_equals_its_rendering(value: Any) -> None:
    assert EV.evaluate(f"v == '{go_sprint(value)}'", {"v": value}) is True
