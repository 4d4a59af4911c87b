"""The run follower on a real server: pushed by an ordered consumer, or polled when the stream has no room
for one more consumer."""

from __future__ import annotations

import asyncio
import dataclasses
import logging

import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from aether_es.adapters.nats.layout import Layout
from aether_es.adapters.nats.run_follower import follow_until
from aether_es.events import catalogue as ev
from aether_es.events.codec import encode_commit
from aether_es.events.envelope import commit_of, make_envelopes
from aether_es.events.values import Metrics
from aether_es.model import phases as ph

MOMENT = "2026-01-01T00:00:00Z"


async def _append(js: JetStreamContext, layout: Layout, number: int, event: ev.Event) -> None:
    envelopes = make_envelopes("r1", number, [event], MOMENT, "engine", f"test:{number}")
    await js.publish(layout.run_subject("r1"), encode_commit(commit_of("r1", envelopes)))


async def _follow_while_it_finishes(nc: Client, layout: Layout) -> list[str]:
    """Follow r1 from its submission; its end lands while it is followed. The phases each step saw."""
    js = nc.jetstream()
    await _append(js, layout, 1, ev.RunSubmitted(workflow={"metadata": {"name": "followed"}}, created_at=MOMENT))
    seen: list[str] = []
    following = asyncio.create_task(
        follow_until(nc, layout, "r1", timeout=20, on_step=lambda progress, _: seen.append(progress.state.phase))  # type: ignore[union-attr]
    )
    while not seen:
        await asyncio.sleep(0.01)
    await _append(js, layout, 2, ev.RunStarted(started_at=MOMENT))
    await asyncio.sleep(0.2)
    await _append(js, layout, 3, ev.RunFinished(phase=ph.SUCCEEDED, metrics=Metrics(started_at=MOMENT)))
    progress = await following
    assert progress.state is not None and progress.state.phase == ph.SUCCEEDED
    return seen


async def test_a_follower_is_pushed_each_commit(js: JetStreamContext, nc: Client) -> None:
    layout = Layout()
    await js.add_stream(layout.runs_stream_config())
    seen = await _follow_while_it_finishes(nc, layout)
    assert seen[0] == ph.CREATED and seen[-1] == ph.SUCCEEDED and ph.RUNNING in seen


async def test_a_follower_polls_when_the_stream_has_no_room_for_its_consumer(
    js: JetStreamContext, nc: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="aether_es.adapters.nats.run_follower")
    layout = Layout()
    await js.add_stream(dataclasses.replace(layout.runs_stream_config(), max_consumers=1))

    async def ignore(msg: Msg) -> None:
        pass

    taken = await js.subscribe(layout.run_subjects, stream=layout.runs_stream, cb=ignore, ordered_consumer=True)
    try:
        seen = await _follow_while_it_finishes(nc, layout)
    finally:
        await taken.unsubscribe()
    assert seen[0] == ph.CREATED and seen[-1] == ph.SUCCEEDED and ph.RUNNING in seen
    assert "r1: followed by polling its history (maximum consumers limit reached)" in caplog.text
