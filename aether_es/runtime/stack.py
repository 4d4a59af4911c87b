"""Wiring a complete engine on NATS: an embedded nats-server when no URL is given, the JetStream layout,
the adapters, the engine and (optionally) an in-process worker pool.

Every command and test that needs "the real thing" builds it here, so there is one way the pieces fit.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from aether_es.adapters.cron_croniter import CroniterScheduler
from aether_es.adapters.error_sinks import CompositeErrorSink, LoggingErrorSink
from aether_es.adapters.evaluator_simple import SimpleEvaluator
from aether_es.adapters.idgen import TimeOrderedIdGenerator
from aether_es.adapters.nats.broker import NatsBroker, NatsWorkerChannel
from aether_es.adapters.nats.connection import NatsAuth, NatsConnection, connect
from aether_es.adapters.nats.deadlines import NatsDeadlines
from aether_es.adapters.nats.error_sink import NatsErrorSink
from aether_es.adapters.nats.event_store import NatsEventStore
from aether_es.adapters.nats.layout import DEFAULT_ACK_WAIT, Layout, ensure
from aether_es.adapters.nats.leases import NatsLeases
from aether_es.adapters.nats.membership import NatsMembership
from aether_es.adapters.nats.notifier import NatsHookNotifier
from aether_es.adapters.nats.object_store import NatsObjectStoreRepository
from aether_es.adapters.nats.outbox import NatsOutboxRelay
from aether_es.adapters.nats.server import EmbeddedNatsServer
from aether_es.adapters.nats.snapshots import NatsSnapshotStore
from aether_es.adapters.nats.worker_registry import NatsWorkerRegistry
from aether_es.adapters.notifiers import CompositeNotifier
from aether_es.adapters.vars_sources import SystemSource
from aether_es.api.forwarding import NatsCommandRouter
from aether_es.cluster.partitions import DEFAULT_PARTITIONS
from aether_es.model import clock
from aether_es.observability.metrics import watch_deadlines
from aether_es.observability.tracing import configure_from_env as configure_tracing
from aether_es.observability.tracing import run_finished
from aether_es.ports.artifacts import ArtifactRepository
from aether_es.ports.cron_scheduler import CronScheduler
from aether_es.ports.error_sink import ErrorReport, ErrorSink
from aether_es.ports.evaluator import Evaluator
from aether_es.ports.idgen import IdContext, IdGenerator
from aether_es.ports.notifier import HookNotifier
from aether_es.ports.secrets import SecretProvider
from aether_es.ports.vars import VarsSource
from aether_es.runtime.engine import Engine
from aether_es.runtime.feed import FeedProjector
from aether_es.runtime.feed_process import FeedProcess
from aether_es.runtime.gc_tuning import tune_for_engine
from aether_es.runtime.outbox import ErrorPublisher, OutboxDelivery
from aether_es.runtime.ownership import DEFAULT_LEASE_TTL, Ownership, Singleton
from aether_es.runtime.state_dir import DEFAULT_STATE_DIR, OwnerLock, claim_or_join, resolve_url, store_dir
from aether_es.worker.artifacts import ArtifactStager
from aether_es.worker.executor import Executor
from aether_es.worker.executors.await_ import AwaitExecutor
from aether_es.worker.executors.echo import EchoExecutor
from aether_es.worker.executors.http import HttpExecutor
from aether_es.worker.executors.python import PythonExecutor
from aether_es.worker.executors.shell import ShellExecutor
from aether_es.worker.executors.sleep import SleepExecutor
from aether_es.worker.pool import WorkerPool
from aether_es.worker.repositories import default_repositories
from aether_es.worker.task_log import NatsTaskLogs

log = logging.getLogger("aether_es.stack")


def default_executors(allowed_modules: Sequence[str] = ()) -> dict[str, Executor]:
    """The built-in executors (docs/executors.md), by executor type; `python` runs callables from
    `allowed_modules` (and their submodules) only."""
    return {
        "echo": EchoExecutor(),
        "shell": ShellExecutor(),
        "http": HttpExecutor(),
        "python": PythonExecutor(allowed_modules),
        "await": AwaitExecutor(),
        "sleep": SleepExecutor(),
    }


@dataclass
class StackOptions:
    nats_url: str | None = None
    state_dir: Path = DEFAULT_STATE_DIR
    prefix: str = "aether"
    replicas: int = 1
    """JetStream replicas of every stream and bucket the stack creates (3 on a 3-node cluster)."""
    workers: int = 4
    worker_poll: float = 1.0
    """Seconds an idle in-process worker's long poll lasts: how long stopping waits for the last one (a pull
    cannot be called off without stranding what it takes); short for a command that exits when its run ends."""
    executors: Mapping[str, Executor] | None = None
    allowed_modules: Sequence[str] = ()
    """The modules whose callables the in-process `python` executor may run (with `executors` None)."""
    evaluator: Evaluator | None = field(default_factory=SimpleEvaluator)
    ids: IdGenerator = field(default_factory=TimeOrderedIdGenerator)
    vars_sources: Sequence[VarsSource] = field(default_factory=lambda: [SystemSource()])
    notifier: HookNotifier | None = None
    error_sink: ErrorSink | None = None
    secrets: SecretProvider | None = None
    cron_scheduler: CronScheduler | None = field(default_factory=CroniterScheduler)
    timeout_poll: float = 0.25
    artifact_repositories: Sequence[ArtifactRepository] | None = None
    """Where workers store and fetch artifacts; by default the NATS Object Store (the default for
    undeclared outputs), a local folder under the state directory, and HTTP."""
    worker_ttl: float = 15.0  # seconds a worker registration lives without a heartbeat
    tune_gc: bool = True
    """Make the process's cyclic garbage collections rare once the stack is up (`runtime.gc_tuning`)."""
    auth: NatsAuth | None = None
    """Credentials and TLS for a given NATS server; None reads `AETHER_NATS_*` (unused by the embedded server)."""
    feed: bool = False
    """Run the event feed projector (`runtime.feed`): every history event published to `<PREFIX>_EVENTS`."""
    feed_process: bool = False
    """With `feed`, run the projector in a child process the stack owns (`runtime.feed_process`) rather than
    on this event loop, where it takes about a third of the engine's time."""
    serving: bool = False
    """This stack serves `state_dir` (`aether-es serve`): a folder another live process owns is refused rather
    than used, and a given URL is recorded in a folder nobody owns (`runtime.state_dir`)."""
    partitions: int = DEFAULT_PARTITIONS
    """How many partitions a system this stack creates spreads its runs over (`cluster.partitions`); an
    existing system keeps its own."""
    lease_ttl: float = DEFAULT_LEASE_TTL
    """Seconds an engine's partitions and singletons stay with it without a renewal: how long the
    partitions of an engine that died wait for another (`runtime.ownership`)."""
    task_ack_wait: float = DEFAULT_ACK_WAIT
    """Seconds before an unacked assignment goes to another worker (a worker that died; live ones signal
    progress every third of it); whoever binds an executor consumer last sets it, so engine and workers must
    agree."""


