"""Dispatch to workers and reports back, end to end over a real nats-server with the worker pool."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import nats
import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext
from support.reports import Collector, Doubler, Sleeper, assignment

from aether_es.adapters.nats import broker as broker_module
from aether_es.adapters.nats.broker import (
    REPORTS_PER_MESSAGE,
    NatsBroker,
    NatsWorkerChannel,
    decode_reports,
    report_messages,
)
from aether_es.adapters.nats.layout import DEFAULT_ACK_WAIT, Layout, ensure, ensure_consumer
from aether_es.adapters.nats.server import EmbeddedNatsServer
from aether_es.cluster.partitions import partition_of
from aether_es.ports.broker import Delivery
from aether_es.ports.wire import Report, TaskAssignment, TaskResult
from aether_es.worker.pool import WorkerPool

RFC3339_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


async def settled_count(js: JetStreamContext, stream: str, expected: int, timeout: float = 5.0) -> int:
    """The stream's message count once it reaches `expected` (acks are asynchronous), else the last seen."""
    deadline = time.monotonic() + timeout
    while True:
        count = (await js.stream_info(stream)).state.messages
        if count == expected or time.monotonic() > deadline:
            return count
        await asyncio.sleep(0.02)


class Failing:
    async def execute(self, assignment: TaskAssignment) -> TaskResult:
        raise RuntimeError(f"boom {assignment.task_run_id}")


@pytest.fixture
async def layout(js: JetStreamContext) -> Layout:
    layout = Layout()
    await ensure(js, layout)
    return layout


@pytest.fixture
async def broker(js: JetStreamContext, nc: Client, layout: Layout) -> NatsBroker:
    return NatsBroker(js, nc, layout, fetch_timeout=0.5)


@pytest.fixture
async def collector(broker: NatsBroker) -> AsyncIterator[Collector]:
    collector = Collector()
    task = asyncio.create_task(broker.consume_reports(collector))
    yield collector
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


@pytest.fixture
def channel(js: JetStreamContext, nc: Client, layout: Layout) -> NatsWorkerChannel:
    return NatsWorkerChannel(js, nc, layout)


async def test_dispatch_work_report_and_consume(
    js: JetStreamContext, layout: Layout, broker: NatsBroker, channel: NatsWorkerChannel, collector: Collector
) -> None:
    pool = WorkerPool(
        channel, {"double": Doubler()}, concurrency=4, worker_id="w1", fetch_timeout=0.5, start_report_after=0
    )
    await pool.start()
    await broker.dispatch([assignment(n) for n in range(20)])
    await collector.until(lambda reports: len([r for r in reports if r.kind == "completed"]) == 20)
    await pool.stop(timeout=5)
    completed = {r.task_run_id: r for r in collector.of("completed")}
    assert completed["t7"].result is not None and completed["t7"].result.parameters[0].value == 14
    assert {r.task_run_id for r in collector.of("started")} == {f"t{n}" for n in range(20)}
    for report in collector.reports:
        assert report.worker_id == "w1" and report.run_id == "run1" and report.attempt == 1
        assert RFC3339_MS.match(report.at), report.at
    # Work-queue streams keep nothing once everything is acked.
    assert await settled_count(js, layout.tasks_stream, 0) == 0
    await collector.until(lambda _: True)
    await asyncio.sleep(0.1)
    assert await settled_count(js, layout.reports_stream, 0) == 0


async def test_redispatch_of_same_attempt_is_deduplicated(
    js: JetStreamContext, layout: Layout, broker: NatsBroker
) -> None:
    await broker.dispatch([assignment(1), assignment(2)])
    await broker.dispatch([assignment(1)])
    assert (await js.stream_info(layout.tasks_stream)).state.messages == 2
    await broker.dispatch([assignment(1, attempt=2)])
    assert (await js.stream_info(layout.tasks_stream)).state.messages == 3


async def test_report_is_deduplicated_by_its_key(js: JetStreamContext, layout: Layout, broker: NatsBroker) -> None:
    report = Report.model_validate({"kind": "workflow-timeout", "runID": "r1", "at": "2025-01-01T00:00:00Z"})
    await broker.report([report, report])
    await broker.report([report])
    assert (await js.stream_info(layout.reports_stream)).state.messages == 1


