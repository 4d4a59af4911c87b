"""Task dispatch and reports in memory, behaving as the JetStream broker does where it can be observed.

Assignments and reports sit in work queues like JetStream's: each message goes to one taker at a time, is
gone once acked, and comes back when nak'd or when its ack wait passes without an ack or a sign of progress.
Dispatches and reports carry the same deterministic ids as on JetStream and are deduplicated within the
same window. Messages are kept encoded, so every delivery is a fresh copy, as off the wire. Cancellation
reaches the workers listening at that moment, asynchronously, as on core NATS.
"""

from __future__ import annotations

import asyncio
import bisect
import functools
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from typing import ClassVar

from aether_es.adapters.memory.faults import Faults
from aether_es.adapters.nats.layout import check_id, check_token
from aether_es.errors import NotSupportedError
from aether_es.ports.broker import Delivery, ReportHandler, TaskDelivery
from aether_es.ports.wire import Report, TaskAssignment

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Message:
    seq: int
    kind: str
    """The executor type of an assignment; empty for a report."""
    data: bytes
    delivery: int = 0
    """How many times it was handed out; a handle of an older delivery can no longer nak or extend it."""
    due: float = 0.0
    """While handed out: when it comes back unless acked or in progress."""


@dataclass(slots=True)
class _Handle:
    message: _Message
    delivery: int


class _WorkQueue:
    """One work-queue stream with one consumer: messages in sequence order, one delivery at a time each."""

    def __init__(self, ack_wait: float) -> None:
        self.ack_wait = ack_wait
        self._seqs = itertools.count(1)
        self._ready: list[_Message] = []
        self._out: dict[int, _Message] = {}  # handed out, by sequence
        self._waiters: set[asyncio.Future[None]] = set()

    def put(self, kind: str, data: bytes) -> None:
        self._ready.append(_Message(next(self._seqs), kind, data))
        self._notify()

    def take(self, kinds: Collection[str] | None, n: int) -> list[_Handle]:
        """Up to `n` ready messages (of `kinds`, if given), oldest first, handed out for `ack_wait` seconds."""
        self._return_overdue()
        now = time.monotonic()
        taken: list[_Handle] = []
        for message in self._ready:
            if len(taken) == n:
                break
            if kinds is None or message.kind in kinds:
                message.delivery += 1
                message.due = now + self.ack_wait
                self._out[message.seq] = message
                taken.append(_Handle(message, message.delivery))
        if taken:
            self._ready = [m for m in self._ready if m.seq not in self._out]
        return taken

    async def take_waiting(self, kinds: Collection[str] | None, n: int, timeout: float) -> list[_Handle]:
        """`take`, waiting up to `timeout` seconds for something to take."""
        deadline = time.monotonic() + timeout
        while True:
            taken = self.take(kinds, n)
            now = time.monotonic()
            if taken or now >= deadline:
                return taken
            next_due = min((m.due for m in self._out.values()), default=deadline)
            await self._changed(min(deadline, next_due) - now)

    def ack(self, handle: _Handle) -> None:
        """Remove the message, whichever delivery the ack comes from (a work queue keeps nothing acked)."""
        seq = handle.message.seq
        if self._out.pop(seq, None) is None:
            self._ready = [m for m in self._ready if m.seq != seq]

    def nak(self, handle: _Handle, delay: float = 0.0) -> None:
        """Hand the message back: takeable now, or after `delay` seconds."""
        if not self.holds(handle):
            return
        if delay > 0:
            handle.message.due = time.monotonic() + delay
            self._notify()  # waiters recompute when the next message comes back
        else:
            self._give_back(handle.message)

    def in_progress(self, handle: _Handle) -> None:
        if self.holds(handle):
            handle.message.due = time.monotonic() + self.ack_wait

    def holds(self, handle: _Handle) -> bool:
        """Whether this delivery of the message is still out, unacked."""
        message = self._out.get(handle.message.seq)
        return message is not None and message.delivery == handle.delivery

    def _return_overdue(self) -> None:
        now = time.monotonic()
        for message in [m for m in self._out.values() if m.due <= now]:
            self._give_back(message)

    def _give_back(self, message: _Message) -> None:
        del self._out[message.seq]
        bisect.insort(self._ready, message, key=lambda m: m.seq)
        self._notify()

    def _notify(self) -> None:
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._waiters.clear()

    async def _changed(self, timeout: float) -> None:
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.add(waiter)
        try:
            await asyncio.wait([waiter], timeout=max(timeout, 0.0))
        finally:
            self._waiters.discard(waiter)


class _Dedup:
    """Message ids seen within the last `window` seconds, like a stream's duplicate window."""

    def __init__(self, window: float) -> None:
        self.window = window
        self._seen: dict[str, float] = {}  # in the order first seen

    def first(self, msg_id: str) -> bool:
        """Whether `msg_id` is new in the window (and now seen)."""
        now = time.monotonic()
        for old in itertools.takewhile(lambda k: self._seen[k] <= now - self.window, list(self._seen)):
            del self._seen[old]
        if msg_id in self._seen:
            return False
        self._seen[msg_id] = now
        return True


