"""The engine: wires the ports to the decider and keeps each run's state in memory.

Each run has a mailbox. Triggers for a run (commands and reports) queue there and are drained by one task
per run: the triggers waiting are decided against the in-memory state until the decision's work budget is
spent, all their events are appended as one commit guarded by the run's last sequence, then effects run and
reports are acked. Different runs drain
concurrently, so their appends are pipelined. A conflicting append means another writer decided first: the
run is reloaded from its history and the triggers decided again.

Once a commit is durable its callers are answered and its reports acked; its effects are then carried out,
again and again until they are (a restarted engine derives dispatches and deadlines from the run's state,
and a commit's outbox carries its notifications). A decision that raises leaves nothing behind: the run
goes back to its committed state, and a trigger that cannot be decided on its own is recorded and dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, assert_never

from aether_es.adapters.background import cancel_and_wait
from aether_es.cluster.partitions import partition_of
from aether_es.engine.decider import handle, pending_effects
from aether_es.engine.decision import DecideContext, Decision
from aether_es.engine.effects import DispatchTask, Effect
from aether_es.engine.input_schema import check_schema
from aether_es.engine.requirements import check_limits, expression_uses
from aether_es.engine.triggers import (
    Cancel,
    Completed,
    Continue,
    NoWorker,
    Resume,
    RetryDue,
    RetryRun,
    Started,
    Submit,
    TaskTimeout,
    Trigger,
    WorkflowTimeout,
)
from aether_es.errors import (
    AetherError,
    ApiError,
    InvalidStateError,
    NotFoundError,
    NotSupportedError,
    ValidationError,
)
from aether_es.events.envelope import commit_of, make_envelopes
from aether_es.events.references import PayloadTooLarge
from aether_es.events.retention_catalogue import AGGREGATE as RETENTION
from aether_es.events.retention_catalogue import RunsPurged
from aether_es.limits import LimitExceeded, Limits
from aether_es.model import clock
from aether_es.model.defaults import fill_defaults
from aether_es.model.documents import Workflow
from aether_es.model.json_values import number_problem
from aether_es.model.loading import load_workflow, parse_object
from aether_es.model.phases import ResultCode
from aether_es.model.validation import validate_workflow
from aether_es.observability.metrics import observe_decision
from aether_es.ports.artifacts import ArtifactRemover
from aether_es.ports.broker import Delivery, TaskBroker
from aether_es.ports.cron_scheduler import CronScheduler
from aether_es.ports.deadlines import DeadlineStore, TimeoutWatcher
from aether_es.ports.error_sink import ErrorReport, ErrorSink, Severity
from aether_es.ports.evaluator import Evaluator
from aether_es.ports.event_store import ConcurrencyConflict, EventStore
from aether_es.ports.idgen import IdContext, IdGenerator
from aether_es.ports.leases import Leases
from aether_es.ports.notifier import HookNotifier
from aether_es.ports.routing import Command, CommandRouter, Served
from aether_es.ports.secrets import SecretProvider
from aether_es.ports.snapshots import SnapshotStore
from aether_es.ports.vars import VarsSource
from aether_es.ports.wire import Report, TaskResult
from aether_es.ports.worker_registry import WorkerRegistry
from aether_es.projections.run_state import RunState
from aether_es.runtime.crons import CronService
from aether_es.runtime.effects import EffectRunner, Undispatched
from aether_es.runtime.outbox import encode_outbox, split_outbox
from aether_es.runtime.repository import RunRepository

log = logging.getLogger("aether_es.engine")

SCHEMAS_FOR = 3.0
"""Seconds the engine trusts its copy of the executors' input schemas before reading the registry again."""

EFFECT_RETRY_MAX = 5.0
"""Longest wait, in seconds, between two tries of effects that failed (the first waits 0.1 s), and between
two decisions of reports the store failed."""
RETRY_FIRST = 0.1

HAND_OVER_FETCH = 3.0
"""Seconds a partition's report loop may take to end its fetch under way when the partition is handed over."""

Ack = Callable[[], Awaitable[None]]
T = TypeVar("T")


@dataclass(slots=True)
class _Pending:
    trigger: Trigger
    reply: asyncio.Future[None] | None = None
    ack: Ack | None = None


@dataclass(slots=True)
class _Run:
    run_id: str
    state: RunState | None = None
    loaded: bool = False
    mailbox: list[_Pending] = field(default_factory=list)
    draining: bool = False
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    settled: asyncio.Event = field(default_factory=asyncio.Event)
    """Set while no decision is in flight: readers wait for it so they never see an uncommitted state."""
    readers: int = 0
    """Views being built from the state in worker threads (`Engine.read`); no decision starts meanwhile."""
    unread: asyncio.Event = field(default_factory=asyncio.Event)
    """Set while `readers` is 0."""
    retry_after: float = RETRY_FIRST
    """Seconds until reports the store failed are decided again (`Engine._refused`); doubles while it fails."""

    def __post_init__(self) -> None:
        self.settled.set()
        self.unread.set()