async def test_executor_error_becomes_code_3(
    broker: NatsBroker, channel: NatsWorkerChannel, collector: Collector
) -> None:
    pool = WorkerPool(channel, {"fail": Failing()}, worker_id="w1", fetch_timeout=0.5)
    await pool.start()
    await broker.dispatch([assignment(1, "fail")])
    await collector.until(lambda reports: any(r.kind == "completed" for r in reports))
    await pool.stop(timeout=5)
    result = collector.of("completed")[0].result
    assert result is not None and result.code == 3 and result.message == "boom t1"


async def test_worker_fetches_several_types(
    broker: NatsBroker, channel: NatsWorkerChannel, collector: Collector
) -> None:
    pool = WorkerPool(channel, {"double": Doubler(), "fail": Failing()}, concurrency=2, fetch_timeout=0.5)
    await pool.start()
    await broker.dispatch([assignment(n, "double" if n % 2 else "fail") for n in range(10)])
    await collector.until(lambda reports: len([r for r in reports if r.kind == "completed"]) == 10)
    await pool.stop(timeout=5)
    codes = {r.task_run_id: r.result.code for r in collector.of("completed") if r.result}
    assert codes == {f"t{n}": 0 if n % 2 else 3 for n in range(10)}


async def test_cancel_stops_a_running_task_without_report(
    js: JetStreamContext, layout: Layout, broker: NatsBroker, channel: NatsWorkerChannel, collector: Collector
) -> None:
    sleeper = Sleeper()
    pool = WorkerPool(channel, {"sleep": sleeper}, worker_id="w1", fetch_timeout=0.5)
    await pool.start()
    await broker.dispatch([assignment(1, "sleep")])
    await collector.until(lambda reports: any(r.kind == "started" for r in reports))
    await broker.cancel(["t1"])
    for _ in range(100):
        if not pool.active:
            break
        await asyncio.sleep(0.05)
    await pool.stop(timeout=5)
    assert sleeper.cancelled == ["t1"]
    assert collector.of("completed") == []
    assert await settled_count(js, layout.tasks_stream, 0) == 0  # acked


async def test_undecodable_report_is_terminated_and_the_loop_goes_on(
    js: JetStreamContext, layout: Layout, broker: NatsBroker, collector: Collector
) -> None:
    await js.publish(layout.report_subject("r1"), b"{not json")
    await js.publish(layout.report_subject("r1"), b'{"kind": "no-such-kind", "runID": "r1"}')
    good = Report.model_validate({"kind": "workflow-timeout", "runID": "r1"})
    await broker.report([good])
    await collector.until(lambda reports: len(reports) == 1)
    assert collector.reports == [good]
    await asyncio.sleep(0.1)
    assert await settled_count(js, layout.reports_stream, 0) == 0


async def test_handler_failure_redelivers_unacked_reports(broker: NatsBroker) -> None:
    seen: list[str] = []
    done = asyncio.Event()

    async def flaky(deliveries: list[Delivery]) -> None:
        for delivery in deliveries:
            seen.append(delivery.report.run_id)
        if len(seen) == 1:
            raise RuntimeError("engine hiccup")
        for delivery in deliveries:
            await delivery.ack()
        done.set()

    task = asyncio.create_task(broker.consume_reports(flaky))
    await broker.report([Report.model_validate({"kind": "workflow-timeout", "runID": "r1"})])
    await asyncio.wait_for(done.wait(), 10)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert seen == ["r1", "r1"]


async def test_unsafe_executor_type_is_rejected(broker: NatsBroker, channel: NatsWorkerChannel) -> None:
    with pytest.raises(ValueError, match=r"executor type 'bad\.type'"):
        await broker.dispatch([assignment(1, "bad.type")])
    with pytest.raises(ValueError, match="executor type 'a b'"):
        await channel.fetch(["a b"], 1, 0.1)


