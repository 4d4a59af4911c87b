"""The worker runtime: fetch assignments, run executors concurrently, report, then ack.

The ack comes last, after the completion report is durable: a worker that dies in between makes the task
run again (the engine ignores the duplicate report), never lose its result. It is generic over the
`WorkerChannel` port, so the same pool runs on NATS or on an in-memory channel in tests.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import socket
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import nats.errors
import pydantic_core

from aether_es.adapters.background import cancel_and_wait
from aether_es.adapters.nats.layout import DEFAULT_ACK_WAIT
from aether_es.events.references import PayloadTooLarge
from aether_es.limits import LimitExceeded, Limits, check
from aether_es.model import clock
from aether_es.model.json_values import number_problem
from aether_es.model.phases import ResultCode, code_to_phase
from aether_es.observability.metrics import observe_task_end, observe_task_start
from aether_es.observability.tracing import end_task_span, start_task_span
from aether_es.ports.artifacts import ArtifactError
from aether_es.ports.broker import TaskDelivery, WorkerChannel
from aether_es.ports.wire import Report, TaskAssignment, TaskResult
from aether_es.ports.worker_registry import WorkerInfo, WorkerNotFound, WorkerRegistry
from aether_es.worker.artifacts import ArtifactStager
from aether_es.worker.coalescing import ReportCoalescer
from aether_es.worker.executor import Executor
from aether_es.worker.redaction import redact
from aether_es.worker.task_log import TaskLogs, current_log

log = logging.getLogger(__name__)

SHORT_TASK = 0.02
"""Seconds within which a task counts as short: while the last one was, the pool fetches ahead of free slots."""
DEFAULT_REGISTRY_TTL = 15.0


def default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


UNPUBLISHED = "the result could not be reported"
UNPUBLISHABLE: tuple[type[Exception], ...] = (
    PayloadTooLarge,
    LimitExceeded,
    nats.errors.MaxPayloadError,
    pydantic_core.PydanticSerializationError,
)
"""Errors a report gets again however often it is sent."""


def within_limits(result: TaskResult, limits: Limits) -> TaskResult:
    """`result`, or an Error result naming the first output parameter (or the message) over the hard cap on
    a value, or holding a number JSON cannot carry (inf, nan, an integer beyond 64 bits): a value that large
    would be refused on its way to the engine and to every later reader, and such a number would change."""
    try:
        check(limits, "value_bytes", "the result message", len(result.message.encode()))
        for parameter in result.parameters:
            problem = number_problem(parameter.value, f"output parameter {parameter.name!r}")
            if problem is not None:  # orjson would write inf and nan as null
                return TaskResult(code=ResultCode.ERROR, message=problem)
            try:
                size = len(pydantic_core.to_json(parameter.value))
            except pydantic_core.PydanticSerializationError as exc:  # it could never be reported
                return TaskResult(code=ResultCode.ERROR, message=f"output parameter {parameter.name!r}: {exc}")
            check(limits, "value_bytes", f"output parameter {parameter.name!r}", size)
    except LimitExceeded as exc:
        return TaskResult(code=ResultCode.ERROR, message=str(exc))
    return result


@dataclass(slots=True, eq=False)
class _Job:
    """One delivery the pool holds, from its fetch to its ack (or its hand-back)."""

    delivery: TaskDelivery
    handler: asyncio.Task[None] | None = None
    """What runs, reports and acks it."""
    running: bool = True
    """Its executor has not returned yet: it holds one of the `concurrency` slots."""
    work: asyncio.Task[TaskResult] | None = None
    """The executor's own task, once it started."""
    cancel_requested: bool = False
    """The engine asked for it to be cancelled."""

    @property
    def task_run_id(self) -> str:
        return self.delivery.assignment.task_run_id


