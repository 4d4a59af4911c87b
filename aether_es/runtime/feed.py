"""The public event feed: every event of the run history, one message each, under
`<prefix>.events.<run id>.<EventType>` in the `<PREFIX>_EVENTS` stream (docs/events.md).

The projector follows the history stream itself, not the engine, so nothing committed is ever missing from
the feed, whichever process committed it. Its checkpoint (the last history sequence fully published) lives
in a KV bucket; a restarted projector resumes there and re-publishes at most the commits after it, which the
feed drops by `Nats-Msg-Id` within its duplicate window (consumers can always dedupe by event id).

Order is kept through failures by publishing in atomic batches (ADR-50), one batch in flight at a time: a
batch lands whole or not at all, so no later event can land before an earlier one that was lost. A batch
refused because it holds an id already in the feed (a re-publish after a restart) is published again one
message at a time, each landing or being reported a duplicate, in order.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import dataclass

import orjson
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, Header
from nats.js.errors import APIError, KeyNotFoundError

from aether_es.adapters.background import catch_up_then_cancel
from aether_es.adapters.nats.connection import LogThrottle, NatsConnection
from aether_es.adapters.nats.layout import Layout
from aether_es.adapters.nats.retry import drop_subscription, follow_pull, publish_idempotent, retrying
from aether_es.events.codec import CodecError, event_records

log = logging.getLogger(__name__)

CHECKPOINT_KEY = "checkpoint"
_DUPLICATE_IN_BATCH = 10201


@dataclass(frozen=True, slots=True)
class _Out:
    subject: str
    body: bytes
    msg_id: str


class FeedProjector:
    """Publishes the history stream's events to the feed stream, from a checkpoint, at least once and in order.

    `batch` commits are fetched per round; their events go out in atomic batches of at most `chunk`
    messages (the server's limit is 1000), then the checkpoint advances once per round.
    """

    def __init__(
        self,
        connection: NatsConnection,
        layout: Layout,
        *,
        batch: int = 500,
        chunk: int = 1000,
        heartbeat: float = 0.5,
        request_timeout: float = 5.0,
        retry_budget: float = 20.0,
    ) -> None:
        if not 1 <= chunk <= 1000:
            raise ValueError(f"chunk {chunk} must be between 1 and 1000 (the server's atomic batch limit)")
        self._js = connection.js
        self._nc = connection.nc  # the atomic batch protocol is raw; nats-py does not wrap it
        self._layout = layout
        self._batch = batch
        self._chunk = chunk
        self._heartbeat = heartbeat
        self._timeout = request_timeout
        self._budget = retry_budget
        self._checkpoint_subject = f"$KV.{layout.feed_bucket}.{CHECKPOINT_KEY}"
        self._instance = secrets.token_hex(6)
        self._throttle = LogThrottle(log)
        self._batches = 0
        self._task: asyncio.Task[None] | None = None
        self._moved = asyncio.Event()
        self.position: int | None = None
        """The last history sequence whose events are all in the feed (None until the checkpoint is read)."""
        self.published = 0
        """Events published since start (re-publishes of duplicates included)."""
        self.restarts = 0
        """Times the loop started again after a failure (a nats-server restart, say)."""
        self.republished_batches = 0
        """Batches refused for holding ids already in the feed, and so published one message at a time."""

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="event-feed")

    async def stop(self, drain: float = 0.0) -> None:
        """Stop, after first trying for up to `drain` seconds to publish everything committed so far."""
        if self._task is None:
            return
        task, self._task = self._task, None
        await catch_up_then_cancel(task, self.caught_up, drain, "event feed")

    async def wait_for(self, seq: int, timeout: float) -> None:
        """Return once every commit up to history sequence `seq` is in the feed."""
        async with asyncio.timeout(timeout):
            while self.position is None or self.position < seq:
                await self._moved.wait()

    async def caught_up(self, timeout: float) -> None:
        """Return once everything in the history stream when called is in the feed."""
        info = await self._js.stream_info(self._layout.runs_stream)
        await self.wait_for(info.state.last_seq, timeout)

    # --- the loop ------------------------------------------------------------------------------------

    async def _run(self) -> None:
        """Follow the history until cancelled; after any failure, start again from the last position."""
        delay = 0.05
        while True:
            sub: JetStreamContext.PullSubscription | None = None
            try:
                if self.position is None:
                    self._advance(await self._read_checkpoint())
                sub = await self._open(self._position())
                delay = 0.05
                await self._follow(sub)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.restarts += 1
                self._throttle.warning(
                    "interrupted", "event feed interrupted at history sequence %s (%r); resuming", self.position, exc
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
            finally:
                await asyncio.shield(drop_subscription(sub))

    def _position(self) -> int:
        assert self.position is not None
        return self.position

    async def _open(self, after_seq: int) -> JetStreamContext.PullSubscription:
        """An ephemeral pull consumer over the history from `after_seq + 1`; nothing to ack, no server state
        worth keeping (the checkpoint is the state)."""
        stream = self._layout.runs_stream
        info = await self._js.add_consumer(
            stream,
            ConsumerConfig(
                filter_subject=self._layout.run_subjects,
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                opt_start_seq=after_seq + 1,
                ack_policy=AckPolicy.NONE,
                mem_storage=True,
                num_replicas=1,
                inactive_threshold=10.0,
            ),
        )
        return await self._js.pull_subscribe_bind(consumer=info.name, stream=stream)

    async def _follow(self, sub: JetStreamContext.PullSubscription) -> None:
        while True:
            msgs = await follow_pull(sub, self._batch, self._heartbeat)
            if msgs:
                await self._project(msgs)

    async def _project(self, msgs: list[Msg]) -> None:
        """Publish the events of these commits in history order, then move the checkpoint past them."""
        out: list[_Out] = []
        last = self._position()
        for msg in msgs:
            seq = msg.metadata.sequence.stream
            if seq <= last:
                continue  # a re-delivery after the consumer was recreated
            out.extend(self._events(seq, msg.data))
            last = seq
        for start in range(0, len(out), self._chunk):
            await self._publish(out[start : start + self._chunk])
        if last > self._position():
            await self._write_checkpoint(last)
            self._advance(last)

    def _events(self, seq: int, data: bytes) -> list[_Out]:
        """The feed messages of one commit, bodies built from the stored JSON as the codec wrote it."""
        try:
            _, records = event_records(data, seq)
            return [_Out(self._layout.event_subject(r["runID"], r["type"]), orjson.dumps(r), r["id"]) for r in records]
        except (CodecError, ValueError) as exc:
            log.error("history sequence %d is not a readable commit and is left out of the feed: %r", seq, exc)
            return []

    def _advance(self, seq: int) -> None:
        self.position = seq
        moved, self._moved = self._moved, asyncio.Event()
        moved.set()

    # --- publishing ----------------------------------------------------------------------------------

    async def _publish(self, batch: list[_Out]) -> None:
        try:
            await retrying(lambda: self._publish_atomic(batch), what="publish feed batch", budget=self._budget)
        except APIError as exc:
            if exc.err_code != _DUPLICATE_IN_BATCH:
                raise
            self.republished_batches += 1
            for out in batch:  # some ids are already in the feed: one by one, each lands or is a duplicate
                await publish_idempotent(
                    self._js, out.subject, out.body, out.msg_id, timeout=self._timeout, budget=self._budget
                )
        self.published += len(batch)

    async def _publish_atomic(self, batch: list[_Out]) -> None:
        """One atomic batch under a fresh id: a retry must never continue an attempt that was cut off."""
        self._batches += 1
        batch_id = f"{self._instance}-{self._batches}"
        *head, last = batch
        for number, out in enumerate(head, 1):
            await self._nc.publish(
                out.subject,
                out.body,
                headers={
                    Header.BATCH_ID.value: batch_id,
                    Header.BATCH_SEQUENCE.value: str(number),
                    Header.MSG_ID.value: out.msg_id,
                },
            )
        reply = await self._nc.request(
            last.subject,
            last.body,
            timeout=self._timeout,
            headers={
                Header.BATCH_ID.value: batch_id,
                Header.BATCH_SEQUENCE.value: str(len(batch)),
                Header.BATCH_COMMIT.value: "1",
                Header.MSG_ID.value: last.msg_id,
            },
        )
        answer = orjson.loads(reply.data)
        if "error" in answer:
            APIError.from_error(answer["error"])  # raises the typed error (transient ones are retried)

    # --- checkpoint ----------------------------------------------------------------------------------

    async def _read_checkpoint(self) -> int:
        async def read() -> int:
            kv = await self._js.key_value(self._layout.feed_bucket)
            try:
                entry = await kv.get(CHECKPOINT_KEY)
            except KeyNotFoundError:
                return 0
            return int(entry.value or b"0")

        return await retrying(read, what="read the event feed checkpoint", budget=self._budget)

    async def _write_checkpoint(self, seq: int) -> None:
        data = str(seq).encode()

        async def put() -> None:
            await self._js.publish(self._checkpoint_subject, data, timeout=self._timeout)

        await retrying(put, what="write the event feed checkpoint", budget=self._budget)
