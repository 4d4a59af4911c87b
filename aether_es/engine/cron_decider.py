"""Cron decisions, pure: what to do about one scheduled time of one CronWorkflow.

The run a scheduled time starts has an id derived from the cron workflow and the time, so even two engines
that both decide to fire start the same run, and its history subject accepts only the first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aether_es.errors import ConflictError, InvalidStateError, NotFoundError, ValidationError
from aether_es.events.catalogue import Event
from aether_es.events.cron_catalogue import CronFired, CronRunsForgotten, CronSkipped
from aether_es.model import phases as ph
from aether_es.model.clock import format_time, parse_time
from aether_es.model.documents import CronWorkflow
from aether_es.projections.cron_state import CronState

_FAILED = frozenset({ph.FAILED, ph.ERROR, ph.TIMEOUT})


@dataclass(frozen=True, slots=True)
class RunInfo:
    run_id: str
    phase: str
    created_at: str


@dataclass(slots=True)
class FireDecision:
    events: list[Event] = field(default_factory=list)
    run_id: str = ""
    workflow: dict[str, Any] | None = None
    cancel: list[str] = field(default_factory=list)


def run_id_for(cron_id: str, scheduled: datetime) -> str:
    return f"{cron_id}-{int(scheduled.timestamp() * 1000)}"


def workflow_for(cron: CronWorkflow) -> dict[str, Any]:
    """The Workflow a fire submits: the cron's metadata and its (defaulted) workflowSpec."""
    return {
        "apiVersion": cron.api_version,
        "kind": "Workflow",
        "metadata": cron.metadata.dump(),
        "spec": cron.spec.workflow_spec.dump(),
    }


def decide_fire(
    state: CronState, scheduled: datetime, now: datetime, runs: list[RunInfo], *, manual: bool = False
) -> FireDecision:
    """A scheduled time fires or is skipped with the reason. A `manual` trigger (now, by a user) ignores
    suspend and the start/end window, and is refused rather than skipped when the policy forbids a run."""
    key = format_time(scheduled)
    if state.deleted or key in state.decided:
        return FireDecision()
    spec = state.cron.spec

    def skip(reason: str) -> FireDecision:
        return FireDecision([CronSkipped(scheduled_at=key, reason=reason)])

    if not manual:
        if spec.suspend:
            return skip("suspended")
        if spec.start_at and scheduled < parse_time(spec.start_at):
            return skip(f"before startAt {spec.start_at}")
        if spec.end_at and scheduled > parse_time(spec.end_at):
            return skip(f"after endAt {spec.end_at}")
        late = (now - scheduled).total_seconds()
        if spec.starting_deadline_seconds is not None and late > spec.starting_deadline_seconds:
            return skip(f"started {late:.0f}s late, past startingDeadlineSeconds {spec.starting_deadline_seconds}")
    active = [run.run_id for run in runs if run.phase not in ph.TERMINAL]
    if spec.concurrency_policy == "Forbid" and active:
        if manual:
            raise InvalidStateError(
                f'cron workflow "{state.cron_id}" has concurrencyPolicy Forbid and run "{active[0]}" is still active'
            )
        return skip(f"concurrencyPolicy Forbid: run {active[0]} is still active")
    replaced = active if spec.concurrency_policy == "Replace" else []
    run_id = run_id_for(state.cron_id, scheduled)
    events: list[Event] = [CronFired(scheduled_at=key, run_id=run_id, replaced=replaced)]
    forgotten = _beyond_history_limits(state.cron, runs)
    if forgotten:
        events.append(CronRunsForgotten(run_ids=forgotten))
    return FireDecision(events, run_id, workflow_for(state.cron), replaced)


def _beyond_history_limits(cron: CronWorkflow, runs: list[RunInfo]) -> list[str]:
    """Finished runs past successfulJobsHistoryLimit / failedJobsHistoryLimit, newest kept (Cancelled stay)."""
    newest_first = sorted(runs, key=lambda run: run.created_at, reverse=True)
    succeeded = [run.run_id for run in newest_first if run.phase == ph.SUCCEEDED]
    failed = [run.run_id for run in newest_first if run.phase in _FAILED]
    spec = cron.spec
    return succeeded[spec.successful_jobs_history_limit :] + failed[spec.failed_jobs_history_limit :]


def check_update(state: CronState, updated: CronWorkflow) -> None:
    """The workflowSpec of a cron workflow never changes (compared after defaults, unlike Aether)."""
    if updated.spec.workflow_spec.dump() != state.cron.spec.workflow_spec.dump():
        raise ValidationError("WorkflowSpec is immutable; delete and re-submit to change it")


def check_live(state: CronState) -> None:
    """A deleted cron workflow is gone: every command on it is refused as not found."""
    if state.deleted:
        raise NotFoundError(f'cron workflow "{state.cron_id}" not found (it was deleted)')


def check_new_name(cron: CronWorkflow, live: list[CronState]) -> None:
    """Two cron workflows never share a name in a namespace: a second submit would fire twice as often."""
    for other in live:
        meta = other.cron.metadata
        if (meta.name, meta.namespace) == (cron.metadata.name, cron.metadata.namespace):
            raise ConflictError(
                f'cron workflow "{meta.name}" exists already in namespace "{meta.namespace}" as "{other.cron_id}": '
                "update it (`aether-es cron update`) or delete it first"
            )


def suspended_document(state: CronState, suspend: bool) -> dict[str, Any]:
    """The cron's stored document with `spec.suspend` set (Aether suspends and resumes by an update); refused
    when it already is so."""
    check_live(state)
    if state.cron.spec.suspend == suspend:
        raise InvalidStateError(
            f'cron workflow "{state.cron_id}" is {"already suspended" if suspend else "not suspended"}'
        )
    document = dict(state.document)
    document["spec"] = {**document.get("spec", {}), "suspend": suspend}
    return document
