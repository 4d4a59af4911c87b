"""The public event feed on a real nats-server, read by consumers written with plain nats-py.

The feed must hold exactly the history's events (same ids, types, bodies and count), in history order, through
projector restarts, re-publishes and a nats-server restart, and be replayable from any point.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nats
import orjson
import pytest
import pytest_asyncio
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy

from aether_es.adapters.nats.server import EmbeddedNatsServer
from aether_es.events.catalogue import SCHEMA_VERSION
from aether_es.events.codec import encode_commit, stored_data
from aether_es.events.schema import feed_schema
from aether_es.model import phases as ph
from aether_es.runtime.feed import CHECKPOINT_KEY, FeedProjector
from aether_es.runtime.stack import Stack, StackOptions, open_stack

END = {"RunFinished", "RunCancelled", "RunTimedOut", "RunErrored"}


def workflow(items: int) -> dict[str, Any]:
    """greet -> a loop of `items` echo tasks -> report: a few events per task, over many commits."""
    return {
        "apiVersion": "aether/v1",
        "kind": "Workflow",
        "metadata": {"name": "feed-probe"},
        "spec": {
            "entrypoint": "main",
            "templates": [
                {
                    "dag": {
                        "name": "main",
                        "tasks": [
                            {"name": "greet", "template": "say"},
                            {"name": "fan", "template": "each", "dependencies": ["greet"]},
                            {"name": "report", "template": "say", "dependencies": ["fan"]},
                        ],
                    }
                },
                {
                    "task": {
                        "name": "say",
                        "inputs": {"parameters": [{"name": "message", "value": "hi"}]},
                        "executor": {"type": "echo"},
                    }
                },
                {
                    "loop": {
                        "name": "each",
                        "items": list(range(items)),
                        "concurrency": 8,
                        "body": "item",
                        "arguments": {"parameters": [{"name": "n", "value": "{{iterator.item}}"}]},
                    }
                },
                {"task": {"name": "item", "executor": {"type": "echo"}}},
            ],
        },
    }


async def history(stack: Stack, run_id: str) -> list[dict[str, Any]]:
    """The run's events as the feed must carry them: from the history stream, in order, with their commit seq."""
    events = []
    for stored in await stack.store.load(run_id):
        for item in orjson.loads(encode_commit(stored.commit))["events"]:
            events.append({"id": item["id"], "type": item["data"]["type"], "seq": stored.seq, "data": item["data"]})
    return events


async def receive(js: JetStreamContext, subject: str, count: int, timeout: float = 20.0, **config: Any) -> list[Msg]:
    """`count` messages of `subject` from the feed, through a plain nats-py ordered consumer."""
    sub = await js.subscribe(
        subject, stream="AETHER_EVENTS", ordered_consumer=True, config=ConsumerConfig(**config) if config else None
    )
    try:
        return [await sub.next_msg(timeout) for _ in range(count)]
    finally:
        await sub.unsubscribe()


def body(msg: Msg) -> dict[str, Any]:
    value: dict[str, Any] = orjson.loads(msg.data)
    return value


def summary(bodies: list[dict[str, Any]]) -> list[tuple[str, str, int]]:
    return [(b["id"], b["type"], b["seq"]) for b in bodies]


