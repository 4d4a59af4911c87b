"""Where the engine reports problems that must not change scheduling."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Protocol


class Severity(IntEnum):
    INFO = 0
    WARNING = 1
    ERROR = 2
    CRITICAL = 3


@dataclass(frozen=True, slots=True)
class ErrorReport:
    operation: str
    message: str
    severity: Severity
    workflow_run_id: str = ""
    task_run_id: str = ""
    id: str = ""
    """Set when the report comes from a commit's outbox: the same for every repeat of it, so a sink can
    recognise a report delivered again after a crash."""


class ErrorSink(Protocol):
    async def on_error(self, report: ErrorReport) -> None: ...