@dataclass
class Stack:
    """A running engine (and workers) on one NATS connection; `close` undoes everything in order."""

    options: StackOptions
    connection: NatsConnection
    layout: Layout
    engine: Engine
    store: NatsEventStore
    broker: NatsBroker
    deadlines: NatsDeadlines
    server: EmbeddedNatsServer | None = None
    pool: WorkerPool | None = None
    registry: NatsWorkerRegistry | None = None
    errors: NatsErrorSink | None = None
    feed: FeedProjector | None = None
    """The projector on this event loop (`StackOptions.feed` without `feed_process`)."""
    feed_process: FeedProcess | None = None
    """The projector's child process (`StackOptions.feed_process`)."""
    relay: NatsOutboxRelay | None = None
    ownership: Ownership | None = None
    owner: OwnerLock | None = None
    """The hold on `options.state_dir` while this stack serves it (`runtime.state_dir`)."""

    @property
    def url(self) -> str:
        return str(self.connection.nc.connected_url.geturl()) if self.connection.nc.connected_url else ""

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.stop()
        if self.ownership is not None:
            await self.ownership.stop()  # hands the partitions over before the engine stops
        await self.engine.stop()
        if self.relay is not None:
            await self.relay.stop(drain=2.0)
        if self.feed is not None:
            await self.feed.stop(drain=2.0)
        if self.feed_process is not None:
            await self.feed_process.stop()
        if self.errors is not None:
            await self.errors.stop()
        await self.connection.close()
        if self.server is not None:
            self.server.close()
        if self.owner is not None:
            self.owner.release()  # after the server is gone, so no second one starts on the store meanwhile


def _error_publisher(errors: NatsErrorSink, options: StackOptions) -> ErrorPublisher:
    """How the outbox relay reports: logged, to the caller's sink, and durably to the errors stream."""
    logged = LoggingErrorSink()

    async def publish(report: ErrorReport) -> None:
        await logged.on_error(report)
        if options.error_sink is not None:
            await options.error_sink.on_error(report)
        await errors.publish(report)

    return publish


async def _nats(options: StackOptions) -> tuple[str, EmbeddedNatsServer | None, OwnerLock | None]:
    """The URL to connect to, and what the stack owns: the folder's embedded server and lock (`state_dir`).

    Without a URL the stack becomes the owner of `state_dir` and starts its server, or, when a live process
    owns it, uses that system as if its URL had been given (`serving` refuses instead): one server per store.
    """
    url = resolve_url(options.nats_url)
    if url is not None:
        owner = OwnerLock.acquire(options.state_dir) if options.serving else None
        if owner is not None:
            owner.publish(url)
        elif options.serving:
            log.info("%s: served by another process; not recording %s there", options.state_dir, url)
        return url, None, owner
    claim = await claim_or_join(options.state_dir, join=not options.serving)
    if isinstance(claim, str):
        return claim, None, None
    try:
        server = EmbeddedNatsServer(store_dir(options.state_dir))
        try:
            claim.publish(server.start())
        except BaseException:
            server.close()
            raise
    except BaseException:
        claim.release()
        raise
    return server.url, server, claim


