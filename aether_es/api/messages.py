"""The API's requests and replies: one pydantic model each, JSON with camelCase keys spelt as Aether's views
spell them (`runID`, `taskRunID`, `cronWorkflowID`, `status`), so a reply's field can be sent back as is.

These models are the contract: the service parses requests with them, the client builds requests with them,
and the JSON Schemas in docs/api.md are generated from them. Unknown keys in a request are refused, so a
misspelt key is an `invalid_argument` naming it rather than a silently ignored option; unknown keys in a reply
are ignored, so replies can grow without breaking older clients.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from aether_es.spelling import wire_name

ErrorCode = Literal[
    "invalid_argument", "not_found", "invalid_state", "conflict", "not_supported", "unavailable", "internal"
]

MAX_LIST_LIMIT = 1000
DEFAULT_LIST_LIMIT = 100
MAX_TASK_LIMIT = 10_000
"""Most task records in one page; `runs.get` carries up to this many, as many as its reply has room for."""
DEFAULT_TASK_LIMIT = 1000


class Message(BaseModel):
    model_config = ConfigDict(alias_generator=wire_name, populate_by_name=True, extra="forbid", defer_build=True)

    def to_json(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode()


class Reply(Message):
    """What the engine answers. Keys this client does not know are ignored, so a newer engine that adds a
    field to a reply does not break older clients (requests stay strict)."""

    model_config = ConfigDict(alias_generator=wire_name, populate_by_name=True, extra="ignore", defer_build=True)


class Done(Reply):
    """The reply of a command that has nothing to tell but that it was done."""


Document = dict[str, Any] | str
"""A workflow document as a JSON object, or as a string holding its JSON."""

# --- runs --------------------------------------------------------------------------------------------------


class Audited(Message):
    """Who asks and why: recorded with the events the command causes (`aether-es audit` lists them)."""

    actor: str = Field(default="", max_length=256, description='who asks, recorded as "user:<actor>" ("user" if empty)')
    reason: str = Field(default="", max_length=4096, description="why, recorded with the command's events")


STRICT = (
    "refuse a document with warnings (invalid_argument naming each one's JSON path) instead of accepting it and "
    "listing them in the reply's `warnings`"
)


class SubmitRunRequest(Audited):
    """Start a workflow run. With an idempotency key, repeating the request never starts a second run; the key
    given with another document is a `conflict` naming the run it started."""

    document: Document = Field(description="the aether/v1 Workflow document (an object, or its JSON as a string)")
    idempotency_key: str | None = Field(
        default=None,
        min_length=1,
        max_length=1024,
        description="the same key with the same document always gives the same run id and never a second run",
    )
    strict: bool = Field(default=False, description=STRICT)


class DocumentWarning(Reply):
    """Something a valid document says that Aether will not do: the run starts all the same."""

    path: str = Field(description="where, as a JSON path (spec.templates[0].dag.tasks[1].dependancies)")
    message: str = Field(description="what Aether does with it, and what to write instead")


WARNINGS = (
    "unknown fields, fields Aether ignores where they are, {{...}} left literal in argument values, loop "
    "iterations that lose their values (docs/warnings.md)"
)


class SubmitRunReply(Reply):
    run_id: str
    created: bool = Field(description="false when the idempotency key had already started this run")
    warnings: list[DocumentWarning] = Field(default_factory=list, description=WARNINGS)


class GetRunRequest(Message):
    run_id: str = Field(min_length=1)


class GetRunReply(Reply):
    """A large run's task runs do not all fit in one reply: the rest come from `runs.tasks`."""

    run: dict[str, Any] = Field(
        description="the WorkflowExecution view, with its first task runs (every one unless nextTaskPageToken)"
    )
    next_task_page_token: str = Field(
        default="", description='pass as `pageToken` to `runs.tasks` for the task runs after these; "" if none'
    )


class ListTasksRequest(Message):
    """A run's task records in creation order, one page at a time."""

    run_id: str = Field(min_length=1)
    limit: int = Field(
        default=DEFAULT_TASK_LIMIT, ge=1, le=MAX_TASK_LIMIT, description="most records (fewer if they fill a reply)"
    )
    page_token: str = Field(
        default="", description='`nextTaskPageToken` of `runs.get` or `nextPageToken` of a page; "" from the first'
    )


class ListTasksReply(Reply):
    tasks: list[dict[str, Any]] = Field(description="TaskExecution records, in creation order")
    next_page_token: str = Field(description='pass as `pageToken` for the next page; "" when none follow now')


class ListRunsRequest(Message):
    """Filters combine with AND; `createdAfter` is inclusive, `createdBefore` exclusive."""

    status: str | list[str] | None = Field(
        default=None,
        description="one phase, or any of several; `Suspended` matches the runs with a task waiting to be resumed",
    )
    name: str | None = Field(default=None, description="the workflow's metadata.name")
    labels: dict[str, str] | None = Field(default=None, description="every label given must match")
    cron_workflow_id: str | None = Field(default=None, description="runs started by this CronWorkflow")
    created_after: str | None = Field(default=None, description="RFC3339")
    created_before: str | None = Field(default=None, description="RFC3339")
    limit: int = Field(default=DEFAULT_LIST_LIMIT, ge=1, le=MAX_LIST_LIMIT)
    page_token: str | None = Field(default=None, description="`nextPageToken` of the previous page")


