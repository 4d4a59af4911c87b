"""Evaluator contract: the conformance subset (README §4) holds for every evaluator; extensions and safety
limits of `SimpleEvalEvaluator` are tested on their own. Envs are lazy Mappings that must never be iterated."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aether_es.adapters import evaluator_simpleeval
from aether_es.adapters.evaluator_simple import SimpleEvaluator
from aether_es.adapters.evaluator_simpleeval import MAX_NODES, SimpleEvalEvaluator
from aether_es.limits import DEFAULT, Limits
from aether_es.ports.evaluator import Evaluator, ExpressionError


class LazyEnv(Mapping[str, Any]):
    """A flat env whose values are computed on demand; iterating it (or taking its length) is a bug."""

    def __init__(
        self, values: Mapping[str, Any] | None = None, factories: Mapping[str, Callable[[], Any]] | None = None
    ) -> None:
        self._values = dict(values or {})
        self._factories = dict(factories or {})
        self.computed: list[str] = []

    def __contains__(self, key: object) -> bool:
        return key in self._values or key in self._factories

    def __getitem__(self, key: str) -> Any:
        if key in self._values:
            return self._values[key]
        if key in self._factories:
            self.computed.append(key)
            return self._factories[key]()
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        raise AssertionError("an evaluator must not iterate the env")

    def __len__(self) -> int:
        raise AssertionError("an evaluator must not take the env's length")


EVALUATORS = [pytest.param(SimpleEvaluator(), id="simple"), pytest.param(SimpleEvalEvaluator(), id="simpleeval")]
SE = SimpleEvalEvaluator()


@pytest.fixture(params=EVALUATORS)
def ev(request: pytest.FixtureRequest) -> Evaluator:
    evaluator: Evaluator = request.param
    return evaluator


# --- shared conformance subset (README §4) -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "result"), [("true", True), ("false", False), ("  true\n", True), ("\tfalse ", False)]
)
def test_rule1_trimmed_true_false(ev: Evaluator, expr: str, result: bool) -> None:
    assert ev.evaluate(expr, LazyEnv()) is result


def test_rule1_go_unicode_space_is_trimmed(ev: Evaluator) -> None:
    assert ev.evaluate("\u3000true\u00a0", LazyEnv()) is True


@pytest.mark.parametrize(
    ("expr", "env", "result"),
    [
        # rule 2: `==` over resolved operands (README §4 examples: when / retry / repeatCondition)
        ('tasks.check.outputs.parameters.status == "ok"', {"tasks.check.outputs.parameters.status": "ok"}, True),
        ("tasks.check.outputs.parameters.status == 'ok'", {"tasks.check.outputs.parameters.status": "no"}, False),
        ("tasks.flaky.phase == Failed", {"tasks.flaky.phase": "Failed"}, True),
        ("tasks.a.phase == Succeeded", {"tasks.a.phase": "Error"}, False),
        ("system.os == darwin", {"system.os": "darwin"}, True),
        ("system.os == darwin", {"system.os": "linux"}, False),
        ("inputs.parameters.x==inputs.parameters.y", {"inputs.parameters.x": 3, "inputs.parameters.y": 3.0}, True),
        # rule 3: `!=`
        ("loop_iter.index != 2", {"loop_iter.index": 1}, True),
        ("loop_iter.index != 2", {"loop_iter.index": 2}, False),
        ("loop_iter.index != 2", {"loop_iter.index": 2.0}, False),  # Go %v of float64 2 is "2"
        ("tasks.a.phase!='Succeeded'", {"tasks.a.phase": "Succeeded"}, False),
        # Go %v text forms
        ("tasks.a.outputs.parameters.ok == true", {"tasks.a.outputs.parameters.ok": True}, True),
        ("tasks.a.outputs.parameters.ok == 'true'", {"tasks.a.outputs.parameters.ok": True}, True),
        ("tasks.a.outputs.parameters.ok != false", {"tasks.a.outputs.parameters.ok": False}, False),
        ("tasks.a.code == 0", {"tasks.a.code": 0}, True),
        ("tasks.a.code == '1'", {"tasks.a.code": 1.0}, True),
        ("tasks.a.outputs.parameters.n == 3", {"tasks.a.outputs.parameters.n": "3"}, True),
        # quoted literals: inner text, no escapes
        ('x == "a\\nb"', {"x": "a\\nb"}, True),
        ("x == 'say \"hi\"'", {"x": 'say "hi"'}, True),
        ('x == ""', {"x": ""}, True),
        # unknown bare words are their own text
        ("darwin == darwin", {}, True),
        ("tasks.missing.phase == 'tasks.missing.phase'", {}, True),
        ("tasks.missing.phase != Succeeded", {}, True),
        ("Succeeded == tasks.a.phase", {"tasks.a.phase": "Succeeded"}, True),
        # a dotted (and hyphenated) name is ONE key
        ("tasks.build-image.phase == Succeeded", {"tasks.build-image.phase": "Succeeded"}, True),
        ("tasks.step1.outputs.parameters.out-file == a", {"tasks.step1.outputs.parameters.out-file": "a"}, True),
        # env values win over literal text
        ("a == 1", {"a": "1"}, True),
    ],
)
def test_rules_2_3_equality_over_go_text(ev: Evaluator, expr: str, env: dict[str, Any], result: bool) -> None:
    assert ev.evaluate(expr, LazyEnv(env)) is result


@pytest.mark.parametrize("expr", ["", "   ", "\n\t", "@@@", "'unterminated"])
def test_rule4_unsupported_is_expression_error(ev: Evaluator, expr: str) -> None:
    with pytest.raises(ExpressionError):
        ev.evaluate(expr, LazyEnv())


def test_env_is_lazy_and_only_probed(ev: Evaluator) -> None:
    env = LazyEnv(factories={"tasks.a.phase": lambda: "Succeeded", "tasks.b.phase": lambda: 1 / 0})
    assert ev.evaluate("tasks.a.phase == Succeeded", env) is True
    assert env.computed == ["tasks.a.phase"]


# --- SimpleEvaluator quirks (kept on purpose; the richer evaluator parses properly) ----------------------------


def test_simple_quirks() -> None:
    ev = SimpleEvaluator()
    assert ev.evaluate("a != b == a != b", LazyEnv()) is True  # `==` split first: "a != b" vs "a != b"
    assert ev.evaluate("x == 'a\"", LazyEnv({"x": "'a\""})) is True  # unmatched quotes stay literal text
    with pytest.raises(ExpressionError, match="unsupported expression"):
        ev.evaluate("tasks.a.phase", LazyEnv({"tasks.a.phase": "x"}))


# --- SimpleEvalEvaluator extensions ---------------------------------------------------------------------------

ENV = {
    "tasks.check.outputs.parameters.status": "ok",
    "tasks.check.outputs.parameters.count": 4.0,
    "tasks.check.outputs.parameters.flag": "true",
    "tasks.build-image.phase": "Succeeded",
    "tasks.a.code": 0,
    "loop_iter.index": 1,
    "inputs.parameters.n": "5",
    "inputs.parameters.items": ["a", "b", 3.0],
    "inputs.parameters.obj": {"x": {"y": [1, 2.0]}, "k": "v"},
    "system.os": "linux",
    "phase": "Failed",
    "msg": "disk full: /var",
}


@pytest.mark.parametrize(
    ("expr", "result"),
    [
        # boolean operators, both spellings, with Aether truthiness ("true" string is true)
        ("tasks.check.outputs.parameters.status == ok and loop_iter.index < 3", True),
        ("tasks.check.outputs.parameters.status == ok && loop_iter.index >= 3", False),
        ("phase == Succeeded or phase == Failed", True),
        ("phase == Succeeded || msg == x", False),
        ("not phase == Succeeded", True),
        ("!(phase == Failed)", False),
        ("!!true", True),
        ("tasks.check.outputs.parameters.flag && true", True),
        ("not tasks.check.outputs.parameters.status", True),  # "ok" is not Aether-truthy
        ("(phase == Failed or phase == Error) and tasks.a.code == 0", True),
        # ordering: numeric when both sides are numbers (or spell numbers), else string order
        ("tasks.check.outputs.parameters.count > 3", True),
        ("tasks.check.outputs.parameters.count <= 4", True),
        ("inputs.parameters.n > 10", False),  # "5" is the number 5, not the text "5" > "10"
        ("1 < loop_iter.index + 1 < 3", True),
        ("apple < banana", True),
        # membership
        ("system.os in ['linux', 'darwin']", True),
        ("system.os not in ('linux', 'darwin')", False),
        ("3 in inputs.parameters.items", True),  # Go %v text: 3.0 renders as "3"
        ("b in inputs.parameters.items", True),
        ("k in inputs.parameters.obj", True),
        ("'full' in msg", True),
        # arithmetic
        ("loop_iter.index + 1 == 2", True),
        ("tasks.check.outputs.parameters.count * 2 == 8", True),
        ("inputs.parameters.n % 2 == 1", True),
        ("-7 % 3 == -1", True),  # Go remainder: sign of the dividend
        ("7 / 2 == 3.5", True),
        ("2 ** 10 == 1024", True),
        ("len(msg) == 15", True),
        ("len(inputs.parameters.items) == 3", True),
        # true/false are booleans; numbers are numbers
        ("true == true", True),
        ("2.0 == 2", True),
        ("1e3 == 1000", True),
    ],
)
def test_simpleeval_extensions(expr: str, result: bool) -> None:
    assert SE.evaluate(expr, LazyEnv(ENV)) is result


@pytest.mark.parametrize(
    ("expr", "value"),
    [
        ("inputs.parameters.items", ["a", "b", 3.0]),  # itemsFrom / valueFrom: any value may be returned
        ("tasks.check.outputs.parameters.count + 1", 5.0),
        ("inputs.parameters.obj.x.y.1", 2.0),  # longest key prefix, then map keys / list indexes inside it
        ("inputs.parameters.obj.k", "v"),
        ("inputs.parameters.obj.nope", "inputs.parameters.obj.nope"),  # unresolvable: its own text
        ("['a', 1, true]", ["a", 1, True]),
        ("darwin", "darwin"),
        ("1.2.3", "1.2.3"),  # not a number: a bare word
        ("x-1", "x-1"),  # hyphens join words; write subtraction with spaces
        ("loop_iter.index - 1", 0),
        ("10 / 4", 2.5),
    ],
)
def test_simpleeval_values(expr: str, value: Any) -> None:
    assert SE.evaluate(expr, LazyEnv(ENV)) == value


def test_simpleeval_short_circuits_lazily() -> None:
    env = LazyEnv(factories={"a": lambda: "false", "b": lambda: 1 / 0})
    assert SE.evaluate("a && b", env) is False
    assert env.computed == ["a"]


def test_simpleeval_wraps_env_failures() -> None:
    env = LazyEnv(factories={"boom": lambda: 1 / 0})
    with pytest.raises(ExpressionError, match='"boom"'):
        SE.evaluate("boom", env)


# --- SimpleEvalEvaluator safety limits ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "reason"),
    [
        ("9**9**9", "exponent"),
        ("10 ** 400", "out of range"),
        ("1.5 ** 5000", "out of range"),
        ("(-8) ** 0.5", "not a real number"),
        ("'a' * 10**9", "needs numbers"),
        ("'abc' * 100000000", "needs numbers"),
        ("'a' + 'b'", "needs numbers"),
        ("9" * 500, "out of range"),
        ("(" * 300 + "1" + ")" * 300, ""),
        ("[" * 70 + "]" * 70, "nested"),
        ("-" * 5000 + "1", ""),
        ("not " * 2000 + "true", ""),
        ("x" * (DEFAULT.expression_chars + 1), "over the limit of 4,096 (raise it with AETHER_LIMIT_EXPRESSION_CHARS)"),
        ("().__class__", "unexpected character"),
        ("''.__class__.__mro__", "unexpected character"),
        ("__import__('os')", "only these functions"),
        ("open('/etc/passwd')", "only these functions"),
        ("len.__globals__()", "only these functions"),
        ("int('3')", "only these functions"),
        ("len(1)", "len() needs"),
        ("len('a', 'b')", "exactly one argument"),
        ("len(x=1)", ""),
        ("lambda: 1", "unexpected character"),
        ("[x for x in [1]]", ""),
        ("x[0]", "not available"),
        ("{{inputs.parameters.x}}", "unexpected character"),
        ("a = 1", "syntax"),
        ("1 # comment", "unexpected character"),
        ("1 / 0", "division by zero"),
        ("5 % 0", "division by zero"),
        ("true < 1", "cannot compare"),
        ("1 in 2", "operator in"),
        ("-abc", "unary -"),
        ("a & b", "unexpected character"),
        ("1 // 2", ""),
        ("1 << 2", ""),
        ("a\x00b", "unexpected character"),
        ("'abc", "unterminated"),
    ],
)
def test_simpleeval_rejects_hostile_or_invalid(expr: str, reason: str) -> None:
    started = time.monotonic()
    with pytest.raises(ExpressionError) as info:
        SE.evaluate(expr, LazyEnv(ENV))
    assert time.monotonic() - started < 2
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("invalid expression ")
    assert reason in message


def test_parentheses_group_without_nesting_cost() -> None:
    assert SE.evaluate("(" * 100 + "1" + ")" * 100, LazyEnv()) == 1


def test_error_names_the_expression() -> None:
    with pytest.raises(ExpressionError, match=r'^invalid expression "1 / 0": division by zero$'):
        SE.evaluate("1 / 0", LazyEnv())


def test_non_string_expression_is_expression_error() -> None:
    with pytest.raises(ExpressionError):
        SE.evaluate(42, LazyEnv())  # type: ignore[arg-type]


# --- property: arbitrary text only ever raises ExpressionError -------------------------------------------------

_TOKENS = st.sampled_from(
    [
        "tasks.a.phase", "x", "darwin", "1", "2.5", "1e9", "9", "'s'", '"q"', "'", '"', "true", "false", "and", "or",
        "not", "in", "&&", "||", "!", "==", "!=", "<", "<=", ">", ">=", "+", "-", "*", "/", "%", "**", "(", ")",
        "[", "]", ",", "len", ".", "__class__", " ", "\n", "{{", "}}", "#", ":", "=",
    ]
)  # fmt: skip
_PROPERTY_ENV = {"tasks.a.phase": "Succeeded", "x": [1, "a", {"k": None}], "len": 3}


@pytest.mark.parametrize("evaluator", EVALUATORS)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.one_of(st.text(max_size=200), st.lists(_TOKENS, max_size=40).map("".join)))
def test_only_expression_error_escapes(evaluator: Evaluator, text: str) -> None:
    try:
        evaluator.evaluate(text, LazyEnv(_PROPERTY_ENV))
    except ExpressionError as exc:
        if isinstance(evaluator, SimpleEvalEvaluator):
            assert "\n" not in str(exc)  # one-line messages


# --- limits and values JSON can carry ----------------------------------------------------------------------


@pytest.mark.parametrize("evaluator", EVALUATORS)
def test_expression_length_limit_names_the_limit_and_its_variable(evaluator: Evaluator) -> None:
    small = type(evaluator)(Limits(expression_chars=20))  # type: ignore[call-arg]
    assert small.evaluate("a == a", {}) is True
    with pytest.raises(ExpressionError) as info:
        small.evaluate("tasks.a.phase == 'Succeeded'", {})
    assert "is 28, over the limit of 20 (raise it with AETHER_LIMIT_EXPRESSION_CHARS)" in str(info.value)


@pytest.mark.parametrize(
    ("expr", "env"),
    [
        ("1e308 * 10", {}),
        ("-1e308 * 10", {}),
        ("1e308 + 1e308", {}),
        ("[1, 1e308 * 10]", {}),
        ("x", {"x": float("inf")}),
        ("x", {"x": [1, {"y": float("nan")}]}),
        ("[x]", {"x": float("-inf")}),
    ],
)
def test_results_json_cannot_carry_are_refused(expr: str, env: dict[str, Any]) -> None:
    with pytest.raises(ExpressionError) as info:
        SE.evaluate(expr, env)
    message = str(info.value)
    assert message.startswith(f"invalid expression {expr!r}".replace("'", '"'))
    assert "out of range" in message or "not a finite number" in message


def test_integers_beyond_64_bits_become_floats() -> None:
    assert SE.evaluate("2 ** 100", {}) == float(2**100)
    assert SE.evaluate("99999999999999999999999", {}) == 1e23
    assert SE.evaluate("2 ** 62", {}) == 2**62


def test_tree_size_is_bounded_even_with_a_raised_length_limit() -> None:
    roomy = SimpleEvalEvaluator(Limits(expression_chars=100_000))
    fits = MAX_NODES // 2 - 10  # each element is a name and its load context
    assert len(roomy.evaluate("[" + ", ".join(["1"] * fits) + "]", {})) == fits
    with pytest.raises(ExpressionError, match="syntax nodes"):
        roomy.evaluate("[" + ", ".join(["1"] * MAX_NODES) + "]", {})


def test_the_same_expression_is_parsed_once() -> None:
    parse = evaluator_simpleeval._parse
    expression = " or ".join(["tasks.a.phase == Succeeded"] * 100) + " or cache-probe"
    before = parse.cache_info().misses
    for index in range(150):
        assert SE.evaluate(expression, {"tasks.a.phase": "Failed" if index else "Succeeded"}) is (index == 0)
    assert parse.cache_info().misses == before + 1
