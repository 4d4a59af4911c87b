"""NatsEventStore against a real nats-server: OCC, idempotent retries, loads, summaries, crash recovery."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import pytest
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from aether_es.adapters.nats.event_store import NatsEventStore, _position
from aether_es.adapters.nats.layout import Layout, ensure
from aether_es.adapters.nats.server import EmbeddedNatsServer
from aether_es.events.catalogue import RunReady, RunStarted, RunSubmitted
from aether_es.events.envelope import Commit, Envelope
from aether_es.ports.event_store import ConcurrencyConflict, RunSummary


def commit(run_id: str, n: int, started: bool = False) -> Commit:
    event = RunStarted(started_at=f"2025-01-01T00:00:{n % 60:02d}Z") if started else RunReady()
    envelope = Envelope(
        event_id=f"{run_id}-{n}-0",
        run_id=run_id,
        time="2025-01-01T00:00:00Z",
        actor="test",
        causation_id="",
        event=event,
    )
    return Commit(commit_id=f"{run_id}-{n}", run_id=run_id, envelopes=(envelope,))


@pytest.fixture
async def store(js: JetStreamContext) -> NatsEventStore:
    layout = Layout()
    await ensure(js, layout)
    return NatsEventStore(js, layout)


async def test_append_and_load_round_trip(store: NatsEventStore) -> None:
    first = await store.append(commit("r1", 1, started=True), 0)
    second = await store.append(commit("r1", 2), first)
    loaded = await store.load("r1")
    assert [s.seq for s in loaded] == [first, second]
    assert loaded[0].commit == commit("r1", 1, started=True)
    assert await store.load("nobody") == []


async def test_two_writers_exactly_one_wins(store: NatsEventStore) -> None:
    base = await store.append(commit("r1", 0), 0)
    outcomes = await asyncio.gather(
        store.append(commit("r1", 1), base),
        store.append(commit("r1", 2), base),
        return_exceptions=True,
    )
    wins = [o for o in outcomes if isinstance(o, int)]
    conflicts = [o for o in outcomes if isinstance(o, ConcurrencyConflict)]
    assert len(wins) == 1 and len(conflicts) == 1
    assert [s.seq for s in await store.load("r1")] == [base, wins[0]]


async def test_new_run_conflicts_when_it_exists(store: NatsEventStore) -> None:
    await store.append(commit("r1", 1), 0)
    with pytest.raises(ConcurrencyConflict):
        await store.append(commit("r1", 2), 0)


async def test_retry_of_a_landed_append_returns_its_sequence(store: NatsEventStore) -> None:
    seq = await store.append(commit("r1", 1), 0)
    await store.append(commit("other", 1), 0)  # the stream moves on; the run subject does not
    assert await store.append(commit("r1", 1), 0) == seq
    later = await store.append(commit("r1", 2), seq)
    assert await store.append(commit("r1", 2), seq) == later
    assert len(await store.load("r1")) == 2


async def test_load_after_seq_and_across_batches(js: JetStreamContext) -> None:
    layout = Layout()
    await ensure(js, layout)
    store = NatsEventStore(js, layout, load_batch=7)  # force several direct-get batches
    seqs: list[int] = []
    last = 0
    for n in range(25):
        last = await store.append(commit("r1", n), last)
        seqs.append(last)
        await store.append(commit(f"noise{n}", 0), 0)
    assert [s.seq for s in await store.load("r1")] == seqs
    assert [s.seq for s in await store.load("r1", after_seq=seqs[9])] == seqs[10:]
    assert await store.load("r1", after_seq=seqs[-1]) == []


async def test_load_all_streams_everything_in_order(store: NatsEventStore) -> None:
    seqs: dict[str, int] = {}
    for n in range(30):
        run = f"r{n % 3}"
        seqs[run] = await store.append(commit(run, n), seqs.get(run, 0))
    everything = [s async for s in store.load_all()]
    assert [s.seq for s in everything] == list(range(1, 31))
    assert [s.commit.commit_id for s in everything][:3] == ["r0-0", "r1-1", "r2-2"]
    assert [s.seq for s in [s async for s in store.load_all(after_seq=25)]] == [26, 27, 28, 29, 30]


@pytest.mark.parametrize(
    "reply",
    [
        "$JS.ACK.AETHER_RUNS.c1.1.4567.12.1760000000000000000.89",
        "$JS.ACK.hub.ACCHASH.AETHER_RUNS.c1.1.4567.12.1760000000000000000.89.r4nd",
    ],
)
def test_position_reads_both_ack_subject_layouts(reply: str) -> None:
    assert _position(Msg(None, subject="aether.run.r1", reply=reply)) == (4567, 89)


async def test_load_all_of_empty_store(store: NatsEventStore) -> None:
    assert [s async for s in store.load_all()] == []


async def test_summaries_round_trip(store: NatsEventStore) -> None:
    assert await store.summaries() == []
    one = RunSummary(run_id="r1", name="wf", namespace="ns", phase="Running", created_at="2025-01-01T00:00:00Z")
    await store.put_summary(one)
    done = dataclasses.replace(one, phase="Succeeded", finished_at="2025-01-01T00:01:00Z")
    two = RunSummary(run_id="r2", name="wf2", namespace="ns", phase="Pending", created_at="x", cron_id="c1")
    await store.put_summary(two)
    await store.put_summary(done)
    assert sorted(await store.summaries(), key=lambda s: s.run_id) == [done, two]


async def test_oversized_commit_gets_a_clear_error(store: NatsEventStore) -> None:
    big = Envelope(
        event_id="e",
        run_id="r1",
        time="",
        actor="test",
        causation_id="",
        event=RunSubmitted(workflow={"blob": "x" * (9 * 1024 * 1024)}, created_at="2025-01-01T00:00:00Z"),
    )
    with pytest.raises(ValueError, match=r"commit big of run r1 is .* above the server's max payload"):
        await store.append(Commit(commit_id="big", run_id="r1", envelopes=(big,)), 0)


async def test_invalid_run_id_is_rejected(store: NatsEventStore) -> None:
    with pytest.raises(ValueError, match="run id 'a b'"):
        await store.append(commit("a b", 1), 0)


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
