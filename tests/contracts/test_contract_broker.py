"""One contract for every `TaskBroker` and its `WorkerChannel`: the in-memory pair and the NATS JetStream pair.

Everything the engine and the worker pool rely on: dispatch, fetch and ack, dedup of a repeated dispatch,
redelivery after the ack wait unless in progress, nak, competing workers, report delivery, dedup and
redelivery, cancellation reaching a listening worker. The memory broker's fault seams are checked at the end.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext
from support.reports import Collector, Doubler, Sleeper, assignment

from aether_es.adapters.memory import MemoryBroker
from aether_es.adapters.nats.broker import NatsBroker, NatsWorkerChannel
from aether_es.adapters.nats.layout import Layout, ensure
from aether_es.ports.broker import Delivery, TaskBroker, TaskDelivery, WorkerChannel
from aether_es.ports.wire import Report
from aether_es.worker.pool import WorkerPool

ACK_WAIT = 1.0
"""Both brokers' ack wait for tasks and reports, short so redelivery is quick to see."""
SETTLE = 0.3
"""How long a test waits to see that nothing more arrives."""


def timeout_report(run: str, n: int = 0) -> Report:
    return Report.model_validate({"kind": "task-timeout", "runID": run, "taskRunID": f"t{n}", "attempt": 1})


@dataclass
class Harness:
    broker: TaskBroker
    make_channel: Callable[[], WorkerChannel]
    _consumers: list[asyncio.Task[None]] = field(default_factory=list)

    def channel(self) -> WorkerChannel:
        return self.make_channel()

    def consume(self, handler: Callable[[list[Delivery]], Awaitable[None]]) -> asyncio.Task[None]:
        task = asyncio.create_task(self.broker.consume_reports(handler))
        self._consumers.append(task)
        return task

    async def close(self) -> None:
        for task in self._consumers:
            task.cancel()
        await asyncio.gather(*self._consumers, return_exceptions=True)


@pytest.fixture(params=["memory", "nats"])
def server(request: pytest.FixtureRequest) -> tuple[JetStreamContext, Client] | None:
    """JetStream on a real server for the NATS broker; None for the memory one."""
    if request.param == "memory":
        return None
    return request.getfixturevalue("js"), request.getfixturevalue("nc")


@pytest.fixture
async def harness(server: tuple[JetStreamContext, Client] | None) -> AsyncIterator[Harness]:
    if server is None:
        memory = MemoryBroker(task_ack_wait=ACK_WAIT, report_ack_wait=ACK_WAIT)
        harness = Harness(memory, memory.channel)
        yield harness
        await harness.close()
        return
    js, nc = server
    layout = Layout(task_ack_wait=ACK_WAIT, report_ack_wait=ACK_WAIT)
    await ensure(js, layout)
    channels: list[NatsWorkerChannel] = []

    def channel() -> NatsWorkerChannel:
        channels.append(NatsWorkerChannel(js, nc, layout))
        return channels[-1]

    harness = Harness(NatsBroker(js, nc, layout, fetch_timeout=0.5), channel)
    yield harness
    await harness.close()
    for made in channels:
        await made.close()


async def fetch_all(
    channel: WorkerChannel, types: Sequence[str], count: int, timeout: float = 5.0
) -> list[TaskDelivery]:
    """Fetch until `count` deliveries arrived or `timeout` passed."""
    deadline = time.monotonic() + timeout
    got: list[TaskDelivery] = []
    while len(got) < count and time.monotonic() < deadline:
        got += await channel.fetch(types, count - len(got), min(1.0, deadline - time.monotonic()))
    return got


def ids(deliveries: Sequence[TaskDelivery]) -> list[str]:
    return [d.assignment.task_run_id for d in deliveries]


# --- assignments -------------------------------------------------------------------------------------


async def test_dispatch_fetch_in_order_and_ack(harness: Harness) -> None:
    channel = harness.channel()
    sent = [assignment(n) for n in range(5)]
    await harness.broker.dispatch(sent)
    got = await fetch_all(channel, ["double"], 5)
    assert ids(got) == ["t0", "t1", "t2", "t3", "t4"]
    assert [d.assignment for d in got] == sent
    for delivery in got:
        await delivery.ack()
        await delivery.ack()  # a second ack is harmless
    assert await channel.fetch(["double"], 5, ACK_WAIT + 0.5) == []  # acked: nothing comes back