async def test_consume_reports_survives_server_restart(
    nats_server: EmbeddedNatsServer, broker: NatsBroker, collector: Collector, reconnected: asyncio.Event
) -> None:
    await broker.report([Report.model_validate({"kind": "workflow-timeout", "runID": "before"})])
    await collector.until(lambda reports: len(reports) == 1)
    reconnected.clear()
    nats_server.restart(hard=True)
    await asyncio.wait_for(reconnected.wait(), 10)
    await broker.report([Report.model_validate({"kind": "workflow-timeout", "runID": "after"})])
    await collector.until(lambda reports: any(r.run_id == "after" for r in reports))


def _timeout(run: str, n: int = 0) -> Report:
    return Report.model_validate({"kind": "task-timeout", "runID": run, "taskRunID": f"t{n}", "attempt": 1})


def test_a_runs_reports_travel_together_and_a_lone_one_keeps_its_key() -> None:
    reports = [_timeout("r1", 1), _timeout("r2", 2), _timeout("r1", 3), _timeout("r1", 1)]
    messages = list(report_messages(reports))
    assert [(run, msg_id.startswith("r1.reports.")) for run, _, msg_id in messages] == [("r1", True), ("r2", False)]
    assert [r.task_run_id for r in decode_reports(messages[0][1])] == ["t1", "t3"]
    assert messages[1][2] == reports[1].dedup_key()
    assert decode_reports(messages[1][1]) == [reports[1]]


def test_large_batches_are_split() -> None:
    reports = [_timeout("r1", n) for n in range(REPORTS_PER_MESSAGE + 3)]
    messages = list(report_messages(reports))
    assert [len(decode_reports(body)) for _, body, _ in messages] == [REPORTS_PER_MESSAGE, 3]
    assert len({msg_id for _, _, msg_id in messages}) == 2


async def test_a_batch_message_is_acked_once_every_report_in_it_is(
    js: JetStreamContext, layout: Layout, broker: NatsBroker
) -> None:
    seen: list[list[str]] = []
    done = asyncio.Event()

    async def partial(deliveries: list[Delivery]) -> None:
        seen.append([d.report.task_run_id for d in deliveries])
        if len(seen) == 1:
            await deliveries[0].ack()
            await deliveries[0].ack()  # a second ack of one report must not count as another's
            raise RuntimeError("engine hiccup")
        for delivery in deliveries:
            await delivery.ack()
        done.set()

    task = asyncio.create_task(broker.consume_reports(partial))
    await broker.report([_timeout("r1", n) for n in range(3)])
    await asyncio.wait_for(done.wait(), 10)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert seen == [["t0", "t1", "t2"], ["t0", "t1", "t2"]]
    assert await settled_count(js, layout.reports_stream, 0) == 0


