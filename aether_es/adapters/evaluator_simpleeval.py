"""A richer expression evaluator built on `simpleeval`, a superset of Aether's conformance subset.

`SimpleEvalEvaluator` accepts everything the conformance `SimpleEvaluator` accepts with the same meaning
(bare dotted names looked up in the flat env, unknown bare words as their own text, quoted literals without
escapes, `true`/`false`, `==`/`!=` over Go `%v` text) and adds `and`/`or`/`not` (also `&&`, `||`, `!`),
`<`, `<=`, `>`, `>=`, `in`/`not in`, parentheses, list literals, `+ - * / % **` on numbers and `len(x)`.

The expression text is first scanned by this module, not by Python: every quoted literal, number and bare
(dotted, possibly hyphenated) word is replaced by a generated placeholder name, so `tasks.build-image.phase`
is one env key and never attribute access or subtraction. Only the operator characters `()[],+-*/%<>=!&|`
and whitespace may appear outside literals and words. The rewritten text is parsed with `ast` and walked by
a restricted `simpleeval.SimpleEval`: no attribute access, no subscripts, no comprehensions, no calls except
the whitelist (`len`), bounded expression length (`Limits.expression_chars`), node count, nesting depth and
number size. A result that JSON cannot carry (inf, nan, an integer beyond 64 bits, anywhere inside a list or
map too) is refused, so what a decision saw is what its log holds. Parsed expressions are cached, so the same
long expression evaluated for many tasks is scanned and parsed once. Every failure, including errors raised
by the env itself, surfaces as `ExpressionError` naming the expression.

See docs/expressions.md for the full language and where each evaluator is used.
"""

from __future__ import annotations

import ast
import functools
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import simpleeval

from aether_es.limits import LimitExceeded, Limits, check
from aether_es.model.gofmt import go_quote, go_sprint, is_truthy
from aether_es.model.json_values import INT_MAX, INT_MIN, number_problem
from aether_es.ports.evaluator import ExpressionError

__all__ = [
    "FUNCTIONS",
    "MAX_DEPTH",
    "MAX_NODES",
    "SimpleEvalEvaluator",
]

MAX_DEPTH = 64
"""Deepest accepted syntax tree (nested parentheses, operators, calls)."""

MAX_NODES = 2048
"""Most syntax tree nodes one expression may have: evaluation cost stays bounded even with a raised length
limit."""

PARSED_CACHE = 1024
"""Distinct expressions whose parsed form is kept (the documents of a busy engine repeat a few of them)."""

_MAX_MAGNITUDE = 1e308  # results beyond Go's float64 range are rejected (keeps ints small and printable)

