"""Phases of workflow and task runs, the kinds of template, and the executor result codes (Aether's
model/phase.go)."""

from __future__ import annotations

from enum import IntEnum, StrEnum


class Phase(StrEnum):
    CREATED = "Created"
    READY = "Ready"
    RUNNING = "Running"
    SUSPENDED = "Suspended"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    ERROR = "Error"
    TIMEOUT = "Timeout"
    SKIPPED = "Skipped"
    CANCELLED = "Cancelled"


# The short names the code reads phases by (`ph.RUNNING`).
CREATED = Phase.CREATED
READY = Phase.READY
RUNNING = Phase.RUNNING
SUSPENDED = Phase.SUSPENDED
SUCCEEDED = Phase.SUCCEEDED
FAILED = Phase.FAILED
ERROR = Phase.ERROR
TIMEOUT = Phase.TIMEOUT
SKIPPED = Phase.SKIPPED
CANCELLED = Phase.CANCELLED

ALL_PHASES: tuple[str, ...] = tuple(Phase)
TERMINAL: frozenset[str] = frozenset({SUCCEEDED, FAILED, ERROR, TIMEOUT, SKIPPED, CANCELLED})


class TemplateType(StrEnum):
    """What a template (and so a task run made from it) is: a leaf the workers run, or a container."""

    TASK = "task"
    DAG = "dag"
    LOOP = "loop"


class ResultCode(IntEnum):
    """What an executor's result says happened; the engine reads any other code as an Error."""

    SUCCEEDED = 0
    SUSPENDED = 1
    FAILED = 2
    ERROR = 3
    TIMEOUT = 4


_CODE_PHASES: dict[int, Phase] = {
    ResultCode.SUCCEEDED: SUCCEEDED,
    ResultCode.SUSPENDED: SUSPENDED,
    ResultCode.FAILED: FAILED,
    ResultCode.ERROR: ERROR,
    ResultCode.TIMEOUT: TIMEOUT,
}


def is_terminal(phase: str) -> bool:
    return phase in TERMINAL


def code_to_phase(code: int) -> Phase:
    """Executor return code to phase; unknown codes are errors."""
    return _CODE_PHASES.get(code, ERROR)