class Engine:
    """Build from ports: the event store, broker and id generator are required, the rest optional."""

    def __init__(
        self,
        *,
        store: EventStore | None,
        broker: TaskBroker | None,
        ids: IdGenerator | None,
        evaluator: Evaluator | None = None,
        secrets: SecretProvider | None = None,
        notifier: HookNotifier | None = None,
        error_sink: ErrorSink | None = None,
        deadlines: DeadlineStore | None = None,
        watcher: TimeoutWatcher | None = None,
        vars_sources: Sequence[VarsSource | None] = (),
        budget: int = 1000,
        actor: str = "user",
        keep_finished: int = 1000,
        cron_scheduler: CronScheduler | None = None,
        worker_registry: WorkerRegistry | None = None,
        leases: Leases | None = None,
        snapshots: SnapshotStore | None = None,
        snapshot_min_events: int = 1000,
        artifacts: ArtifactRemover | None = None,
        outbox: bool = False,
        limits: Limits | None = None,
        partitions: int | None = None,
        router: CommandRouter | None = None,
    ) -> None:
        """`outbox`: commits carry their hook notifications and error reports, and an outbox relay running
        beside the engine carries them out (so a crash loses none); without it the engine sends them itself
        right after the commit. `limits` (default: `Limits.from_env()`) bound what a submitted document and
        a run may hold; decisions get them as input. `budget` is the work one decision may do (see
        `DecideContext.budget`) before it leaves the rest to a continuation.

        With `partitions` the engine decides only the runs of the partitions it is given (`gain`, `lose`:
        `runtime.ownership` gives them), and sends the commands for other runs through `router` to their
        owners; without, it decides every run."""
        if store is None:
            raise ValidationError("Store is required, use Engine(store=...)")
        if ids is None:
            raise ValidationError("IDGenerator is required, use Engine(ids=...)")
        if broker is None:
            raise ValidationError("TaskBroker is required, use Engine(broker=...)")
        self.store = store
        self.repo = RunRepository(store, snapshots, snapshot_min_events, artifacts)
        self.broker = broker
        self.ids = ids
        self.evaluator = evaluator
        self.vars_sources = [source for source in vars_sources if source is not None]
        self.watcher = watcher
        self.budget = budget
        self.limits = limits if limits is not None else Limits.from_env()
        self.actor = actor
        self.effects = EffectRunner(broker, deadlines, notifier, error_sink, secrets)
        self._secrets = secrets is not None
        self._runs: dict[str, _Run] = {}
        self._finished: OrderedDict[str, None] = OrderedDict()
        self._keep_finished = keep_finished
        self._tasks: set[asyncio.Task[None]] = set()
        self._consumer: asyncio.Task[None] | None = None
        self._started = False
        self.crons = CronService(self, cron_scheduler, leases) if cron_scheduler is not None else None
        self.workers = worker_registry
        self.snapshots = snapshots
        self.outbox = outbox
        self._stopped = asyncio.Event()
        self._served: dict[str, tuple[float, bool]] = {}
        self._schemas: Mapping[str, Mapping[str, Any]] = {}
        self._schemas_at = -SCHEMAS_FOR
        self.partitions = partitions
        self.router = router
        self._owned: set[int] | None = None if partitions is None else set()
        self._partition_consumers: dict[int, asyncio.Task[None]] = {}
        self._partition_stops: dict[int, asyncio.Event] = {}
        self._partition_commands: dict[int, Served] = {}
        self.contested: Callable[[], None] | None = None
        """Called when another writer appended to a run first (`runtime.ownership` renews its leases then)."""
        self.finished: list[Callable[[RunState], None]] = []
        """Called with the state of each run this engine's decision ends (after it is durable); `serve` logs
        the failed ones."""

    # --- lifecycle -----------------------------------------------------------------------------------

    async def start(self) -> None:
        """Recover unfinished runs, then consume reports and start the timeout watcher. Non-blocking."""
        if self._started:
            raise InvalidStateError("engine already started, call stop() first")
        self._started = True
        self._stopped = asyncio.Event()
        if self._owned is None:
            await self._recover()
            self._consumer = asyncio.create_task(self.broker.consume_reports(self._on_reports))
        if self.watcher is not None:
            await self.watcher.start()
        if self.crons is not None and self._owned is None:  # a partitioned engine's crons are a singleton
            await self.crons.start()

    async def stop(self) -> None:
        """Stop consuming; in-flight drains finish so nothing decided is left without its effects."""
        if not self._started:
            return
        self._started = False
        self._stopped.set()  # effects still failing are left to the next start, which derives them again
        if self.crons is not None:
            await self.crons.stop()
        if self.watcher is not None:
            await self.watcher.stop()
        if self._consumer is not None:
            await cancel_and_wait(self._consumer)
            self._consumer = None
        await asyncio.gather(*(self.lose(p, hand_over=False) for p in list(self._partition_consumers)))
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        for run_id, run in list(self._runs.items()):  # the next start rehydrates long runs quickly
            if run.state is not None and not run.state.terminal:
                try:
                    await self.snapshot(run_id)
                except Exception as exc:
                    log.warning("run %s: snapshot not stored at stop: %r", run_id, exc)

    async def _recover(self, partitions: frozenset[int] | None = None) -> None:
        """Carry on with every run (of `partitions`) whose summary says it is unfinished. A submission writes
        its summary before its first commit, so a run is found even when its engine died right after that
        commit; a summary whose run never landed is removed, and one that lags its run's phase is brought up
        to date."""
        for summary in await self.repo.unfinished():
            if partitions is not None and self._partition(summary.run_id) not in partitions:
                continue
            run = self._run(summary.run_id)
            await self._ensure_loaded(run)
            if run.state is None:
                self._forget_absent(run)
                await self.repo.forget(summary.run_id)
                continue
            if _listed(run.state) != (summary.phase, summary.suspended):
                await self._summarise(run.state)
            if run.state.terminal:
                continue
            await self._carry_out(run, pending_effects(Decision(run.state, self._context())))
            self._enqueue(run, _Pending(Continue(actor="engine", cause="recover", at=clock.now())))

    # --- partitions ----------------------------------------------------------------------------------

    def _partition(self, run_id: str) -> int:
        assert self.partitions is not None
        return partition_of(run_id, self.partitions)

    def owns(self, run_id: str) -> bool:
        """Whether this engine decides the run (always, unless partitioned)."""
        return self._owned is None or self._partition(run_id) in self._owned

    @property
    def owned(self) -> frozenset[int]:
        return frozenset(self._owned or ())

    async def gain(self, partitions: Collection[int]) -> None:
        """Start deciding these partitions' runs: take the commands forwarded to them, carry on with their
        unfinished runs (their committed effects included: the outbox of a crashed owner), consume their
        reports. The unfinished runs are listed once for all of them."""
        assert self._owned is not None, "gain() is for a partitioned engine"
        new = sorted(set(partitions) - self._owned)
        if not new:
            return
        self._owned.update(new)
        for run_id, run in self._runs.items():  # what memory holds of them predates the other owners' commits
            if self._partition(run_id) in new and not run.draining:
                self._forget_state(run)
        try:
            for partition in new:
                if self.router is not None:
                    self._partition_commands[partition] = await self.router.serve(partition, self.carry_out)
            await self._recover(frozenset(new))
        except BaseException:  # not taken: the next round tries again
            self._owned.difference_update(new)
            for partition in new:
                served = self._partition_commands.pop(partition, None)
                if served is not None:
                    with contextlib.suppress(Exception):
                        await served.stop()
            raise
        for partition in new:
            stop = self._partition_stops[partition] = asyncio.Event()
            self._partition_consumers[partition] = asyncio.create_task(
                self.broker.consume_reports(self._on_reports, partition, stop), name=f"reports-{partition}"
            )
        log.info("deciding partitions %s", ",".join(map(str, new)))

    async def lose(self, partition: int, wait: float = 5.0, *, hand_over: bool = True) -> None:
        """Stop deciding the partition's runs: its reports go back to the stream for the next owner and no
        more commands come; decisions in flight get `wait` seconds to finish (one that commits later is fenced
        by its run's sequence), unfinished runs are snapshotted for the next owner, then leave memory.

        With `hand_over` the report loop's fetch under way ends first (up to a second), so that none of the
        reports it brings waits out the ack wait on its way to another engine; without (no engine to take the
        partition now, or NATS away) the loop is cancelled at once."""
        if self._owned is None or partition not in self._owned:
            return
        self._owned.discard(partition)
        served = self._partition_commands.pop(partition, None)  # all taken at once: a `gain` may come next
        consumer = self._partition_consumers.pop(partition, None)
        stop = self._partition_stops.pop(partition, None)
        if stop is not None:
            stop.set()  # the fetch under way ends and hands back what it brings
        if served is not None:
            await served.stop()
        if consumer is not None:
            done, _ = await asyncio.wait({consumer}, timeout=HAND_OVER_FETCH if hand_over else 0)
            if not done:
                await cancel_and_wait(consumer)
        if partition in self._owned:
            return  # taken again meanwhile: its runs are this engine's still
        runs = [run for run_id, run in self._runs.items() if self._partition(run_id) == partition]
        give_up = time.monotonic() + wait
        for run in runs:
            while (run.draining or run.mailbox) and time.monotonic() < give_up:
                await asyncio.sleep(0.01)
            if run.state is not None and not run.state.terminal and not run.draining:
                try:
                    await self.snapshot(run.run_id)
                except Exception as exc:
                    log.warning("run %s: snapshot not stored at hand-over: %r", run.run_id, exc)
            if self._runs.get(run.run_id) is run:
                del self._runs[run.run_id]
            self._finished.pop(run.run_id, None)
        log.info("no longer deciding partition %d (%d runs handed over)", partition, len(runs))

    async def carry_out(self, command: Command) -> None:
        """A command another engine forwarded to this one, the owner of its run (`ports.routing`)."""
        run_id = str(command.get("runID", ""))
        actor = str(command.get("actor", ""))
        reason = str(command.get("reason", ""))
        match command.get("command"):
            case "submit":
                await self.submit(
                    command["document"], run_id=run_id, cron_id=command.get("cronID", ""), actor=actor, reason=reason
                )
            case "resume":
                await self.resume(run_id, command["taskRunID"], command.get("payload"), actor=actor, reason=reason)
            case "cancel":
                await self.cancel(run_id, actor=actor, reason=reason)
            case "forget":
                run = self._runs.get(run_id)
                if run is not None and not run.draining and not run.mailbox:
                    del self._runs[run_id]
                self._finished.pop(run_id, None)
            case "retry":
                await self.retry(
                    run_id,
                    command.get("taskRunIDs", ()),
                    from_task=command.get("fromTask", ""),
                    actor=actor,
                    reason=reason,
                )
            case other:
                raise ValidationError(f"unknown forwarded command {other!r}")

    async def _forward(self, run_id: str, command: str, **fields: Any) -> None:
        if self.router is None:
            raise InvalidStateError(f'workflow run "{run_id}" belongs to a partition this engine does not own')
        await self.router.forward(self._partition(run_id), {"command": command, "runID": run_id, **fields})

    # --- public API ----------------------------------------------------------------------------------

    async def submit(
        self,
        document: Workflow | dict[str, Any] | str | bytes,
        *,
        cron_id: str = "",
        run_id: str = "",
        actor: str = "",
        reason: str = "",
    ) -> str:
        """Validate and start a workflow run; returns its id once the submission is durable.

        With an explicit `run_id` the submission is idempotent: a run that already exists is left as it is.
        `actor` and `reason` (for every command) say who asked and why; they are recorded with its events.
        """
        raw = _document_dict(document)
        problem = number_problem(raw)
        if problem is not None:
            raise ValidationError(f"document {problem}")
        workflow = fill_defaults(load_workflow(raw))
        validate_workflow(workflow)
        try:
            check_limits(workflow, self.limits)
        except LimitExceeded as exc:
            raise ValidationError(str(exc)) from None
        if self.evaluator is None:
            needed = next(expression_uses(workflow), None)
            if needed is not None:
                raise ValidationError(f"{needed} needs an expression evaluator, but the engine has none configured")
        if not run_id:
            run_id = self.ids.generate(IdContext(workflow_kind=workflow.kind))
            fresh = True
        else:
            fresh = False
        if not self.owns(run_id):
            actor = actor or self.actor
            await self._forward(run_id, "submit", document=raw, cronID=cron_id, actor=actor, reason=reason)
            return run_id
        if not fresh:
            run = self._run(run_id)
            await self._ensure_loaded(run)
            if run.state is not None:
                return run_id
        else:
            if run_id in self._runs:
                raise InvalidStateError(f'workflow run "{run_id}" already exists')
            run = self._run(run_id)
            run.loaded = True
        await self.repo.announce(run_id, workflow, cron_id)
        submitted = self._call(
            run,
            Submit(
                actor=actor or self.actor,
                cause=f"submit:{run_id}",
                at=clock.now(),
                document=raw,
                cron_id=cron_id,
                workflow=workflow,
                reason=reason,
            ),
        )
        try:
            await submitted
        except Exception:
            with contextlib.suppress(Exception):  # what cannot be checked now, the next start's recovery checks
                await self.repo.forget_unless_landed(run_id)
            raise
        return run_id

    def cron(self) -> CronService:
        """CronWorkflow operations; raises Aether's not-supported error without a cron scheduler."""
        if self.crons is None:
            raise NotSupportedError("CronScheduler not configured, use Engine(cron_scheduler=...)")
        return self.crons

    async def get(self, run_id: str) -> dict[str, Any]:
        """The WorkflowExecution view of a run, with every task run (built off the loop: see `read`)."""
        return await self.read(run_id, RunState.to_dict)

    async def state(self, run_id: str) -> RunState:
        """The run's committed state (never one a decision in flight is still changing). A run another engine
        owns is read from the store each time: only its owner's memory follows it."""
        if not self.owns(run_id):
            return (await self._existing(run_id)).state  # type: ignore[return-value]
        run = self._runs.get(run_id) or self._run(run_id)
        await self._ensure_loaded(run)
        await run.settled.wait()
        await self._ensure_loaded(run)  # a failed decision may have sent the run back to its log
        if run.state is None:
            self._forget_absent(run)
            raise NotFoundError(f'workflow run "{run_id}" not found')
        return run.state

    async def read(self, run_id: str, build: Callable[[RunState], T]) -> T:
        """`build(state)` over the run's committed state, in a worker thread: building a large run's view
        never holds the event loop, so other runs decide and the API answers meanwhile. The run's next
        decision waits until `build` returns, so it reads a state nothing changes."""
        if not self.owns(run_id):
            return await asyncio.to_thread(build, await self.state(run_id))
        while True:
            state = await self.state(run_id)
            run = self._runs.get(run_id)
            if run is not None and run.state is state and run.settled.is_set():
                break
        run.readers += 1
        run.unread.clear()
        try:
            return await asyncio.to_thread(build, state)
        finally:
            run.readers -= 1
            if not run.readers:
                run.unread.set()

    async def resume(
        self,
        run_id: str,
        task_run_id: str,
        payload: dict[str, Any] | None = None,
        *,
        actor: str = "",
        reason: str = "",
    ) -> None:
        problem = number_problem(payload, "payload")
        if problem is not None:
            raise ValidationError(problem)
        if not self.owns(run_id):
            actor = actor or self.actor
            payload = dict(payload or {})
            await self._forward(run_id, "resume", taskRunID=task_run_id, payload=payload, actor=actor, reason=reason)
            return
        run = await self._existing(run_id)
        await self._call(
            run,
            Resume(
                actor=actor or self.actor,
                cause=f"resume:{task_run_id}",
                at=clock.now(),
                task_id=task_run_id,
                payload=dict(payload or {}),
                reason=reason,
            ),
        )

    async def retry(
        self,
        run_id: str,
        task_run_ids: Sequence[str] = (),
        *,
        from_task: str = "",
        actor: str = "",
        reason: str = "",
    ) -> None:
        """Run a finished run's failed task runs (all, or these) again in the same history; with `from_task`,
        that task run (even if it succeeded) and every DAG node that depends on it."""
        if not self.owns(run_id):
            ids = list(task_run_ids)
            actor = actor or self.actor
            await self._forward(run_id, "retry", taskRunIDs=ids, fromTask=from_task, actor=actor, reason=reason)
            return
        run = await self._existing(run_id)
        await self._call(
            run,
            RetryRun(
                actor=actor or self.actor,
                cause=f"retry:{run_id}:{run.state.events if run.state else 0}",
                at=clock.now(),
                task_ids=tuple(task_run_ids),
                from_task=from_task,
                reason=reason,
            ),
        )
        self._finished.pop(run_id, None)

    async def purge(self, run_ids: Sequence[str], *, archive: str = "", actor: str = "", reason: str = "") -> str:
        """Remove finished runs from the log (retention), recorded as a `RunsPurged` commit of its own.

        Every run must exist and be finished, or nothing is removed. Returns the retention aggregate's id.
        """
        runs = [await self._existing(run_id) for run_id in run_ids]
        for run in runs:
            assert run.state is not None
            if not run.state.terminal or run.draining or run.mailbox:
                raise InvalidStateError(
                    f'workflow run "{run.run_id}" is {run.state.phase}: only finished runs are purged'
                )
        purge_id = f"{RETENTION}.{self.ids.generate(IdContext(workflow_kind='Retention'))}"
        events = [RunsPurged(run_ids=list(run_ids), archive=archive)]
        envelopes = make_envelopes(purge_id, 1, events, clock.now(), actor or self.actor, f"purge:{purge_id}", reason)
        await self.repo.append(commit_of(purge_id, envelopes), 0)
        for run in runs:
            assert run.state is not None
            await self.repo.remove(run.state)
            self._runs.pop(run.run_id, None)
            self._finished.pop(run.run_id, None)
            if not self.owns(run.run_id):  # its owner may keep it in memory as a finished run
                try:
                    await self._forward(run.run_id, "forget")
                except Exception as exc:
                    log.info(
                        "run %s: its owner was not told of its purge (%r); it is gone from the log", run.run_id, exc
                    )
        return purge_id

    async def cancel(self, run_id: str, *, actor: str = "", reason: str = "") -> None:
        if not self.owns(run_id):
            await self._forward(run_id, "cancel", actor=actor or self.actor, reason=reason)
            return
        run = await self._existing(run_id)
        cancel = Cancel(actor=actor or self.actor, cause=f"cancel:{run_id}", at=clock.now(), reason=reason)
        await self._call(run, cancel)

    async def wait(self, run_id: str, timeout: float | None = None) -> dict[str, Any]:
        """Wait until the run is terminal and return its view (on timeout, the view as it is)."""
        await self.wait_state(run_id, timeout)
        return await self.get(run_id)

    async def wait_state(self, run_id: str, timeout: float | None = None) -> RunState:
        """`wait`, returning the committed state instead of building the whole view (a large run's view is
        a large object)."""
        if not self.owns(run_id):
            return await self._poll_terminal(run_id, timeout)
        run = await self._existing(run_id)

        async def terminal() -> None:
            while True:
                await run.settled.wait()
                if run.state is not None and run.state.terminal:
                    return
                await run.changed.wait()

        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(terminal(), timeout)
        return await self.state(run_id)

    async def _poll_terminal(self, run_id: str, timeout: float | None) -> RunState:
        """`wait_state` for a run another engine owns: its store, read every half second."""
        give_up = None if timeout is None else time.monotonic() + timeout
        while True:
            state = await self.state(run_id)
            if state.terminal or (give_up is not None and time.monotonic() >= give_up):
                return state
            await asyncio.sleep(0.5 if give_up is None else max(0.0, min(0.5, give_up - time.monotonic())))

    # --- reports -------------------------------------------------------------------------------------

    async def _on_reports(self, deliveries: list[Delivery]) -> None:
        for delivery in deliveries:
            trigger = _trigger_of(delivery.report)
            run = self._run(delivery.report.run_id)
            self._enqueue(run, _Pending(trigger, ack=delivery.ack))

    # --- the per-run drain -----------------------------------------------------------------------------

    def _run(self, run_id: str) -> _Run:
        run = self._runs.get(run_id)
        if run is None:
            run = self._runs[run_id] = _Run(run_id)
        return run

    async def _existing(self, run_id: str) -> _Run:
        """The run, loaded; one another engine owns is read afresh and not kept."""
        run = self._run(run_id) if self.owns(run_id) else _Run(run_id)
        await self._ensure_loaded(run)
        if run.state is None:
            self._forget_absent(run)
            raise NotFoundError(f'workflow run "{run_id}" not found')
        return run

    def _forget_absent(self, run: _Run) -> None:
        """Drop the entry a lookup of an unknown run made, so asking for made-up ids costs no memory."""
        if run.state is None and not run.draining and not run.mailbox and self._runs.get(run.run_id) is run:
            del self._runs[run.run_id]

    async def rebuild(self, run_id: str) -> RunState:
        """The run folded afresh from its whole history in the store, ignoring memory and snapshots."""
        state = await self.repo.fold_history(run_id)
        if state is None:
            raise NotFoundError(f'workflow run "{run_id}" not found')
        return state

    async def snapshot(self, run_id: str) -> bool:
        """Store the run's committed state as its snapshot if it is long enough to be worth one."""
        run = self._runs.get(run_id)
        return run is not None and run.state is not None and await self.repo.snapshot(run.state)

    async def _ensure_loaded(self, run: _Run) -> None:
        if run.loaded:
            return
        run.state = await self.repo.load(run.run_id)
        run.loaded = True

    async def _call(self, run: _Run, trigger: Trigger) -> None:
        reply: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._enqueue(run, _Pending(trigger, reply=reply))
        await reply

    def _enqueue(self, run: _Run, pending: _Pending) -> None:
        run.mailbox.append(pending)
        if not run.draining:
            run.draining = True
            task = asyncio.create_task(self._drain(run))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _context(self) -> DecideContext:
        values: dict[str, Any] = {}
        for source in self.vars_sources:
            prefix = source.namespace() + "."
            values.update({prefix + key: value for key, value in source.vars().items()})
        return DecideContext(
            evaluator=self.evaluator,
            vars=values,
            secrets=self._secrets,
            budget=self.budget,
            schemas=self._schemas,
            limits=self.limits,
        )

    async def _refresh_schemas(self) -> None:
        """Re-read the executors' input schemas from the worker registry when the copy is `SCHEMAS_FOR` old.

        Where workers register different schemas for one type, the newest registration wins; a schema that
        is not valid JSON Schema is ignored (with a warning), as is a registry that cannot be read.
        """
        now = time.monotonic()
        if self.workers is None or now - self._schemas_at < SCHEMAS_FOR:
            return
        self._schemas_at = now
        try:
            workers = await self.workers.list_all()
        except Exception as exc:
            log.warning("reading executor schemas from the worker registry failed: %r", exc)
            return
        schemas: dict[str, Mapping[str, Any]] = {}
        for worker in sorted(workers, key=lambda w: w.registered_at):
            for executor_type, schema in worker.schemas.items():
                problem = check_schema(schema)
                if problem:
                    log.warning("worker %s: ignoring the schema of %s: %s", worker.id, executor_type, problem)
                else:
                    schemas[executor_type] = schema
        self._schemas = schemas

    async def _drain(self, run: _Run) -> None:
        run.settled.clear()
        try:
            while run.mailbox:
                await run.unread.wait()  # a view of the state is being built off the loop
                batch, run.mailbox = run.mailbox, []
                try:
                    await self._process(run, batch)
                except BaseException as exc:  # every caller of the batch in flight gets an answer
                    self._fail(batch, exc if isinstance(exc, Exception) else InvalidStateError("engine stopping"))
                    raise
                if run.mailbox:
                    # Let readers waiting for a committed state see this one before the next batch.
                    run.settled.set()
                    await asyncio.sleep(0)
                    run.settled.clear()
        except Exception as exc:  # a bug must not leave callers waiting forever
            log.exception("run %s: drain failed", run.run_id)
            self._fail(run.mailbox, exc)
            run.mailbox = []
            self._forget_state(run)
        finally:
            run.draining = False
            run.settled.set()

    async def _process(self, run: _Run, batch: list[_Pending]) -> None:
        try:
            await self._ensure_loaded(run)
        except Exception as exc:
            self._refused(run, batch, "cannot be loaded", exc)
            return
        before = _listed(run.state)
        was_terminal = run.state is not None and run.state.terminal
        await self._refresh_schemas()
        phase_before = run.state.phase if run.state is not None else None
        decision = Decision(run.state, self._context())
        try:
            errors = self._decide(run, decision, batch)
        except Exception as exc:
            self._forget_state(run)  # the decision changed the state in place: back to what is committed
            if len(batch) > 1:
                for pending in batch:  # find the one that cannot be decided; the others go ahead
                    await self._process(run, [pending])
            else:
                await self._reject(run, batch[0], exc)
            return
        effects, outbox = (
            split_outbox(decision.effects) if self.outbox and decision.envelopes else (decision.effects, [])
        )
        committed: float | None = None
        if decision.envelopes:
            expected = run.state.seq if run.state else 0
            began = time.perf_counter()
            try:
                seq = await self.repo.append(commit_of(run.run_id, decision.envelopes, encode_outbox(outbox)), expected)
            except ConcurrencyConflict:
                self._forget_state(run)  # another writer decided first: decide again on what it committed
                run.mailbox[:0] = batch
                if self.contested is not None and self.partitions is not None:
                    self.contested()  # another engine may own the run now: check the leases at once
                return
            except (PayloadTooLarge, LimitExceeded) as exc:  # refused again however often it is appended
                log.warning("run %s: decision not stored: %s", run.run_id, exc)
                self._forget_state(run)
                if len(batch) == 1:
                    await self._reject(run, batch[0], exc)
                    return
                for pending in batch:  # find the one too large; the others go ahead
                    await self._process(run, [pending])
                return
            except Exception as exc:
                self._forget_state(run)
                self._refused(run, batch, "append failed, nothing of this decision was kept", exc)
                return
            run.retry_after = RETRY_FIRST
            run.state = decision.state
            run.state.seq = seq
            committed = time.perf_counter() - began
        observe_decision(phase_before, run.state.phase if run.state is not None else None, committed)
        for pending, error in zip(batch, errors, strict=True):
            await self._answer(pending, error)
        await self._carry_out(run, effects)
        await self._note_unserved(run, decision)
        if run.state is not None and _listed(run.state) != before:
            await self._summarise(run.state)
        if decision.resume_points:
            run.mailbox.append(
                _Pending(
                    Continue(actor="engine", cause="continue", at=clock.now(), containers=tuple(decision.resume_points))
                )
            )
        changed, run.changed = run.changed, asyncio.Event()
        changed.set()
        if run.state is not None and run.state.terminal:
            if not was_terminal:
                self._tell_finished(run.state)
            self._retire(run.run_id)

    def _tell_finished(self, state: RunState) -> None:
        for listener in self.finished:
            try:
                listener(state)
            except Exception as exc:  # an observer must not stop the run's decisions
                log.warning("run %s: a finished-run listener failed: %r", state.run_id, exc)

    def _decide(self, run: _Run, decision: Decision, batch: list[_Pending]) -> list[AetherError | None]:
        """Apply the batch's triggers until the decision has spent its budget; the rest go back to the front
        of the mailbox (the batch keeps only what was decided), so one run's backlog never makes a decision
        long enough to hold other runs back."""
        errors: list[AetherError | None] = []
        for position, pending in enumerate(batch):
            if position and decision.over_budget():
                run.mailbox[:0] = batch[position:]
                del batch[position:]
                break
            errors.append(handle(decision, pending.trigger, run.run_id))
        return errors

    def _refused(self, run: _Run, batch: list[_Pending], what: str, exc: Exception) -> None:
        """The store failed the batch for a reason of its own (a timeout, the server away): every caller gets
        the error, and the batch's reports are decided again after a wait that doubles while it fails (unless
        the engine stops first, which hands them back). Their messages stay held and signalled in progress,
        so nothing else would bring them back before a stop."""
        self._fail(batch, exc)
        reports = [pending for pending in batch if pending.ack is not None]
        delay, run.retry_after = run.retry_after, min(run.retry_after * 2, EFFECT_RETRY_MAX)
        again = f"; its {len(reports)} reports are decided again in {delay:.1f}s" if reports else ""
        log.warning("run %s: %s (%r)%s", run.run_id, what, exc, again)
        if not reports:
            return

        async def later() -> None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), delay)
            if not self._stopped.is_set():
                for pending in reports:
                    self._enqueue(run, pending)

        task = asyncio.create_task(later())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, pending: _Pending, error: Exception | None) -> None:
        """Tell the caller how its trigger was decided, or ack the report: the decision is durable."""
        if pending.reply is not None and not pending.reply.done():
            if error is None:
                pending.reply.set_result(None)
            else:
                pending.reply.set_exception(error)
        if pending.ack is not None:
            try:
                await pending.ack()
            except Exception as exc:  # a repeat of a decided report changes nothing
                log.info("ack failed (%r); the report will be delivered again and ignored", exc)

    async def _carry_out(self, run: _Run, effects: list[Effect]) -> None:
        """Carry out a committed decision's effects, trying again until they are (or the engine stops: the
        next start derives them from the run's state). Attempts left unsent end as failed."""
        undispatched = await self._until_done(run.run_id, "effects", lambda: self.effects.run(effects))
        for attempt in undispatched or ():
            run.mailbox.append(_Pending(_failed_unsent(attempt)))

    async def _until_done(self, run_id: str, what: str, operation: Callable[[], Awaitable[T]]) -> T | None:
        """`operation`, tried again with a growing wait until it succeeds; None if the engine stops first
        (what was not done is then left to the next start, which derives it from the log)."""
        delay = 0.1
        while True:
            try:
                return await operation()
            except Exception as exc:
                if self._stopped.is_set():
                    log.warning("run %s: %s not carried out at stop (%r); the next start will", run_id, what, exc)
                    return None
                log.warning("run %s: %s not carried out (%r); trying again in %.1fs", run_id, what, exc, delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopped.wait(), delay)
                delay = min(delay * 2, EFFECT_RETRY_MAX)

    async def _reject(self, run: _Run, pending: _Pending, exc: Exception) -> None:
        """A trigger whose decision raises on its own. Deciding it again would raise again (the decider is a
        pure function of the state and the trigger), so it is reported and dropped, never redelivered for
        ever. A report's attempt ends as an error naming the cause, through the normal failure path (the
        report is acked once that is committed); a caller gets the cause as an internal error."""
        trigger = pending.trigger
        cause = f"{type(trigger).__name__} {trigger.cause!r} could not be decided: {_short(repr(exc))}"
        log.error("run %s: %s", run.run_id, cause)
        log.debug("run %s: where it failed", run.run_id, exc_info=exc)
        task_id: str = getattr(trigger, "task_id", "")
        await self.effects.report(ErrorReport("decide", cause, Severity.ERROR, run.run_id, task_id))
        attempt: int | None = getattr(trigger, "attempt", None)
        if pending.ack is not None and task_id and attempt is not None and not trigger.cause.endswith(_REJECTED):
            result = TaskResult(code=ResultCode.ERROR, message=f"report rejected: {cause}")
            replacement = Completed(
                actor="engine",
                cause=trigger.cause + _REJECTED,
                at=trigger.at,
                task_id=task_id,
                attempt=attempt,
                result=result,
            )
            run.mailbox.insert(0, _Pending(replacement, ack=pending.ack))
            return
        await self._answer(pending, ApiError("internal", cause))

    def _retire(self, run_id: str) -> None:
        """Finished runs stay in memory up to `keep_finished`; older ones are reloaded from the log on demand."""
        self._finished[run_id] = None
        self._finished.move_to_end(run_id)
        while len(self._finished) > self._keep_finished:
            oldest, _ = self._finished.popitem(last=False)
            run = self._runs.get(oldest)
            if run is not None and not run.draining and not run.mailbox:
                del self._runs[oldest]

    async def _note_unserved(self, run: _Run, decision: Decision) -> None:
        """Queue a note on dispatched tasks whose executor type no live worker serves."""
        if self.workers is None:
            return
        for effect in decision.effects:
            if not isinstance(effect, DispatchTask):
                continue
            assignment = effect.assignment
            if not await self._served_now(assignment.executor_type):
                trigger = NoWorker(
                    actor="engine",
                    cause=f"{assignment.task_run_id}.{assignment.attempt}.no-worker",
                    at=clock.now(),
                    task_id=assignment.task_run_id,
                    attempt=assignment.attempt,
                    executor_type=assignment.executor_type,
                )
                run.mailbox.append(_Pending(trigger))

    async def _served_now(self, executor_type: str) -> bool:
        """Whether a live worker serves the type; a yes is trusted for 5 s, a no re-checked after 0.5 s."""
        checked_at, served = self._served.get(executor_type, (0.0, False))
        now = time.monotonic()
        if now - checked_at > (5.0 if served else 0.5):
            assert self.workers is not None
            try:
                served = bool(await self.workers.list_by_executor_type(executor_type))
            except Exception:
                served = True  # the registry is for visibility; never hold work back because of it
            self._served[executor_type] = (now, served)
        return served

    def _forget_state(self, run: _Run) -> None:
        """Drop the in-memory state; the next decision or reader loads what is committed."""
        run.loaded = False
        run.state = None

    def _fail(self, batch: list[_Pending], exc: Exception) -> None:
        """Give every caller of the batch the error; its reports stay unacked, to be decided again."""
        for pending in batch:
            if pending.reply is not None and not pending.reply.done():
                pending.reply.set_exception(exc)

    async def _summarise(self, state: RunState) -> None:
        """Keep the run's summary in step with its phase: listing reads it, and recovery finds unfinished
        runs through it."""
        await self._until_done(state.run_id, "summary", lambda: self.repo.summarise(state))


