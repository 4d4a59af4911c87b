"""The limits that keep one workflow, request or value from jamming the system, in one place.

Each limit has a name, a default, and an environment variable that raises (or lowers) it for every
process that reads it (`serve`, `run`, `worker`, the API). A refusal always says which limit was hit,
by how much, and how to raise it, through `LimitExceeded`. docs/limits.md lists them all.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass

ENV_PREFIX = "AETHER_LIMIT_"

KIB = 1024
MIB = 1024 * KIB


@dataclass(frozen=True)
class Limits:
    document_bytes: int = 4 * MIB
    """A workflow document (submit, run, cron), as JSON."""
    inline_value_bytes: int = 256 * KIB
    """A value (output, input, document) larger than this as JSON travels by reference through the Object
    Store; events, assignments and reports carry its name, size and digest."""
    value_bytes: int = 64 * MIB
    """No single value may be larger than this, by reference or not: its task fails, naming both sizes."""
    artifact_bytes: int = 1024 * MIB
    """One artifact a worker uploads or downloads (a folder as its archive): a larger one fails its attempt,
    naming the artifact and both sizes."""
    tasks_per_run: int = 100_000
    """Task runs one workflow run may create (DAG nodes, loop iterations, retries excluded)."""
    loop_items: int = 100_000
    """Items one loop may iterate over."""
    active_per_scope: int = 1_000
    """Children one DAG or loop keeps unfinished at once; the others start as these finish, so one wide run
    never queues more work ahead of the other runs' than this."""
    expression_chars: int = 4 * KIB
    """The length of one `when` or `valueFrom.expression`."""
    nesting_depth: int = 64
    """How deeply arrays and objects may nest in a document or a value."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Limits:
        """The defaults, each overridden by `AETHER_LIMIT_<NAME>` when set; a bad value is refused by name."""
        environ = os.environ if environ is None else environ
        values: dict[str, int] = {}
        for field in dataclasses.fields(cls):
            variable = env_name(field.name)
            text = environ.get(variable)
            if text is None or not text.strip():
                continue
            try:
                value = int(text.strip().replace("_", ""))
            except ValueError:
                raise ValueError(f"{variable} must be a whole number, got {text!r}") from None
            if value <= 0:
                raise ValueError(f"{variable} must be positive, got {value}")
            values[field.name] = value
        return cls(**values)


def env_name(limit: str) -> str:
    """`document_bytes` is raised by `AETHER_LIMIT_DOCUMENT_BYTES`."""
    return ENV_PREFIX + limit.upper()


class LimitExceeded(ValueError):
    """Something is over a named limit; the message names what, both sizes, and the variable to raise it."""

    def __init__(self, what: str, limit: str, actual: int, allowed: int) -> None:
        self.what = what
        self.limit = limit
        self.actual = actual
        self.allowed = allowed
        unit = " bytes" if limit.endswith("_bytes") else ""
        super().__init__(
            f"{what} is {actual:,}{unit}, over the limit of {allowed:,}{unit} (raise it with {env_name(limit)})"
        )


def check(limits: Limits, limit: str, what: str, actual: int) -> None:
    """Raise `LimitExceeded` when `actual` is over the limit named `limit`."""
    allowed: int = getattr(limits, limit)
    if actual > allowed:
        raise LimitExceeded(what, limit, actual, allowed)


DEFAULT = Limits()
"""The defaults, for code and tests that take no configuration."""
