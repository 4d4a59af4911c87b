"""Retrying NATS operations whose outcome is unknown, within a time budget.

nats-py has no built-in publish retry. A timeout, a missing responder or a reconnect in progress leaves the
outcome unknown; callers make the retry safe (a deterministic `Nats-Msg-Id`, an idempotent read) and this
module only decides what counts as transient and how long to keep trying.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

import nats.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import Header, PubAck
from nats.js.errors import FetchTimeoutError, NoStreamResponseError, ServiceUnavailableError

log = logging.getLogger(__name__)

T = TypeVar("T")

TRANSIENT: tuple[type[BaseException], ...] = (
    TimeoutError,  # includes nats.errors.TimeoutError and asyncio.TimeoutError
    nats.errors.NoRespondersError,
    NoStreamResponseError,
    ServiceUnavailableError,
    nats.errors.OutboundBufferLimitError,
    nats.errors.ConnectionReconnectingError,
    nats.errors.StaleConnectionError,
)
"""Errors after which the operation may or may not have happened and the server may come back."""


class NatsUnavailable(TimeoutError):
    """NATS did not answer within the retry budget; the operation's outcome is unknown."""


async def retrying(
    operation: Callable[[], Awaitable[T]],
    *,
    what: str,
    budget: float = 20.0,
    first_delay: float = 0.05,
    max_delay: float = 1.0,
) -> T:
    """Run `operation` until it succeeds, raises a non-transient error, or `budget` seconds have passed."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + budget
    delay = first_delay
    attempt = 0
    while True:
        attempt += 1
        try:
            return await operation()
        except TRANSIENT as exc:
            if loop.time() + delay >= deadline:
                raise NatsUnavailable(f"{what}: no answer after {attempt} attempts ({exc!r})") from exc
            if attempt == 1:
                log.debug("%s: %r, retrying", what, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_delay)


async def fetch(sub: JetStreamContext.PullSubscription, batch: int, **options: Any) -> list[Msg]:
    """`sub.fetch` that honours a cancellation of the calling task.

    Under Python 3.11 a cancellation that arrives as a message does (inside nats-py's `asyncio.wait_for`)
    can be swallowed, and a loop around the fetch then never stops; the task's pending cancellation is
    checked when the fetch returns or fails, and raised.

    When messages are already buffered, nats-py asks the server for more with a heartbeat but no expiry,
    which the server refuses ("heartbeat value too large"); no heartbeat is asked for then.
    """
    if options.get("heartbeat") and sub.pending_msgs:
        options = {key: value for key, value in options.items() if key != "heartbeat"}
    try:
        msgs: list[Msg] = await sub.fetch(batch, **options)
        return msgs
    finally:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise asyncio.CancelledError


async def follow_pull(sub: JetStreamContext.PullSubscription, batch: int, heartbeat: float) -> list[Msg]:
    """Up to `batch` messages of a followed consumer, or none when it has nothing new for now.

    The pull asks for heartbeats; one that saw neither a message nor a heartbeat means the consumer or the
    server may be gone, but also comes from a busy event loop that read the heartbeats late, or from nats-py
    ending an idle pull without them. The server is asked whether it still has the consumer: if it does,
    nothing was lost; if it does not (or cannot say), TimeoutError, and the caller follows afresh.
    """
    try:
        return await fetch(sub, batch, timeout=4 * heartbeat, heartbeat=heartbeat)
    except FetchTimeoutError:
        return []  # heartbeats arrived: the consumer is there and has nothing new
    except TimeoutError:
        pass
    try:
        await sub.consumer_info()
    except Exception as exc:
        raise TimeoutError(f"a pull saw no heartbeat, and its consumer is gone ({exc!r})") from exc
    log.debug("a pull saw no heartbeat, but its consumer is there")
    return []


async def gather_chunked(operations: Iterable[Awaitable[T]], chunk: int = 1000) -> list[T]:
    """Await operations pipelined, at most `chunk` in flight per round, so a huge batch cannot flood NATS."""
    results: list[T] = []
    pending: list[Awaitable[T]] = []
    for operation in operations:
        pending.append(operation)
        if len(pending) >= chunk:
            results.extend(await asyncio.gather(*pending))
            pending = []
    if pending:
        results.extend(await asyncio.gather(*pending))
    return results


async def publish_idempotent(
    js: JetStreamContext,
    subject: str,
    data: bytes,
    msg_id: str,
    *,
    timeout: float = 2.0,
    budget: float = 20.0,
) -> PubAck:
    """Publish with a deterministic message id, retrying transient failures: lands once per dedup window."""

    async def once() -> PubAck:
        return await js.publish(subject, data, timeout=timeout, headers={Header.MSG_ID.value: msg_id})

    return await retrying(once, what=f"publish {msg_id} to {subject}", budget=budget)


async def drop_subscription(sub: JetStreamContext.PullSubscription | None) -> None:
    """Unsubscribe, best effort: it happens on the way out of a failure, and the server forgets the interest of
    a client that went away by itself."""
    if sub is None:
        return
    try:
        await sub.unsubscribe()
    except Exception as exc:
        log.debug("unsubscribing failed: %r", exc)
