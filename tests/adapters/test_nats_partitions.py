"""The partitioned report layout on a real server: the partition count a system keeps, one consumer per
partition over its slots, and the move from the single consumer of systems made before partitions."""

from __future__ import annotations

import orjson
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from aether_es.adapters.nats.layout import Layout, ensure, recorded_partitions
from aether_es.api.engines import read_engines
from aether_es.cluster.partitions import partition_of, slot_of


async def test_a_system_keeps_the_partition_count_it_was_created_with(js: JetStreamContext) -> None:
    created = await ensure(js, Layout(prefix="kept", partitions=4))
    later = await ensure(js, Layout(prefix="kept", partitions=16))
    assert created.partitions == later.partitions == 4
    names = [info.name for info in await js.consumers_info(later.reports_stream)]
    assert sorted(names) == [f"engine-{p}" for p in range(4)]


async def test_a_report_lands_in_the_consumer_of_its_runs_partition(js: JetStreamContext) -> None:
    layout = await ensure(js, Layout(prefix="routed", partitions=4))
    for run_id in ["a", "b.c", "run-42", "x/y=z"]:
        await js.publish(layout.report_subject(run_id), b"{}")
        assert layout.report_subject(run_id) == f"routed.report.{slot_of(run_id)}.{run_id}"
        mine = layout.partition_consumer(partition_of(run_id, 4))
        assert (await js.consumer_info(layout.reports_stream, mine)).num_pending == 1
        sub = await js.pull_subscribe_bind(consumer=mine, stream=layout.reports_stream)
        (msg,) = await sub.fetch(1, timeout=2)
        await msg.ack_sync()
        await sub.unsubscribe()


async def test_the_reports_of_a_system_made_before_partitions_move_under_their_slots(js: JetStreamContext) -> None:
    layout = Layout(prefix="legacy", partitions=2)
    await js.add_stream(layout.reports_stream_config())
    await js.add_consumer(
        layout.reports_stream,
        ConsumerConfig(
            durable_name="engine",
            filter_subject="legacy.report.>",
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
        ),
    )
    for run_id in ["old-1", "old.2"]:
        body = orjson.dumps({"kind": "workflow-timeout", "runID": run_id})
        await js.publish(f"legacy.report.{run_id}", body, headers={"Nats-Msg-Id": f"{run_id}.timeout"})
    layout = await ensure(js, layout)
    assert "engine" not in [info.name for info in await js.consumers_info(layout.reports_stream)]
    for run_id in ["old-1", "old.2"]:
        mine = layout.partition_consumer(partition_of(run_id, 2))
        sub = await js.pull_subscribe_bind(consumer=mine, stream=layout.reports_stream)
        msgs = await sub.fetch(2, timeout=2)
        assert [m.subject for m in msgs if orjson.loads(m.data)["runID"] == run_id] == [layout.report_subject(run_id)]
        await sub.unsubscribe()


async def test_reading_the_engines_of_a_system_no_engine_created_records_no_partition_count(
    js: JetStreamContext,
) -> None:
    """Were a reading to record the default, the first engine's `--partitions` would be ignored."""
    layout = Layout(prefix="unmade", partitions=16)
    await js.create_key_value(layout.leases_kv_config())
    assert (await read_engines(js, layout)).partition_count == 0
    assert await recorded_partitions(js, layout) is None
    assert (await ensure(js, layout)).partitions == 16
    assert (await read_engines(js, layout)).partition_count == 16
