"""The lines a task's executor prints, cut into records, scrubbed of secrets and sent as they come.

The worker pool opens a `TaskLog` per attempt (when it has `TaskLogs`) and makes it the `current_log` of the
attempt's context, so an executor that reads a child's output (the shell executor) hands its chunks to
`current_log.get()` without the `Executor` protocol changing. Each record is one line of one stream:
`{"runID", "taskRunID", "taskName", "attempt", "stream", "time", "line"}`.

Bounds: a line longer than `MAX_LINE` characters is cut (marked with `…`); after `MAX_BYTES` bytes of lines in
one attempt, one last record says the log was cut and the rest is dropped (the task's `stdout`/`stderr`
outputs are not affected). Secrets are redacted per line, in every encoding `redaction` knows; a secret
split across two lines is not recognised (docs/security.md).

On NATS (`NatsTaskLogs`) each record goes to `<prefix>.logs.<run id>.<task run id>` in the logs stream,
published without waiting for JetStream's ack: a log must never slow a task down or fail it, so a line the
server could not store is lost (the stream's bounds, in `Layout`, drop the oldest lines anyway).
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any, Protocol

import nats.errors
import orjson
from nats.aio.client import Client

from aether_es.adapters.nats.layout import Layout
from aether_es.model.clock import now
from aether_es.ports.wire import TaskAssignment
from aether_es.worker.redaction import REDACTED, secret_pattern, secret_values

log = logging.getLogger(__name__)

MAX_LINE = 16 * 1024
MAX_BYTES = 4 * 1024 * 1024

Emit = Callable[[dict[str, Any]], Awaitable[None]]

current_log: ContextVar[TaskLog | None] = ContextVar("current_log", default=None)
"""The log of the attempt running in this context, None where nothing collects one."""


class TaskLogs(Protocol):
    """Where attempts' logs go: one `TaskLog` per attempt."""

    def open(self, assignment: TaskAssignment) -> TaskLog: ...


class TaskLog:
    """One attempt's log: `write` chunks of a stream as they are read, `close` once the executor is done."""

    def __init__(self, assignment: TaskAssignment, emit: Emit) -> None:
        self._emit = emit
        self._assignment = assignment
        self._partial: dict[str, bytes] = {}
        self._sent = 0
        self._cut = False

    @functools.cached_property
    def _secrets(self) -> re.Pattern[str] | None:
        """Compiled at the first line, as `_base` is built: most attempts print nothing (`echo`, `http`)."""
        return secret_pattern(secret_values(self._assignment))

    @functools.cached_property
    def _base(self) -> dict[str, Any]:
        a = self._assignment
        return {"runID": a.workflow_run_id, "taskRunID": a.task_run_id, "taskName": a.task_name, "attempt": a.attempt}

    async def write(self, stream: str, chunk: bytes) -> None:
        """Send every complete line of `stream` that `chunk` ends; keep the unfinished one for later."""
        if self._cut:
            return
        *lines, rest = (self._partial.get(stream, b"") + chunk).split(b"\n")
        self._partial[stream] = rest[: MAX_LINE * 4]  # a line without end keeps at most what is ever shown
        for line in lines:
            await self._line(stream, line)

    async def close(self) -> None:
        """Send what each stream printed after its last newline."""
        partial, self._partial = self._partial, {}
        for stream, rest in partial.items():
            if rest:
                await self._line(stream, rest)

    async def _line(self, stream: str, raw: bytes) -> None:
        if self._cut:
            return
        text = raw.decode("utf-8", "replace").removesuffix("\r")
        if len(text) > MAX_LINE:
            text = text[: MAX_LINE - 1] + "…"
        if self._secrets is not None:
            text = self._secrets.sub(REDACTED, text)
        self._sent += len(raw) + 1
        if self._sent > MAX_BYTES:
            self._cut = True
            text = f"[aether: the log of this attempt was cut after {MAX_BYTES} bytes]"
        await self._emit({**self._base, "stream": stream, "time": now(), "line": text})


class NatsTaskLogs:
    """`TaskLogs` publishing on `nc`: a publish that fails is logged at WARNING once per attempt and dropped."""

    def __init__(self, nc: Client, layout: Layout) -> None:
        self._nc = nc
        self._layout = layout

    def open(self, assignment: TaskAssignment) -> TaskLog:
        subject = ""  # made at the first line, like everything a log that stays empty never needs
        failed = False

        async def emit(record: dict[str, Any]) -> None:
            nonlocal subject, failed
            subject = subject or self._layout.log_subject(assignment.workflow_run_id, assignment.task_run_id)
            try:
                await self._nc.publish(subject, orjson.dumps(record))
            except nats.errors.Error as exc:
                if not failed:
                    failed = True
                    log.warning("task log of %s: a line could not be sent: %r", assignment.task_run_id, exc)

        return TaskLog(assignment, emit)
