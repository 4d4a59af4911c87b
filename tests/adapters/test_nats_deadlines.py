"""NatsDeadlines: deadlines in KV, reported at least once and again until cleared, across restarts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext

from aether_es.adapters.nats.broker import NatsBroker
from aether_es.adapters.nats.deadlines import NatsDeadlines, parse_time
from aether_es.adapters.nats.layout import Layout, ensure
from aether_es.adapters.nats.server import EmbeddedNatsServer
from aether_es.ports.broker import Delivery
from aether_es.ports.deadlines import RETRY, Deadline, retry_key
from aether_es.ports.wire import Report

PAST = "2020-01-01T00:00:00.123456789Z"


def in_seconds(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


class Recorder:
    def __init__(self) -> None:
        self.reports: list[Report] = []

    async def __call__(self, reports: Sequence[Report]) -> None:
        self.reports.extend(reports)

    def count(self, predicate: Callable[[Report], bool]) -> int:
        return sum(1 for r in self.reports if predicate(r))

    async def until(self, predicate: Callable[[Report], bool], times: int = 1, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while self.count(predicate) < times:
            assert time.monotonic() < deadline, f"only {self.count(predicate)} of {times} reports"
            await asyncio.sleep(0.02)


@pytest.fixture
async def layout(js: JetStreamContext) -> Layout:
    layout = Layout()
    await ensure(js, layout)
    return layout


def is_task(task_run_id: str) -> Callable[[Report], bool]:
    return lambda r: r.kind == "task-timeout" and r.task_run_id == task_run_id


def test_parse_time_accepts_rfc3339_variants() -> None:
    assert parse_time("2020-01-01T00:00:00Z") == 1577836800.0
    assert parse_time(PAST) == pytest.approx(1577836800.123456)
    assert parse_time("2020-01-01T01:00:00.5+01:00") == 1577836800.5
    assert parse_time("2020-01-01T00:00:00") == 1577836800.0


async def test_past_deadline_is_reported_again_until_cleared(js: JetStreamContext, layout: Layout) -> None:
    recorder = Recorder()
    deadlines = NatsDeadlines(js, layout, recorder, poll_interval=0.02, reemit_interval=0.1)
    await deadlines.set([Deadline(run_id="r1", at=PAST, task_run_id="t1", attempt=2)])
    await deadlines.start()
    await recorder.until(is_task("t1"), times=3)
    report = recorder.reports[0]
    assert (report.run_id, report.attempt, report.at) == ("r1", 2, PAST)
    await deadlines.clear(["task.t1", "task.never-set"])
    await asyncio.sleep(0.2)  # the clear reaches the watcher
    settled = recorder.count(is_task("t1"))
    await asyncio.sleep(0.4)
    assert recorder.count(is_task("t1")) == settled
    await deadlines.stop()


async def test_future_deadline_fires_when_due_not_before(js: JetStreamContext, layout: Layout) -> None:
    recorder = Recorder()
    deadlines = NatsDeadlines(js, layout, recorder, poll_interval=0.02, reemit_interval=5)
    await deadlines.start()
    due = time.time() + 0.4
    await deadlines.set([Deadline(run_id="r9", at=in_seconds(0.4))])
    await recorder.until(lambda r: r.kind == "workflow-timeout" and r.run_id == "r9")
    assert time.time() >= due
    assert recorder.reports[0].task_run_id == ""
    await deadlines.stop()


async def test_deadlines_survive_a_watcher_restart(js: JetStreamContext, layout: Layout) -> None:
    first = Recorder()
    watcher = NatsDeadlines(js, layout, first, poll_interval=0.02)
    await watcher.start()
    await watcher.set([Deadline(run_id="r1", at=in_seconds(0.5), task_run_id="t1", attempt=1)])
    await watcher.set([Deadline(run_id="r2", at=in_seconds(30))])
    await asyncio.sleep(0.1)
    assert watcher.pending == 2
    await watcher.stop()
    assert first.reports == []

    second = Recorder()
    successor = NatsDeadlines(js, layout, second, poll_interval=0.02)  # a fresh process, knowing nothing
    await successor.start()
    assert successor.pending == 2
    await second.until(is_task("t1"))
    assert second.count(lambda r: r.kind == "workflow-timeout") == 0
    await successor.stop()


async def test_watcher_recovers_after_server_restart(
    nats_server: EmbeddedNatsServer, js: JetStreamContext, layout: Layout, reconnected: asyncio.Event
) -> None:
    recorder = Recorder()
    watcher = NatsDeadlines(js, layout, recorder, poll_interval=0.02, heartbeat=0.25)
    await watcher.start()
    reconnected.clear()
    nats_server.restart(hard=True)
    await asyncio.wait_for(reconnected.wait(), 10)
    started = time.monotonic()
    await watcher.set([Deadline(run_id="r1", at=PAST, task_run_id="after-restart", attempt=1)])
    await recorder.until(is_task("after-restart"), timeout=8)
    assert time.monotonic() - started < 5
    await watcher.stop()


async def test_timeouts_reach_the_engine_through_the_broker(js: JetStreamContext, nc: Client, layout: Layout) -> None:
    broker = NatsBroker(js, nc, layout, fetch_timeout=0.5)
    deadlines = NatsDeadlines(js, layout, broker.report, poll_interval=0.02, reemit_interval=0.1)
    await deadlines.set([Deadline(run_id="r1", at=PAST)])
    await deadlines.start()
    got: list[Report] = []
    arrived = asyncio.Event()

    async def handler(batch: list[Delivery]) -> None:
        for delivery in batch:
            got.append(delivery.report)
            await delivery.ack()
        arrived.set()

    consumer = asyncio.create_task(broker.consume_reports(handler))
    await asyncio.wait_for(arrived.wait(), 10)
    await asyncio.sleep(0.3)  # several re-emissions, deduplicated by the report's message id
    consumer.cancel()
    await deadlines.stop()
    await asyncio.gather(consumer, return_exceptions=True)
    assert [(r.kind, r.run_id) for r in got] == [("workflow-timeout", "r1")]


async def test_retry_deadline_is_reported_as_retry_due_beside_the_task_timeout(
    js: JetStreamContext, layout: Layout
) -> None:
    """A retry deadline has its own key per attempt, so it neither replaces nor is replaced by the timeout."""
    recorder = Recorder()
    deadlines = NatsDeadlines(js, layout, recorder, poll_interval=0.02, reemit_interval=0.1)
    retry = Deadline(run_id="r1", at=in_seconds(0.3), task_run_id="t1", attempt=1, kind=RETRY)
    assert retry.key == retry_key("t1", 1) == "retry.t1.1"
    await deadlines.set([retry, Deadline(run_id="r1", at=PAST, task_run_id="t1", attempt=1)])
    started = time.time()
    await deadlines.start()
    await recorder.until(lambda r: r.kind == "retry-due")
    assert time.time() - started >= 0.25
    report = next(r for r in recorder.reports if r.kind == "retry-due")
    assert (report.run_id, report.task_run_id, report.attempt, report.at) == ("r1", "t1", 1, retry.at)
    assert report.dedup_key() == "t1.1.retry-due"
    assert recorder.count(is_task("t1")) >= 1
    await deadlines.clear([retry.key])
    await asyncio.sleep(0.2)
    settled = recorder.count(lambda r: r.kind == "retry-due")
    await asyncio.sleep(0.3)
    assert recorder.count(lambda r: r.kind == "retry-due") == settled
    assert recorder.count(is_task("t1")) > 1  # the timeout deadline was left alone
    await deadlines.stop()
