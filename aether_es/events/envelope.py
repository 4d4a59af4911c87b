"""The envelope around every event and the commit that carries one decision's events in one message.

A commit is the unit of atomicity: all events of one decision land together or not at all. Each event keeps
its own envelope (id, type, schema version, time, actor, cause) so history readers need no commit context.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aether_es.events.catalogue import SCHEMA_VERSION, Event


@dataclass(frozen=True, slots=True)
class Envelope:
    event_id: str
    run_id: str
    time: str
    actor: str
    causation_id: str
    event: Event
    version: int = SCHEMA_VERSION
    reason: str = ""
    """Why the actor asked for it, when a person said so (`--reason`): the audit trail's second half."""

    @property
    def type(self) -> str:
        return self.event.type


@dataclass(frozen=True, slots=True)
class Commit:
    """One decision about one run. `commit_id` is deterministic for the decision and is the message id."""

    commit_id: str
    run_id: str
    envelopes: tuple[Envelope, ...] = field(default_factory=tuple)
    outbox: tuple[dict[str, Any], ...] = ()
    """What the decision asks of the outside world that its events alone do not say (hook notifications,
    error reports), carried with the commit so they are durable with it; never folded, never in the feed."""


def make_envelopes(
    aggregate_id: str,
    first_number: int,
    events: Sequence[Event],
    time: str,
    actor: str,
    cause: str,
    reason: str = "",
) -> list[Envelope]:
    """Envelopes numbered from `first_number` within the aggregate."""
    return [
        Envelope(
            event_id=f"{aggregate_id}:{first_number + offset}",
            run_id=aggregate_id,
            time=time,
            actor=actor,
            causation_id=cause,
            event=event,
            reason=reason,
        )
        for offset, event in enumerate(events)
    ]


def commit_of(aggregate_id: str, decided: Sequence[Envelope], outbox: Sequence[dict[str, Any]] = ()) -> Commit:
    """The commit of one decision; its id is stable across retries of the decision and unique to it."""
    digest = hashlib.blake2b(digest_size=8)
    for env in decided:
        digest.update(f"{env.event_id}|{env.type}|{env.time}|{env.causation_id}\n".encode())
    first = decided[0].event_id.rsplit(":", 1)[-1]
    return Commit(
        commit_id=f"{aggregate_id}:{first}:{digest.hexdigest()}",
        run_id=aggregate_id,
        envelopes=tuple(decided),
        outbox=tuple(outbox),
    )
