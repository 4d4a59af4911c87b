"""Where two JSON views differ, as JSON paths with both values: for replay verification and conformance."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

_ABSENT = "<absent>"


@dataclass(frozen=True, slots=True)
class Difference:
    path: str
    left: Any
    right: Any

    def __str__(self) -> str:
        return f"{self.path}: {self.left!r} != {self.right!r}"


def differences(left: Any, right: Any, path: str = "$") -> Iterator[Difference]:
    """Every place two decoded JSON documents differ, depth first, in the left document's key order."""
    if isinstance(left, dict) and isinstance(right, dict):
        for key in list(left) + [k for k in right if k not in left]:
            if key not in left or key not in right:
                yield Difference(f"{path}.{key}", left.get(key, _ABSENT), right.get(key, _ABSENT))
            else:
                yield from differences(left[key], right[key], f"{path}.{key}")
        return
    if isinstance(left, list) and isinstance(right, list):
        if len(left) != len(right):
            yield Difference(f"{path} (length)", len(left), len(right))
        for index, (a, b) in enumerate(zip(left, right, strict=False)):
            yield from differences(a, b, f"{path}[{index}]")
        return
    if type(left) is not type(right) or left != right:
        yield Difference(path, left, right)
