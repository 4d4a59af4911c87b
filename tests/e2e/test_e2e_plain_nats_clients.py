"""A producer and a consumer that know nothing of aether_es but NATS: the API submits, the feed tells all."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest
from nats.aio.msg import Msg
from nats.js.api import DeliverPolicy

from aether_es.adapters.nats.server import EmbeddedNatsServer
from aether_es.api.service import ApiService, start_api
from aether_es.runtime.stack import Stack, StackOptions, open_stack

EXAMPLE = json.loads((Path(__file__).resolve().parents[2] / "examples" / "hello-pipeline.json").read_text())
RUN_ENDS = {"RunFinished", "RunCancelled", "RunTimedOut", "RunErrored"}


@pytest.fixture
async def served(nats_server: EmbeddedNatsServer, tmp_path: Path) -> AsyncIterator[tuple[Stack, ApiService]]:
    stack = await open_stack(StackOptions(nats_url=nats_server.url, state_dir=tmp_path, workers=4, feed=True))
    api = await start_api(stack)
    try:
        yield stack, api
    finally:
        await api.stop()
        await stack.close()


async def test_a_plain_producer_submits_and_a_plain_consumer_sees_every_event_in_order(
    nats_server: EmbeddedNatsServer, served: tuple[Stack, ApiService]
) -> None:
    stack, _ = served
    consumer = await nats.connect(nats_server.url)
    producer = await nats.connect(nats_server.url)
    try:
        js = consumer.jetstream()
        received: dict[str, list[dict[str, object]]] = {}
        ended: dict[str, asyncio.Event] = {}

        async def on_event(msg: Msg) -> None:
            event = json.loads(msg.data)
            run = str(event["runID"])
            received.setdefault(run, []).append(event)
            if event["type"] in RUN_ENDS:
                ended.setdefault(run, asyncio.Event()).set()

        # Subscribed before the run exists, from the start of the feed: nothing can be missed.
        sub = await js.subscribe("aether.events.>", cb=on_event, deliver_policy=DeliverPolicy.ALL)
        reply = await producer.request(
            "aether.api.v1.runs.submit", json.dumps({"document": EXAMPLE}).encode(), timeout=10
        )
        run_id = json.loads(reply.data)["runID"]
        await asyncio.wait_for(ended.setdefault(run_id, asyncio.Event()).wait(), 30)
        await sub.unsubscribe()

        history = [env for stored in await stack.store.load(run_id) for env in stored.commit.envelopes]
        events = received[run_id]
        assert [e["id"] for e in events] == [env.event_id for env in history]
        assert [e["type"] for e in events] == [env.type for env in history]
        assert events[-1]["type"] == "RunFinished" and events[-1]["data"]["status"] == "Succeeded"
        assert all(e["runID"] == run_id for e in events)
        seqs = [int(str(e["seq"])) for e in events]
        assert seqs == sorted(seqs)
    finally:
        await producer.close()
        await consumer.close()
