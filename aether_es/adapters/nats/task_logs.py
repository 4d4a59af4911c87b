"""Reading task logs: one run's or one task run's lines from the logs stream, from the start, then live.

Workers publish them (`aether_es.worker.task_log.NatsTaskLogs`); `aether-es logs` and the web UI read them here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import orjson
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from aether_es.adapters.nats.layout import Layout

log = logging.getLogger(__name__)

READ_BATCH = 256
IDLE_WAIT = 1.0
"""Seconds a follower's fetch waits for new lines before asking again (and noticing it should stop)."""


async def read_logs(
    js: JetStreamContext,
    layout: Layout,
    run_id: str,
    task_run_id: str = "",
    *,
    follow: bool = False,
    stop: asyncio.Event | None = None,
) -> AsyncIterator[dict[str, Any]]:
    """The log records of the run (or of one of its task runs) in the order they were stored: those stored
    so far, then, with `follow`, each new one as it comes, until the caller stops iterating or `stop` is set
    and every line stored by then has been read."""
    subject = layout.log_subject(run_id, task_run_id) if task_run_id else layout.run_log_subjects(run_id)
    sub = await js.pull_subscribe(
        subject,
        stream=layout.logs_stream,
        config=ConsumerConfig(
            deliver_policy=DeliverPolicy.ALL, ack_policy=AckPolicy.NONE, inactive_threshold=30.0, mem_storage=True
        ),
    )
    consumer = ""
    try:
        info = await sub.consumer_info()
        consumer, pending = info.name, info.num_pending or 0
        while True:
            if not pending:
                if not follow:
                    return
                if stop is not None and stop.is_set():
                    pending = (await sub.consumer_info()).num_pending or 0
                    if not pending:
                        return
            try:
                msgs = await sub.fetch(READ_BATCH, timeout=IDLE_WAIT)
            except TimeoutError:
                continue
            for msg in msgs:
                pending = msg.metadata.num_pending
                try:
                    yield orjson.loads(msg.data)
                except orjson.JSONDecodeError:
                    log.warning("task log: skipping a line on %s that is not JSON", msg.subject)
    finally:
        with contextlib.suppress(Exception):  # the consumer also lapses by itself once inactive
            await sub.unsubscribe()
            if consumer:
                await js.delete_consumer(layout.logs_stream, consumer)
