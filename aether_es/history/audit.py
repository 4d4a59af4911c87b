"""The audit trail: every command a person issued, read back from the event log.

A command's events carry who issued it (`user` or `user:<who>`) and, when given, why; the first event of
the commit it caused marks it. Nothing is kept besides the log, so the trail is exactly as complete and as
tamper-evident as the history itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from aether_es.model.clock import parse_time
from aether_es.ports.event_store import StoredCommit

USER = "user"


@dataclass(frozen=True, slots=True)
class AuditEntry:
    time: str
    actor: str
    command: str
    """The command, from its cause: submit, resume, cancel, retry, update, delete, ..."""
    aggregate: str
    """The run, or `cron.<id>` for a CronWorkflow."""
    reason: str
    cause: str
    seq: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def command_actor(who: str) -> str:
    """The actor a command's events record: `user:<who>`, or `user` when nobody is named."""
    return f"{USER}:{who}" if who else USER


def is_command(actor: str) -> bool:
    return actor == USER or actor.startswith(USER + ":")


async def audit_entries(
    commits: AsyncIterator[StoredCommit],
    *,
    since: datetime | None = None,
    actor: str | None = None,
    aggregate: str | None = None,
) -> list[AuditEntry]:
    """Commands in log order; `actor` matches `user:<actor>` or the recorded actor as written."""
    entries = []
    async for stored in commits:
        first = stored.commit.envelopes[0] if stored.commit.envelopes else None
        if first is None or not is_command(first.actor):
            continue
        if aggregate is not None and first.run_id != aggregate:
            continue
        if actor is not None and first.actor not in (actor, f"{USER}:{actor}"):
            continue
        if since is not None and (not first.time or parse_time(first.time) < since):
            continue
        command = first.causation_id.split(":", 1)[0]
        entries.append(
            AuditEntry(first.time, first.actor, command, first.run_id, first.reason, first.causation_id, stored.seq)
        )
    return entries