async def test_fetch_is_empty_after_its_timeout(harness: Harness) -> None:
    channel = harness.channel()
    began = time.monotonic()
    assert await channel.fetch(["idle"], 3, 0.3) == []
    assert time.monotonic() - began >= 0.2
    await harness.broker.dispatch([assignment(1, "busy")])
    assert await channel.fetch(["idle"], 3, 0.3) == []  # another type's work is not this type's


async def test_a_waiting_fetch_gets_a_later_dispatch(harness: Harness) -> None:
    channel = harness.channel()
    waiting = asyncio.create_task(channel.fetch(["double"], 1, 5.0))
    await asyncio.sleep(0.2)
    await harness.broker.dispatch([assignment(1)])
    got = await asyncio.wait_for(waiting, 6.0)
    assert ids(got) == ["t1"]
    await got[0].ack()


async def test_repeated_dispatch_of_one_attempt_is_deduplicated(harness: Harness) -> None:
    channel = harness.channel()
    await harness.broker.dispatch([assignment(1), assignment(2)])
    await harness.broker.dispatch([assignment(1)])
    got = await fetch_all(channel, ["double"], 3, timeout=ACK_WAIT / 2)
    assert sorted(ids(got)) == ["t1", "t2"]
    for delivery in got:
        await delivery.ack()
    await harness.broker.dispatch([assignment(1, attempt=2), assignment(2)])
    again = await fetch_all(channel, ["double"], 2, timeout=ACK_WAIT / 2)
    assert [(d.assignment.task_run_id, d.assignment.attempt) for d in again] == [("t1", 2)]
    await again[0].ack()


async def test_an_unacked_assignment_comes_back_after_the_ack_wait(harness: Harness) -> None:
    channel = harness.channel()
    await harness.broker.dispatch([assignment(1)])
    (first,) = await fetch_all(channel, ["double"], 1)
    assert await channel.fetch(["double"], 1, ACK_WAIT / 2) == []  # held by its first taker for now
    (again,) = await fetch_all(channel, ["double"], 1, timeout=ACK_WAIT + 3)
    assert again.assignment == first.assignment
    await again.ack()


async def test_in_progress_keeps_an_assignment_held(harness: Harness) -> None:
    channel = harness.channel()
    await harness.broker.dispatch([assignment(1)])
    (held,) = await fetch_all(channel, ["double"], 1)
    for _ in range(5):  # 1.5 ack waits in all
        await asyncio.sleep(ACK_WAIT * 0.3)
        await held.in_progress()
    assert await channel.fetch(["double"], 1, ACK_WAIT * 0.3) == []
    await held.ack()
    assert await channel.fetch(["double"], 1, ACK_WAIT + 0.5) == []


async def test_nak_hands_an_assignment_back_at_once(harness: Harness) -> None:
    channel = harness.channel()
    await harness.broker.dispatch([assignment(1)])
    (first,) = await fetch_all(channel, ["double"], 1)
    await first.nak()
    began = time.monotonic()
    (again,) = await fetch_all(channel, ["double"], 1, timeout=ACK_WAIT)
    assert again.assignment == first.assignment and time.monotonic() - began < ACK_WAIT / 2
    await again.ack()


async def test_one_fetch_serves_several_types(harness: Harness) -> None:
    channel = harness.channel()
    await harness.broker.dispatch([assignment(n, "left" if n % 2 else "right") for n in range(6)])
    got = await fetch_all(channel, ["left", "right", "idle"], 6)
    assert sorted(ids(got)) == [f"t{n}" for n in range(6)]
    assert all(
        d.assignment.executor_type == ("left" if int(d.assignment.task_run_id[1:]) % 2 else "right") for d in got
    )
    for delivery in got:
        await delivery.ack()


