"""How often a run's history dispatched and finished each task attempt: exactly once each, after any fault."""

from __future__ import annotations

from collections import Counter
from typing import Any

from aether_es.ports.event_store import EventStore

Attempt = tuple[str, int]
"""A task run id and an attempt number."""


STARTS = frozenset({"TaskDispatched", "TaskResumed"})
"""What sends an attempt to a worker: a dispatch, or the resume of a suspended task (its next attempt)."""
ENDINGS = frozenset({"TaskFinished", "TaskRetried", "TaskSuspended"})
"""What ends an attempt: its task's end, a retry after it failed, or a suspension awaiting a resume."""


async def count_attempts(store: EventStore, run_id: str) -> tuple[Counter[Attempt], Counter[Attempt]]:
    """The run history's starts (`STARTS`) and ends (`ENDINGS`) of attempts, counted by attempt."""
    dispatched: Counter[Attempt] = Counter()
    finished: Counter[Attempt] = Counter()
    for stored in await store.load(run_id):
        for envelope in stored.commit.envelopes:
            event: Any = envelope.event
            if event.type in STARTS:
                dispatched[event.task_id, event.attempt] += 1
            elif event.type in ENDINGS:
                finished[event.task_id, event.attempt] += 1
    return dispatched, finished
