"""The NATS adapters implement the ports (checked by mypy on this file, and at runtime for construction)."""

from __future__ import annotations

from collections.abc import Sequence

from nats.aio.client import Client
from nats.js import JetStreamContext

from aether_es.adapters.nats.broker import NatsBroker, NatsWorkerChannel
from aether_es.adapters.nats.deadlines import NatsDeadlines
from aether_es.adapters.nats.event_store import NatsEventStore
from aether_es.adapters.nats.layout import Layout, ensure
from aether_es.ports.broker import TaskBroker, WorkerChannel
from aether_es.ports.deadlines import DeadlineStore, TimeoutWatcher
from aether_es.ports.event_store import EventStore
from aether_es.ports.wire import Report


async def test_adapters_satisfy_the_ports(js: JetStreamContext, nc: Client) -> None:
    layout = Layout(prefix="ports")

    async def sink(reports: Sequence[Report]) -> None:
        return None

    store: EventStore = NatsEventStore(nc, layout)
    broker: TaskBroker = NatsBroker(js, nc, layout)
    channel: WorkerChannel = NatsWorkerChannel(js, nc, layout)
    deadlines: DeadlineStore = NatsDeadlines(js, layout, sink)
    watcher: TimeoutWatcher = NatsDeadlines(js, layout, broker.report)
    assert all(x is not None for x in (store, broker, channel, deadlines, watcher))


def test_layout_names_follow_the_prefix() -> None:
    layout = Layout(prefix="t1")
    assert layout.runs_stream == "T1_RUNS"
    assert layout.run_subject("r.1") == "t1.run.r.1"
    assert layout.task_subject("echo", "r1") == "t1.task.echo.r1"
    assert layout.task_filter("echo") == "t1.task.echo.>"
    assert layout.cancel_subject("t-9") == "t1.cancel.t-9"
    assert layout.task_run_id_of_cancel("t1.cancel.t-9") == "t-9"
    assert layout.deadlines_bucket == "t1_deadlines"


async def test_ensure_is_idempotent_and_prefixes_share_a_server(js: JetStreamContext) -> None:
    first, second = Layout(prefix="a"), Layout(prefix="b")
    await ensure(js, first)
    await ensure(js, first)
    await ensure(js, second)
    names = {info.config.name for info in await js.streams_info()}
    expected = {"A_RUNS", "A_TASKS", "A_REPORTS", "B_RUNS", "B_TASKS", "B_REPORTS"}
    assert expected | {"KV_a_summaries", "KV_a_deadlines", "KV_b_summaries", "KV_b_deadlines"} <= names
    runs = (await js.stream_info("A_RUNS")).config
    assert runs.allow_direct and runs.max_age == 0 and runs.max_msgs == -1 and runs.duplicate_window == 120
