"""Planned failures for the in-memory adapters, so a caller's failure paths can be tested without a server."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(slots=True)
class _Fault:
    remaining: int
    error: BaseException
    landed: bool
    match: Callable[[Any], bool] | None


class Faults:
    """What an in-memory adapter shares for fault injection: `fail_next`, checked by each faultable method."""

    FAULTABLE: ClassVar[frozenset[str]] = frozenset()
    """The names of the methods `fail_next` can make fail."""

    def __init__(self) -> None:
        self._faults: dict[str, list[_Fault]] = {}

    def fail_next(
        self,
        operation: str,
        n: int = 1,
        error: BaseException | None = None,
        *,
        landed: bool = False,
        match: Callable[[Any], bool] | None = None,
    ) -> None:
        """Make the next `n` calls of the method `operation` raise `error` (default `ConnectionError`).

        `landed=True` lets the call take effect before it raises, as when an acknowledgement is lost: the
        caller cannot tell, and must retry safely. `match`, given the call's first argument (the commit, run
        id, assignments, reports...), limits the failure to the calls it accepts; others go through. Faults
        planned for one operation are met in the order they were planned.
        """
        if operation not in self.FAULTABLE:
            raise ValueError(f"{type(self).__name__} cannot fail {operation!r}; it can fail {sorted(self.FAULTABLE)}")
        if n < 1:
            raise ValueError(f"fail_next needs n >= 1, got {n}")
        failure = error if error is not None else ConnectionError(f"injected failure of {operation}")
        self._faults.setdefault(operation, []).append(_Fault(n, failure, landed, match))

    def heal(self) -> None:
        """Forget every planned failure not met yet: the fault is over."""
        self._faults.clear()

    def _fault(self, operation: str, subject: Any) -> BaseException | None:
        """Raise the planned failure this call meets, or return it if it is to be raised once the call landed."""
        planned = self._faults.get(operation, [])
        for fault in planned:
            if fault.match is None or fault.match(subject):
                fault.remaining -= 1
                if fault.remaining == 0:
                    planned.remove(fault)
                error = fault.error.with_traceback(None)
                if fault.landed:
                    return error
                raise error
        return None