_REJECTED = ".rejected"
"""Cause suffix of the error completion that stands for a report that could not be decided."""


def _short(text: str, limit: int = 500) -> str:
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"


def _failed_unsent(attempt: Undispatched) -> Completed:
    """The end of an attempt that was never sent, as a worker's Error result would be (an operator can still
    provide the secret, so the retries of a policy without an expression apply); continueOn and hooks apply
    as to any failure."""
    return Completed(
        actor="engine",
        cause=f"{attempt.task_run_id}.{attempt.attempt}.unsent",
        at=clock.now(),
        task_id=attempt.task_run_id,
        attempt=attempt.attempt,
        result=TaskResult(code=ResultCode.ERROR, message=attempt.message),
    )


def _trigger_of(report: Report) -> Trigger:
    actor = f"worker:{report.worker_id}" if report.worker_id else "watcher"
    at = report.at or clock.now()
    cause = report.dedup_key()
    match report.kind:
        case "started":
            return Started(actor=actor, cause=cause, at=at, task_id=report.task_run_id, attempt=report.attempt)
        case "completed":
            return Completed(
                actor=actor,
                cause=cause,
                at=at,
                task_id=report.task_run_id,
                attempt=report.attempt,
                result=report.result or TaskResult(),
                started_at=report.started_at,
            )
        case "task-timeout":
            return TaskTimeout(actor="watcher", cause=cause, at=at, task_id=report.task_run_id, attempt=report.attempt)
        case "retry-due":
            return RetryDue(actor="watcher", cause=cause, at=at, task_id=report.task_run_id, attempt=report.attempt)
        case "workflow-timeout":
            return WorkflowTimeout(actor="watcher", cause=cause, at=at)
        case other:
            assert_never(other)


def _document_dict(document: Workflow | dict[str, Any] | str | bytes) -> dict[str, Any]:
    """The document as submitted, kept verbatim (before defaults) in the run's first event."""
    if isinstance(document, Workflow):
        return document.dump()
    if isinstance(document, dict):
        return document
    return parse_object(document)


__all__ = ["AetherError", "Engine"]


def _listed(state: RunState | None) -> tuple[str, int]:
    """What a run's summary says of it: its phase, and how many of its tasks wait to be resumed."""
    if state is None:
        return "", 0
    return state.phase, 0 if state.terminal else state.suspended
