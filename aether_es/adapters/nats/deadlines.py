"""Deadlines in a KV bucket, and the stateless watcher that reports those that have passed.

Most deadlines are timeouts; a `retry` deadline says when a failed attempt's retry may be dispatched (retry
backoff) and is reported as `retry-due`.

The bucket is the only state: a (re)started watcher reads it whole, then follows changes, so a crash of the
engine, the watcher or nats-server loses nothing. A passed deadline is reported again every
`reemit_interval` until its key is cleared, which makes the report at-least-once even if one publish or its
handling is lost; the engine's handling of timeouts is idempotent.
"""

from __future__ import annotations

import asyncio
import dataclasses
import heapq
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
from nats.js import JetStreamContext
from nats.js.api import Header
from nats.js.errors import BadRequestError

from aether_es.adapters.background import cancel_and_wait
from aether_es.adapters.nats.connection import LogThrottle
from aether_es.adapters.nats.kv_feed import KvChange, KvFollower
from aether_es.adapters.nats.layout import Layout, check_id
from aether_es.adapters.nats.retry import gather_chunked, retrying
from aether_es.ports.deadlines import RETRY, Deadline
from aether_es.ports.wire import Report

log = logging.getLogger(__name__)

_MSG_TTL_DISABLED = 10166
_PURGE_MARKER_TTL = "60s"  # a cleared key's purge marker disappears after this, so the bucket does not grow
_DEADLINE_FIELDS = frozenset(f.name for f in dataclasses.fields(Deadline))


def parse_time(value: str) -> float:
    """Epoch seconds of an RFC3339 time (`Z` or an offset, any number of fractional digits; naive = UTC)."""
    text = value.strip()
    if "." in text:
        # Python 3.11 accepts at most 6 fractional digits; nanosecond stamps are common on the wire.
        head, _, rest = text.partition(".")
        digits = len(rest) - len(rest.lstrip("0123456789"))
        text = f"{head}.{rest[: min(digits, 6)]}{rest[digits:]}"
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def timeout_report(deadline: Deadline) -> Report:
    """The report for a passed deadline; `at` is the deadline itself, so every re-emission is identical."""
    if deadline.task_run_id:
        return Report.model_validate(
            {
                "kind": "retry-due" if deadline.kind == RETRY else "task-timeout",
                "runID": deadline.run_id,
                "taskRunID": deadline.task_run_id,
                "attempt": deadline.attempt,
                "at": deadline.at,
            }
        )
    return Report.model_validate({"kind": "workflow-timeout", "runID": deadline.run_id, "at": deadline.at})


@dataclass(slots=True)
class _Entry:
    key: str
    deadline: Deadline
    raw: bytes
    token: int


