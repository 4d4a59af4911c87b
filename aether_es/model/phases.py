"""Phases of workflow and task runs, and the executor code mapping (Aether's model/phase.go)."""

from __future__ import annotations

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

ALL_PHASES = (CREATED, READY, RUNNING, SUSPENDED, SUCCEEDED, FAILED, ERROR, TIMEOUT, SKIPPED, CANCELLED)
TERMINAL = frozenset({SUCCEEDED, FAILED, ERROR, TIMEOUT, SKIPPED, CANCELLED})

_CODE_PHASES = {0: SUCCEEDED, 1: SUSPENDED, 2: FAILED, 3: ERROR, 4: TIMEOUT}


def is_terminal(phase: str) -> bool:
    return phase in TERMINAL


def code_to_phase(code: int) -> str:
    """Executor return code to phase; unknown codes are errors."""
    return _CODE_PHASES.get(code, ERROR)