# Go's unicode.IsSpace set (Go's strings.TrimSpace), normalised to plain spaces outside literals.
_GO_SPACE = frozenset(
    "\t\n\v\f\r \x85\xa0\u1680"
    "\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)
_OPERATOR_CHARS = frozenset("()[],+-*/%<>=")
_KEYWORDS = frozenset({"and", "or", "not", "in"})
_BOOLS = {"true": True, "false": False}

# A bare word: a letter or `_`, then word characters; `.` or `-` followed by a word character continues it.
_WORD = re.compile(r"[^\W\d]\w*(?:[.-]\w+)*")
# A word that starts with a digit but is not a number (`1.2.3`, `2abc`): also a bare word.
_DIGIT_WORD = re.compile(r"\w+(?:[.-]\w+)*")
_NUMBER = re.compile(r"\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")
_NUMBER_TEXT = re.compile(r"\s*[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?\s*")
_CONTINUES_WORD = re.compile(r"\.?\w")


class _Fail(Exception):
    """An evaluation error with a user-facing reason (wrapped into ExpressionError by `evaluate`)."""


@dataclass(frozen=True, slots=True)
class _Literal:
    value: Any


@dataclass(frozen=True, slots=True)
class _Ref:
    name: str


def _len(value: Any) -> int:
    if isinstance(value, str | list | tuple | dict):
        return len(value)
    raise _Fail(f"len() needs a string, list or map, got {go_sprint(value)!r}")


FUNCTIONS: dict[str, Callable[[Any], Any]] = {"len": _len}
"""The only callable names: `len(x)` gives the character count of a string or the size of a list or map."""


class SimpleEvalEvaluator:
    """Implements `ports.evaluator.Evaluator` with simpleeval; returns the expression's value.

    Thread-safe; each call builds its own interpreter over a cached parse. The env is only probed with `in`
    and `[]`, never iterated. `limits` defaults to `Limits.from_env()`, as the engine's does.
    """

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits if limits is not None else Limits.from_env()

    def evaluate(self, expression: str, env: Mapping[str, Any]) -> Any:
        try:
            if not isinstance(expression, str):
                raise _Fail(f"expression must be a string, got {type(expression).__name__}")
            check(self.limits, "expression_chars", "the expression", len(expression))
            text, slots, tree = _parse(expression)
            result = _Interpreter(slots, env).eval(text, previously_parsed=tree)
            problem = number_problem(result, "result")
            if problem is not None:
                raise _Fail(problem)
            return result
        except (_Fail, LimitExceeded) as exc:
            reason = str(exc)
        except simpleeval.InvalidExpression as exc:
            reason = str(exc)
        except RecursionError:
            reason = "expression too deeply nested"
        except ZeroDivisionError:
            reason = "division by zero"
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"
        raise ExpressionError(_message(expression, reason))


def _message(expression: Any, reason: str) -> str:
    shown = expression if isinstance(expression, str) else repr(expression)
    if len(shown) > 200:
        shown = shown[:200] + "…"
    return f"invalid expression {go_quote(shown)}: {' '.join(reason.split())}"


@functools.lru_cache(maxsize=PARSED_CACHE)
def _parse(expression: str) -> tuple[str, Mapping[str, _Literal | _Ref], ast.expr]:
    """The placeholder text, its slots and its checked syntax tree (shared read-only between calls)."""
    text, slots = _scan(expression)
    if not text.strip():
        raise _Fail("empty expression")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise _Fail(f"syntax error: {exc.msg}") from None
    _check_tree(tree.body)
    return text, slots, tree.body


def _scan(expression: str) -> tuple[str, dict[str, _Literal | _Ref]]:
    """Rewrite the text into Python syntax whose only names are placeholders for literals and words."""
    out: list[str] = []
    slots: dict[str, _Literal | _Ref] = {}

    def slot(entry: _Literal | _Ref) -> None:
        name = f"_v{len(slots)}"
        slots[name] = entry
        out.append(f" {name} ")

    i, n = 0, len(expression)
    while i < n:
        ch = expression[i]
        if ch in ("'", '"'):
            end = expression.find(ch, i + 1)
            if end < 0:
                raise _Fail(f"unterminated quoted literal starting at offset {i}")
            slot(_Literal(expression[i + 1 : end]))  # no escape sequences, as in Aether
            i = end + 1
        elif ch in _GO_SPACE:
            out.append(" ")
            i += 1
        elif expression.startswith("&&", i):
            out.append(" and ")
            i += 2
        elif expression.startswith("||", i):
            out.append(" or ")
            i += 2
        elif ch == "!" and not expression.startswith("!=", i):
            out.append(" not ")
            i += 1
        elif ch == "!":
            out.append("!=")
            i += 2
        elif ch in _OPERATOR_CHARS:
            out.append(ch)
            i += 1
        elif ch.isdecimal():
            number = _NUMBER.match(expression, i)
            if number and not _CONTINUES_WORD.match(expression, number.end()):
                slot(_Literal(_parse_number(number.group())))
                i = number.end()
            else:
                word = _DIGIT_WORD.match(expression, i)
                assert word is not None  # a digit is a word character
                slot(_Ref(word.group()))
                i = word.end()
        elif (word := _WORD.match(expression, i)) is not None:
            text = word.group()
            if text in _KEYWORDS:
                out.append(f" {text} ")
            elif text in _BOOLS:
                slot(_Literal(_BOOLS[text]))
            else:
                slot(_Ref(text))
            i = word.end()
        else:
            raise _Fail(f"unexpected character {go_quote(ch)} at offset {i}")
    return "".join(out), slots


def _parse_number(text: str) -> int | float:
    value: int | float = int(text) if text.isdecimal() and len(text) <= 400 else float(text)
    if not math.isfinite(value):
        raise _Fail(f"number {text[:20]} out of range")
    return _bounded(value)


def _bounded(value: Any) -> Any:
    """A real number within float64 range (inf and nan included in what is refused); an integer beyond 64
    bits becomes the float Go would hold, so JSON can carry it."""
    if isinstance(value, complex):
        raise _Fail("result is not a real number")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    if not math.isfinite(value) or abs(value) > _MAX_MAGNITUDE:
        raise _Fail("number out of range")
    if isinstance(value, int) and not INT_MIN <= value <= INT_MAX:
        return float(value)
    return value


def _check_tree(root: ast.AST) -> None:
    """Refuse trees deeper than `MAX_DEPTH` or larger than `MAX_NODES`."""
    stack = [(root, 1)]
    nodes = 0
    while stack:
        node, depth = stack.pop()
        nodes += 1
        if nodes > MAX_NODES:
            raise _Fail(f"more than {MAX_NODES} syntax nodes")
        if depth > MAX_DEPTH:
            raise _Fail(f"nested deeper than {MAX_DEPTH} levels")
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))