class RunInfo(Reply):
    """A run's summary (what listing needs, without its history)."""

    run_id: str
    name: str
    namespace: str
    status: str
    suspended_tasks: int = Field(default=0, description="how many of its task runs wait to be resumed")
    created_at: str
    finished_at: str = Field(description='"" until the run has finished')
    cron_workflow_id: str = Field(description='"" unless a CronWorkflow started the run')
    labels: dict[str, str]


class ListRunsReply(Reply):
    """Newest first."""

    runs: list[RunInfo]
    next_page_token: str = Field(description='pass as `pageToken` for the next page; "" on the last page')


class ResumeRunRequest(Audited):
    run_id: str = Field(min_length=1)
    task_run_id: str = Field(min_length=1)
    payload: dict[str, Any] | None = None


class CancelRunRequest(Audited):
    run_id: str = Field(min_length=1)


class RetryRunRequest(Audited):
    """Run a finished run's failed task runs again, all of them or the ones named, keeping what succeeded."""

    run_id: str = Field(min_length=1)
    task_run_ids: list[str] = Field(
        default_factory=list, description="only these task runs (default: every failed one)"
    )
    from_task_run_id: str = Field(
        default="", description="run this finished task run again, and every DAG node that depends on it"
    )


class PurgeRunsRequest(Audited):
    """Remove finished runs from the log (retention); recorded, with actor and reason, as a RunsPurged event."""

    run_ids: list[str] = Field(min_length=1, max_length=1000)
    archive: str = Field(default="", description="where the caller archived the histories first, if it did")


class PurgeRunsReply(Reply):
    purge_id: str = Field(description="the retention record's aggregate, `retention.<id>`")


class Empty(Message):
    """No fields (an empty body is accepted too)."""


# --- cron workflows ----------------------------------------------------------------------------------------


class SubmitCronRequest(Audited):
    document: Document = Field(description="the aether/v1 CronWorkflow document")
    strict: bool = Field(default=False, description=STRICT)


class SubmitCronReply(Reply):
    cron_workflow_id: str
    warnings: list[DocumentWarning] = Field(default_factory=list, description=WARNINGS)


class CronIdRequest(Message):
    cron_workflow_id: str = Field(min_length=1)


class GetCronReply(Reply):
    cron: dict[str, Any] = Field(description="the CronWorkflow view with the views of its runs")


class CronCommandRequest(Audited):
    """A command on one CronWorkflow: delete, trigger, suspend or resume it."""

    cron_workflow_id: str = Field(min_length=1)


class TriggerCronReply(Reply):
    run_id: str = Field(description="the run started now, outside the schedule")


class UpdateCronRequest(Audited):
    cron_workflow_id: str = Field(min_length=1)
    document: Document


class ListCronsReply(Reply):
    crons: list[dict[str, Any]]


# --- workers -----------------------------------------------------------------------------------------------


class ListWorkersRequest(Message):
    executor_type: str | None = Field(default=None, description="only workers serving this executor type")


class WorkerView(Reply):
    id: str
    executor_types: list[str]
    schemas: dict[str, dict[str, Any]] = Field(description="input JSON Schema by executor type")
    tags: dict[str, str]
    registered_at: str
    heartbeat_at: str


class ListWorkersReply(Reply):
    workers: list[WorkerView]


# --- engines -----------------------------------------------------------------------------------------------


class EngineView(Reply):
    engine_id: str
    host: str
    pid: int
    started_at: str
    partitions: list[int] = Field(description="the partitions whose runs it decides")
    singletons: list[str] = Field(description="the system-wide roles it holds (watcher, feed, crons, snapshots)")
    lease_ages: dict[str, float] = Field(description="seconds since it took each lease it holds, by lease key")


class ListEnginesReply(Reply):
    partition_count: int = Field(
        description="how many partitions the system's runs are spread over (0 before an engine created it)"
    )
    engines: list[EngineView]


# --- errors ------------------------------------------------------------------------------------------------


class ErrorDetail(Reply):
    code: ErrorCode
    message: str = Field(description="Aether's wording, e.g. `aether: validation error: ...`")
    field: str | None = Field(description="the request field at fault, when one is")


class ErrorReply(Reply):
    """The body of every failed request; the `Nats-Service-Error` headers say the same."""

    error: ErrorDetail


OPERATIONS: dict[str, tuple[type[Message], type[Message]]] = {
    "runs.submit": (SubmitRunRequest, SubmitRunReply),
    "runs.get": (GetRunRequest, GetRunReply),
    "runs.tasks": (ListTasksRequest, ListTasksReply),
    "runs.list": (ListRunsRequest, ListRunsReply),
    "runs.resume": (ResumeRunRequest, Done),
    "runs.cancel": (CancelRunRequest, Done),
    "runs.retry": (RetryRunRequest, Done),
    "runs.purge": (PurgeRunsRequest, PurgeRunsReply),
    "crons.submit": (SubmitCronRequest, SubmitCronReply),
    "crons.get": (CronIdRequest, GetCronReply),
    "crons.update": (UpdateCronRequest, Done),
    "crons.delete": (CronCommandRequest, Done),
    "crons.trigger": (CronCommandRequest, TriggerCronReply),
    "crons.suspend": (CronCommandRequest, Done),
    "crons.resume": (CronCommandRequest, Done),
    "crons.list": (Empty, ListCronsReply),
    "workers.list": (ListWorkersRequest, ListWorkersReply),
    "engines.list": (Empty, ListEnginesReply),
}
"""Every operation, by the last tokens of its subject (`<prefix>.api.v1.<operation>`): request and reply."""