def _count_pulls(channel: NatsWorkerChannel, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The executor types the channel pulls from, in order, from now on."""
    pulls: list[str] = []
    real_pull = channel._pull

    async def counting(executor_type: str, batch: int, timeout: float) -> list[Any]:
        pulls.append(executor_type)
        return await real_pull(executor_type, batch, timeout)

    monkeypatch.setattr(channel, "_pull", counting)
    return pulls


async def test_a_worker_of_many_types_probes_the_busy_type_first(
    broker: NatsBroker, channel: NatsWorkerChannel, monkeypatch: pytest.MonkeyPatch
) -> None:
    types = ["idle1", "idle2", "busy"]
    for executor_type in types:  # the consumers exist, as for a worker that serves these types
        assert await channel.fetch([executor_type], 1, 0.05) == []
    await broker.dispatch([assignment(n, "busy") for n in range(6)])
    pulls = _count_pulls(channel, monkeypatch)
    monkeypatch.setattr(broker_module, "GLANCE_EVERY", 3600.0)
    first = await channel.fetch(types, 2, 2.0)
    assert {d.assignment.executor_type for d in first} == {"busy"}
    pulls.clear()
    second = await channel.fetch(types, 2, 2.0)
    assert [d.assignment.executor_type for d in second] == ["busy", "busy"]
    assert pulls == ["busy"]  # straight to the type that delivered last, no waiting on the idle ones
    monkeypatch.setattr(broker_module, "GLANCE_EVERY", 0.0)
    pulls.clear()
    third = await channel.fetch(types, 2, 2.0)
    assert len(third) == 2 and pulls[-1] == "busy"
    # Another type got a look first, unless its long poll from the first fetch is still watching it.
    assert pulls[0] != "busy" or {"idle1", "idle2"} <= set(channel._polls)
    for delivery in [*first, *second, *third]:
        await delivery.ack()


async def test_a_long_poll_left_in_flight_is_collected_by_the_next_fetch(
    broker: NatsBroker, channel: NatsWorkerChannel, monkeypatch: pytest.MonkeyPatch
) -> None:
    types = ["left", "right"]
    for executor_type in types:
        assert await channel.fetch([executor_type], 1, 0.05) == []
    pulls = _count_pulls(channel, monkeypatch)
    monkeypatch.setattr(broker_module, "GLANCE_EVERY", 3600.0)

    async def dispatch_later(executor_type: str, n: int) -> None:
        await asyncio.sleep(0.2)
        await broker.dispatch([assignment(n, executor_type)])

    later = asyncio.create_task(dispatch_later("right", 1))
    first = await channel.fetch(types, 5, 3.0)
    await later
    assert [d.assignment.task_run_id for d in first] == ["t1"]
    assert "left" in channel._polls  # its long poll is still waiting, not called off
    later = asyncio.create_task(dispatch_later("left", 2))
    before = len(pulls)
    second = await channel.fetch(types, 5, 3.0)
    await later
    assert [d.assignment.task_run_id for d in second] == ["t2"]
    assert "left" not in pulls[before:]  # the poll in flight answered; no second pull raced it
    for delivery in [*first, *second]:
        await delivery.ack()
    await channel.close()
    assert channel._polls == {}


# --- short ack waits kept alive by in-progress signals, and hand-backs ------------------------------------


class Holder:
    """A report handler that acks nothing: the engine keeping reports in its mailboxes."""

    def __init__(self) -> None:
        self.held: list[Delivery] = []
        self.got = asyncio.Event()

    async def __call__(self, deliveries: list[Delivery]) -> None:
        self.held += deliveries
        self.got.set()


async def _stopped(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_a_report_an_engine_died_holding_comes_back_within_the_ack_wait(
    nats_server: EmbeddedNatsServer, js: JetStreamContext, nc: Client
) -> None:
    layout = Layout(prefix="dies", report_ack_wait=1.0)
    await ensure(js, layout)
    broker = NatsBroker(js, nc, layout, fetch_timeout=0.3)
    dead = await nats.connect(nats_server.url)
    consumer = layout.partition_consumer(partition_of("r1", layout.partitions))
    sub = await dead.jetstream().pull_subscribe_bind(consumer=consumer, stream=layout.reports_stream)
    await broker.report([Report.model_validate({"kind": "workflow-timeout", "runID": "r1"})])
    assert len(await sub.fetch(1, timeout=5)) == 1
    await dead.close()  # died holding it: never acked, never handed back
    collector = Collector()
    task = asyncio.create_task(broker.consume_reports(collector))
    try:
        await collector.until(lambda reports: len(reports) == 1, timeout=layout.report_ack_wait + 10)
    finally:
        await _stopped(task)
    assert await settled_count(js, layout.reports_stream, 0) == 0


async def test_a_report_a_live_engine_holds_past_the_ack_wait_is_not_redelivered(
    nats_server: EmbeddedNatsServer, js: JetStreamContext, nc: Client
) -> None:
    layout = Layout(prefix="holds", report_ack_wait=0.6)
    await ensure(js, layout)
    holder = Holder()
    rival = Collector()
    other = await nats.connect(nats_server.url)
    holding = asyncio.create_task(NatsBroker(js, nc, layout, fetch_timeout=0.3).consume_reports(holder))
    competing: asyncio.Task[None] | None = None
    try:
        await NatsBroker(js, nc, layout).report([Report.model_validate({"kind": "workflow-timeout", "runID": "r1"})])
        await asyncio.wait_for(holder.got.wait(), 10)
        rival_broker = NatsBroker(other.jetstream(), other, layout, fetch_timeout=0.3)
        competing = asyncio.create_task(rival_broker.consume_reports(rival))
        await asyncio.sleep(5 * layout.report_ack_wait)
        assert rival.reports == []  # kept by in-progress signals
        assert len(holder.held) == 1
        await holder.held[0].ack()
        assert await settled_count(js, layout.reports_stream, 0) == 0
    finally:
        await _stopped(holding)
        if competing is not None:
            await _stopped(competing)
        await other.close()


async def test_a_stopping_engine_hands_back_the_reports_it_holds(js: JetStreamContext, nc: Client) -> None:
    layout = Layout(prefix="handback", report_ack_wait=30.0)  # only the nak brings it back this soon
    await ensure(js, layout)
    broker = NatsBroker(js, nc, layout, fetch_timeout=0.3)
    holder = Holder()
    holding = asyncio.create_task(broker.consume_reports(holder))
    await broker.report([Report.model_validate({"kind": "workflow-timeout", "runID": "r1"})])
    await asyncio.wait_for(holder.got.wait(), 10)
    await _stopped(holding)
    await holder.held[0].ack()  # decided after the hand-back: dropped, not an error
    collector = Collector()
    task = asyncio.create_task(NatsBroker(js, nc, layout, fetch_timeout=0.3).consume_reports(collector))
    try:
        await collector.until(lambda reports: len(reports) == 1, timeout=5)
    finally:
        await _stopped(task)
    assert await settled_count(js, layout.reports_stream, 0) == 0


async def test_ensure_brings_existing_consumers_to_the_layouts_ack_wait(
    js: JetStreamContext, caplog: pytest.LogCaptureFixture
) -> None:
    old = Layout(prefix="upgrade", task_ack_wait=30.0, report_ack_wait=30.0)
    await ensure(js, old)
    await ensure_consumer(js, old.tasks_stream, old.executor_consumer_config("echo"))
    new = Layout(prefix="upgrade")
    with caplog.at_level(logging.INFO, logger="aether_es.adapters.nats.layout"):
        await ensure(js, new)
        await ensure_consumer(js, new.tasks_stream, new.executor_consumer_config("echo"))
    partitions = [(new.reports_stream, new.partition_consumer(p)) for p in range(new.partitions)]
    for stream, consumer in [*partitions, (new.tasks_stream, "exec_echo")]:
        assert (await js.consumer_info(stream, consumer)).config.ack_wait == DEFAULT_ACK_WAIT
    updates = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO and "updated" in r.getMessage()]
    assert len(updates) == new.partitions + 1 and all("ack wait 30.0s" in message for message in updates), updates
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="aether_es.adapters.nats.layout"):
        await ensure(js, new)
    assert not [r for r in caplog.records if "updated" in r.getMessage()]


async def test_what_a_long_poll_takes_while_no_fetch_runs_is_handed_back(js: JetStreamContext, nc: Client) -> None:
    layout = Layout(prefix="unclaimed", task_ack_wait=30.0)  # only the nak gets it to the other worker this soon
    await ensure(js, layout)
    broker = NatsBroker(js, nc, layout)
    full = NatsWorkerChannel(js, nc, layout)
    other = NatsWorkerChannel(js, nc, layout)
    try:
        await broker.dispatch([assignment(1, "right"), assignment(0, "left")])
        for executor_type in ("right", "left"):  # bind both, leaving nothing waiting
            [delivery] = await full.fetch([executor_type], 1, 5.0)
            await delivery.ack()

        async def dispatch_later(executor_type: str, n: int) -> None:
            await asyncio.sleep(0.2)
            await broker.dispatch([assignment(n, executor_type)])

        later = asyncio.create_task(dispatch_later("right", 2))
        [taken] = await full.fetch(["right", "left"], 1, 5.0)  # a long poll of "left" stays in flight
        await later
        assert taken.assignment.task_run_id == "t2" and "left" in full._polls
        await broker.dispatch([assignment(3, "left")])  # taken by that poll while the pool runs "t2"
        [handed_back] = await other.fetch(["left"], 1, 10.0)
        assert handed_back.assignment.task_run_id == "t3"
        assert "left" not in full._polls
        await taken.ack()
        await handed_back.ack()
    finally:
        await full.close()
        await other.close()
