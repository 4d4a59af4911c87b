"""How often a run's history dispatched and finished each task attempt: exactly once each, after any fault."""

from __future__ import annotations

from collections import Counter
from typing import Any

from aether_es.ports.event_store import EventStore

Attempt = tuple[str, int]
"""A task run id and an attempt number."""


async def count_attempts(store: EventStore, run_id: str) -> tuple[Counter[Attempt], Counter[Attempt]]:
    """The `TaskDispatched` and `TaskFinished` events of the run's history, counted by attempt."""
    dispatched: Counter[Attempt] = Counter()
    finished: Counter[Attempt] = Counter()
    for stored in await store.load(run_id):
        for envelope in stored.commit.envelopes:
            event: Any = envelope.event
            if event.type == "TaskDispatched":
                dispatched[event.task_id, event.attempt] += 1
            elif event.type == "TaskFinished":
                finished[event.task_id, event.attempt] += 1
    return dispatched, finished
