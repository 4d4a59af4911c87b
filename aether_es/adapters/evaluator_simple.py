"""Aether playground's SimpleEvaluator: `true`, `false`, `a == b` and `a != b` over a flat env.

The conformance examples were recorded against this evaluator, so its quirks are kept on purpose:
unknown names are their own literal text, `==` wins over `!=` wherever it appears, and operands are
compared by their Go `%v` text (so the float 2.0 equals the literal `2`). The one addition: an expression
longer than `Limits.expression_chars` is refused, as by every evaluator.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aether_es.limits import LimitExceeded, Limits, check
from aether_es.model.gofmt import go_quote, go_sprint
from aether_es.ports.evaluator import ExpressionError

__all__ = ["SimpleEvaluator"]

# Go's unicode.IsSpace set, used by strings.TrimSpace (Python's str.strip also trims \x1c-\x1f).
_GO_SPACE = (
    "\t\n\v\f\r \x85\xa0\u1680"
    "\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)


def _trim(text: str) -> str:
    return text.strip(_GO_SPACE)


class SimpleEvaluator:
    """Implements `ports.evaluator.Evaluator`; returns a bool or raises `ExpressionError`.

    `limits` defaults to `Limits.from_env()`, as the engine's does.
    """

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits if limits is not None else Limits.from_env()

    def evaluate(self, expression: str, env: Mapping[str, Any]) -> Any:
        try:
            check(self.limits, "expression_chars", "the expression", len(expression))
        except LimitExceeded as exc:
            raise ExpressionError(f"expression {go_quote(expression[:60] + '…')} refused: {exc}") from None
        expr = _trim(expression)
        if expr == "true":
            return True
        if expr == "false":
            return False
        for operator in ("==", "!="):
            left, found, right = expr.partition(operator)
            if found:
                equal = go_sprint(_resolve(left, env)) == go_sprint(_resolve(right, env))
                return equal if operator == "==" else not equal
        raise ExpressionError(f"unsupported expression: {expr}")


def _resolve(token: str, env: Mapping[str, Any]) -> Any:
    """A quoted literal's inner text, else the env value for the key, else the token as a string.

    The env may be lazy, so it is only probed with `in` and `[]`, never iterated.
    """
    token = _trim(token)
    if len(token) >= 2 and token[0] == token[-1] and token[0] in "'\"":
        return token[1:-1]
    if token in env:
        return env[token]
    return token
