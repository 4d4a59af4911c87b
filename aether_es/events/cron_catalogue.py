"""Events of a CronWorkflow: its document over time, and every scheduled time it fired or skipped.

Each scheduled time is decided exactly once per cron workflow: the decision is an event on the cron's own
subject, appended with optimistic concurrency, so a second engine that reaches the same scheduled time
finds it already decided.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from aether_es.events.catalogue import Event


class CronSubmitted(Event):
    type: Literal["CronSubmitted"] = "CronSubmitted"
    document: dict[str, Any]
    created_at: str


class CronUpdated(Event):
    type: Literal["CronUpdated"] = "CronUpdated"
    document: dict[str, Any]


class CronDeleted(Event):
    type: Literal["CronDeleted"] = "CronDeleted"


class CronFired(Event):
    """A workflow run was started for `scheduled_at` (replacing the runs listed, under Replace)."""

    type: Literal["CronFired"] = "CronFired"
    scheduled_at: str
    run_id: str
    replaced: list[str] = Field(default_factory=list)


class CronSkipped(Event):
    type: Literal["CronSkipped"] = "CronSkipped"
    scheduled_at: str
    reason: str


class CronRunsForgotten(Event):
    """Finished runs beyond the history limits left the cron workflow's run list (their histories remain)."""

    type: Literal["CronRunsForgotten"] = "CronRunsForgotten"
    run_ids: list[str]


AnyCronEvent = CronSubmitted | CronUpdated | CronDeleted | CronFired | CronSkipped | CronRunsForgotten
