"""An error sink publishing reports to the `<PREFIX>_ERRORS` stream without ever making the engine wait.

`on_error` only appends to a bounded in-memory queue (when it is full the oldest report is dropped and
counted); a background task publishes the queue in order to `<prefix>.errors.<severity>`. While NATS is
unreachable reports wait in the queue, so an outage costs at most the oldest reports, never engine time.

Payload (JSON): `operation`, `message` (cut to `max_message_chars`), `severity` (`info`|`warning`|`error`|
`critical`), `severityLevel` (0-3), `workflowRunID`, `taskRunID`, `reportedAt` (RFC 3339, UTC, when
`on_error` was called). Each report has a `Nats-Msg-Id`, so a publish retried after an unknown outcome is
stored once.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
from nats.js import JetStreamContext
from nats.js.api import Header

from aether_es.adapters.background import cancel_and_wait
from aether_es.adapters.nats.layout import Layout
from aether_es.adapters.nats.retry import TRANSIENT
from aether_es.ports.error_sink import ErrorReport

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Queued:
    seq: int
    report: ErrorReport
    reported_at: datetime


class NatsErrorSink:
    """Publishes error reports to JetStream from a background task; see the module docstring."""

    def __init__(
        self,
        js: JetStreamContext,
        layout: Layout,
        capacity: int = 1000,
        *,
        publish_timeout: float = 2.0,
        stop_timeout: float = 1.0,
        max_message_chars: int = 16_384,
        retry_delay: float = 0.1,
        max_retry_delay: float = 2.0,
    ) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, not {capacity}")
        self.js = js
        self.layout = layout
        self.capacity = capacity
        self.publish_timeout = publish_timeout
        self.stop_timeout = stop_timeout
        self.max_message_chars = max_message_chars
        self.retry_delay = retry_delay
        self.max_retry_delay = max_retry_delay
        self.dropped = 0
        """Reports dropped unpublished because the queue was full (the oldest go first)."""
        self.failed = 0
        """Reports NATS refused for good (not a transient error); they are logged and not retried."""
        self.published = 0
        self._queue: deque[_Queued] = deque()
        self._seq = 0
        self._instance = uuid.uuid4().hex
        self._wakeup = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    @property
    def pending(self) -> int:
        """Reports queued and not yet published."""
        return len(self._queue)

    async def on_error(self, report: ErrorReport) -> None:
        """Queue the report and return at once; never raises, never waits."""
        try:
            if len(self._queue) >= self.capacity:
                self._queue.popleft()
                self.dropped += 1
                if self.dropped == 1 or self.dropped % 1000 == 0:
                    log.warning("error sink queue full (%d): %d reports dropped so far", self.capacity, self.dropped)
            self._seq += 1
            self._queue.append(_Queued(self._seq, report, datetime.now(UTC)))
            self._wakeup.set()
        except Exception:
            log.exception("error sink could not queue a report for %s", report.operation)

    def start(self) -> None:
        """Start publishing in the background (reports queued before are published too)."""
        if self._task is not None and not self._task.done():
            return
        self._stopping = False
        self._task = asyncio.get_running_loop().create_task(self._run(), name="aether-nats-error-sink")

    async def stop(self, timeout: float | None = None) -> None:
        """Publish what can be published within `timeout` (default `stop_timeout`), then stop the task."""
        task = self._task
        if task is None:
            return
        self._stopping = True
        self._wakeup.set()
        await asyncio.wait({task}, timeout=self.stop_timeout if timeout is None else timeout)
        await cancel_and_wait(task)
        self._task = None
        if self._queue:
            log.warning("error sink stopped with %d reports unpublished", len(self._queue))

    async def publish(self, report: ErrorReport) -> None:
        """Publish one report now, waiting for the stream's acknowledgement; raises when it is not stored.

        For reports that must not be lost (a commit's outbox): their id is the message id, so a repeat is
        stored once."""
        item = _Queued(0, report, datetime.now(UTC))
        await self.js.publish(
            self.layout.error_subject(report.severity.name.lower()),
            self.payload(item),
            timeout=self.publish_timeout,
            headers={Header.MSG_ID.value: report.id or f"{self._instance}-now-{uuid.uuid4().hex}"},
        )
        self.published += 1

    def payload(self, item: _Queued) -> bytes:
        report = item.report
        message = report.message
        if len(message) > self.max_message_chars:
            message = message[: self.max_message_chars] + f"... ({len(report.message)} chars)"
        return orjson.dumps(
            {
                "operation": report.operation,
                "message": message,
                "severity": report.severity.name.lower(),
                "severityLevel": int(report.severity),
                "workflowRunID": report.workflow_run_id,
                "taskRunID": report.task_run_id,
                "reportedAt": item.reported_at.isoformat().replace("+00:00", "Z"),
            }
        )

    async def _run(self) -> None:
        delay = self.retry_delay
        while True:
            if not self._queue:
                if self._stopping:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            item = self._queue[0]
            try:
                await self.js.publish(
                    self.layout.error_subject(item.report.severity.name.lower()),
                    self.payload(item),
                    timeout=self.publish_timeout,
                    headers={Header.MSG_ID.value: item.report.id or f"{self._instance}-{item.seq}"},
                )
            except asyncio.CancelledError:
                raise
            except TRANSIENT as exc:
                log.debug("error sink: publish failed (%r), retrying in %.2fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_retry_delay)
                continue
            except Exception as exc:
                self.failed += 1
                log.warning("error sink: report for %s refused by NATS (%r), dropped", item.report.operation, exc)
            else:
                self.published += 1
            delay = self.retry_delay
            # While publishing, a full queue may have dropped this very report: remove it only if still first.
            if self._queue and self._queue[0].seq == item.seq:
                self._queue.popleft()
