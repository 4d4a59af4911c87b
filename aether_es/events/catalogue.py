"""The event catalogue: one class per fact about a workflow run or one of its task runs.

Events are facts, not commands: a projection folds them without re-deciding anything, so replaying the same
history always yields the same views.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from aether_es.events.values import Metrics, ResultOutputs
from aether_es.model.documents import Artifact, Parameter

SCHEMA_VERSION = 2
"""2: TaskRetried names the failed attempt's phase and message `phase` and `message` (see upcasting.py)."""


class Event(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    type: str


# --- workflow run ------------------------------------------------------------------------------------


class RunSubmitted(Event):
    """A workflow was accepted. `workflow` is the document exactly as submitted (before defaults)."""

    type: Literal["RunSubmitted"] = "RunSubmitted"
    workflow: dict[str, Any]
    created_at: str
    deadline: str = ""
    cron_id: str = ""


class RunReady(Event):
    """The first leaf of the run was claimed for dispatch."""

    type: Literal["RunReady"] = "RunReady"


class RunStarted(Event):
    """The first leaf of the run started on a worker."""

    type: Literal["RunStarted"] = "RunStarted"
    started_at: str


class RunFinished(Event):
    """Every top-level task run is terminal; the run's phase is their aggregate."""

    type: Literal["RunFinished"] = "RunFinished"
    phase: str
    message: str = ""
    outputs: ResultOutputs | None = None
    metrics: Metrics


class RunCancelled(Event):
    type: Literal["RunCancelled"] = "RunCancelled"
    message: str
    finished_at: str


class RunTimedOut(Event):
    type: Literal["RunTimedOut"] = "RunTimedOut"
    message: str
    finished_at: str


class RunErrored(Event):
    """The engine could not continue the run (for example a task definition without an executor)."""

    type: Literal["RunErrored"] = "RunErrored"
    message: str
    finished_at: str


# --- task runs ---------------------------------------------------------------------------------------


class TaskCreated(Event):
    """A task run record exists: Created, or Skipped when its `when` condition was false."""

    type: Literal["TaskCreated"] = "TaskCreated"
    task_id: str
    parent_id: str = ""
    depth: int = 0
    scope: str = ""
    task_name: str
    template_name: str = ""
    template_type: str
    phase: str = "Created"
    message: str = ""
    created_at: str
    inputs: list[Parameter] | None = None


class TaskInputsBound(Event):
    """A DAG or loop container's declared inputs were bound from its call site."""

    type: Literal["TaskInputsBound"] = "TaskInputsBound"
    task_id: str
    inputs: list[Parameter]


class TaskDispatched(Event):
    """A leaf was claimed (Ready) and its assignment handed to the broker for this attempt."""

    type: Literal["TaskDispatched"] = "TaskDispatched"
    task_id: str
    attempt: int
    executor_type: str
    inputs: list[Parameter] | None = None
    artifacts: list[Artifact] | None = None
    timeout: str = ""
    deadline: str = ""


class TaskReady(Event):
    """A container became Ready because a descendant leaf was claimed."""

    type: Literal["TaskReady"] = "TaskReady"
    task_id: str


class TaskStarted(Event):
    """A leaf started on a worker, or a container because a descendant leaf did."""

    type: Literal["TaskStarted"] = "TaskStarted"
    task_id: str
    attempt: int = 0
    started_at: str


class TaskStartRecorded(Event):
    """A start report for an attempt of a task that stays Suspended (a resumed task re-executing)."""

    type: Literal["TaskStartRecorded"] = "TaskStartRecorded"
    task_id: str
    attempt: int


class TaskNoted(Event):
    """Why a task is waiting, for whoever looks at it (for example: no live worker serves its executor)."""

    type: Literal["TaskNoted"] = "TaskNoted"
    task_id: str
    message: str


class TaskSuspended(Event):
    type: Literal["TaskSuspended"] = "TaskSuspended"
    task_id: str
    attempt: int
    message: str = ""
    outputs: ResultOutputs


class TaskResumed(Event):
    """A suspended task was resumed: its inputs now include the payload and it is dispatched again."""

    type: Literal["TaskResumed"] = "TaskResumed"
    task_id: str
    attempt: int
    inputs: list[Parameter]
    payload_keys: list[str] = Field(default_factory=list)


class TaskRetried(Event):
    """A failed attempt will be retried: the record returns to Created with one more retry counted.

    With a retry backoff (an extension), `not_before` says when the retry may be dispatched and the record
    waits in Created until then; without one it is "" and the retry is dispatched in the same decision."""

    type: Literal["TaskRetried"] = "TaskRetried"
    task_id: str
    attempt: int
    retry_count: int
    phase: str
    """The failed attempt's phase."""
    message: str = ""
    """The failed attempt's message."""
    not_before: str = ""
    retry_limit: int = 0
    """The policy's `retry.limit`, recorded with a backoff so the waiting record can say how far it is."""


class TaskFinished(Event):
    """A task run reached a terminal phase through its own result or its container's finalization."""

    type: Literal["TaskFinished"] = "TaskFinished"
    task_id: str
    attempt: int = 0
    phase: str
    message: str = ""
    outputs: ResultOutputs | None = None
    metrics: Metrics | None = None


class TaskCancelled(Event):
    type: Literal["TaskCancelled"] = "TaskCancelled"
    task_id: str
    message: str


class TaskTimedOut(Event):
    """A task run stopped because its workflow's deadline passed."""

    type: Literal["TaskTimedOut"] = "TaskTimedOut"
    task_id: str
    message: str


class TaskErrored(Event):
    type: Literal["TaskErrored"] = "TaskErrored"
    task_id: str
    message: str


class RunReopened(Event):
    """A finished run runs again from its failed steps (`aether-es retry`); what succeeded is kept. Why is
    the envelope's `reason`."""

    type: Literal["RunReopened"] = "RunReopened"
    deadline: str = ""


class TaskReset(Event):
    """A finished task run runs again with the run's retry: a leaf back to Created (its next attempt counted as
    one more retry), a container back to Running; its result is cleared."""

    type: Literal["TaskReset"] = "TaskReset"
    task_id: str
    phase: str
    retry_count: int = 0


class TaskSuperseded(Event):
    """A finished DAG node's record is replaced by a new one when a run is retried from a step it depends on:
    kept as history, it no longer counts in its scope, and the node is created again once it is eligible."""

    type: Literal["TaskSuperseded"] = "TaskSuperseded"
    task_id: str


AnyEvent = (
    RunSubmitted
    | RunReopened
    | TaskReset
    | TaskSuperseded
    | RunReady
    | RunStarted
    | RunFinished
    | RunCancelled
    | RunTimedOut
    | RunErrored
    | TaskCreated
    | TaskInputsBound
    | TaskDispatched
    | TaskReady
    | TaskStarted
    | TaskStartRecorded
    | TaskNoted
    | TaskSuspended
    | TaskResumed
    | TaskRetried
    | TaskFinished
    | TaskCancelled
    | TaskTimedOut
    | TaskErrored
)
