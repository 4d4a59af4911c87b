"""A cron scheduler that fires every registered cron at each whole second (5-field cron cannot say that)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from aether_es.adapters.background import cancel_and_wait
from aether_es.ports.cron_scheduler import CronCallback


class EverySecond:
    """Fires at each whole second, or with `period` at each multiple of that many seconds since the epoch, so
    every process using it has the same scheduled times."""

    def __init__(self, period: int = 1) -> None:
        self.period = period
        self.callbacks: dict[str, CronCallback] = {}
        self.task: asyncio.Task[None] | None = None
        self.fires: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self.task = asyncio.create_task(self._tick())

    async def stop(self) -> None:
        if self.task is not None:
            await cancel_and_wait(self.task)

    def add(self, cron_id: str, schedule: str, timezone: str, callback: CronCallback) -> None:
        self.callbacks[cron_id] = callback

    def remove(self, cron_id: str) -> None:
        self.callbacks.pop(cron_id, None)

    async def _tick(self) -> None:
        while True:
            now = datetime.now(UTC).timestamp()
            await asyncio.sleep(self.period - now % self.period)
            due = datetime.fromtimestamp(round(now - now % self.period) + self.period, UTC)
            for callback in list(self.callbacks.values()):
                fire = asyncio.create_task(callback(due))
                self.fires.add(fire)
                fire.add_done_callback(self.fires.discard)
