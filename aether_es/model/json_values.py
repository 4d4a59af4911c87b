"""Numbers JSON cannot carry, found before they reach an event.

orjson writes `inf`, `-inf` and `nan` as `null` and refuses integers beyond 64 bits, so such a value held in
memory would make what a decision saw differ from what its log holds (and replay differ from live). Every
place a value enters (documents, resume payloads, worker results, expression results) refuses them by name.
"""

from __future__ import annotations

import math
from typing import Any

INT_MIN = -(2**63)
INT_MAX = 2**64 - 1
"""The integers orjson encodes (signed and unsigned 64 bits); Aether's numbers are float64 anyway."""


def number_problem(value: Any, path: str = "") -> str | None:
    """Where in `value` the first number JSON cannot carry is, and why; None when there is none.

    `path` names `value` itself (`spec.arguments`); items are named `path[0]` and `path.key`. Walks with an
    explicit stack, so a deeply nested value cannot exhaust the recursion limit.
    """
    stack: list[tuple[str, Any]] = [(path, value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return f"{where or 'value'}: {item} is not a finite number, and JSON cannot carry it"
        if isinstance(item, int) and not isinstance(item, bool) and not INT_MIN <= item <= INT_MAX:
            return f"{where or 'value'}: integer {_digits(item)} is beyond 64 bits, and JSON cannot carry it"
        if isinstance(item, dict):
            stack.extend((f"{where}.{key}" if where else str(key), child) for key, child in reversed(item.items()))
        elif isinstance(item, list | tuple):
            stack.extend((f"{where}[{index}]", child) for index, child in reversed(list(enumerate(item))))
    return None


def _digits(number: int) -> str:
    """A huge integer's sign and digit count, not its digits (printing them is itself costly)."""
    return f"{'-' if number < 0 else ''}({number.bit_length()} bits)"
