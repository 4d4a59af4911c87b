"""The outbox relay on NATS: follows the runs stream through a shared durable consumer, headers only, and
carries out the outbox of every commit that has one (`runtime/outbox.py`).

A commit is acked only once its outbox is carried out, so an engine killed at any instant leaves the rest to
the consumer's redelivery, to itself after a restart or to another engine; the items' ids make a repeat a
duplicate the hooks and errors streams drop. Commits without an outbox cost a header read and an ack.
"""

from __future__ import annotations

import asyncio
import logging

import orjson
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import Header

from aether_es.adapters.background import catch_up_then_cancel
from aether_es.adapters.nats.connection import LogThrottle
from aether_es.adapters.nats.event_store import OUTBOX_HEADER
from aether_es.adapters.nats.layout import Layout, ensure_consumer
from aether_es.adapters.nats.retry import drop_subscription, follow_pull
from aether_es.runtime.outbox import OutboxDelivery, decode_outbox

log = logging.getLogger(__name__)


class NatsOutboxRelay:
    def __init__(
        self,
        js: JetStreamContext,
        layout: Layout,
        delivery: OutboxDelivery,
        *,
        batch: int = 256,
        heartbeat: float = 0.5,
        max_retry_delay: float = 5.0,
    ) -> None:
        self._js = js
        self._layout = layout
        self._delivery = delivery
        self._batch = batch
        self._heartbeat = heartbeat
        self._max_retry_delay = max_retry_delay
        self._task: asyncio.Task[None] | None = None
        self._throttle = LogThrottle(log)
        self.position = 0
        """The last runs-stream sequence this relay has carried out (or found nothing to carry out in)."""

    async def start(self) -> None:
        await ensure_consumer(self._js, self._layout.runs_stream, self._layout.outbox_consumer_config())
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self, drain: float = 0.0) -> None:
        """Stop, after first trying for up to `drain` seconds to carry out everything committed so far."""
        if self._task is None:
            return
        task, self._task = self._task, None
        await catch_up_then_cancel(task, self.caught_up, drain, "outbox relay")

    async def caught_up(self, timeout: float) -> None:
        """Return once every commit in the runs stream when called has had its outbox carried out, by this
        relay or by another engine's."""
        last = (await self._js.stream_info(self._layout.runs_stream)).state.last_seq
        async with asyncio.timeout(timeout):
            while self.position < last:
                info = await self._js.consumer_info(self._layout.runs_stream, self._layout.outbox_consumer)
                if info.num_pending == 0 and info.num_ack_pending == 0:
                    return
                await asyncio.sleep(0.02)

    async def _run(self) -> None:
        delay = 0.05
        while True:
            sub: JetStreamContext.PullSubscription | None = None
            try:
                sub = await self._js.pull_subscribe_bind(
                    consumer=self._layout.outbox_consumer, stream=self._layout.runs_stream
                )
                delay = 0.05
                while True:
                    msgs = await follow_pull(sub, self._batch, self._heartbeat)
                    if msgs:
                        await self._relay_batch(msgs)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._throttle.warning(
                    "interrupted",
                    "outbox relay interrupted at runs-stream sequence %d (%r); resuming",
                    self.position,
                    exc,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
            finally:
                await asyncio.shield(drop_subscription(sub))

    async def _relay_batch(self, msgs: list[Msg]) -> None:
        """Relay in order; the commits still waiting are kept from redelivery while earlier ones take long."""
        loop = asyncio.get_running_loop()
        signalled = loop.time()
        for index, msg in enumerate(msgs):
            if loop.time() - signalled > self._layout.report_ack_wait / 3:
                for waiting in msgs[index:]:
                    await waiting.in_progress()
                signalled = loop.time()
            await self._relay(msg)

    async def _relay(self, msg: Msg) -> None:
        headers = msg.headers or {}
        raw = headers.get(OUTBOX_HEADER)
        if raw:
            commit_id = headers.get(Header.MSG_ID.value, "")
            try:
                items = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                log.warning("commit %s: outbox unreadable (%r); skipped", commit_id, exc)
                items = []
            effects = decode_outbox(commit_id, items)
            delay = 0.1
            while True:
                try:
                    await self._delivery.deliver(effects)
                    break
                except Exception as exc:
                    self._throttle.warning(
                        "deliver", "commit %s: outbox not carried out (%r); trying again", commit_id, exc
                    )
                    await msg.in_progress()
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self._max_retry_delay)
        await msg.ack()
        self.position = max(self.position, msg.metadata.sequence.stream)
