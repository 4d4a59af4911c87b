"""Task dispatch and reports over JetStream: the engine's side and a worker's.

Assignments go to a work-queue stream, one subject space and one durable pull consumer per executor type, so
workers of a type compete for them. Reports go to a second work-queue stream read by the engine's durable
consumer; the reports of one run published together travel as one message holding a JSON array, so a burst
of short tasks costs one publish. Every publish carries a deterministic message id, so a retried dispatch or
report lands once.
Cancellation is best effort and travels on core NATS: a worker that misses it still finishes, and the engine
ignores the stale report.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import itertools
import logging
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence

import nats.errors
import orjson
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.errors import APIError, NotFoundError
from pydantic import TypeAdapter, ValidationError

from aether_es.adapters.background import cancel_and_wait
from aether_es.adapters.nats.connection import LogThrottle
from aether_es.adapters.nats.layout import Layout, check_token, ensure_consumer, ensure_stream
from aether_es.adapters.nats.retry import (
    TRANSIENT,
    drop_subscription,
    fetch,
    gather_chunked,
    publish_idempotent,
    retrying,
)
from aether_es.adapters.nats.value_store import NatsValueStore
from aether_es.events.references import PayloadTooLarge, UnresolvedReference
from aether_es.model.phases import ResultCode
from aether_es.ports.broker import Delivery, ReportHandler, TaskDelivery
from aether_es.ports.wire import Report, TaskAssignment, TaskResult

log = logging.getLogger(__name__)

FETCH_WARNING_EVERY = 10.0
"""Seconds between two warnings of one kind of failed report fetch: a cluster electing a new leader for the
reports consumer refuses fetches for several seconds, which is one line and a count, not forty."""

_PULL_ERRORS: tuple[type[BaseException], ...] = (*TRANSIENT, APIError)
_REPORT_LIST = TypeAdapter(list[Report])
GLANCE_EVERY = 0.05
GLANCE_TIMEOUT = 0.002
REPORTS_PER_MESSAGE = 256
REPORT_MESSAGE_BYTES = 512 * 1024


def _once(action: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
    """An ack that may be called more than once (nats-py raises on a second ack)."""
    done = False

    async def call() -> None:
        nonlocal done
        if not done:
            done = True
            await action()

    return call


def report_messages(
    reports: Sequence[Report], bodies: Mapping[str, bytes] | None = None
) -> Iterator[tuple[str, bytes, str]]:
    """(run id, body, message id) per message: a run's reports together, in order, within the size limits.
    `bodies` holds reports already encoded, by dedup key (those with big values hold references).

    A lone report is its own JSON object with its dedup key as id, as any client may publish it; several
    are a JSON array whose id is derived from their keys (so only a retry of the same message deduplicates;
    the engine ignores a fact it already recorded either way). Repeats of one key in a call are sent once.
    """
    by_run: dict[str, list[tuple[bytes, str]]] = {}
    seen: set[str] = set()
    for report in reports:
        key = report.dedup_key()
        if key not in seen:
            seen.add(key)
            body = (bodies or {}).get(key) or report.model_dump_json(by_alias=True).encode()
            by_run.setdefault(report.run_id, []).append((body, key))
    for run_id, encoded in by_run.items():
        start = 0
        while start < len(encoded):
            end, size = start, 0
            while end < len(encoded) and end - start < REPORTS_PER_MESSAGE:
                if end > start and size + len(encoded[end][0]) > REPORT_MESSAGE_BYTES:
                    break
                size += len(encoded[end][0]) + 1
                end += 1
            chunk = encoded[start:end]
            if len(chunk) == 1:
                yield run_id, chunk[0][0], chunk[0][1]
            else:
                digest = hashlib.blake2b("\n".join(key for _, key in chunk).encode(), digest_size=12).hexdigest()
                yield run_id, b"[" + b",".join(body for body, _ in chunk) + b"]", f"{run_id}.reports.{digest}"
            start = end


def decode_reports(data: bytes) -> list[Report]:
    """The reports one message carries: a JSON object is one report, a JSON array several."""
    if data.lstrip()[:1] == b"[":
        return _REPORT_LIST.validate_json(data)
    return [Report.model_validate_json(data)]


async def publish_reports(
    js: JetStreamContext,
    layout: Layout,
    values: NatsValueStore,
    reports: Sequence[Report],
    *,
    max_payload: int,
    timeout: float,
    budget: float,
) -> None:
    """Publish reports pipelined, one message per run (split if large), each with a deterministic id; a
    report's values over the inline limit go to the values bucket first and travel by reference.

    Raises `PayloadTooLarge` naming the report when one is still over the server's payload limit, and
    `LimitExceeded` when one of its values is over the hard cap: publishing it again would fail again."""
    bodies: dict[str, bytes] = {}
    for report in reports:
        body = bodies[report.dedup_key()] = await values.shrink_bytes(report.model_dump_json(by_alias=True).encode())
        if max_payload and len(body) > max_payload:
            raise PayloadTooLarge(
                f"report of {report.task_run_id or report.run_id} is {len(body):,} bytes with its big values by "
                f"reference, above the server's max payload of {max_payload:,} bytes"
            )
    await gather_chunked(
        publish_idempotent(js, layout.report_subject(run_id), body, msg_id, timeout=timeout, budget=budget)
        for run_id, body, msg_id in report_messages(reports, bodies)
    )


class _Reporter:
    """What both sides of dispatch share: the connection, the layout, and publishing reports."""

    def __init__(
        self,
        js: JetStreamContext,
        nc: Client,
        layout: Layout,
        request_timeout: float,
        retry_budget: float,
        values: NatsValueStore | None,
    ) -> None:
        self._js = js
        self._nc = nc
        self._layout = layout
        self._timeout = request_timeout
        self._budget = retry_budget
        self._values = values or NatsValueStore(js, layout)

    async def report(self, reports: Sequence[Report]) -> None:
        await publish_reports(
            self._js,
            self._layout,
            self._values,
            reports,
            max_payload=self._nc.max_payload,
            timeout=self._timeout,
            budget=self._budget,
        )


class NatsBroker(_Reporter):
    """`TaskBroker` for the engine: dispatch, cancel, report, and the report-consuming loop."""

    def __init__(
        self,
        js: JetStreamContext,
        nc: Client,
        layout: Layout,
        *,
        request_timeout: float = 2.0,
        retry_budget: float = 20.0,
        report_batch: int = 256,
        fetch_timeout: float = 1.0,
        values: NatsValueStore | None = None,
    ) -> None:
        super().__init__(js, nc, layout, request_timeout, retry_budget, values)
        self._report_batch = report_batch
        self._fetch_timeout = fetch_timeout
        self._fetch_failures = LogThrottle(log, interval=FETCH_WARNING_EVERY)
        self._consumers: set[str] = set()
        self._serial = itertools.count()

    async def dispatch(self, assignments: Sequence[TaskAssignment]) -> None:
        types = {check_token("executor type", a.executor_type) for a in assignments}
        for executor_type in types - self._consumers:
            config = self._layout.executor_consumer_config(executor_type)
            await retrying(
                functools.partial(ensure_consumer, self._js, self._layout.tasks_stream, config),
                what=f"ensure consumer for {executor_type}",
                budget=self._budget,
            )
            self._consumers.add(executor_type)
        bodies = [await self._values.shrink_bytes(a.model_dump_json(by_alias=True).encode()) for a in assignments]
        await gather_chunked(
            publish_idempotent(
                self._js,
                self._layout.task_subject(a.executor_type, a.workflow_run_id),
                body,
                f"{a.task_run_id}.{a.attempt}",
                timeout=self._timeout,
                budget=self._budget,
            )
            for a, body in zip(assignments, bodies, strict=True)
        )

    async def cancel(self, task_run_ids: Sequence[str]) -> None:
        for task_run_id in task_run_ids:
            await self._nc.publish(self._layout.cancel_subject(task_run_id), b"")
        try:
            await self._nc.flush(timeout=max(1, round(self._timeout)))
        except TRANSIENT as exc:  # best effort by contract
            log.warning("cancel of %d tasks may not have reached NATS: %r", len(task_run_ids), exc)

    async def consume_reports(
        self, handler: ReportHandler, partition: int | None = None, stop: asyncio.Event | None = None
    ) -> None:
        """Fetch the reports of `partition` (default: of every partition) in batches and hand them to
        `handler` until cancelled, or until `stop` is set: then the fetch under way ends first and what it
        brings is handed back, since a pull still waiting when its subscription goes would take reports that
        nobody reads until the ack wait runs out (a partition changing hands). Survives server restarts.

        Undecodable reports are logged and terminated. If `handler` raises, the error is logged and the
        reports it did not ack are redelivered a second later. The engine may hold a report in a run's
        mailbox longer than the short ack wait, so every message it holds is signalled in progress every
        third of the ack wait; when the loop stops, what is still held is handed back (nak'ed) for another
        engine to take at once, and an ack of it afterwards is dropped (the next engine decides it again,
        which changes nothing).
        """
        held: dict[int, Msg] = {}  # report messages handed to the engine and not yet acked
        keeper = asyncio.create_task(self._keep_held(held), name="reports-in-progress")
        partitions = range(self._layout.partitions) if partition is None else [partition]
        try:
            await asyncio.gather(*(self._consume(handler, held, p, stop) for p in partitions))
        finally:
            await cancel_and_wait(keeper)
            await self._hand_back(held)

    async def _consume(
        self, handler: ReportHandler, held: dict[int, Msg], partition: int, stop: asyncio.Event | None
    ) -> None:
        """The fetch loop. Its subscription goes when it ends: the server would deliver what is handed back
        to a pull of it still waiting, where nothing reads it until the ack wait runs out."""
        layout = self._layout
        sub: JetStreamContext.PullSubscription | None = None
        try:
            while stop is None or not stop.is_set():
                try:
                    if sub is None:
                        await ensure_stream(self._js, layout.reports_stream_config())
                        config = layout.partition_consumer_config(partition)
                        await ensure_consumer(self._js, layout.reports_stream, config)
                        sub = await self._js.pull_subscribe_bind(
                            consumer=layout.partition_consumer(partition), stream=layout.reports_stream
                        )
                    msgs = await fetch(sub, self._report_batch, timeout=self._fetch_timeout)
                except TimeoutError:
                    continue  # idle (or server away: the next fetch tells)
                except nats.errors.ConnectionClosedError:
                    raise
                except NotFoundError as exc:
                    log.warning("report consumer missing (%r); recreating", exc)
                    await drop_subscription(sub)
                    sub = None
                    await asyncio.sleep(0.25)
                    continue
                except Exception as exc:
                    self._fetch_failures.warning(type(exc).__name__, "fetching reports failed (%r); retrying", exc)
                    await asyncio.sleep(0.25)
                    continue
                if stop is not None and stop.is_set():
                    held.update((next(self._serial), msg) for msg in msgs)  # handed back on the way out
                    break
                if not msgs:
                    await asyncio.sleep(0.05)
                    continue
                decoded = [pair for pair in [await _decode_message(self._values, m) for m in msgs] if pair is not None]
                if decoded:
                    await self._handle(handler, held, decoded)
        finally:
            await drop_subscription(sub)

    async def _handle(
        self, handler: ReportHandler, held: dict[int, Msg], decoded: list[tuple[Msg, list[Report]]]
    ) -> None:
        """Hand every report to `handler`; a message is acked once all the reports it carries are."""
        keys = [next(self._serial) for _ in decoded]
        left = {key: len(reports) for key, (_, reports) in zip(keys, decoded, strict=True)}
        held.update((key, msg) for key, (msg, _) in zip(keys, decoded, strict=True))

        def ack_of(key: int) -> Callable[[], Awaitable[None]]:
            done = False

            async def ack() -> None:
                nonlocal done
                if done:
                    return
                done = True
                left[key] -= 1
                if left[key] == 0:
                    msg = held.pop(key, None)
                    if msg is not None:  # else handed back already
                        await msg.ack()

            return ack

        deliveries = [
            Delivery(report=report, ack=ack_of(key))
            for key, (_, reports) in zip(keys, decoded, strict=True)
            for report in reports
        ]
        try:
            await handler(deliveries)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("report handler failed on %d reports; the unacked ones come back in 1 s", len(deliveries))
            for key in keys:
                msg = held.pop(key, None)
                if msg is not None:
                    await _quietly(functools.partial(msg.nak, delay=1.0))

    async def _keep_held(self, held: dict[int, Msg]) -> None:
        """Signal every held report message in progress once per third of the ack wait, one timer for all."""
        while True:
            await asyncio.sleep(self._layout.report_ack_wait / 3)
            for msg in list(held.values()):
                await _quietly(msg.in_progress)

    async def _hand_back(self, held: dict[int, Msg]) -> None:
        """Nak what the engine still holds, so that another engine takes it now rather than after the ack wait."""
        msgs = list(held.values())
        held.clear()
        if not msgs:
            return
        log.info("handing back %d report messages not yet decided", len(msgs))
        for msg in msgs:
            await _quietly(msg.nak)
        await _quietly(functools.partial(self._nc.flush, timeout=1))


async def _decode_message(values: NatsValueStore, msg: Msg) -> tuple[Msg, list[Report]] | None:
    try:
        data = await values.resolve_bytes(msg.data)
    except orjson.JSONDecodeError:
        data = msg.data  # refused below, as any report that is not JSON
    except UnresolvedReference as exc:
        log.warning("report on %s names a value that cannot be read: %s", msg.subject, exc)
        salvaged = await _resolved_one_by_one(values, msg.data)
        if salvaged:
            return msg, salvaged
        await _quietly(msg.term)
        return None
    except Exception as exc:  # the values bucket cannot be read now: the report comes back
        log.warning("report on %s: its values cannot be fetched now (%r); it comes back in 1 s", msg.subject, exc)
        await _quietly(functools.partial(msg.nak, delay=1.0))
        return None
    try:
        return msg, decode_reports(data)
    except ValidationError as exc:
        salvaged = refused_reports(data)
        outcome = "the attempts it names end as errors" if salvaged else "terminated"
        log.error("report on %s does not fit the wire types (%s); %s", msg.subject, _first_error(exc), outcome)
        if salvaged:
            return msg, salvaged
        await _quietly(msg.term)
        return None


async def _resolved_one_by_one(values: NatsValueStore, data: bytes) -> list[Report]:
    """The reports of a message one at a time: each whose values can be read as sent, each other one as its
    attempt's Error naming the value (a message holds the reports of several attempts)."""
    parsed = orjson.loads(data)
    reports: list[Report] = []
    for item in parsed if isinstance(parsed, list) else [parsed]:
        body = orjson.dumps(item)
        try:
            reports += refused_reports(await values.resolve_bytes(body))
        except UnresolvedReference as exc:
            reports += refused_reports(body, f"a value it names cannot be read: {exc}")
    return reports


def refused_reports(data: bytes, refusal: str = "") -> list[Report]:
    """What a message whose reports do not fit the wire types can still say: each report that names its run,
    task run and attempt becomes that attempt's Error completion naming the cause (recorded on the run, with
    retries, continueOn and hooks as for any error); the reports that fit are kept as they are, unless
    `refusal` says why none of them can be taken."""
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError:
        return []
    salvaged: list[Report] = []
    for item in parsed if isinstance(parsed, list) else [parsed]:
        cause = refusal
        if not refusal:
            try:
                salvaged.append(Report.model_validate(item))
                continue
            except ValidationError as exc:
                cause = _first_error(exc)
        if not isinstance(item, dict):
            continue
        run_id, task_run_id, attempt = item.get("runID"), item.get("taskRunID"), item.get("attempt")
        if not (isinstance(run_id, str) and run_id and isinstance(task_run_id, str) and task_run_id):
            continue
        if not isinstance(attempt, int) or isinstance(attempt, bool):
            continue
        worker = item.get("workerID") if isinstance(item.get("workerID"), str) else ""
        salvaged.append(
            Report(
                kind="completed",
                run_id=run_id,
                task_run_id=task_run_id,
                attempt=attempt,
                worker_id=worker,
                result=TaskResult(code=ResultCode.ERROR, message=f"report refused: {cause}"),
            )
        )
    return salvaged


def _first_error(exc: ValidationError) -> str:
    """The first problem of a validation error, as `field.path: message` (one line, no input echoed)."""
    first = exc.errors(include_input=False, include_url=False)[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"{where}: {first['msg']}" if where else str(first["msg"])


async def _quietly(action: Callable[[], Awaitable[None]]) -> None:
    try:
        await action()
    except Exception as exc:  # an ack that cannot be sent is redelivered by the server later
        log.debug("ack-type reply failed: %r", exc)


async def _nak_all(msgs: list[Msg]) -> None:
    for msg in msgs:
        await _quietly(msg.nak)


class NatsWorkerChannel(_Reporter):
    """`WorkerChannel` for workers: fetch assignments of several executor types, report, hear cancels."""

    def __init__(
        self,
        js: JetStreamContext,
        nc: Client,
        layout: Layout,
        *,
        request_timeout: float = 2.0,
        retry_budget: float = 20.0,
        probe_timeout: float = 0.01,
        values: NatsValueStore | None = None,
    ) -> None:
        super().__init__(js, nc, layout, request_timeout, retry_budget, values)
        self._probe_timeout = probe_timeout
        self._subs: dict[str, JetStreamContext.PullSubscription] = {}
        self._polls: dict[str, asyncio.Future[list[Msg]]] = {}
        self._fetching = False
        self._returns: set[asyncio.Future[None]] = set()
        self._turn = itertools.count()
        self._last = ""
        self._glanced = 0.0

    async def fetch(self, executor_types: Sequence[str], batch: int, timeout: float) -> list[TaskDelivery]:
        """Up to `batch` assignments of one of the types; empty after `timeout` seconds.

        With several types, the type that delivered last is probed first (a probe of an empty type waits a
        few milliseconds, and a message arriving meanwhile answers it). At most every `GLANCE_EVERY`
        seconds another type, each in its turn, gets a short look first, so a busy type cannot starve the
        others. If they have nothing, one long poll per type waits and the first to deliver wins. A long
        poll that has not answered stays in flight and is collected by a later fetch: a pull cannot be
        called off (nats-py finishes it anyway), and two pulls on one subscription would take each other's
        messages. Probing every type on every fetch would cost a worker of many types more than its tasks.
        What a long poll takes while no fetch runs (the pool is full) is handed back at once.
        """
        self._fetching = True
        try:
            return await self._fetch(executor_types, batch, timeout)
        finally:
            self._fetching = False

    async def _fetch(self, executor_types: Sequence[str], batch: int, timeout: float) -> list[TaskDelivery]:
        types = list(dict.fromkeys(check_token("executor type", t) for t in executor_types))
        if batch < 1 or not types:
            return []
        loop = asyncio.get_running_loop()
        started = loop.time()
        if len(types) == 1:
            msgs = await self._pull(types[0], batch, timeout)
        else:
            start = types.index(self._last) if self._last in types else 0
            order = types[start:] + types[:start]
            probes = [(order[0], self._probe_timeout)]
            if started - self._glanced >= GLANCE_EVERY:
                self._glanced = started
                other = order[1 + next(self._turn) % (len(order) - 1)]
                probes.insert(0, (other, GLANCE_TIMEOUT))
            msgs = self._collect(order)
            for executor_type, wait in probes:
                if msgs:
                    break
                if executor_type not in self._polls:
                    msgs = await self._pull(executor_type, batch, wait)
                    if msgs:
                        self._last = executor_type
            if not msgs:
                msgs = await self._first_of(order, timeout - (loop.time() - started))
            for extra in msgs[batch:]:
                await _quietly(extra.nak)
            msgs = msgs[:batch]
        if not msgs:
            # A pull that fails fast (server away) must not turn the caller's loop into a busy loop.
            idle = timeout - (loop.time() - started)
            if idle > timeout / 2:
                await asyncio.sleep(min(idle, 0.25))
        return await self._deliveries(msgs)

    async def _first_of(self, types: list[str], timeout: float) -> list[Msg]:
        """Long-poll every type (one pull in flight per type at most) until one delivers or `timeout`."""
        if timeout <= 0:
            return []
        for executor_type in types:
            if executor_type not in self._polls:
                poll = asyncio.ensure_future(self._pull(executor_type, 1, timeout))
                poll.add_done_callback(functools.partial(self._unclaimed, executor_type))
                self._polls[executor_type] = poll
        await asyncio.wait([self._polls[t] for t in types], timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        return self._collect(types)

    def _unclaimed(self, executor_type: str, poll: asyncio.Future[list[Msg]]) -> None:
        """Nak what a long poll took while no fetch runs: nobody would signal it in progress, so it would go
        to another worker after the ack wait and then run here too, once a fetch collected it."""
        if self._fetching or self._polls.get(executor_type) is not poll:
            return
        del self._polls[executor_type]
        if poll.cancelled() or poll.exception() is not None or not poll.result():
            return
        returning = asyncio.ensure_future(_nak_all(poll.result()))
        self._returns.add(returning)
        returning.add_done_callback(self._returns.discard)

    def _collect(self, types: list[str]) -> list[Msg]:
        """The messages of the long polls that have answered, which are then no longer in flight."""
        msgs: list[Msg] = []
        for executor_type in types:
            poll = self._polls.get(executor_type)
            if poll is None or not poll.done():
                continue
            del self._polls[executor_type]
            if not poll.cancelled() and poll.exception() is None and poll.result():
                msgs += poll.result()
                self._last = executor_type
        return msgs

    async def _pull(self, executor_type: str, batch: int, timeout: float) -> list[Msg]:
        """`fetch` from the type's consumer; an idle timeout or a transient error means "nothing now"."""
        try:
            sub = await self._bind(executor_type)
            return await fetch(sub, batch, timeout=timeout)
        except (TimeoutError, nats.errors.ConnectionClosedError):
            return []  # nothing now; a long poll still in flight when the connection closes ends empty
        except _PULL_ERRORS as exc:
            # Maybe the consumer is gone (deleted, or a server without our state): bind afresh next time.
            log.warning("pulling %s assignments failed: %r", executor_type, exc)
            stale = self._subs.pop(executor_type, None)
            if stale is not None:
                await _quietly(stale.unsubscribe)
            return []

    async def _bind(self, executor_type: str) -> JetStreamContext.PullSubscription:
        sub = self._subs.get(executor_type)
        if sub is None:
            config = self._layout.executor_consumer_config(executor_type)
            await ensure_consumer(self._js, self._layout.tasks_stream, config)
            assert config.durable_name
            sub = await self._js.pull_subscribe_bind(consumer=config.durable_name, stream=self._layout.tasks_stream)
            self._subs[executor_type] = sub
        return sub

    async def _deliveries(self, msgs: list[Msg]) -> list[TaskDelivery]:
        out: list[TaskDelivery] = []
        for msg in msgs:
            try:
                assignment = TaskAssignment.model_validate_json(await self._resolved(msg))
            except UnresolvedReference as exc:
                await self._unreadable(msg, str(exc))
                continue
            except ValidationError as exc:
                log.error("terminating undecodable assignment on %s: %s", msg.subject, exc)
                await _quietly(msg.term)
                continue
            except Exception as exc:  # the values bucket cannot be read now: another fetch takes it again
                log.warning("assignment on %s: its values cannot be fetched now (%r); handed back", msg.subject, exc)
                await _quietly(functools.partial(msg.nak, delay=1.0))
                continue
            # A nak is best effort: one lost (or after the ack) leaves the server to redeliver after the ack wait.
            nak = functools.partial(_quietly, msg.nak)
            out.append(
                TaskDelivery(
                    assignment=assignment,
                    ack=_once(msg.ack),
                    in_progress=msg.in_progress,
                    nak=nak,
                    dispatched_at=msg.metadata.timestamp.timestamp(),
                )
            )
        return out

    async def _resolved(self, msg: Msg) -> bytes:
        """The assignment with its values in place; as it came when it is not JSON (refused as such)."""
        try:
            return await self._values.resolve_bytes(msg.data)
        except orjson.JSONDecodeError:
            return msg.data

    async def _unreadable(self, msg: Msg, cause: str) -> None:
        """An assignment naming a value that cannot be read ends as its attempt's Error, so the run goes on."""
        log.warning("assignment on %s names a value that cannot be read: %s", msg.subject, cause)
        try:
            raw = orjson.loads(msg.data)
            report = Report(
                kind="completed",
                run_id=raw["workflowRunID"],
                task_run_id=raw["taskRunID"],
                attempt=raw["attempt"],
                result=TaskResult(code=ResultCode.ERROR, message=f"an input cannot be read: {cause}"),
            )
            await self.report([report])
        except Exception as exc:
            log.warning("terminating the assignment on %s: its error could not be reported (%r)", msg.subject, exc)
            await _quietly(msg.term)
            return
        await _quietly(msg.ack)

    async def cancellations(self, handler: Callable[[str], Awaitable[None]]) -> None:
        sub = await self._nc.subscribe(self._layout.cancel_subjects)
        try:
            async for msg in sub.messages:
                task_run_id = self._layout.task_run_id_of_cancel(msg.subject)
                try:
                    await handler(task_run_id)
                except Exception:
                    log.exception("cancellation handler failed for %s", task_run_id)
        finally:
            await _quietly(sub.unsubscribe)

    async def close(self) -> None:
        """Unbind from the executor consumers, then hand back what long polls took but no fetch returned.

        Unbinding first keeps the server from delivering a handed-back task to a pull of ours still waiting.
        """
        polls, self._polls = list(self._polls.values()), {}
        for poll in polls:
            poll.cancel()
        subs, self._subs = list(self._subs.values()), {}
        for sub in subs:
            await _quietly(sub.unsubscribe)
        for result in await asyncio.gather(*polls, return_exceptions=True):
            if isinstance(result, list):
                await _nak_all(result)
        await asyncio.gather(*self._returns)
