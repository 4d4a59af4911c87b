"""The fold of a CronWorkflow's events into its view: document, status, runs, decided scheduled times."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aether_es.events import cron_catalogue as cev
from aether_es.events.envelope import Envelope
from aether_es.model.defaults import fill_cron_defaults
from aether_es.model.documents import CronWorkflow
from aether_es.model.loading import load_cron_workflow
from aether_es.projections.run_state import ProjectionError


@dataclass(slots=True)
class CronState:
    cron_id: str
    document: dict[str, Any]
    cron: CronWorkflow
    created_at: str
    deleted: bool = False
    last_schedule_time: str = ""
    last_submitted_run_id: str = ""
    runs: list[str] = field(default_factory=list)
    decided: set[str] = field(default_factory=set)
    skipped: int = 0
    revision: int = 1
    """Counts changes of the definition (submit, updates, delete), not fires."""
    events: int = 0
    seq: int = 0

    def to_dict(self) -> dict[str, Any]:
        spec = self.cron.spec
        return {
            "cronWorkflowID": self.cron_id,
            "name": self.cron.metadata.name,
            "namespace": self.cron.metadata.namespace,
            "schedule": spec.schedule,
            "timezone": spec.timezone,
            "suspend": spec.suspend,
            "concurrencyPolicy": spec.concurrency_policy,
            "createdAt": self.created_at,
            "deleted": self.deleted,
            "status": {
                "lastScheduleTime": self.last_schedule_time,
                "lastSubmittedRunID": self.last_submitted_run_id,
                "skipped": self.skipped,
            },
            "runIDs": list(self.runs),
        }


def _load(document: dict[str, Any]) -> CronWorkflow:
    return fill_cron_defaults(load_cron_workflow(document))


def fold_cron(cron_id: str, envelopes: list[Envelope]) -> CronState:
    first = envelopes[0]
    if not isinstance(first.event, cev.CronSubmitted):
        raise ProjectionError(f"cron workflow {cron_id} starts with {first.event.type}, not CronSubmitted")
    state = CronState(
        cron_id=cron_id,
        document=first.event.document,
        cron=_load(first.event.document),
        created_at=first.event.created_at,
        events=1,
    )
    for envelope in envelopes[1:]:
        apply_cron(state, envelope)
    return state


def apply_cron(state: CronState, envelope: Envelope) -> None:
    event = envelope.event
    if isinstance(event, cev.CronUpdated):
        state.document, state.cron = event.document, _load(event.document)
        state.revision += 1
    elif isinstance(event, cev.CronDeleted):
        state.deleted = True
        state.revision += 1
    elif isinstance(event, cev.CronFired):
        state.decided.add(event.scheduled_at)
        state.last_schedule_time = event.scheduled_at
        state.last_submitted_run_id = event.run_id
        state.runs.append(event.run_id)
    elif isinstance(event, cev.CronSkipped):
        state.decided.add(event.scheduled_at)
        state.skipped += 1
    elif isinstance(event, cev.CronRunsForgotten):
        forgotten = set(event.run_ids)
        state.runs = [run for run in state.runs if run not in forgotten]
    else:
        raise ProjectionError(f"event {event.type} does not belong to cron workflow {state.cron_id}")
    state.events += 1