class NatsDeadlines:
    """`DeadlineStore` and `TimeoutWatcher` on the layout's deadlines bucket."""

    def __init__(
        self,
        js: JetStreamContext,
        layout: Layout,
        broker_report: Callable[[Sequence[Report]], Awaitable[None]],
        poll_interval: float = 0.25,
        reemit_interval: float = 1.0,
        *,
        heartbeat: float = 0.5,
        request_timeout: float = 2.0,
        retry_budget: float = 20.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._js = js
        self._layout = layout
        self._report = broker_report
        self._throttle = LogThrottle(log)
        self._poll = poll_interval
        self._reemit = reemit_interval
        self._heartbeat = heartbeat
        self._timeout = request_timeout
        self._budget = retry_budget
        self._clock = clock
        self._prefix = f"$KV.{layout.deadlines_bucket}."
        self._marker_ttl: str | None = _PURGE_MARKER_TTL
        self._view: dict[str, _Entry] = {}
        self._due: list[tuple[float, int, str]] = []  # (when, token, key); stale tokens are skipped
        self._tokens = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._follower: KvFollower | None = None

    # --- DeadlineStore -------------------------------------------------------------------------------

    async def set(self, deadlines: Sequence[Deadline]) -> None:
        async def put(deadline: Deadline) -> None:
            subject = self._prefix + check_id("deadline key", deadline.key)
            data = orjson.dumps(dataclasses.asdict(deadline))

            async def once() -> None:
                await self._js.publish(subject, data, timeout=self._timeout)

            await retrying(once, what=f"set deadline {deadline.key}", budget=self._budget)

        await gather_chunked(put(d) for d in deadlines)

    async def clear(self, keys: Sequence[str]) -> None:
        """Purge the keys (absent ones included: purging nothing is fine)."""
        await gather_chunked(self._purge(check_id("deadline key", key)) for key in keys)

    async def _purge(self, key: str) -> None:
        async def once() -> None:
            headers = {"KV-Operation": "PURGE", Header.ROLLUP.value: "sub"}
            if self._marker_ttl:
                headers[Header.MSG_TTL.value] = self._marker_ttl
            await self._js.publish(self._prefix + key, b"", timeout=self._timeout, headers=headers)

        try:
            await retrying(once, what=f"clear deadline {key}", budget=self._budget)
        except BadRequestError as exc:
            if exc.err_code != _MSG_TTL_DISABLED or not self._marker_ttl:
                raise
            log.warning("bucket %s refuses message TTLs; purge markers will accumulate", self._prefix)
            self._marker_ttl = None
            await retrying(once, what=f"clear deadline {key}", budget=self._budget)

    # --- TimeoutWatcher ------------------------------------------------------------------------------

    async def start(self, sync_timeout: float = 5.0) -> None:
        """Load every deadline from the bucket (waiting up to `sync_timeout`), then watch and report."""
        if self._tasks:
            return
        self._view.clear()
        self._due.clear()
        follower = KvFollower(
            self._js,
            self._layout.deadlines_bucket,
            self._on_snapshot,
            self._on_change,
            heartbeat=self._heartbeat,
        )
        self._follower = follower
        self._tasks = [
            asyncio.create_task(follower.run(), name="deadlines-follow"),
            asyncio.create_task(self._emit_loop(), name="deadlines-emit"),
        ]
        try:
            await asyncio.wait_for(follower.synced.wait(), sync_timeout)
        except TimeoutError:
            log.warning("deadline watcher not synced after %.1f s; it keeps trying", sync_timeout)

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            await cancel_and_wait(task)
        self._follower = None

    @property
    def pending(self) -> int:
        """How many deadlines the watcher currently knows (for tests and metrics)."""
        return len(self._view)

    def _on_snapshot(self, values: dict[str, bytes]) -> None:
        old = self._view
        self._view = {}
        self._due.clear()
        now = self._clock()
        for key, raw in values.items():
            previous = old.get(key)
            self._upsert(key, raw, keep_from=previous if previous and previous.raw == raw else None, now=now)

    def _on_change(self, change: KvChange) -> None:
        if change.value is None:
            self._view.pop(change.key, None)
            return
        current = self._view.get(change.key)
        if current is not None and current.raw == change.value:
            return
        self._upsert(change.key, change.value, keep_from=None, now=self._clock())

    def _upsert(self, key: str, raw: bytes, keep_from: _Entry | None, now: float) -> None:
        try:
            fields = orjson.loads(raw)
            deadline = Deadline(**{k: v for k, v in fields.items() if k in _DEADLINE_FIELDS})
            when = parse_time(deadline.at)
        except (ValueError, TypeError) as exc:
            log.error("ignoring unreadable deadline %s: %s", key, exc)
            self._view.pop(key, None)
            return
        self._tokens += 1
        entry = _Entry(key=key, deadline=deadline, raw=raw, token=self._tokens)
        self._view[key] = entry
        # After a rebuild, an already-reported deadline keeps its re-emission pace instead of firing at once.
        due = max(when, now + self._reemit) if keep_from is not None and when <= now else when
        heapq.heappush(self._due, (due, entry.token, key))

    async def _emit_loop(self) -> None:
        while True:
            await asyncio.sleep(self._poll)
            try:
                await self._emit_due()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("deadline emission failed; retrying")

    async def _emit_due(self) -> None:
        now = self._clock()
        due: list[_Entry] = []
        while self._due and self._due[0][0] <= now:
            _, token, key = heapq.heappop(self._due)
            entry = self._view.get(key)
            if entry is not None and entry.token == token:
                due.append(entry)
        if len(self._due) > 2 * len(self._view) + 1024:
            self._compact()
        if not due:
            return
        try:
            await self._report([timeout_report(entry.deadline) for entry in due])
            retry_at = self._clock() + self._reemit
        except Exception as exc:
            self._throttle.warning("report", "reporting %d timeouts failed (%r); retrying", len(due), exc)
            retry_at = self._clock() + self._poll
        for entry in due:
            if self._view.get(entry.key) is entry:
                heapq.heappush(self._due, (retry_at, entry.token, entry.key))

    def _compact(self) -> None:
        """Drop heap entries of cleared or replaced deadlines."""
        live = {(key, entry.token) for key, entry in self._view.items()}
        self._due = [item for item in self._due if (item[2], item[1]) in live]
        heapq.heapify(self._due)
