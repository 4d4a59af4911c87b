"""Messages that cross process boundaries between the engine and workers.

A task assignment is "fat": it carries everything a worker needs, so a worker never reads engine state.
Reports flow back at least once; `attempt` lets the engine recognise a late or duplicated report.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr
from pydantic.alias_generators import to_camel

from aether_es.model.documents import ArtifactSource


class WireModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class WireParameter(WireModel):
    """A resolved parameter: name, type and a JSON value (absent when unresolved)."""

    name: StrictStr
    type: StrictStr = ""
    value: Any = None
    secret: bool = False
    """Resolved from a secret: workers must keep its value out of anything they report."""


class WireArtifact(WireModel):
    """An artifact: where it is stored (`source`: type and config), where it goes in the attempt's work
    directory (`path`, relative to it; on a staged input, the local path), whether it is a folder packed as a
    tar archive (`archive`), whether an output may be missing (`optional`), and an input's expected `digest`."""

    name: str
    source: dict[str, Any] | None = None
    path: str = ""
    archive: str = ""
    optional: bool = False
    digest: str = ""


class TaskAssignment(WireModel):
    task_run_id: str = Field(alias="taskRunID")
    workflow_run_id: str = Field(alias="workflowRunID")
    task_name: str
    template_name: str = ""
    executor_type: str
    attempt: int
    inputs: list[WireParameter] = Field(default_factory=list)
    timeout: str = ""
    resources: dict[str, Any] | None = None
    priority: int = 0
    retry_count: int = 0
    artifacts: list[WireArtifact] = Field(default_factory=list)
    """Input artifacts, resolved to where they are stored; the worker downloads them and fills `path`."""
    output_artifacts: list[WireArtifact] = Field(default_factory=list)
    """Declared output artifacts and where to store them; the executor returns `{name, path}` for each."""
    workdir: str = ""
    """Set by the worker: this attempt's own directory, where input artifacts were downloaded."""
    config: dict[str, Any] | None = None
    """The task definition's `executor.config`, its strings interpolated from the task's recorded inputs (never
    logged); strings naming a secret input, and keys that choose the code that runs, are left as written."""
    templates: list[list[str | int]] = Field(default_factory=list)
    """Where in `config` the strings left as written for a secret input are: the worker fills exactly those, in
    one pass from all inputs, so no value's text is ever interpolated twice."""
    resumed_with: list[str] | None = None
    """On an attempt dispatched by a resume: the resume payload's keys (possibly none); None on other attempts."""
    traceparent: str = ""
    """The run's W3C trace context while tracing is on, so the worker's span of this attempt joins the run's trace."""


class ResultArtifact(WireModel):
    """An artifact a result names: as the executor made it (`path`, relative to the attempt's workdir or
    absolute), or once stored (`source`: the repository type and where in it)."""

    name: StrictStr
    path: StrictStr = ""
    source: ArtifactSource | None = None
    size: StrictInt = 0
    digest: StrictStr = ""
    archive: StrictStr = ""
    """`tar` for a folder stored as a tar archive."""


class TaskResult(WireModel):
    """An executor's result, Aether's ExecOutputs: 0 success, 1 suspended, 2 failed, 3 error, 4 timeout.

    Strict where the engine relies on a type: a report that does not fit is refused when it is read, never
    half-decided."""

    code: StrictInt = 0
    message: StrictStr = ""
    parameters: list[WireParameter] = Field(default_factory=list)
    artifacts: list[ResultArtifact] = Field(default_factory=list)


ReportKind = Literal["started", "completed", "task-timeout", "workflow-timeout", "retry-due"]
"""`retry-due`: the backoff after a failed attempt (`attempt`) has passed, so its retry may be dispatched."""


class Report(WireModel):
    """A fact reported to the engine by a worker or the timeout watcher (strict like its result)."""

    kind: ReportKind
    run_id: StrictStr = Field(alias="runID")
    task_run_id: StrictStr = Field(default="", alias="taskRunID")
    attempt: StrictInt = 0
    at: StrictStr = ""
    worker_id: StrictStr = Field(default="", alias="workerID")
    result: TaskResult | None = None
    started_at: StrictStr = ""
    """On a completion: when the attempt started, so a task too short to report its start still records it."""

    def dedup_key(self) -> str:
        """Stable identity of this fact, used as the message id so retried publishes deduplicate."""
        if self.kind == "workflow-timeout":
            return f"{self.run_id}.workflow-timeout"
        return f"{self.task_run_id}.{self.attempt}.{self.kind}"