class MemoryBroker(Faults):
    """`TaskBroker` in memory; `channel()` gives workers their side of it.

    `task_ack_wait`, `report_ack_wait` and `duplicate_window` mean what the NATS layout's fields of those
    names mean. Reports that a failing handler left unacked come back `handler_retry_delay` seconds later.
    `fail_next("dispatch" | "cancel" | "report", ...)` makes those methods fail (a channel's reports go
    through `report` too).
    """

    FAULTABLE: ClassVar[frozenset[str]] = frozenset({"dispatch", "cancel", "report"})

    def __init__(
        self,
        *,
        task_ack_wait: float = 30.0,
        report_ack_wait: float = 30.0,
        duplicate_window: float = 120.0,
        report_batch: int = 256,
        handler_retry_delay: float = 1.0,
    ) -> None:
        super().__init__()
        self._tasks = _WorkQueue(task_ack_wait)
        self._reports = _WorkQueue(report_ack_wait)
        self._dispatched = _Dedup(duplicate_window)
        self._reported = _Dedup(duplicate_window)
        self._report_batch = report_batch
        self._handler_retry_delay = handler_retry_delay
        self._listeners: set[asyncio.Queue[str]] = set()

    def channel(self) -> MemoryWorkerChannel:
        """A worker's side of this broker; several channels compete for the same assignments."""
        return MemoryWorkerChannel(self)

    async def dispatch(self, assignments: Sequence[TaskAssignment]) -> None:
        for a in assignments:
            check_token("executor type", a.executor_type)
            check_id("run id", a.workflow_run_id)
        lost_ack = self._fault("dispatch", assignments)
        for a in assignments:
            if self._dispatched.first(f"{a.task_run_id}.{a.attempt}"):
                self._tasks.put(a.executor_type, a.model_dump_json(by_alias=True).encode())
        if lost_ack is not None:
            raise lost_ack

    async def cancel(self, task_run_ids: Sequence[str]) -> None:
        for task_run_id in task_run_ids:
            check_id("task run id", task_run_id)
        lost_ack = self._fault("cancel", task_run_ids)
        for listener in self._listeners:
            for task_run_id in task_run_ids:
                listener.put_nowait(task_run_id)
        if lost_ack is not None:
            raise lost_ack

    async def report(self, reports: Sequence[Report]) -> None:
        for report in reports:
            check_id("run id", report.run_id)
        lost_ack = self._fault("report", reports)
        for report in reports:
            if self._reported.first(report.dedup_key()):
                self._reports.put("", report.model_dump_json(by_alias=True).encode())
        if lost_ack is not None:
            raise lost_ack

    async def consume_reports(
        self, handler: ReportHandler, partition: int | None = None, stop: asyncio.Event | None = None
    ) -> None:
        """Hand reports in batches to `handler` until cancelled; a failing handler's unacked ones come back.
        One process's broker has one partition: its engine decides every run, and never hands them over."""
        if partition is not None or stop is not None:
            raise NotSupportedError("the in-memory broker is not partitioned")
        while True:
            handles = await self._reports.take_waiting(None, self._report_batch, 3600.0)
            if not handles:
                continue
            acks = [_settle(functools.partial(self._reports.ack, h)) for h in handles]
            deliveries = [
                Delivery(report=Report.model_validate_json(h.message.data), ack=ack)
                for h, ack in zip(handles, acks, strict=True)
            ]
            try:
                await handler(deliveries)
            except Exception:
                log.exception(
                    "report handler failed on %d reports; the unacked ones come back in %s s",
                    len(deliveries),
                    self._handler_retry_delay,
                )
                for h in handles:
                    self._reports.nak(h, self._handler_retry_delay)

    async def _fetch(self, executor_types: Sequence[str], batch: int, timeout: float) -> list[TaskDelivery]:
        types = list(dict.fromkeys(check_token("executor type", t) for t in executor_types))
        if batch < 1 or not types:
            return []
        handles = await self._tasks.take_waiting(types, batch, timeout)
        return [
            TaskDelivery(
                assignment=TaskAssignment.model_validate_json(h.message.data),
                ack=_settle(functools.partial(self._tasks.ack, h)),
                in_progress=_settle(functools.partial(self._tasks.in_progress, h)),
                nak=_settle(functools.partial(self._tasks.nak, h)),
            )
            for h in handles
        ]

    async def _listen(self, handler: Callable[[str], Awaitable[None]]) -> None:
        heard: asyncio.Queue[str] = asyncio.Queue()
        self._listeners.add(heard)
        try:
            while True:
                task_run_id = await heard.get()
                try:
                    await handler(task_run_id)
                except Exception:
                    log.exception("cancellation handler failed for %s", task_run_id)
        finally:
            self._listeners.discard(heard)


def _settle(action: Callable[[], None]) -> Callable[[], Awaitable[None]]:
    """An ack-type reply as the ports want it: awaitable, and harmless when repeated or stale."""

    async def call() -> None:
        action()

    return call


class MemoryWorkerChannel:
    """`WorkerChannel` on a `MemoryBroker`: fetch assignments of several executor types, report, hear cancels."""

    def __init__(self, broker: MemoryBroker) -> None:
        self._broker = broker

    async def fetch(self, executor_types: Sequence[str], batch: int, timeout: float) -> list[TaskDelivery]:
        """Up to `batch` assignments of these types, oldest first; empty after `timeout` seconds."""
        return await self._broker._fetch(executor_types, batch, timeout)

    async def report(self, reports: Sequence[Report]) -> None:
        await self._broker.report(reports)

    async def cancellations(self, handler: Callable[[str], Awaitable[None]]) -> None:
        await self._broker._listen(handler)
