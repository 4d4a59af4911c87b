"""Connecting to NATS the way a long-running service must: reconnect forever, quickly, and log it."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext

log = logging.getLogger(__name__)


@dataclass(slots=True)
class NatsConnection:
    """A core NATS client and its JetStream context, closed together."""

    nc: Client
    js: JetStreamContext

    async def close(self) -> None:
        """Flush what is buffered (acks are fire-and-forget publishes), then close.

        Not `drain()`: draining waits for every subscription's queue to empty, and a pull subscription whose
        fetch was abandoned at shutdown never empties, which only turns every shutdown into a timeout.
        """
        if self.nc.is_closed:
            return
        try:
            await self.nc.flush(timeout=1)
        except Exception as exc:
            log.debug("nats: flush before close failed (%r)", exc)
        await self.nc.close()


async def _log_error(exc: Exception) -> None:
    log.warning("nats: %s: %s", type(exc).__name__, exc)


async def _log_disconnected() -> None:
    log.info("nats: disconnected")


async def _log_reconnected() -> None:
    log.info("nats: reconnected")


async def connect(url: str | list[str], *, name: str = "aether-es", **options: Any) -> NatsConnection:
    """Connect with service defaults (endless reconnects every 0.2 s); `options` override any of them."""
    settings: dict[str, Any] = {
        "name": name,
        "max_reconnect_attempts": -1,
        "reconnect_time_wait": 0.2,
        "connect_timeout": 2,
        "drain_timeout": 2,
        # Buffer big enough that one max-size message published during a reconnect still fits.
        "pending_size": 32 * 1024 * 1024,
        "error_cb": _log_error,
        "disconnected_cb": _log_disconnected,
        "reconnected_cb": _log_reconnected,
    }
    settings.update(options)
    servers = [url] if isinstance(url, str) else list(url)
    nc = await nats.connect(servers, **settings)
    return NatsConnection(nc=nc, js=nc.jetstream())
