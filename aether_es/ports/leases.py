"""Leases: time-limited ownership of a named piece of work among engine replicas."""

from __future__ import annotations

from typing import Protocol


class Leases(Protocol):
    async def hold(self, key: str) -> bool:
        """Take or renew the lease on `key`; False when another owner holds it."""
        ...

    async def release(self, key: str) -> None:
        """Give up a lease this owner holds; nothing happens otherwise."""
        ...
