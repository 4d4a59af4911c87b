"""Stopping background tasks reliably."""

from __future__ import annotations

import asyncio


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
