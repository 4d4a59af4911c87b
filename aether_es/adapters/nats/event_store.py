"""The event store on JetStream: one subject per run in one history stream, one message per commit.

Appends are conditional on the run subject's last sequence (optimistic concurrency) and carry the commit id
as `Nats-Msg-Id`, so an ambiguous append can be retried safely. Because the server checks the expected
sequence before dedup (notes §2.3), a retry of an append that already landed comes back as "wrong last
sequence"; it is recognised as ours by reading the message at the reported sequence. (If another writer
appended after our unacknowledged commit landed, the caller gets a conflict, and its reload shows the commit.)
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import re
from collections.abc import AsyncIterator
from typing import Any

import orjson
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import ConsumerConfig, DeliverPolicy, Header
from nats.js.errors import BadRequestError, NotFoundError

from aether_es.adapters.nats.kv_feed import read_bucket
from aether_es.adapters.nats.layout import Layout, check_id
from aether_es.adapters.nats.retry import retrying
from aether_es.adapters.nats.value_store import NatsValueStore
from aether_es.events.codec import decode_commit, encode_commit
from aether_es.events.envelope import Commit
from aether_es.events.references import PayloadTooLarge
from aether_es.ports.event_store import ConcurrencyConflict, RunSummary, StoredCommit

OUTBOX_HEADER = "Aether-Outbox"
"""The header holding a commit's outbox items as JSON (absent when it has none): the outbox relay reads
headers only, never a commit's events."""

_WRONG_LAST_SEQUENCE = (10071, 10164)
_TRAILING_NUMBER = re.compile(r"(\d+)\s*$")
_STATUS = "Status"


