"""The exit codes of every `aether-es` command, in one place so scripts can rely on them."""

from __future__ import annotations

from aether_es.errors import AetherError, ApiError, NotFoundError

OK = 0
FAILED = 1
"""The system could not be reached, or the command itself failed."""
INVALID = 2
"""Invalid input: a bad document, flag or request, or one the run's state does not allow."""
NOT_FOUND = 3
NOT_SUCCEEDED = 4
"""The run it waited for ended in another phase than Succeeded."""
DIFFERENT = 5
"""Replay verification found rebuilt views that differ from the live ones."""
TIMED_OUT = 6
"""The run waited for had not ended within `--timeout`; it goes on."""


def of_error(exc: AetherError) -> int:
    """The exit code for an error a command reports: not found, unreachable/failed, else invalid input."""
    if isinstance(exc, NotFoundError):
        return NOT_FOUND
    if isinstance(exc, ApiError):
        return FAILED
    return INVALID
