"""Reports made in the same event-loop turn leave in one channel call.

A burst of short tasks finishes together (a fetched batch runs concurrently); sending their reports in one
call lets the channel put a run's reports in one message, one publish and one acknowledgement instead of
one per task. Every caller still learns whether its own report is durable.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from aether_es.ports.wire import Report


class ReportCoalescer:
    def __init__(self, send: Callable[[Sequence[Report]], Awaitable[None]]) -> None:
        self._send = send
        self._pending: list[Report] = []
        self._flush: asyncio.Task[None] | None = None

    async def report(self, report: Report) -> None:
        """Return once `report` is sent; raise what sending its batch raised."""
        self._pending.append(report)
        if self._flush is None:
            self._flush = asyncio.create_task(self._send_turn())
        # Shielded: a caller cancelled while waiting must not cancel the send of the others' reports.
        await asyncio.shield(self._flush)

    async def _send_turn(self) -> None:
        await asyncio.sleep(0)  # let the other tasks of this turn add theirs
        batch, self._pending, self._flush = self._pending, [], None
        await self._send(batch)
