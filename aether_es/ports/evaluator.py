"""Expression evaluation for `when`, retry expressions, repeat conditions, phaseConditions and valueFrom."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


class ExpressionError(Exception):
    """The expression is invalid or could not be evaluated; the message says why."""


class Evaluator(Protocol):
    def evaluate(self, expression: str, env: Mapping[str, Any]) -> Any:
        """Evaluate against a flat map of dotted names. Raises `ExpressionError`."""
        ...
