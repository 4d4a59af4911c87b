"""The gauges that only NATS knows, read when `/metrics` is scraped.

Queue depth and tasks in flight come from the executor consumers of the tasks stream, live workers from
the worker registry, feed lag from the history stream's last sequence and the feed's checkpoint. A scrape
costs a handful of requests (one per executor consumer, one per worker registration); nothing runs between
scrapes. A part that cannot be read is logged at WARNING and keeps its last value, so one unreachable part
never fails the scrape.
"""

from __future__ import annotations

import logging
from collections import Counter as Tally

from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError
from prometheus_client import Gauge

from aether_es.adapters.nats.layout import Layout
from aether_es.adapters.nats.worker_registry import NatsWorkerRegistry
from aether_es.observability import metrics
from aether_es.runtime.feed import CHECKPOINT_KEY

log = logging.getLogger(__name__)

_CONSUMER_PREFIX = "exec_"


async def sample(js: JetStreamContext, layout: Layout) -> None:
    """Refresh the NATS-read gauges of `metrics` for the system under `layout`."""
    for part, read in (("queues", _queues), ("workers", _workers), ("feed lag", _feed_lag)):
        try:
            await read(js, layout)
        except Exception as exc:
            log.warning("metrics: cannot read %s: %s", part, str(exc) or type(exc).__name__)


async def scrape(js: JetStreamContext, layout: Layout) -> tuple[bytes, str]:
    """`sample`, then the exposition and its content type: what a `/metrics` handler returns."""
    await sample(js, layout)
    return metrics.exposition()


async def _queues(js: JetStreamContext, layout: Layout) -> None:
    for info in await js.consumers_info(layout.tasks_stream):
        name = info.config.durable_name or info.name
        if not name.startswith(_CONSUMER_PREFIX):
            continue
        executor_type = name[len(_CONSUMER_PREFIX) :]
        metrics.QUEUE_DEPTH.labels(executor_type).set(info.num_pending or 0)
        metrics.TASKS_IN_FLIGHT.labels(executor_type).set(info.num_ack_pending or 0)


async def _workers(js: JetStreamContext, layout: Layout) -> None:
    tally = Tally(t for worker in await NatsWorkerRegistry(js, layout).list_all() for t in worker.executor_types)
    for executor_type in {*tally, *_labelled(metrics.WORKERS_LIVE)}:
        metrics.WORKERS_LIVE.labels(executor_type).set(tally.get(executor_type, 0))


def _labelled(gauge: Gauge) -> list[str]:
    """The executor types a gauge has a value for already (so a type whose workers left drops to 0)."""
    return [sample.labels["executor_type"] for family in gauge.collect() for sample in family.samples]


async def _feed_lag(js: JetStreamContext, layout: Layout) -> None:
    last = (await js.stream_info(layout.runs_stream)).state.last_seq
    try:
        entry = await (await js.key_value(layout.feed_bucket)).get(CHECKPOINT_KEY)
        published = int(entry.value or b"0")
    except KeyNotFoundError:
        published = 0
    metrics.FEED_LAG.set(max(0, last - published))
