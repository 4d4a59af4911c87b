"""NatsEventStore against a real nats-server, beyond the shared contract (tests/contracts): loads across
direct-get batches, ack-subject parsing, the payload limit, crash recovery."""

from __future__ import annotations

import asyncio
import time

import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from aether_es.adapters.nats.event_store import NatsEventStore, _position
from aether_es.adapters.nats.layout import Layout, ensure
from aether_es.adapters.nats.server import EmbeddedNatsServer
from aether_es.events.catalogue import RunReady, RunSubmitted
from aether_es.events.envelope import Commit, Envelope
from aether_es.events.references import PayloadTooLarge
from aether_es.ports.event_store import ConcurrencyConflict


def commit(run_id: str, n: int) -> Commit:
    envelope = Envelope(
        event_id=f"{run_id}-{n}-0",
        run_id=run_id,
        time="2025-01-01T00:00:00Z",
        actor="test",
        causation_id="",
        event=RunReady(),
    )
    return Commit(commit_id=f"{run_id}-{n}", run_id=run_id, envelopes=(envelope,))


@pytest.fixture
async def store(js: JetStreamContext, nc: Client) -> NatsEventStore:
    layout = Layout()
    await ensure(js, layout)
    return NatsEventStore(nc, layout)


async def test_load_after_seq_and_across_batches(js: JetStreamContext, nc: Client) -> None:
    layout = Layout()
    await ensure(js, layout)
    store = NatsEventStore(nc, layout, load_batch=7)  # force several direct-get batches
    seqs: list[int] = []
    last = 0
    for n in range(25):
        last = await store.append(commit("r1", n), last)
        seqs.append(last)
        await store.append(commit(f"noise{n}", 0), 0)
    assert [s.seq for s in await store.load("r1")] == seqs
    assert [s.seq for s in await store.load("r1", after_seq=seqs[9])] == seqs[10:]
    assert await store.load("r1", after_seq=seqs[-1]) == []


@pytest.mark.parametrize(
    "reply",
    [
        "$JS.ACK.AETHER_RUNS.c1.1.4567.12.1760000000000000000.89",
        "$JS.ACK.hub.ACCHASH.AETHER_RUNS.c1.1.4567.12.1760000000000000000.89.r4nd",
    ],
)
def test_position_reads_both_ack_subject_layouts(reply: str) -> None:
    assert _position(Msg(None, subject="aether.run.r1", reply=reply)) == (4567, 89)


def submitted(event_id: str, blob_bytes: int) -> Envelope:
    return Envelope(
        event_id=event_id,
        run_id="r1",
        time="",
        actor="test",
        causation_id="",
        event=RunSubmitted(workflow={"blob": "x" * blob_bytes}, created_at="2025-01-01T00:00:00Z"),
    )


async def test_big_value_is_stored_by_reference_and_loaded_whole(js: JetStreamContext, store: NatsEventStore) -> None:
    big = Commit(commit_id="big", run_id="r1", envelopes=(submitted("e", 9 * 1024 * 1024),))
    seq = await store.append(big, 0)
    stored = (await js.get_msg(Layout().runs_stream, seq)).data or b""
    assert len(stored) < 1024 and b"$aetherRef" in stored
    assert [s.commit for s in await store.load("r1")] == [big]


async def test_commit_too_large_even_by_reference_gets_a_clear_error(store: NatsEventStore) -> None:
    under_inline = 250 * 1024  # each value stays inline, forty of them do not fit one message
    envelopes = tuple(submitted(f"e{n}", under_inline + n) for n in range(40))
    with pytest.raises(PayloadTooLarge, match=r"commit many of run r1 is .* above the server's max payload"):
        await store.append(Commit(commit_id="many", run_id="r1", envelopes=envelopes), 0)


async def test_kill_9_and_restart_on_same_store(
    nats_server: EmbeddedNatsServer, store: NatsEventStore, reconnected: asyncio.Event
) -> None:
    seq = 0
    for n in range(5):
        seq = await store.append(commit("r1", n), seq)
    reconnected.clear()
    nats_server.kill()
    loop = asyncio.get_running_loop()

    # Append while the server is down: the outcome is unknown until it is back, then it lands once.
    def restart_soon() -> None:
        time.sleep(0.5)
        nats_server.start()

    restarting = loop.run_in_executor(None, restart_soon)
    seq = await store.append(commit("r1", 5), seq)
    await restarting
    await asyncio.wait_for(reconnected.wait(), 10)
    seq = await store.append(commit("r1", 6), seq)
    loaded = await store.load("r1")
    assert [s.commit.commit_id for s in loaded] == [f"r1-{n}" for n in range(7)]
    assert loaded[-1].seq == seq
    with pytest.raises(ConcurrencyConflict):
        await store.append(commit("r1", 99), loaded[-2].seq)
