"""Cron scheduling: the engine never parses schedules; a scheduler calls back at each scheduled time."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Protocol

CronCallback = Callable[[datetime], Awaitable[None]]
"""Called with the scheduled time (timezone-aware, UTC) that is due."""


class CronScheduler(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def add(self, cron_id: str, schedule: str, timezone: str, callback: CronCallback) -> None:
        """Schedule (or reschedule) `cron_id`. Raises ValueError naming the problem for a bad schedule or zone."""
        ...

    def remove(self, cron_id: str) -> None:
        """Unschedule; unknown ids are ignored."""
        ...
