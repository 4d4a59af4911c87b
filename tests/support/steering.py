"""Steering a system through faults, as the chaos tests do: submitting for good, waiting for runs to end, and
reading back the hook notifications the system kept."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import orjson
from nats.js.errors import NotFoundError

from aether_es import Client
from aether_es.adapters.nats.connection import NatsConnection
from aether_es.adapters.nats.layout import Layout
from aether_es.errors import AetherError
from aether_es.model import phases as ph

HookKey = tuple[str, str, str]
"""A notification's scope, task name and hook type: what a run fires, whatever its ids."""


async def submit_for_good(client: Client, document: dict[str, Any], key: str, timeout: float = 60) -> str:
    """Submit once for good (the idempotency key makes a retry after a lost reply find the same run)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await client.submit(document, key)
        except AetherError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


async def settle(client: Client, run_ids: list[str], timeout: float) -> dict[str, str]:
    """Each run's phase once all are terminal, or as they are when `timeout` runs out."""
    deadline = time.monotonic() + timeout
    phases: dict[str, str] = {}
    error = ""
    while True:
        try:
            phases = {info.run_id: info.status async for info in client.runs(page_size=100)}
            error = ""
        except AetherError as exc:
            error = str(exc)  # the API is back in a moment, unless the engine is gone for good
        if all(phases.get(r) in ph.TERMINAL for r in run_ids) or time.monotonic() > deadline:
            return {r: phases.get(r, f"not listed ({error})" if error else "not listed") for r in run_ids}
        await asyncio.sleep(0.5)


def hook_key(hook: dict[str, Any]) -> HookKey:
    return hook["scope"], hook["taskName"], hook["hookType"]


async def stored_hooks(
    connection: NatsConnection, layout: Layout, expected: int, timeout: float
) -> dict[str, list[dict[str, Any]]]:
    """Every notification the hooks stream keeps, by run, once it holds `expected` (or `timeout` passed)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            info = await connection.js.stream_info(layout.hooks_stream)
        except NotFoundError:
            raise AssertionError(f"no {layout.hooks_stream} stream: hook notifications are not kept") from None
        if info.state.messages >= expected or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    by_run: dict[str, list[dict[str, Any]]] = {}
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        try:
            msg = await connection.js.get_msg(layout.hooks_stream, seq)
        except NotFoundError:
            continue
        assert msg.data is not None
        hook = orjson.loads(msg.data)
        by_run.setdefault(hook["workflowRunID"], []).append(hook)
    return by_run


def hook_counts(hooks: list[dict[str, Any]]) -> Counter[HookKey]:
    return Counter(hook_key(hook) for hook in hooks)