async def test_competing_workers_each_get_an_assignment_once(harness: Harness) -> None:
    one, two = harness.channel(), harness.channel()
    await harness.broker.dispatch([assignment(n) for n in range(20)])

    async def drain(channel: WorkerChannel) -> list[str]:
        taken: list[str] = []
        while batch := await channel.fetch(["double"], 3, 0.5):
            taken += ids(batch)
            for delivery in batch:
                await delivery.ack()
            await asyncio.sleep(0)
        return taken

    first, second = await asyncio.gather(drain(one), drain(two))
    assert sorted(first + second) == sorted(f"t{n}" for n in range(20))


async def test_unsafe_executor_type_is_rejected(harness: Harness) -> None:
    with pytest.raises(ValueError, match=r"executor type 'bad\.type'"):
        await harness.broker.dispatch([assignment(1, "bad.type")])
    with pytest.raises(ValueError, match="executor type 'a b'"):
        await harness.channel().fetch(["a b"], 1, 0.1)


# --- reports -----------------------------------------------------------------------------------------


async def test_reports_from_broker_and_channel_reach_the_consumer(harness: Harness) -> None:
    collector = Collector()
    harness.consume(collector)
    completed = Report.model_validate(
        {
            "kind": "completed",
            "runID": "r1",
            "taskRunID": "t1",
            "attempt": 2,
            "at": "2025-01-01T00:00:01.000Z",
            "workerID": "w1",
            "startedAt": "2025-01-01T00:00:00.500Z",
            "result": {"code": 0, "parameters": [{"name": "y", "type": "int", "value": 4}]},
        }
    )
    await harness.channel().report([completed])
    await harness.broker.report([timeout_report("r2", 5)])
    await collector.until(lambda reports: len(reports) == 2)
    assert sorted(collector.reports, key=lambda r: r.run_id) == [completed, timeout_report("r2", 5)]


async def test_a_runs_reports_arrive_in_order(harness: Harness) -> None:
    collector = Collector()
    harness.consume(collector)
    await harness.broker.report([timeout_report("r1", n) for n in range(5)])
    await harness.broker.report([timeout_report("r1", n) for n in range(5, 8)])
    await collector.until(lambda reports: len(reports) == 8)
    assert [r.task_run_id for r in collector.reports] == [f"t{n}" for n in range(8)]


async def test_a_repeated_report_is_delivered_once(harness: Harness) -> None:
    collector = Collector()
    harness.consume(collector)
    report = Report.model_validate({"kind": "workflow-timeout", "runID": "r1", "at": "2025-01-01T00:00:00Z"})
    await harness.broker.report([report, report])
    await harness.broker.report([report])
    await collector.until(lambda reports: len(reports) == 1)
    await asyncio.sleep(SETTLE)
    assert collector.reports == [report]


async def test_reports_a_failing_handler_left_unacked_come_back(harness: Harness) -> None:
    seen: list[list[str]] = []
    done = asyncio.Event()

    async def flaky(deliveries: list[Delivery]) -> None:
        seen.append([d.report.task_run_id for d in deliveries])
        if len(seen) == 1:
            raise RuntimeError("engine hiccup")
        for delivery in deliveries:
            await delivery.ack()
        done.set()

    harness.consume(flaky)
    await harness.broker.report([timeout_report("r1", n) for n in range(3)])
    await asyncio.wait_for(done.wait(), 10)
    assert seen == [["t0", "t1", "t2"], ["t0", "t1", "t2"]]


async def test_a_report_its_consumer_did_not_ack_comes_back_to_the_next(harness: Harness) -> None:
    taken = asyncio.Event()

    async def stops_without_ack(deliveries: list[Delivery]) -> None:
        taken.set()
        await asyncio.Event().wait()

    first = harness.consume(stops_without_ack)
    await harness.broker.report([timeout_report("r1", 1)])
    await asyncio.wait_for(taken.wait(), 10)
    first.cancel()
    await asyncio.gather(first, return_exceptions=True)
    collector = Collector()
    harness.consume(collector)
    await collector.until(lambda reports: len(reports) == 1, timeout=ACK_WAIT + 5)
    assert collector.reports == [timeout_report("r1", 1)]
    await asyncio.sleep(ACK_WAIT + SETTLE)
    assert len(collector.reports) == 1  # acked by the second: it does not come back again


# --- cancellation ------------------------------------------------------------------------------------


