"""Every stream, consumer, bucket and subject name the NATS adapters use, derived from one prefix.

Keeping the names and configs in one place means the layout can be reviewed at a glance, and a distinct
prefix lets several independent engines (or tests) share one server without seeing each other's messages.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, replace

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    ConsumerInfo,
    DeliverPolicy,
    DiscardPolicy,
    KeyValueConfig,
    ObjectStoreConfig,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import (
    APIError,
    BadRequestError,
    BucketNotFoundError,
    KeyNotFoundError,
    KeyWrongLastSequenceError,
    NotFoundError,
)

from aether_es.cluster.partitions import DEFAULT_PARTITIONS, check_partitions, slot_of, slots_of

log = logging.getLogger(__name__)

_TOKEN = re.compile(r"^[A-Za-z0-9_-]+$")
# Ids become subject suffixes and KV keys: the KV key alphabet, dot-separated non-empty tokens.
_ID = re.compile(r"^[A-Za-z0-9_=/-]+(?:\.[A-Za-z0-9_=/-]+)*$")

_STREAM_NAME_IN_USE = 10058
_INSUFFICIENT_STORAGE = 10047
SMALLEST_CAP = 1024**2
"""Bytes under which a stream's size cap is not halved further when the store cannot reserve it."""

DEFAULT_ACK_WAIT = 5.0
"""Seconds before an unacked task or report goes to another holder. Holders that are alive keep theirs with
in-progress signals every third of it, so it only bounds how long the work of a crashed worker or engine
waits: short, so that work resumes within seconds."""


def check_token(what: str, value: str) -> str:
    """`value` if it is one safe subject token (letters, digits, `_`, `-`), else a ValueError naming it."""
    if not _TOKEN.match(value):
        raise ValueError(f"{what} {value!r} is not a safe NATS subject token: use only letters, digits, '_' and '-'")
    return value


def check_id(what: str, value: str) -> str:
    """`value` if it can be a subject suffix and a KV key (no wildcards, spaces or empty tokens)."""
    if not _ID.match(value):
        raise ValueError(
            f"{what} {value!r} cannot be used in a NATS subject: use letters, digits, '_', '-', '=', '/' "
            "and single dots between them"
        )
    return value