def _resolve(name: str, env: Mapping[str, Any]) -> Any:
    """The env value for a bare word: the full dotted key, else the longest dotted prefix that is a key with
    the remaining segments looked up inside its (map or list) value, else the word's own text."""
    if name in env:
        return env[name]
    parts = name.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        prefix = ".".join(parts[:cut])
        if prefix in env:
            found, value = _walk(env[prefix], parts[cut:])
            return value if found else name
    return name


def _walk(value: Any, segments: list[str]) -> tuple[bool, Any]:
    for segment in segments:
        if isinstance(value, dict) and segment in value:
            value = value[segment]
        elif isinstance(value, list) and segment.isdigit() and int(segment) < len(value):
            value = value[int(segment)]
        else:
            return False, None
    return True, value


def _number(value: Any) -> int | float | None:
    """A number, or a string that spells one; else None (bools are not numbers)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    if isinstance(value, str) and len(value) <= 400 and _NUMBER_TEXT.fullmatch(value):
        text = value.strip()
        return int(text) if text.lstrip("+-").isdecimal() else float(text)
    return None


def _numbers(op: str, left: Any, right: Any) -> tuple[int | float, int | float]:
    a, b = _number(left), _number(right)
    if a is None or b is None:
        raise _Fail(f"operator {op} needs numbers, got {go_sprint(left)!r} and {go_sprint(right)!r}")
    return a, b


def _arith(op: str, fn: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def apply(left: Any, right: Any) -> Any:
        a, b = _numbers(op, left, right)
        return _bounded(fn(a, b))

    return apply


def _mod(a: int | float, b: int | float) -> int | float:
    """Go's remainder: the sign follows the dividend."""
    if isinstance(a, int) and isinstance(b, int):
        if b == 0:
            raise ZeroDivisionError
        rest = abs(a) % abs(b)
        return -rest if a < 0 else rest
    if b == 0:
        raise ZeroDivisionError
    return math.fmod(a, b)


def _power(a: int | float, b: int | float) -> int | float:
    if abs(b) > simpleeval.MAX_POWER:
        raise _Fail(f"exponent {go_sprint(b)} is larger than {simpleeval.MAX_POWER}")
    if b > 0 and abs(a) > 1 and b * math.log10(abs(a)) > 308:
        raise _Fail("number out of range")
    result: int | float = simpleeval.safe_power(a, b)
    return result


