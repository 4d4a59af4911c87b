"""Stopping background tasks reliably."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


async def cancel_and_wait(task: asyncio.Task[object] | asyncio.Task[None], patience: float = 0.5) -> None:
    """Cancel until the task is done.

    A single cancel is not enough: a library awaiting `asyncio.wait_for` can swallow one when its inner
    future completes in the same loop iteration (CPython 3.11), and the task then runs on. Re-cancelling
    until it has finished makes stopping certain.
    """
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=patience)
    if not task.cancelled() and task.exception() is not None:
        task.exception()  # retrieved, so asyncio does not log it as never retrieved


async def catch_up_then_cancel(
    task: asyncio.Task[None], caught_up: Callable[[float], Awaitable[None]], drain: float, what: str
) -> None:
    """Stop a follower of the log: first let it catch up for up to `drain` seconds, then cancel it. Not
    catching up is no failure: its durable position (a checkpoint, a consumer) leaves the rest for later."""
    if drain > 0:
        try:
            await caught_up(drain)
        except Exception as exc:
            log.info("%s stopped before catching up: %r", what, exc)
    await cancel_and_wait(task)
