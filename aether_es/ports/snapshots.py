"""Where run snapshots are kept: a cache of folded state, never the source of truth (the log is)."""

from __future__ import annotations

from typing import Protocol


class SnapshotStore(Protocol):
    async def get(self, run_id: str) -> bytes | None:
        """The run's latest snapshot, or None (never written, removed, or unreadable)."""
        ...

    async def put(self, run_id: str, data: bytes) -> None: ...

    async def delete(self, run_id: str) -> None:
        """Forget the run's snapshot; nothing happens when there is none."""
        ...