def _order(op: str, fn: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def compare(left: Any, right: Any) -> bool:
        a, b = _number(left), _number(right)
        if a is not None and b is not None:
            return fn(a, b)
        if isinstance(left, str) and isinstance(right, str):
            return fn(left, right)
        raise _Fail(f"operator {op} cannot compare {go_sprint(left)!r} with {go_sprint(right)!r}")

    return compare


def _equal(left: Any, right: Any) -> bool:
    return go_sprint(left) == go_sprint(right)


def _contains(item: Any, container: Any) -> bool:
    if isinstance(container, str):
        return go_sprint(item) in container
    text = go_sprint(item)
    if isinstance(container, list | tuple):
        return any(go_sprint(element) == text for element in container)
    if isinstance(container, dict):
        return any(go_sprint(key) == text for key in container)
    raise _Fail(f"operator in needs a string, list or map on the right, got {go_sprint(container)!r}")


def _negate(value: Any) -> Any:
    a = _number(value)
    if a is None:
        raise _Fail(f"unary - needs a number, got {go_sprint(value)!r}")
    return -a


def _plus(value: Any) -> Any:
    a = _number(value)
    if a is None:
        raise _Fail(f"unary + needs a number, got {go_sprint(value)!r}")
    return a


_OPERATORS: dict[type, Callable[..., Any]] = {
    ast.Add: _arith("+", lambda a, b: a + b),
    ast.Sub: _arith("-", lambda a, b: a - b),
    ast.Mult: _arith("*", lambda a, b: a * b),
    ast.Div: _arith("/", lambda a, b: a / b),
    ast.Mod: _arith("%", _mod),
    ast.Pow: _arith("**", _power),
    ast.Eq: _equal,
    ast.NotEq: lambda a, b: not _equal(a, b),
    ast.Lt: _order("<", lambda a, b: a < b),
    ast.LtE: _order("<=", lambda a, b: a <= b),
    ast.Gt: _order(">", lambda a, b: a > b),
    ast.GtE: _order(">=", lambda a, b: a >= b),
    ast.In: _contains,
    ast.NotIn: lambda a, b: not _contains(a, b),
    ast.Not: lambda a: not is_truthy(a),
    ast.USub: _negate,
    ast.UAdd: _plus,
}


class _Interpreter(simpleeval.SimpleEval):
    """simpleeval restricted to the node types the scanner can produce and this language allows."""

    def __init__(self, slots: Mapping[str, _Literal | _Ref], env: Mapping[str, Any]) -> None:
        super().__init__(operators=dict(_OPERATORS), functions=dict(FUNCTIONS), names={})
        self._slots = slots
        self._env = env
        self.nodes = {
            ast.Name: self._eval_name,
            ast.UnaryOp: self._eval_unaryop,
            ast.BinOp: self._eval_binop,
            ast.BoolOp: self._eval_boolop,
            ast.Compare: self._eval_compare,
            ast.Call: self._eval_call,
            ast.List: self._eval_list,
            ast.Tuple: self._eval_list,
        }

    def _eval_name(self, node: ast.Name) -> Any:
        entry = self._slots.get(node.id)
        if isinstance(entry, _Literal):
            return entry.value
        if isinstance(entry, _Ref):
            return _resolve(entry.name, self._env)
        raise _Fail(f"unknown name {node.id}")

    def _eval_boolop(self, node: ast.BoolOp) -> bool:
        want = isinstance(node.op, ast.Or)  # `or` stops at the first truthy value, `and` at the first falsy
        for value in node.values:
            if is_truthy(self._eval(value)) == want:
                return want
        return not want

    def _eval_compare(self, node: ast.Compare) -> bool:
        left = self._eval(node.left)
        for operation, comparator in zip(node.ops, node.comparators, strict=True):
            operator = self.operators.get(type(operation))
            if operator is None:
                raise _Fail(f"operator {type(operation).__name__} is not supported")
            right = self._eval(comparator)
            if not operator(left, right):
                return False
            left = right
        return True

    def _eval_call(self, node: ast.Call) -> Any:
        entry = self._slots.get(node.func.id) if isinstance(node.func, ast.Name) else None
        name = entry.name if isinstance(entry, _Ref) else None
        if name is None or name not in self.functions:
            raise _Fail(f"only these functions can be called: {', '.join(sorted(self.functions))}")
        if node.keywords or len(node.args) != 1:
            raise _Fail(f"{name}() takes exactly one argument")
        return self.functions[name](self._eval(node.args[0]))

    def _eval_list(self, node: ast.List | ast.Tuple) -> list[Any]:
        return [self._eval(element) for element in node.elts]