async def test_cancel_reaches_every_listening_channel_and_survives_a_failing_handler(harness: Harness) -> None:
    heard: dict[str, list[str]] = {"one": [], "two": []}

    def listener(name: str) -> Callable[[str], Awaitable[None]]:
        async def on_cancel(task_run_id: str) -> None:
            heard[name].append(task_run_id)
            if task_run_id == "t1":
                raise RuntimeError("handler failed")

        return on_cancel

    listening = [
        asyncio.create_task(harness.channel().cancellations(listener("one"))),
        asyncio.create_task(harness.channel().cancellations(listener("two"))),
    ]
    await asyncio.sleep(0.2)  # subscribed
    try:
        await harness.broker.cancel(["t1", "t2"])
        await harness.broker.cancel(["t3"])

        async def all_heard() -> None:
            while any(len(ids) < 3 for ids in heard.values()):
                await asyncio.sleep(0.02)

        await asyncio.wait_for(all_heard(), 5)
        assert heard == {"one": ["t1", "t2", "t3"], "two": ["t1", "t2", "t3"]}
    finally:
        for task in listening:
            task.cancel()
        await asyncio.gather(*listening, return_exceptions=True)


# --- with the worker pool ----------------------------------------------------------------------------


async def test_a_worker_pool_runs_dispatched_tasks_and_reports_them(harness: Harness) -> None:
    collector = Collector()
    harness.consume(collector)
    pool = WorkerPool(harness.channel(), {"double": Doubler()}, concurrency=4, worker_id="w1", fetch_timeout=0.5)
    await pool.start()
    try:
        await harness.broker.dispatch([assignment(n) for n in range(10)])
        await collector.until(lambda reports: len([r for r in reports if r.kind == "completed"]) == 10)
    finally:
        await pool.stop(timeout=5)
    completed = {r.task_run_id: r for r in collector.of("completed")}
    assert completed["t7"].result is not None and completed["t7"].result.parameters[0].value == 14
    assert all(r.worker_id == "w1" and r.run_id == "run1" and r.attempt == 1 for r in collector.reports)


async def test_cancel_stops_a_task_a_pool_is_running(harness: Harness) -> None:
    collector = Collector()
    harness.consume(collector)
    sleeper = Sleeper()
    pool = WorkerPool(harness.channel(), {"sleep": sleeper}, worker_id="w1", fetch_timeout=0.5, start_report_after=0)
    await pool.start()
    try:
        await harness.broker.dispatch([assignment(1, "sleep")])
        await collector.until(lambda reports: any(r.kind == "started" for r in reports))
        await harness.broker.cancel(["t1"])
        for _ in range(100):
            if not pool.active:
                break
            await asyncio.sleep(0.05)
    finally:
        await pool.stop(timeout=5)
    assert sleeper.cancelled == ["t1"]
    assert collector.of("completed") == []


# --- the memory broker's fault seams -----------------------------------------------------------------


async def test_memory_dispatch_can_fail_before_or_after_landing() -> None:
    broker = MemoryBroker()
    channel = broker.channel()
    broker.fail_next("dispatch", error=TimeoutError("no answer"))
    with pytest.raises(TimeoutError, match="no answer"):
        await broker.dispatch([assignment(1)])
    assert await channel.fetch(["double"], 5, 0.05) == []

    broker.fail_next("dispatch", landed=True)
    with pytest.raises(ConnectionError, match="injected failure of dispatch"):
        await broker.dispatch([assignment(1)])
    await broker.dispatch([assignment(1)])  # the caller's retry lands nothing twice
    assert ids(await channel.fetch(["double"], 5, 0.05)) == ["t1"]


async def test_memory_report_and_cancel_faults_pick_their_calls() -> None:
    broker = MemoryBroker()
    broker.fail_next("report", 2, match=lambda reports: reports[0].run_id == "r1")
    await broker.report([timeout_report("r2")])
    for _ in range(2):
        with pytest.raises(ConnectionError):
            await broker.report([timeout_report("r1")])
    await broker.report([timeout_report("r1")])
    broker.fail_next("cancel", error=RuntimeError("down"))
    with pytest.raises(RuntimeError, match="down"):
        await broker.cancel(["t1"])
    await broker.cancel(["t1"])
    with pytest.raises(ValueError, match="cannot fail 'append'"):
        broker.fail_next("append")
