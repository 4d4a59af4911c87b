"""Which engines are alive (`runtime.ownership` shares the partitions among them)."""

from __future__ import annotations

from typing import Protocol


class Membership(Protocol):
    engine_id: str

    async def beat(self, taken: dict[str, float]) -> None:
        """Say this engine is alive for one more TTL, with the leases it holds and when each was taken."""
        ...

    async def members(self) -> list[str]:
        """The ids of the live engines."""
        ...

    async def leave(self) -> None: ...
