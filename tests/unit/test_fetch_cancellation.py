"""A fetch whose cancellation was swallowed underneath still ends the task that asked for it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from aether_es.adapters.nats.retry import fetch


class SwallowingSubscription:
    """Stands in for nats-py's pull subscription in the race where Python 3.11's wait_for loses a cancel."""

    async def fetch(self, batch: int, **options: Any) -> list[Any]:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            return []  # swallowed, as the race does
        return []


async def test_a_swallowed_cancellation_is_raised_when_the_fetch_returns() -> None:
    async def loop() -> None:
        while True:  # a consumer loop: it only ends if the cancellation surfaces
            await fetch(SwallowingSubscription(), 1)  # type: ignore[arg-type]

    task = asyncio.create_task(loop())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 2)


async def test_an_uncancelled_fetch_returns_its_messages() -> None:
    class Quick:
        async def fetch(self, batch: int, **options: Any) -> list[Any]:
            return ["m"] * batch

    assert await fetch(Quick(), 2) == ["m", "m"]  # type: ignore[arg-type]