@pytest_asyncio.fixture
async def plain(nats_server: EmbeddedNatsServer) -> AsyncIterator[Client]:
    """A consumer's own connection: plain nats-py, none of our code."""
    nc: Client = await nats.connect(nats_server.url, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
    try:
        yield nc
    finally:
        await nc.close()


async def test_a_plain_consumer_receives_every_event_of_the_run_in_order(
    nats_server: EmbeddedNatsServer, plain: Client, tmp_path: Path
) -> None:
    stack = await open_stack(StackOptions(nats_url=nats_server.url, state_dir=tmp_path, feed=True))
    try:
        run_id = await stack.engine.submit(workflow(20))
        sub = await plain.jetstream().subscribe(f"aether.events.{run_id}.>", ordered_consumer=True)
        received: list[Msg] = []
        while not received or body(received[-1])["type"] not in END:
            received.append(await sub.next_msg(20.0))
        await sub.unsubscribe()
        view = await stack.engine.wait(run_id, timeout=10)
        expected = await history(stack, run_id)
    finally:
        await stack.close()
    assert view["status"] == ph.SUCCEEDED
    bodies = [body(msg) for msg in received]
    assert summary(bodies) == [(e["id"], e["type"], e["seq"]) for e in expected]
    assert len(bodies) > 100
    schema = feed_schema()
    for msg, got, want in zip(received, bodies, expected, strict=True):
        assert msg.subject == f"aether.events.{run_id}.{want['type']}"
        assert msg.headers is not None and msg.headers["Nats-Msg-Id"] == want["id"]
        assert got["runID"] == run_id and got["v"] == SCHEMA_VERSION and stored_data(got["data"]) == want["data"]
        assert "taskRunID" in got["data"] or not got["type"].startswith("Task")  # the public spelling
        assert set(schema["required"]) <= set(got) <= set(schema["properties"])
        assert set(schema["properties"]) - set(schema["required"]) == {"reason"}  # only when a command gave one
        event_schema = schema["$defs"][got["type"]]
        assert set(event_schema["required"]) <= set(got["data"]) <= set(event_schema["properties"])
        assert got["time"] and got["actor"] and got["cause"]


async def test_consumers_filter_by_event_type_on_the_subject(
    nats_server: EmbeddedNatsServer, plain: Client, tmp_path: Path
) -> None:
    stack = await open_stack(StackOptions(nats_url=nats_server.url, state_dir=tmp_path, feed=True))
    try:
        runs = [await stack.engine.submit(workflow(5)) for _ in range(2)]
        for run_id in runs:
            await stack.engine.wait(run_id, timeout=20)
        expected = {run_id: [e for e in await history(stack, run_id) if e["type"] == "TaskFinished"] for run_id in runs}
        assert stack.feed is not None
        await stack.feed.caught_up(10)
    finally:
        await stack.close()
    total = sum(len(events) for events in expected.values())
    msgs = await receive(plain.jetstream(), "aether.events.*.TaskFinished", total)
    assert {msg.subject.rsplit(".", 1)[1] for msg in msgs} == {"TaskFinished"}
    for run_id in runs:
        got = [b["id"] for b in map(body, msgs) if b["runID"] == run_id]
        assert got == [e["id"] for e in expected[run_id]]
    with pytest.raises(nats.errors.TimeoutError):
        await receive(plain.jetstream(), "aether.events.*.TaskFinished", total + 1, timeout=0.5)


async def fill_history(url: str, tmp_path: Path, items: int) -> tuple[Stack, str, list[dict[str, Any]]]:
    """A finished run in the history, published by nobody yet (the stack's feed is off)."""
    stack = await open_stack(StackOptions(nats_url=url, state_dir=tmp_path, workers=4))
    run_id = await stack.engine.submit(workflow(items))
    await stack.engine.wait(run_id, timeout=30)
    return stack, run_id, await history(stack, run_id)


async def feed_contents(js: JetStreamContext) -> list[dict[str, Any]]:
    info = await js.stream_info("AETHER_EVENTS")
    return [body(msg) for msg in await receive(js, "aether.events.>", info.state.messages)]


async def test_a_restarted_projector_resumes_from_its_checkpoint_without_gaps_or_duplicates(
    nats_server: EmbeddedNatsServer, plain: Client, tmp_path: Path
) -> None:
    stack, _, expected = await fill_history(nats_server.url, tmp_path, 60)
    try:
        last = expected[-1]["seq"]
        first = FeedProjector(stack.connection, stack.layout, batch=4, chunk=7)
        await first.start()
        await first.wait_for(last // 2, 10)
        await first.stop()
        kv = await plain.jetstream().key_value("aether_feed")
        checkpoint = int((await kv.get(CHECKPOINT_KEY)).value or b"0")
        assert last // 2 <= checkpoint < last
        # As if it had crashed after publishing but before writing its checkpoint: resume from earlier.
        await kv.put(CHECKPOINT_KEY, str(checkpoint // 2).encode())

        second = FeedProjector(stack.connection, stack.layout, batch=4, chunk=7)
        await second.start()
        await second.caught_up(20)
        await second.stop()
        assert second.republished_batches >= 1
        assert second.published >= len([e for e in expected if e["seq"] > checkpoint // 2])
        assert int((await kv.get(CHECKPOINT_KEY)).value or b"0") == last
    finally:
        await stack.close()
    feed = await feed_contents(plain.jetstream())
    assert summary(feed) == [(e["id"], e["type"], e["seq"]) for e in expected]


async def test_the_feed_survives_a_nats_server_restart(
    nats_server: EmbeddedNatsServer, plain: Client, tmp_path: Path
) -> None:
    stack = await open_stack(StackOptions(nats_url=nats_server.url, state_dir=tmp_path, feed=True))
    try:
        run_id = await stack.engine.submit(workflow(80))
        for _ in range(400):
            if stack.feed is not None and (stack.feed.position or 0) > 20:
                break
            await asyncio.sleep(0.01)
        nats_server.kill()
        await asyncio.sleep(0.5)
        nats_server.start()
        view = await stack.engine.wait(run_id, timeout=40)
        assert stack.feed is not None
        await stack.feed.caught_up(20)  # whether or not its pull broke (it may have been idle), nothing is missing
        expected = await history(stack, run_id)
    finally:
        await stack.close()
    assert view["status"] == ph.SUCCEEDED
    feed = await feed_contents(plain.jetstream())
    assert summary(feed) == [(e["id"], e["type"], e["seq"]) for e in expected]


async def test_replay_from_an_earlier_point_gets_the_same_events(
    nats_server: EmbeddedNatsServer, plain: Client, tmp_path: Path
) -> None:
    stack, run_id, expected = await fill_history(nats_server.url, tmp_path, 10)
    try:
        projector = FeedProjector(stack.connection, stack.layout)
        await projector.start()
        await projector.caught_up(10)
        await projector.stop()
    finally:
        await stack.close()
    js = plain.jetstream()
    everything = await receive(js, "aether.events.>", len(expected))
    middle = len(expected) // 2
    start = everything[middle].metadata

    by_seq = await receive(
        js,
        "aether.events.>",
        len(expected) - middle,
        deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
        opt_start_seq=start.sequence.stream,
    )
    assert [body(m) for m in by_seq] == [body(m) for m in everything[middle:]]

    by_run = await receive(
        js,
        f"aether.events.{run_id}.>",
        len(expected) - middle,
        deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
        opt_start_seq=start.sequence.stream,
    )
    assert [m.data for m in by_run] == [m.data for m in by_seq]

    # From a moment: every message stored at or after it (the server's clock, in nanoseconds on the ack subject).
    moment_us = stored_ns(everything[middle]) // 1000
    later = [body(m) for m in everything if stored_ns(m) >= moment_us * 1000]
    by_time = await receive(
        js,
        "aether.events.>",
        len(later),
        deliver_policy=DeliverPolicy.BY_START_TIME,
        opt_start_time=datetime.fromtimestamp(moment_us / 1e6, UTC),
    )
    assert [body(m) for m in by_time] == later
    assert later[-(len(expected) - middle) :] == [body(m) for m in everything[middle:]]


def stored_ns(msg: Msg) -> int:
    return int(msg.reply.split(".")[7])