@dataclass(frozen=True, slots=True)
class Layout:
    """Names and configs under `prefix` (subjects use it as is, stream names upper-cased)."""

    prefix: str = "aether"
    duplicate_window: float = 120.0
    task_ack_wait: float = DEFAULT_ACK_WAIT
    task_max_ack_pending: int = 10_000
    report_ack_wait: float = DEFAULT_ACK_WAIT
    report_max_ack_pending: int = 50_000
    replicas: int = 1
    errors_max_age: float = 7 * 24 * 3600.0
    errors_max_msgs: int = 100_000
    feed_max_age: float = 0.0
    """Seconds the event feed keeps a message; 0 keeps it for ever (the default: nothing is dropped)."""
    feed_max_bytes: int = -1
    """Bytes the event feed may hold before dropping its oldest messages; -1 means no limit."""
    logs_max_age: float = 7 * 24 * 3600.0
    """Seconds the task logs stream keeps a line (a week by default)."""
    logs_max_bytes: int = 1024**3
    """Bytes the task logs stream may hold before dropping its oldest lines (1 GiB by default)."""
    partitions: int = DEFAULT_PARTITIONS
    """How many partitions the system's runs are spread over (`cluster.partitions`); a system keeps the number
    it was created with (`ensure` returns the layout with it)."""

    def __post_init__(self) -> None:
        check_token("layout prefix", self.prefix)
        check_partitions(self.partitions)

    # --- names ---------------------------------------------------------------------------------------

    @property
    def runs_stream(self) -> str:
        return f"{self.prefix.upper()}_RUNS"

    @property
    def tasks_stream(self) -> str:
        return f"{self.prefix.upper()}_TASKS"

    @property
    def reports_stream(self) -> str:
        return f"{self.prefix.upper()}_REPORTS"

    @property
    def errors_stream(self) -> str:
        return f"{self.prefix.upper()}_ERRORS"

    @property
    def hooks_stream(self) -> str:
        """Every hook notification, kept so a listener that was away can catch up and repeats are dropped."""
        return f"{self.prefix.upper()}_HOOKS"

    @property
    def legacy_engine_consumer(self) -> str:
        """The one report consumer of systems created before reports were partitioned (`ensure` retires it)."""
        return "engine"

    def partition_consumer(self, partition: int) -> str:
        """The durable consumer of one partition's reports, read by the partition's owner alone."""
        return f"engine-{partition}"

    @property
    def outbox_consumer(self) -> str:
        """The durable consumer on the runs stream through which engines carry out commits' outboxes."""
        return "outbox"

    @property
    def summaries_bucket(self) -> str:
        return f"{self.prefix}_summaries"

    @property
    def snapshots_bucket(self) -> str:
        """The object store bucket of run snapshots (created on the first one)."""
        return f"{self.prefix}_snapshots"

    @property
    def values_bucket(self) -> str:
        """The object store bucket of values too big to travel inline, each under its content's digest."""
        return f"{self.prefix}_values"

    @property
    def artifacts_bucket(self) -> str:
        """The object store bucket where workers keep artifacts by default (`<run>/<task run>/<name>`)."""
        return f"{self.prefix}_artifacts"

    @property
    def deadlines_bucket(self) -> str:
        return f"{self.prefix}_deadlines"

    @property
    def workers_bucket(self) -> str:
        return f"{self.prefix}_workers"

    @property
    def leases_bucket(self) -> str:
        return f"{self.prefix}_leases"

    def executor_consumer(self, executor_type: str) -> str:
        return f"exec_{check_token('executor type', executor_type)}"

    # --- subjects ------------------------------------------------------------------------------------

    @property
    def run_subjects(self) -> str:
        return f"{self.prefix}.run.>"

    def run_subject(self, run_id: str) -> str:
        return f"{self.prefix}.run.{check_id('run id', run_id)}"

    def run_id_of(self, subject: str) -> str:
        return subject[len(self.prefix) + len(".run.") :]

    def task_subject(self, executor_type: str, run_id: str) -> str:
        return f"{self.prefix}.task.{check_token('executor type', executor_type)}.{check_id('run id', run_id)}"

    def task_filter(self, executor_type: str) -> str:
        return f"{self.prefix}.task.{check_token('executor type', executor_type)}.>"

    def report_subject(self, run_id: str) -> str:
        """`<prefix>.report.<slot>.<run id>`: the slot (`cluster.partitions.slot_of`) routes it to its partition."""
        return f"{self.prefix}.report.{slot_of(check_id('run id', run_id))}.{run_id}"

    def cancel_subject(self, task_run_id: str) -> str:
        return f"{self.prefix}.cancel.{check_id('task run id', task_run_id)}"

    @property
    def cancel_subjects(self) -> str:
        return f"{self.prefix}.cancel.>"

    def task_run_id_of_cancel(self, subject: str) -> str:
        return subject[len(self.prefix) + len(".cancel.") :]

    def error_subject(self, severity: str) -> str:
        """Where error reports of `severity` (`info`, `warning`, `error`, `critical`) are published."""
        return f"{self.prefix}.errors.{check_token('severity', severity)}"

    @property
    def error_subjects(self) -> str:
        return f"{self.prefix}.errors.>"

    def hook_subject(self, workflow_run_id: str, hook_type: str) -> str:
        """Core NATS subject of a hook notification: `<prefix>.hooks.<workflow run id>.<hookType>`."""
        return f"{self.prefix}.hooks.{check_id('run id', workflow_run_id)}.{check_token('hook type', hook_type)}"

    @property
    def hook_subjects(self) -> str:
        return f"{self.prefix}.hooks.>"

    # --- configs -------------------------------------------------------------------------------------

    def runs_stream_config(self) -> StreamConfig:
        """History: never expires or drops by limits; direct gets for fast rehydration; deletes refused."""
        return StreamConfig(
            name=self.runs_stream,
            subjects=[self.run_subjects],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            max_msgs=-1,
            max_bytes=-1,
            max_age=0,
            max_msgs_per_subject=-1,
            discard=DiscardPolicy.OLD,
            duplicate_window=self.duplicate_window,
            allow_direct=True,
            deny_delete=True,
            num_replicas=self.replicas,
        )

    def tasks_stream_config(self) -> StreamConfig:
        return StreamConfig(
            name=self.tasks_stream,
            subjects=[f"{self.prefix}.task.>"],
            retention=RetentionPolicy.WORK_QUEUE,
            storage=StorageType.FILE,
            duplicate_window=self.duplicate_window,
            num_replicas=self.replicas,
        )

    def reports_stream_config(self) -> StreamConfig:
        return StreamConfig(
            name=self.reports_stream,
            subjects=[f"{self.prefix}.report.>"],
            retention=RetentionPolicy.WORK_QUEUE,
            storage=StorageType.FILE,
            duplicate_window=self.duplicate_window,
            num_replicas=self.replicas,
        )

    def errors_stream_config(self) -> StreamConfig:
        """Error reports for operators: bounded by age and count, oldest dropped first."""
        return self._for_operators(self.errors_stream, self.error_subjects)

    def _for_operators(self, name: str, subjects: str) -> StreamConfig:
        """A stream people read to see what happened: bounded by age and count, oldest dropped first, and
        deduplicated by message id (a report or notification repeated after a crash is kept once)."""
        return StreamConfig(
            name=name,
            subjects=[subjects],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            max_msgs=self.errors_max_msgs,
            max_age=self.errors_max_age,
            discard=DiscardPolicy.OLD,
            duplicate_window=self.duplicate_window,
            num_replicas=self.replicas,
        )

    def hooks_stream_config(self) -> StreamConfig:
        """Hook notifications: bounded like error reports; the outbox ids are message ids, so a notification
        repeated after a crash is stored once."""
        return self._for_operators(self.hooks_stream, self.hook_subjects)

    def outbox_consumer_config(self) -> ConsumerConfig:
        """Headers only: the outbox travels in a header, so the relay never reads a commit's events. New
        commits only: a system that had none before does not send its past notifications again."""
        return ConsumerConfig(
            name=self.outbox_consumer,
            durable_name=self.outbox_consumer,
            deliver_policy=DeliverPolicy.NEW,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self.report_ack_wait,
            max_ack_pending=self.report_max_ack_pending,
            headers_only=True,
            num_replicas=self.replicas,
        )

    def executor_consumer_config(self, executor_type: str) -> ConsumerConfig:
        name = self.executor_consumer(executor_type)
        return ConsumerConfig(
            name=name,
            durable_name=name,
            filter_subject=self.task_filter(executor_type),
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self.task_ack_wait,
            max_ack_pending=self.task_max_ack_pending,
        )

    def partition_consumer_config(self, partition: int) -> ConsumerConfig:
        name = self.partition_consumer(partition)
        slots = [f"{self.prefix}.report.{slot}.>" for slot in slots_of(partition, self.partitions)]
        return ConsumerConfig(
            name=name,
            durable_name=name,
            filter_subject=f"{self.prefix}.report.>" if self.partitions == 1 else None,
            filter_subjects=None if self.partitions == 1 else slots,
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self.report_ack_wait,
            max_ack_pending=self.report_max_ack_pending,
        )

    def summaries_kv_config(self) -> KeyValueConfig:
        return KeyValueConfig(
            bucket=self.summaries_bucket,
            history=1,
            storage=StorageType.FILE,
            replicas=self.replicas,
            direct=True,
        )

    def values_object_store_config(self) -> ObjectStoreConfig:
        return ObjectStoreConfig(bucket=self.values_bucket, storage=StorageType.FILE, replicas=self.replicas)

    def artifacts_object_store_config(self) -> ObjectStoreConfig:
        return ObjectStoreConfig(bucket=self.artifacts_bucket, storage=StorageType.FILE, replicas=self.replicas)

    def deadlines_kv_config(self) -> KeyValueConfig:
        return KeyValueConfig(
            bucket=self.deadlines_bucket,
            history=1,
            storage=StorageType.FILE,
            replicas=self.replicas,
            direct=True,
        )

    def leases_kv_config(self) -> KeyValueConfig:
        """Leases among engine replicas (per-message TTL, no limit markers, as for workers)."""
        return KeyValueConfig(
            bucket=self.leases_bucket, history=1, storage=StorageType.FILE, replicas=self.replicas, direct=True
        )

    def workers_kv_config(self) -> KeyValueConfig:
        """Worker registrations, each with its own per-message TTL renewed by heartbeats.

        No limit markers: the registry reads keys with `get` (notes §4.2), and an expired key must simply vanish.
        """
        return KeyValueConfig(
            bucket=self.workers_bucket,
            history=1,
            storage=StorageType.FILE,
            replicas=self.replicas,
            direct=True,
        )

    # --- request/reply API -----------------------------------------------------------------------------

    def api_subject(self, operation: str) -> str:
        """Subject of one API operation (`runs.submit`, ...): `<prefix>.api.v1.<operation>`."""
        return f"{self.prefix}.api.v1.{check_id('api operation', operation)}"

    @property
    def api_subjects(self) -> str:
        return f"{self.prefix}.api.v1.>"

    @property
    def idempotency_bucket(self) -> str:
        return f"{self.prefix}_idempotency"

    def idempotency_kv_config(self) -> KeyValueConfig:
        """Idempotency keys of submissions, each naming its run once and for good (no expiry: a key repeated
        a year later still finds its run)."""
        return KeyValueConfig(
            bucket=self.idempotency_bucket, history=1, storage=StorageType.FILE, replicas=self.replicas, direct=True
        )

    # --- task logs: one message per line, `<prefix>.logs.<run id>.<task run id>` ------------------------

    @property
    def logs_stream(self) -> str:
        return f"{self.prefix.upper()}_LOGS"

    @property
    def logs_subjects(self) -> str:
        return f"{self.prefix}.logs.>"

    def log_subject(self, run_id: str, task_run_id: str) -> str:
        """Where the lines a task run's executor prints go."""
        return f"{self.prefix}.logs.{check_id('run id', run_id)}.{check_id('task run id', task_run_id)}"

    def run_log_subjects(self, run_id: str) -> str:
        """Every task log line of one run."""
        return f"{self.prefix}.logs.{check_id('run id', run_id)}.>"

    def logs_stream_config(self) -> StreamConfig:
        """Task logs: bounded by age and size (oldest lines dropped first), unlike the history; a line is
        published without waiting for the server's ack, so logging never slows a task down."""
        return StreamConfig(
            name=self.logs_stream,
            subjects=[self.logs_subjects],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            max_msgs=-1,
            max_bytes=self.logs_max_bytes,
            max_age=self.logs_max_age,
            discard=DiscardPolicy.OLD,
            allow_direct=True,
            num_replicas=self.replicas,
        )

    # --- event feed: one message per event, `<prefix>.events.<run id>.<EventType>` --------------------

    @property
    def feed_stream(self) -> str:
        return f"{self.prefix.upper()}_EVENTS"

    @property
    def feed_bucket(self) -> str:
        """Where the feed projector keeps its checkpoint: the last history sequence fully published."""
        return f"{self.prefix}_feed"

    @property
    def event_subjects(self) -> str:
        return f"{self.prefix}.events.>"

    def event_subject(self, run_id: str, event_type: str) -> str:
        """Feed subject of one event; a cron workflow's id is `cron.<id>`, so its events sit under `cron.`."""
        return f"{self.prefix}.events.{check_id('run id', run_id)}.{check_token('event type', event_type)}"

    def run_event_subjects(self, run_id: str) -> str:
        """Every feed event of one run."""
        return f"{self.prefix}.events.{check_id('run id', run_id)}.>"

    def feed_stream_config(self) -> StreamConfig:
        """The public feed: limits retention, no limits unless configured, atomic batches keep its order."""
        return StreamConfig(
            name=self.feed_stream,
            subjects=[self.event_subjects],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            max_msgs=-1,
            max_bytes=self.feed_max_bytes,
            max_age=self.feed_max_age,
            max_msgs_per_subject=-1,
            discard=DiscardPolicy.OLD,
            duplicate_window=self.duplicate_window,
            allow_direct=True,
            allow_atomic=True,
            num_replicas=self.replicas,
        )

    def feed_kv_config(self) -> KeyValueConfig:
        return KeyValueConfig(
            bucket=self.feed_bucket, history=1, storage=StorageType.FILE, replicas=self.replicas, direct=True
        )


