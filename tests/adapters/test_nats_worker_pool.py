"""The worker pool on the NATS channel: long tasks stay leased, a dead pool's tasks come back within the ack
wait, stop drains what the pool holds."""

from __future__ import annotations

import asyncio
import time

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext

from aether_es.adapters.nats.broker import NatsBroker, NatsWorkerChannel, decode_reports
from aether_es.adapters.nats.layout import Layout, ensure
from aether_es.adapters.nats.server import EmbeddedNatsServer
from aether_es.ports.broker import Delivery
from aether_es.ports.wire import Report, TaskAssignment, TaskResult
from aether_es.worker.pool import WorkerPool


async def settled_count(js: JetStreamContext, stream: str, expected: int, timeout: float = 5.0) -> int:
    """The stream's message count once it reaches `expected` (acks are asynchronous), else the last seen."""
    deadline = time.monotonic() + timeout
    while True:
        count = (await js.stream_info(stream)).state.messages
        if count == expected or time.monotonic() > deadline:
            return count
        await asyncio.sleep(0.02)


def assignment(n: int) -> TaskAssignment:
    return TaskAssignment.model_validate(
        {
            "taskRunID": f"t{n}",
            "workflowRunID": "run1",
            "taskName": "slow",
            "executorType": "slow",
            "attempt": 1,
        }
    )


class Slow:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.runs: list[str] = []

    async def execute(self, assignment: TaskAssignment) -> TaskResult:
        self.runs.append(assignment.task_run_id)
        await asyncio.sleep(self.seconds)
        return TaskResult(message="done")


async def consume(broker: NatsBroker, into: list[Report]) -> None:
    async def handler(deliveries: list[Delivery]) -> None:
        for delivery in deliveries:
            into.append(delivery.report)
            await delivery.ack()

    await broker.consume_reports(handler)


async def test_long_task_is_kept_alive_past_ack_wait(js: JetStreamContext, nc: Client) -> None:
    layout = Layout(task_ack_wait=0.6)
    await ensure(js, layout)
    broker = NatsBroker(js, nc, layout, fetch_timeout=0.5)
    slow = Slow(1.5)
    pools = [
        WorkerPool(NatsWorkerChannel(js, nc, layout), {"slow": slow}, ack_wait=0.6, fetch_timeout=0.3) for _ in range(2)
    ]
    for pool in pools:
        await pool.start()
    reports: list[Report] = []
    consumer = asyncio.create_task(consume(broker, reports))
    await broker.dispatch([assignment(1)])
    for _ in range(100):
        if any(r.kind == "completed" for r in reports):
            break
        await asyncio.sleep(0.05)
    for pool in pools:
        await pool.stop(timeout=5)
    consumer.cancel()
    await asyncio.gather(consumer, return_exceptions=True)
    assert slow.runs == ["t1"]  # never redelivered to the other worker
    assert [r.kind for r in reports] == ["started", "completed"]


async def test_the_task_of_a_dead_pool_goes_to_another_within_the_ack_wait(
    nats_server: EmbeddedNatsServer, js: JetStreamContext, nc: Client
) -> None:
    layout = Layout(task_ack_wait=1.0)
    await ensure(js, layout)
    broker = NatsBroker(js, nc, layout, fetch_timeout=0.5)
    dying = await nats.connect(nats_server.url)
    stuck = Slow(60)
    first = WorkerPool(
        NatsWorkerChannel(dying.jetstream(), dying, layout), {"slow": stuck}, ack_wait=1.0, fetch_timeout=0.3
    )
    await first.start()
    quick = Slow(0)
    second = WorkerPool(NatsWorkerChannel(js, nc, layout), {"slow": quick}, ack_wait=1.0, fetch_timeout=0.3)
    try:
        await broker.dispatch([assignment(1)])
        for _ in range(100):
            if stuck.runs:
                break
            await asyncio.sleep(0.02)
        assert stuck.runs == ["t1"]
        await dying.close()  # the pool's process is gone: no more in-progress signals, no hand-back
        await second.start()
        assert await settled_count(js, layout.tasks_stream, 0, timeout=layout.task_ack_wait + 10) == 0
        assert quick.runs == ["t1"]
    finally:
        await second.stop(timeout=5)
        await first.stop(timeout=0)


async def test_stop_drains_held_tasks(js: JetStreamContext, nc: Client) -> None:
    layout = Layout()
    await ensure(js, layout)
    broker = NatsBroker(js, nc, layout, fetch_timeout=0.5)
    pool = WorkerPool(NatsWorkerChannel(js, nc, layout), {"slow": Slow(0.3)}, concurrency=3, fetch_timeout=0.3)
    await pool.start()
    await broker.dispatch([assignment(n) for n in range(3)])
    for _ in range(100):
        if pool.active == 3:
            break
        await asyncio.sleep(0.02)
    assert pool.active == 3
    await pool.stop(timeout=5)
    assert pool.active == 0
    assert await settled_count(js, layout.tasks_stream, 0) == 0
    state = (await js.stream_info(layout.reports_stream)).state
    kinds = [
        report.kind
        for seq in range(state.first_seq, state.last_seq + 1)
        for report in decode_reports((await js.get_msg(layout.reports_stream, seq)).data or b"")
    ]
    assert sorted(kinds) == ["completed"] * 3 + ["started"] * 3
    assert state.messages < 6  # reports of one run made together travel in one message


async def test_stop_hands_back_what_outlasts_the_timeout(js: JetStreamContext, nc: Client) -> None:
    layout = Layout(task_ack_wait=30.0)  # only the nak gets the task to the next pool this soon
    await ensure(js, layout)
    broker = NatsBroker(js, nc, layout, fetch_timeout=0.5)
    stuck = Slow(60)
    first = WorkerPool(NatsWorkerChannel(js, nc, layout), {"slow": stuck}, ack_wait=30.0, fetch_timeout=0.3)
    await first.start()
    await broker.dispatch([assignment(1)])
    for _ in range(100):
        if stuck.runs:
            break
        await asyncio.sleep(0.02)
    assert first.active == 1
    await first.stop(timeout=0.2)
    assert first.active == 0
    quick = Slow(0)
    second = WorkerPool(NatsWorkerChannel(js, nc, layout), {"slow": quick}, ack_wait=30.0, fetch_timeout=0.3)
    await second.start()
    try:
        assert await settled_count(js, layout.tasks_stream, 0, timeout=5) == 0
        assert quick.runs == ["t1"]
    finally:
        await second.stop(timeout=5)
