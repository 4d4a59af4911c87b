"""The envelope around every event and the commit that carries one decision's events in one message.

A commit is the unit of atomicity: all events of one decision land together or not at all. Each event keeps
its own envelope (id, type, schema version, time, actor, cause) so history readers need no commit context.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aether_es.events.catalogue import SCHEMA_VERSION, AnyEvent


@dataclass(frozen=True, slots=True)
class Envelope:
    event_id: str
    run_id: str
    time: str
    actor: str
    causation_id: str
    event: AnyEvent
    version: int = SCHEMA_VERSION

    @property
    def type(self) -> str:
        return self.event.type


@dataclass(frozen=True, slots=True)
class Commit:
    """One decision about one run. `commit_id` is deterministic for the decision and is the message id."""

    commit_id: str
    run_id: str
    envelopes: tuple[Envelope, ...] = field(default_factory=tuple)