def _engine_id(options: StackOptions) -> str:
    """A serving engine keeps its id in its state folder (which it alone holds), so that, restarted after a
    crash, it takes back its leases at once instead of waiting for them to lapse; other engines get a new one."""
    fresh = options.ids.generate(IdContext(workflow_kind="Engine"))
    if not options.serving:
        return fresh
    path = options.state_dir / "engine-id"
    try:
        kept = path.read_text().strip()
    except OSError:
        kept = ""
    if kept:
        return kept
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(fresh)
    except OSError as exc:
        log.warning("%s: engine id not kept (%s); a restart waits for its leases to lapse", path, exc)
    return fresh


async def open_stack(options: StackOptions) -> Stack:
    url, server, owner = await _nats(options)
    try:
        auth = None if server is not None else options.auth or NatsAuth.from_env()
        connection = await connect(url, auth=auth)
        layout = Layout(
            prefix=options.prefix,
            replicas=options.replicas,
            task_ack_wait=options.task_ack_wait,
            partitions=options.partitions,
        )
        layout = await ensure(connection.js, layout)
        if layout.partitions != options.partitions:
            log.info("the system keeps the %d partitions it was created with", layout.partitions)
        store = NatsEventStore(connection.nc, layout)
        broker = NatsBroker(connection.js, connection.nc, layout)
        deadlines = NatsDeadlines(connection.js, layout, broker.report, poll_interval=options.timeout_poll)
        watch_deadlines(lambda: deadlines.pending)
        registry = NatsWorkerRegistry(connection.js, layout, ttl=options.worker_ttl)
        errors = NatsErrorSink(connection.js, layout)
        errors.start()
        hooks = NatsHookNotifier(connection.nc, layout)
        notifier = CompositeNotifier(hooks, options.notifier) if options.notifier is not None else hooks
        relay = NatsOutboxRelay(connection.js, layout, OutboxDelivery(notifier, _error_publisher(errors, options)))
        await relay.start()  # before the engine commits anything: the relay's consumer takes new commits only
        engine_id = _engine_id(options)
        leases = NatsLeases(connection.js, layout, owner=engine_id, ttl=options.lease_ttl)
        engine = Engine(
            store=store,
            broker=broker,
            ids=options.ids,
            evaluator=options.evaluator,
            secrets=options.secrets,
            notifier=notifier,
            error_sink=CompositeErrorSink(LoggingErrorSink(), errors, *filter(None, [options.error_sink])),
            outbox=True,
            deadlines=deadlines,
            vars_sources=options.vars_sources,
            cron_scheduler=options.cron_scheduler,
            worker_registry=registry,
            leases=leases,
            snapshots=NatsSnapshotStore(NatsObjectStoreRepository(connection.js, layout.snapshots_bucket)),
            artifacts=NatsObjectStoreRepository(connection.js, layout.artifacts_bucket),
            partitions=layout.partitions,
            router=NatsCommandRouter(connection.nc, layout, patience=options.lease_ttl * 2 + 5),
        )
        pool = None
        if options.workers > 0:
            executors = (
                options.executors if options.executors is not None else default_executors(options.allowed_modules)
            )
            repositories = options.artifact_repositories or default_repositories(
                connection.js, layout, options.state_dir
            )
            pool = WorkerPool(
                NatsWorkerChannel(connection.js, connection.nc, layout),
                executors,
                options.workers,
                ack_wait=options.task_ack_wait,
                registry=registry,
                artifacts=ArtifactStager(repositories, options.state_dir / "work"),
                fetch_timeout=options.worker_poll,
                logs=NatsTaskLogs(connection.nc, layout),
            )
            await pool.start()
        if configure_tracing():
            engine.finished.append(run_finished)
        await engine.start()  # after the workers registered, so first dispatches find them
        feed = FeedProjector(connection, layout) if options.feed and not options.feed_process else None
        feed_process = FeedProcess(url, options.prefix, auth) if options.feed and options.feed_process else None
        singletons = [Singleton("watcher", deadlines.start, deadlines.stop)]
        if engine.crons is not None:
            singletons.append(Singleton("crons", engine.crons.start, engine.crons.stop))
        if feed is not None:
            singletons.append(Singleton("feed", feed.start, functools.partial(feed.stop, drain=2.0)))
        if feed_process is not None:
            singletons.append(Singleton("feed", feed_process.start, feed_process.stop))
        membership = NatsMembership(connection.js, layout, engine_id, clock.now(), options.lease_ttl)
        ownership = Ownership(engine, membership, leases, ttl=options.lease_ttl, singletons=singletons)
        await ownership.start()
    except BaseException:
        if server is not None:
            server.close()
        if owner is not None:
            owner.release()
        raise
    if options.tune_gc:
        tune_for_engine()
    return Stack(
        options,
        connection,
        layout,
        engine,
        store,
        broker,
        deadlines,
        server,
        pool,
        registry,
        errors,
        feed,
        feed_process,
        relay,
        ownership,
        owner,
    )