async def ensure_stream(js: JetStreamContext, config: StreamConfig) -> None:
    """Create the stream unless it exists; an existing stream's config is left alone."""
    assert config.name
    try:
        await js.stream_info(config.name)
        return
    except NotFoundError:
        pass
    try:
        await js.add_stream(config)
    except BadRequestError as exc:
        if exc.err_code != _STREAM_NAME_IN_USE:
            raise
        log.info("stream %s was created concurrently with a different config; keeping it", config.name)


async def ensure_capped_stream(js: JetStreamContext, config: StreamConfig) -> None:
    """`ensure_stream` for a stream with a size cap, which JetStream reserves from its store up front: on a
    store too small to reserve it (a small disk), the cap is halved until it fits, down to `SMALLEST_CAP`,
    with a warning naming the cap it got, so a small disk makes a smaller stream rather than no system."""
    wanted = config.max_bytes
    while True:
        try:
            await ensure_stream(js, config)
        except APIError as exc:
            if exc.err_code != _INSUFFICIENT_STORAGE or not config.max_bytes or config.max_bytes // 2 < SMALLEST_CAP:
                raise
            config = replace(config, max_bytes=config.max_bytes // 2)
            continue
        if config.max_bytes != wanted:
            log.warning(
                "stream %s holds at most %d bytes, not %d: the store cannot reserve more",
                config.name,
                config.max_bytes,
                wanted,
            )
        return


async def ensure_consumer(js: JetStreamContext, stream: str, config: ConsumerConfig) -> None:
    """Create the durable consumer, or bring an existing one to `config`'s ack wait and ack-pending limit.

    The layout's values win over those of whoever created the consumer first (an older version, another
    setting): a worker that signals progress every third of its ack wait must not face a shorter one, and a
    consumer left on a long one would keep a crashed holder's work waiting. Creating an identical consumer
    concurrently is a no-op.
    """
    assert config.durable_name
    try:
        info = await js.consumer_info(stream, config.durable_name)
    except NotFoundError:
        await js.add_consumer(stream, config)
        return
    current = info.config
    if _same(current.ack_wait, config.ack_wait) and current.max_ack_pending == config.max_ack_pending:
        return
    log.info(
        "consumer %s on %s: ack wait %ss and max ack pending %s updated to %ss and %s",
        config.durable_name,
        stream,
        current.ack_wait,
        current.max_ack_pending,
        config.ack_wait,
        config.max_ack_pending,
    )
    await update_consumer(js, stream, config)


def _same(current: float | None, wanted: float | None) -> bool:
    return current is not None and wanted is not None and abs(current - wanted) < 1e-3


async def update_consumer(js: JetStreamContext, stream: str, config: ConsumerConfig) -> ConsumerInfo:
    """Change an existing consumer to `config`, or fail if the server cannot (or the consumer is gone).

    nats-py 2.16 has no update call, and what its create does with an existing durable depends on the
    client and server versions (updated, refused, or left as it was), so this is the API's explicit
    `update` action.
    """
    name = config.durable_name or config.name
    assert name
    request = {"stream_name": stream, "config": config.as_dict(), "action": "update"}
    response = await js._api_request(
        f"{js._prefix}.CONSUMER.CREATE.{stream}.{name}", json.dumps(request).encode(), timeout=js._timeout
    )
    return ConsumerInfo.from_response(response)


async def ensure_bucket(js: JetStreamContext, config: KeyValueConfig) -> None:
    try:
        await js.key_value(config.bucket)
    except BucketNotFoundError:
        await js.create_key_value(config)


async def ensure_object_store(js: JetStreamContext, config: ObjectStoreConfig) -> None:
    assert config.bucket
    try:
        await js.object_store(config.bucket)
    except (BucketNotFoundError, NotFoundError):
        await js.create_object_store(config.bucket, config)


async def ensure(js: JetStreamContext, layout: Layout) -> Layout:
    """Create whatever streams, report consumers and buckets of `layout` are missing. Idempotent.

    Returns `layout` with the system's partition count: the one it was created with, which a later
    `layout.partitions` does not change (the consumers and every engine's share depend on it)."""
    await ensure_stream(js, layout.runs_stream_config())
    await ensure_stream(js, layout.tasks_stream_config())
    await ensure_stream(js, layout.reports_stream_config())
    await ensure_stream(js, layout.errors_stream_config())
    await ensure_stream(js, layout.hooks_stream_config())
    await ensure_bucket(js, layout.summaries_kv_config())
    await ensure_bucket(js, layout.deadlines_kv_config())
    await ensure_bucket(js, layout.workers_kv_config())
    await ensure_bucket(js, layout.leases_kv_config())
    layout = replace(layout, partitions=await system_partitions(js, layout))
    await _retire_legacy_consumer(js, layout)
    for partition in range(layout.partitions):
        await ensure_consumer(js, layout.reports_stream, layout.partition_consumer_config(partition))
    await ensure_stream(js, layout.feed_stream_config())
    await ensure_bucket(js, layout.feed_kv_config())
    await ensure_capped_stream(js, layout.logs_stream_config())
    await ensure_object_store(js, layout.values_object_store_config())
    await ensure_object_store(js, layout.artifacts_object_store_config())
    return layout


PARTITIONS_KEY = "partitions"
"""The key in the leases bucket holding the system's partition count, written once, when it is created."""


async def system_partitions(js: JetStreamContext, layout: Layout) -> int:
    """The system's partition count: the first `ensure` records `layout.partitions`, later ones read it."""
    kv = await js.key_value(layout.leases_bucket)
    try:
        await kv.create(PARTITIONS_KEY, str(layout.partitions).encode())
    except KeyWrongLastSequenceError:
        return await recorded_partitions(js, layout) or layout.partitions
    return layout.partitions


async def recorded_partitions(js: JetStreamContext, layout: Layout) -> int | None:
    """The partition count the system was created with, without recording one (None before any `ensure`)."""
    kv = await js.key_value(layout.leases_bucket)
    try:
        entry = await kv.get(PARTITIONS_KEY)
    except KeyNotFoundError:
        return None
    return check_partitions(int((entry.value or b"0").decode()))


async def _move_report(js: JetStreamContext, layout: Layout, msg: Msg) -> None:
    run_id = msg.subject[len(layout.prefix) + len(".report.") :]
    headers = {k: v for k, v in (msg.headers or {}).items() if k != "Nats-Msg-Id"}  # a copy, not a repeat
    await js.publish(layout.report_subject(run_id), msg.data, headers=headers or None)
    await msg.ack_sync()


async def _retire_legacy_consumer(js: JetStreamContext, layout: Layout) -> None:
    """A system made before reports were partitioned has one consumer of every report, which the partitions'
    consumers would overlap: its reports not yet decided are published again under their slot, then it goes."""
    name = layout.legacy_engine_consumer
    try:
        await js.consumer_info(layout.reports_stream, name)
    except NotFoundError:
        return
    last = (await js.stream_info(layout.reports_stream)).state.last_seq  # the copies come after it
    sub = await js.pull_subscribe_bind(consumer=name, stream=layout.reports_stream)
    moved = 0
    try:
        while True:
            try:
                msgs = await sub.fetch(256, timeout=0.5)
            except TimeoutError:
                break
            old = [msg for msg in msgs if msg.metadata.sequence.stream <= last]
            for msg in old:
                await _move_report(js, layout, msg)
            moved += len(old)
            if len(old) < len(msgs):
                break
    finally:
        await sub.unsubscribe()
    await js.delete_consumer(layout.reports_stream, name)
    log.warning("reports are partitioned now: %d undecided reports moved under their slots", moved)