class NatsEventStore:
    """`EventStore` on the layout's run-history stream and run-summaries bucket."""

    def __init__(
        self,
        nc: Client,
        layout: Layout,
        *,
        request_timeout: float = 2.0,
        retry_budget: float = 20.0,
        load_batch: int = 1000,
        load_max_bytes: int = 32 * 1024 * 1024,
        values: NatsValueStore | None = None,
    ) -> None:
        self._js = nc.jetstream()
        self._nc = nc  # the direct-get batch protocol is raw; nats-py does not wrap it
        self._layout = layout
        self._timeout = request_timeout
        self._budget = retry_budget
        self._load_batch = load_batch
        self._load_max_bytes = load_max_bytes
        self._values = values or NatsValueStore(self._js, layout)

    # --- history -------------------------------------------------------------------------------------

    async def append(self, commit: Commit, expected_seq: int) -> int:
        subject = self._layout.run_subject(commit.run_id)
        data = await self._by_reference(encode_commit(commit))
        outbox = orjson.dumps(list(commit.outbox)).decode() if commit.outbox else ""
        if self._nc.max_payload and len(data) + len(outbox) > self._nc.max_payload:
            raise PayloadTooLarge(
                f"commit {commit.commit_id} of run {commit.run_id} is {len(data) + len(outbox):,} bytes with its "
                f"big values by reference, above the server's max payload of {self._nc.max_payload:,} bytes"
            )

        async def publish_once() -> int:
            headers = {  # fresh each attempt: js.publish may mutate it
                Header.EXPECTED_LAST_SUBJECT_SEQUENCE.value: str(expected_seq),
                Header.MSG_ID.value: commit.commit_id,
            }
            if outbox:
                headers[OUTBOX_HEADER] = outbox
            ack = await self._js.publish(subject, data, timeout=self._timeout, headers=headers)
            return ack.seq

        try:
            return await retrying(publish_once, what=f"append {commit.commit_id} to {subject}", budget=self._budget)
        except BadRequestError as exc:
            if exc.err_code not in _WRONG_LAST_SEQUENCE:
                raise
            landed = await self._landed_seq(subject, commit.commit_id, exc.description or "")
            if landed:
                return landed
            raise ConcurrencyConflict(
                f"run {commit.run_id}: expected last sequence {expected_seq}, server says {exc.description}"
            ) from exc

    async def _by_reference(self, data: bytes) -> bytes:
        """The commit with each event's fields over the inline limit stored as values and named by reference;
        the events' own fields (`type`, ids) stay inline, so the feed shows each event as it is stored."""
        if len(data) <= self._values.limits.inline_value_bytes:
            return data
        raw = orjson.loads(data)
        for item in raw["events"]:
            item["data"] = await self._values.shrink(item["data"])
        return orjson.dumps(raw)

    async def decode(self, data: bytes) -> Commit:
        """A stored commit with the values it holds by reference resolved, as the decider and views need them."""
        return decode_commit(await self._values.resolve_bytes(data))

    async def _landed_seq(self, subject: str, commit_id: str, description: str) -> int:
        """The sequence of our own commit if it is what the rejection reported as the run's last message."""
        match = _TRAILING_NUMBER.search(description)
        seq = int(match.group(1)) if match else 0
        if match and seq == 0:
            return 0  # the run has no commit at all, so none of ours

        async def read_last() -> Msg | None:
            request = {"seq": seq} if seq else {"last_by_subj": subject}
            reply = await self._nc.request(
                f"$JS.API.DIRECT.GET.{self._layout.runs_stream}",
                orjson.dumps(request),
                timeout=self._timeout,
            )
            return None if (reply.headers or {}).get(_STATUS) else reply

        last = await retrying(read_last, what=f"read last commit of {subject}", budget=self._budget)
        if last is None or last.headers is None:
            return 0
        if last.headers.get(Header.MSG_ID.value) != commit_id or last.headers.get("Nats-Subject") != subject:
            return 0
        return int(last.headers["Nats-Sequence"])

    async def load(self, run_id: str, after_seq: int = 0) -> list[StoredCommit]:
        subject = self._layout.run_subject(run_id)
        stored: list[StoredCommit] = []
        next_seq = after_seq + 1
        while True:
            msgs, pending = await retrying(
                functools.partial(self._direct_batch, subject, next_seq),
                what=f"load {subject}",
                budget=self._budget,
            )
            for msg in msgs:
                assert msg.headers is not None
                stored.append(StoredCommit(seq=int(msg.headers["Nats-Sequence"]), commit=await self.decode(msg.data)))
            if not msgs or pending == 0:
                return stored
            next_seq = stored[-1].seq + 1

    async def aggregate_ids(self, prefix: str) -> list[str]:
        info = await retrying(
            functools.partial(
                self._js.stream_info, self._layout.runs_stream, subjects_filter=self._layout.run_subject(prefix) + ".*"
            ),
            what=f"list {prefix} aggregates",
            budget=self._budget,
        )
        subjects = info.state.subjects or {}
        return sorted(self._layout.run_id_of(subject) for subject in subjects)

    async def _direct_batch(self, subject: str, start_seq: int) -> tuple[list[Msg], int]:
        """One batch direct get of `subject` from `start_seq`: the messages and how many matches remain."""
        loop = asyncio.get_running_loop()
        msgs: list[Msg] = []
        end: asyncio.Future[Msg] = loop.create_future()

        async def on_msg(msg: Msg) -> None:
            if (msg.headers or {}).get(_STATUS) is None:
                msgs.append(msg)
            elif not end.done():
                end.set_result(msg)

        inbox = self._nc.new_inbox()
        sub = await self._nc.subscribe(inbox, cb=on_msg, pending_bytes_limit=2 * self._load_max_bytes + 8 * 1024 * 1024)
        try:
            request = {
                "seq": start_seq,
                "batch": self._load_batch,
                "max_bytes": self._load_max_bytes,
                "next_by_subj": subject,
            }
            await self._nc.publish(f"$JS.API.DIRECT.GET.{self._layout.runs_stream}", orjson.dumps(request), reply=inbox)
            last = await asyncio.wait_for(end, self._timeout)
        finally:
            await sub.unsubscribe()
        assert last.headers is not None
        status = last.headers[_STATUS]
        if status == "404":
            return [], 0
        if status != "204":
            raise RuntimeError(
                f"direct get of {subject} failed: {status} {last.headers.get(Header.DESCRIPTION.value, '')}"
            )
        return msgs, int(last.headers.get("Nats-Num-Pending", "0"))

    async def load_all(self, after_seq: int = 0, high_water: int = 10_000) -> AsyncIterator[StoredCommit]:
        """Every commit of every run in stream order, up to the last one present when called (for replay).

        An ordered push consumer with a callback is ~3x faster than awaiting `next_msg` per message; the
        callback blocks at `high_water` buffered messages, which stalls flow control and so the server.
        """
        stream = self._layout.runs_stream
        info = await self._js.stream_info(stream)
        last_seq = info.state.last_seq
        if last_seq <= after_seq or info.state.messages == 0:
            return
        buffer: list[Msg] = []
        arrived = asyncio.Event()
        drained = asyncio.Event()

        async def on_msg(msg: Msg) -> None:
            buffer.append(msg)
            arrived.set()
            if len(buffer) >= high_water:
                drained.clear()
                await drained.wait()

        sub = await self._js.subscribe(
            self._layout.run_subjects,
            stream=stream,
            cb=on_msg,
            ordered_consumer=True,
            idle_heartbeat=1.0,
            config=ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=after_seq + 1),
            pending_msgs_limit=-1,
            pending_bytes_limit=-1,
        )
        try:
            while True:
                if not buffer:
                    arrived.clear()
                    await asyncio.wait_for(arrived.wait(), 30.0)
                batch = buffer[:]
                buffer.clear()
                drained.set()
                for msg in batch:
                    seq, pending = _position(msg)
                    yield StoredCommit(seq=seq, commit=await self.decode(msg.data))
                    if pending == 0 or seq >= last_seq:
                        return
        finally:
            drained.set()
            await sub.unsubscribe()

    async def purge(self, aggregate_id: str) -> None:
        subject = self._layout.run_subject(aggregate_id)
        await retrying(
            functools.partial(self._js.purge_stream, self._layout.runs_stream, subject=subject),
            what=f"purge {subject}",
            budget=self._budget,
        )

    # --- run summaries -------------------------------------------------------------------------------

    async def put_summary(self, summary: RunSummary) -> None:
        key = check_id("run id", summary.run_id)
        subject = f"$KV.{self._layout.summaries_bucket}.{key}"
        data = orjson.dumps(dataclasses.asdict(summary))

        async def put() -> None:
            await self._js.publish(subject, data, timeout=self._timeout)

        await retrying(put, what=f"put summary of {key}", budget=self._budget)

    async def delete_summary(self, run_id: str) -> None:
        key = check_id("run id", run_id)

        async def delete() -> None:
            bucket = await self._js.key_value(self._layout.summaries_bucket)
            await bucket.purge(key)

        await retrying(delete, what=f"delete summary of {key}", budget=self._budget)

    async def summaries(self) -> list[RunSummary]:
        try:
            values = await read_bucket(self._js, self._layout.summaries_bucket)
        except NotFoundError:
            return []
        return [_summary(orjson.loads(value)) for value in values.values()]


_V1_ACK_TOKENS = 9


def _position(msg: Msg) -> tuple[int, int]:
    """A delivered message's stream sequence and pending count, read straight from its ack subject
    (`$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<time>.<pending>`): nats-py's
    `metadata` also builds a datetime and two dataclasses per message, a fifth of a replay's time."""
    tokens = msg.reply.split(".")
    if len(tokens) == _V1_ACK_TOKENS:
        return int(tokens[5]), int(tokens[8])
    meta = msg.metadata
    return meta.sequence.stream, meta.num_pending


_SUMMARY_FIELDS = frozenset(f.name for f in dataclasses.fields(RunSummary))


def _summary(raw: dict[str, Any]) -> RunSummary:
    """A summary from its JSON, ignoring fields a newer writer may have added."""
    return RunSummary(**{k: v for k, v in raw.items() if k in _SUMMARY_FIELDS})
