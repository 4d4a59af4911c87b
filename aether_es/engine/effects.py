"""What the runtime must do once a decision's commit is durable. Every effect is safe to repeat."""

from __future__ import annotations

from dataclasses import dataclass

from aether_es.ports.deadlines import Deadline
from aether_es.ports.error_sink import ErrorReport
from aether_es.ports.notifier import HookEvent
from aether_es.ports.wire import TaskAssignment


@dataclass(frozen=True, slots=True)
class DispatchTask:
    assignment: TaskAssignment
    secret_refs: tuple[tuple[str, str, str], ...] = ()
    """(parameter name, secret name, secret key) to resolve into the assignment just before it is sent."""


@dataclass(frozen=True, slots=True)
class CancelTasks:
    task_run_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SetDeadline:
    deadline: Deadline


@dataclass(frozen=True, slots=True)
class ClearDeadlines:
    keys: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Notify:
    event: HookEvent


@dataclass(frozen=True, slots=True)
class ReportError:
    report: ErrorReport


Effect = DispatchTask | CancelTasks | SetDeadline | ClearDeadlines | Notify | ReportError
