"""What can make the engine decide something about a run: commands and reports, as plain data."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aether_es.model.documents import Workflow
from aether_es.ports.wire import TaskResult


@dataclass(frozen=True, slots=True)
class Trigger:
    """`actor` says who caused it (user, worker, watcher, engine); `cause` identifies it in the history."""

    actor: str
    cause: str
    at: str
    reason: str = field(default="", kw_only=True)
    """Why, when a person gave a reason for a command; recorded with the events it causes."""


@dataclass(frozen=True, slots=True)
class Submit(Trigger):
    document: dict[str, Any]
    cron_id: str = ""
    workflow: Workflow | None = None
    """The document already defaulted and validated by the caller, so the decider need not do it again."""


@dataclass(frozen=True, slots=True)
class Started(Trigger):
    task_id: str
    attempt: int


@dataclass(frozen=True, slots=True)
class Completed(Trigger):
    task_id: str
    attempt: int
    result: TaskResult
    started_at: str = ""
    """When the attempt started, if the worker did not report the start on its own (a short task)."""


@dataclass(frozen=True, slots=True)
class NoWorker(Trigger):
    """No live worker serves the executor type of a dispatched attempt."""

    task_id: str
    attempt: int
    executor_type: str


@dataclass(frozen=True, slots=True)
class TaskTimeout(Trigger):
    task_id: str
    attempt: int


@dataclass(frozen=True, slots=True)
class RetryDue(Trigger):
    """The backoff after the failed `attempt` has passed: its retry may be dispatched."""

    task_id: str
    attempt: int


@dataclass(frozen=True, slots=True)
class WorkflowTimeout(Trigger):
    pass


@dataclass(frozen=True, slots=True)
class Resume(Trigger):
    task_id: str
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Cancel(Trigger):
    pass


@dataclass(frozen=True, slots=True)
class RetryRun(Trigger):
    """Run a finished run's failed steps again; `task_ids` narrows it to those task runs (default: all)."""

    task_ids: tuple[str, ...] = ()
    from_task: str = ""
    """Run this task run again even if it succeeded, and everything that depends on it in its DAG."""


@dataclass(frozen=True, slots=True)
class Continue(Trigger):
    """Carry on with work a previous decision left for later: in these containers ("" the run's root) and
    their ancestors, or (None) in the whole run."""

    containers: tuple[str, ...] | None = None
