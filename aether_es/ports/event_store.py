"""Where run histories live: one ordered subject of commits per workflow run."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol

from aether_es.events.envelope import Commit


class ConcurrencyConflict(Exception):
    """Another writer appended to the run first: reload the run and decide again."""


@dataclass(frozen=True, slots=True)
class StoredCommit:
    seq: int
    commit: Commit


@dataclass(frozen=True, slots=True)
class RunSummary:
    """The small per-run record kept beside the history so runs can be found without reading it."""

    run_id: str
    name: str
    namespace: str
    phase: str
    created_at: str
    finished_at: str = ""
    cron_id: str = ""
    labels: dict[str, str] = field(default_factory=dict, hash=False)
    """The workflow's `metadata.labels`, so runs can be listed by label without reading their histories."""
    suspended: int = 0
    """How many of its task runs wait to be resumed (a run waiting for approval stays Running, as in Aether)."""


class EventStore(Protocol):
    async def append(self, commit: Commit, expected_seq: int) -> int:
        """Append one commit to its run's history if the run's last sequence is `expected_seq` (0: new run).

        Returns the commit's stream sequence. Raises `ConcurrencyConflict` when another writer came first.
        A retry of an append that already landed returns that landing's sequence.
        """
        ...

    async def load(self, run_id: str, after_seq: int = 0) -> list[StoredCommit]:
        """Every commit of a run with a sequence above `after_seq`, in order."""
        ...

    def load_all(self, after_seq: int = 0) -> AsyncIterator[StoredCommit]:
        """Every commit of every aggregate in log order, up to the last one present when called (replay)."""
        ...

    async def aggregate_ids(self, prefix: str) -> list[str]:
        """Ids of every aggregate whose id is `<prefix>.<one token>` (for example `cron.<id>`)."""
        ...

    async def purge(self, aggregate_id: str) -> None:
        """Remove an aggregate's whole history (retention; the caller records that it did)."""
        ...

    async def put_summary(self, summary: RunSummary) -> None: ...

    async def delete_summary(self, run_id: str) -> None: ...

    async def summaries(self) -> list[RunSummary]: ...