class WorkerPool:
    """Runs up to `concurrency` tasks at once for the executor types in `executors`.

    `ack_wait` must match the executor consumers' ack wait: every held task is signalled in progress every
    third of it, so a long task is not redelivered to another worker while this one still runs it, while
    the tasks of a worker that died go to another within the ack wait.

    With a `registry`, the pool registers itself on start (id, executor types, `tags`), heartbeats every
    third of the registry's TTL (`registry_ttl`, else the registry's `ttl` attribute, else 15 s) and
    unregisters once it stops fetching.

    A task that finishes within `start_report_after` seconds sends no started report of its own: its
    completion carries the start time and the engine records both, which saves a publish, a fetch and a
    decision per short task. Longer tasks report their start once that time has passed; 0 reports every
    start at once.

    `concurrency` bounds the executors running at once, not the tasks being reported: a task's slot is free
    as soon as its executor returns, while its completion report and ack (a round trip each, longer when the
    engine is busy) go on beside the next tasks, up to `reporting` of them. While tasks are short (the last
    one ran within `SHORT_TASK`), up to `prefetch` assignments are also fetched ahead of free slots, so fetches
    and reports travel in batches: fetching only as many as the free slots of a few instant executors costs a
    round trip per handful of tasks, and the pool, not the engine, would set the pace. Long tasks get no
    prefetch, so what one worker holds does not wait behind its busy slots while another worker idles.

    `limits` (by default from the environment) caps each value a result carries: a larger one ends its
    attempt as an Error naming it, as does a report the channel can never publish.

    With `logs`, each attempt's executor finds its task log in `task_log.current_log` (the shell executor
    sends what its command prints there, line by line).
    """

    def __init__(
        self,
        channel: WorkerChannel,
        executors: Mapping[str, Executor],
        concurrency: int = 4,
        worker_id: str | None = None,
        *,
        ack_wait: float = DEFAULT_ACK_WAIT,
        fetch_timeout: float = 1.0,
        registry: WorkerRegistry | None = None,
        tags: Mapping[str, str] | None = None,
        registry_ttl: float | None = None,
        artifacts: ArtifactStager | None = None,
        start_report_after: float = 0.02,
        reporting: int = 256,
        prefetch: int = 64,
        limits: Limits | None = None,
        logs: TaskLogs | None = None,
    ) -> None:
        if not executors:
            raise ValueError("a worker pool needs at least one executor")
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        if reporting < 0 or prefetch < 0:
            raise ValueError(f"reporting and prefetch must be 0 or more, got {reporting} and {prefetch}")
        self._channel = channel
        self._limits = limits or Limits.from_env()
        self._reports = ReportCoalescer(channel.report)
        self._artifacts = artifacts
        self._logs = logs
        self._executors = dict(executors)
        self._types = list(self._executors)
        self._concurrency = concurrency
        self._reporting = reporting
        self._prefetch = prefetch
        self._slots = asyncio.Semaphore(concurrency)
        self._short = False  # the last task ran within SHORT_TASK: fetch ahead
        self.worker_id = worker_id or default_worker_id()
        self._heartbeat = ack_wait / 3
        self._start_report_after = start_report_after
        self._fetch_timeout = fetch_timeout
        self._held: set[_Job] = set()
        self._by_task: dict[str, _Job] = {}  # the latest held job of each task run, for cancel requests
        self._running = 0  # jobs whose executor has not returned
        self._slot_free = asyncio.Event()
        self._stopping = False
        self._fetcher: asyncio.Task[None] | None = None
        self._listener: asyncio.Task[None] | None = None
        self._keeper: asyncio.Task[None] | None = None
        self._registry = registry
        self._tags = dict(tags or {})
        ttl = registry_ttl if registry_ttl is not None else getattr(registry, "ttl", DEFAULT_REGISTRY_TTL)
        self._registry_interval = float(ttl) / 3
        self._registered_at = ""
        self._registration: asyncio.Task[None] | None = None

    @property
    def active(self) -> int:
        """Deliveries held right now (running, reporting or acking)."""
        return len(self._held)

    async def start(self) -> None:
        if self._fetcher is not None:
            return
        self._stopping = False
        if self._registry is not None:
            self._registered_at = clock.now()
            try:
                await self._register(self._registry)
            except Exception as exc:  # the heartbeat loop registers again; work must not wait for the registry
                log.warning("registering worker %s failed (%r); retrying in the background", self.worker_id, exc)
            self._registration = asyncio.create_task(self._heartbeat_loop(self._registry), name="worker-heartbeat")
        self._listener = asyncio.create_task(self._listen(), name="worker-cancels")
        self._keeper = asyncio.create_task(self._keep_alive(), name="worker-in-progress")
        self._fetcher = asyncio.create_task(self._fetch_loop(), name="worker-fetch")

    async def stop(self, timeout: float | None = None) -> None:
        """Stop fetching, unregister and finish what is held; `timeout` seconds from now, hand the rest back.

        What is handed back is cancelled here and nak'ed, so another worker gets it at once rather than
        after the ack wait; the engine ignores a second report of the same attempt should both finish.
        """
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        self._stopping = True
        self._slot_free.set()
        await self._deregister()  # takes no more work: stop advertising at once, before draining
        if self._fetcher is not None:
            # It ends after its current fetch, whose deliveries are still run: cancelling the pull could
            # strand messages in the subscription until the ack wait ran out.
            await asyncio.gather(self._fetcher, return_exceptions=True)
            self._fetcher = None
        handlers = {job.handler for job in self._held if job.handler is not None}
        if handlers:
            remaining = None if deadline is None else max(0.0, deadline - loop.time())
            _, late = await asyncio.wait(handlers, timeout=remaining)
            unfinished = [job.delivery for job in self._held]
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
            for delivery in unfinished:
                log.info("handing back unfinished task %s", delivery.assignment.task_run_id)
                await delivery.nak()
        for background in (self._listener, self._keeper):
            if background is not None:
                await cancel_and_wait(background)
        self._listener = self._keeper = None

    def info(self) -> WorkerInfo:
        """What the pool registers about itself."""
        return WorkerInfo(
            id=self.worker_id,
            executor_types=tuple(self._types),
            schemas=self.schemas(),
            tags=dict(self._tags),
            registered_at=self._registered_at,
        )

    def schemas(self) -> dict[str, dict[str, Any]]:
        """The input JSON Schema of each executor that declares one (an `input_schema` attribute)."""
        out: dict[str, dict[str, Any]] = {}
        for executor_type, executor in self._executors.items():
            schema = getattr(executor, "input_schema", None)
            if isinstance(schema, dict):
                out[executor_type] = schema
        return out

    async def _register(self, registry: WorkerRegistry) -> None:
        await registry.register(self.info())

    async def _heartbeat_loop(self, registry: WorkerRegistry) -> None:
        while True:
            await asyncio.sleep(self._registry_interval)
            try:
                try:
                    await registry.heartbeat(self.worker_id)
                except WorkerNotFound:  # lapsed (a long pause, a registry outage): come back
                    log.info("registration of worker %s lapsed; registering again", self.worker_id)
                    await self._register(registry)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("heartbeat of worker %s failed: %r", self.worker_id, exc)

    async def _deregister(self) -> None:
        registration, self._registration = self._registration, None
        if registration is None or self._registry is None:
            return
        await cancel_and_wait(registration)
        try:
            await self._registry.unregister(self.worker_id)
        except WorkerNotFound:
            pass
        except Exception as exc:  # it lapses by itself within the TTL
            log.warning("unregistering worker %s failed: %r", self.worker_id, exc)

    async def _fetch_loop(self) -> None:
        while not self._stopping:
            prefetch = self._prefetch if self._short else 0
            ahead = self._concurrency + prefetch
            free = min(ahead - self._running, ahead + self._reporting - len(self._held))
            if free < max(1, prefetch // 2):  # a prefetch is topped up once half of it is used, in one fetch
                self._slot_free.clear()
                await self._slot_free.wait()
                continue
            try:
                deliveries = await self._channel.fetch(self._types, free, self._fetch_timeout)
            except Exception:
                log.exception("fetching assignments failed")
                await asyncio.sleep(0.5)
                continue
            for delivery in deliveries:
                job = _Job(delivery)
                self._held.add(job)
                self._by_task[job.task_run_id] = job
                self._running += 1
                job.handler = asyncio.create_task(self._handle(job), name=f"task-{job.task_run_id}")
                job.handler.add_done_callback(functools.partial(self._release, job))

    def _release(self, job: _Job, task: asyncio.Task[None]) -> None:
        self._ran(job)
        self._held.discard(job)
        if self._by_task.get(job.task_run_id) is job:
            del self._by_task[job.task_run_id]
        self._slot_free.set()
        if not task.cancelled() and task.exception() is not None:
            log.error("task handler crashed", exc_info=task.exception())

    def _ran(self, job: _Job) -> None:
        """The task's executor is done: its slot goes to the next task while it is reported and acked."""
        if job.running:
            job.running = False
            self._running -= 1
            self._slot_free.set()

    async def _listen(self) -> None:
        while True:
            try:
                await self._channel.cancellations(self._on_cancel)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("listening for cancellations failed; listening again")
            await asyncio.sleep(1.0)

    async def _on_cancel(self, task_run_id: str) -> None:
        job = self._by_task.get(task_run_id)
        if job is None:
            return
        if job.work is None:  # not started yet: `_handle` sees the request and skips the executor
            job.cancel_requested = True
        elif not job.work.done():
            job.cancel_requested = True
            job.work.cancel()

    async def _handle(self, job: _Job) -> None:
        delivery = job.delivery
        assignment = delivery.assignment
        execution: asyncio.Future[TaskResult | None] | None = None
        try:
            async with self._slots:
                if job.cancel_requested:
                    await delivery.ack()
                    return
                started_at = clock.now()
                execution = asyncio.ensure_future(self._observed(job))
                if self._start_report_after > 0:
                    await asyncio.wait((execution,), timeout=self._start_report_after)
                if not execution.done():
                    await self._report_started(assignment, started_at)
                result = await execution
            self._ran(job)
            if result is None:  # cancelled on request: the engine already recorded the cancel
                await delivery.ack()
                return
            result = within_limits(redact(result, assignment), self._limits)
            completed = self._report(assignment, "completed", result, started_at=started_at)
            await self._report_until_done(completed)
            await delivery.ack()
        finally:
            if execution is not None and not execution.done():
                execution.cancel()
            self._ran(job)

    async def _observed(self, job: _Job) -> TaskResult | None:
        """`_execute` timed for the metrics and traced (when tracing is on), with the attempt's task log open
        meanwhile (in this task's own context, which the executor's task copies)."""
        assignment = job.delivery.assignment
        dispatched = job.delivery.dispatched_at
        observe_task_start(assignment.executor_type, time.time() - dispatched if dispatched else None)
        began = time.monotonic()
        task_log = self._logs.open(assignment) if self._logs is not None else None
        current_log.set(task_log)
        span = start_task_span(assignment)
        result: TaskResult | None = None
        try:
            result = await self._execute(job)
            return result
        finally:
            observe_task_end(
                assignment.executor_type, time.monotonic() - began, "" if result is None else code_to_phase(result.code)
            )
            if span is not None:
                end_task_span(span, result)
            if task_log is not None:
                await task_log.close()

    async def _execute(self, job: _Job) -> TaskResult | None:
        """The executor's result, an error result if it raised, or None if the engine cancelled the task."""
        if job.cancel_requested:
            return None
        job.work = asyncio.create_task(self._run_executor(job.delivery.assignment))
        try:
            result = await job.work
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if job.cancel_requested and not (current and current.cancelling()):
                return None
            raise
        except Exception as exc:
            log.info("executor for %s raised %r", job.task_run_id, exc)
            return TaskResult(code=ResultCode.ERROR, message=str(exc) or type(exc).__name__)
        return None if job.cancel_requested else result

    async def _run_executor(self, assignment: TaskAssignment) -> TaskResult:
        """The executor between downloading its input artifacts and uploading what it produced; an executor
        with a true `uses_workdir` attribute gets a work directory even when the task declares no artifacts."""
        executor = self._executors[assignment.executor_type]
        moving = assignment.artifacts or assignment.output_artifacts or getattr(executor, "uses_workdir", False)
        if self._artifacts is None or not moving:
            # Timed here, not where the result is awaited: on a busy event loop (an engine's) that adds a
            # turn of everyone else's work, and no task would count as short.
            began = asyncio.get_running_loop().time()
            result = await executor.execute(assignment)  # nothing to move: no directory, no thread hops
            self._short = asyncio.get_running_loop().time() - began <= SHORT_TASK
            return result
        self._short = False  # moving files is never short
        try:
            staged = await self._artifacts.stage(assignment)
            result = await executor.execute(staged)
            return await self._artifacts.publish(staged, result)
        except ArtifactError as exc:
            return TaskResult(code=ResultCode.ERROR, message=str(exc))
        finally:
            await self._artifacts.clean(assignment)

    async def _report_until_done(self, report: Report) -> None:
        """Retry the completion report until it is durable: acking without it would lose the result. A report
        that can never be published (too large even with its values by reference) is replaced, once, by an
        Error result saying why, which ends the attempt instead of holding its slot for ever."""
        delay = 0.1
        alone = False  # sent with others, a report is refused for the largest of them: then it goes alone
        while True:
            try:
                await (self._channel.report([report]) if alone else self._reports.report(report))
                return
            except UNPUBLISHABLE as exc:
                if not alone:
                    alone = True
                    continue
                if report.result is not None and report.result.message.startswith(UNPUBLISHED):
                    raise
                log.warning("completion report for %s cannot be published: %s", report.task_run_id, exc)
                result = TaskResult(code=ResultCode.ERROR, message=f"{UNPUBLISHED}: {exc}")
                report = report.model_copy(update={"result": result})
            except Exception as exc:
                log.warning("completion report for %s failed (%r); retrying", report.task_run_id, exc)
                await asyncio.sleep(delay)
                delay = min(2 * delay, 2.0)

    async def _report_started(self, assignment: TaskAssignment, started_at: str) -> None:
        try:
            await self._reports.report(self._report(assignment, "started", at=started_at))
        except Exception as exc:  # the completion report still tells the engine everything
            log.warning("started report for %s failed: %r", assignment.task_run_id, exc)

    async def _keep_alive(self) -> None:
        """Tell the server every held task is still in progress, once per heartbeat, with one timer for all.

        Every held task, however recent: its first signal then comes within a third of the ack wait, which
        leaves two thirds for a busy event loop to be late.
        """
        while True:
            await asyncio.sleep(self._heartbeat)
            for job in list(self._held):
                try:
                    await job.delivery.in_progress()
                except Exception as exc:
                    log.debug("in-progress signal for %s failed: %r", job.task_run_id, exc)

    def _report(
        self,
        assignment: TaskAssignment,
        kind: str,
        result: TaskResult | None = None,
        *,
        at: str = "",
        started_at: str = "",
    ) -> Report:
        return Report.model_validate(
            {
                "kind": kind,
                "runID": assignment.workflow_run_id,
                "taskRunID": assignment.task_run_id,
                "attempt": assignment.attempt,
                "at": at or clock.now(),
                "workerID": self.worker_id,
                "result": result,
                "startedAt": started_at,
            }
        )
