"""One contract for every `EventStore`: the in-memory one and the NATS JetStream one (real server).

Everything the engine relies on: optimistic concurrency, retried appends, ordering, loads after a sequence,
replay bounded by what was present, aggregate ids, purge and run summaries. The memory store's fault seams
are checked at the end.
"""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from nats.aio.client import Client

from aether_es.adapters.memory import MemoryEventStore
from aether_es.adapters.nats.event_store import NatsEventStore
from aether_es.adapters.nats.layout import Layout, ensure
from aether_es.events.catalogue import RunReady, RunStarted
from aether_es.events.envelope import Commit, Envelope
from aether_es.ports.event_store import ConcurrencyConflict, EventStore, RunSummary


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


@pytest.fixture(params=["memory", "nats"])
def server(request: pytest.FixtureRequest) -> Client | None:
    """A connection to a real server for the NATS store; None for the memory one."""
    return None if request.param == "memory" else request.getfixturevalue("nc")


@pytest.fixture
async def store(server: Client | None) -> EventStore:
    if server is None:
        return MemoryEventStore()
    layout = Layout()
    await ensure(server.jetstream(), layout)
    return NatsEventStore(server, layout)


async def test_append_and_load_round_trip(store: EventStore) -> None:
    first = await store.append(commit("r1", 1, started=True), 0)
    second = await store.append(commit("r1", 2), first)
    loaded = await store.load("r1")
    assert [s.seq for s in loaded] == [first, second]
    assert first < second
    assert loaded[0].commit == commit("r1", 1, started=True)
    assert await store.load("nobody") == []


async def test_two_writers_exactly_one_wins(store: EventStore) -> None:
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


async def test_a_stale_expected_sequence_conflicts(store: EventStore) -> None:
    first = await store.append(commit("r1", 1), 0)
    with pytest.raises(ConcurrencyConflict):
        await store.append(commit("r1", 2), 0)  # a new run that already exists
    second = await store.append(commit("r1", 2), first)
    with pytest.raises(ConcurrencyConflict):
        await store.append(commit("r1", 3), first)
    with pytest.raises(ConcurrencyConflict):
        await store.append(commit("r2", 1), second)  # expecting history of a run that has none
    assert [s.commit.commit_id for s in await store.load("r1")] == ["r1-1", "r1-2"]


async def test_retry_of_a_landed_append_returns_its_sequence(store: EventStore) -> None:
    seq = await store.append(commit("r1", 1), 0)
    await store.append(commit("other", 1), 0)  # the global sequence moves on; the run does not
    assert await store.append(commit("r1", 1), 0) == seq
    later = await store.append(commit("r1", 2), seq)
    assert await store.append(commit("r1", 2), seq) == later
    assert len(await store.load("r1")) == 2


async def test_a_retry_after_another_writer_conflicts_and_the_reload_shows_it(store: EventStore) -> None:
    seq = await store.append(commit("r1", 1), 0)
    await store.append(commit("r1", 2), seq)
    with pytest.raises(ConcurrencyConflict):
        await store.append(commit("r1", 1), 0)
    assert [s.commit.commit_id for s in await store.load("r1")] == ["r1-1", "r1-2"]


async def test_load_after_seq(store: EventStore) -> None:
    seqs: list[int] = []
    last = 0
    for n in range(12):
        last = await store.append(commit("r1", n), last)
        seqs.append(last)
        await store.append(commit(f"noise{n}", 0), 0)
    assert [s.seq for s in await store.load("r1")] == seqs
    assert [s.seq for s in await store.load("r1", after_seq=seqs[4])] == seqs[5:]
    assert [s.seq for s in await store.load("r1", after_seq=seqs[4] + 1)] == seqs[5:]  # another run's sequence
    assert await store.load("r1", after_seq=seqs[-1]) == []


async def test_load_all_streams_every_run_in_one_global_order(store: EventStore) -> None:
    seqs: dict[str, int] = {}
    for n in range(30):
        run = f"r{n % 3}"
        seqs[run] = await store.append(commit(run, n), seqs.get(run, 0))
    everything = [s async for s in store.load_all()]
    assert [s.seq for s in everything] == list(range(1, 31))
    assert [s.commit.commit_id for s in everything][:3] == ["r0-0", "r1-1", "r2-2"]
    assert everything[4].commit == commit("r1", 4)
    assert [s.seq for s in [s async for s in store.load_all(after_seq=25)]] == [26, 27, 28, 29, 30]
    assert [s async for s in store.load_all(after_seq=30)] == []


async def test_load_all_stops_at_the_last_commit_present_when_it_began(store: EventStore) -> None:
    last = 0
    for n in range(5):
        last = await store.append(commit("r1", n), last)
    replay = store.load_all()
    first = await anext(replay)
    last = await store.append(commit("r1", 5), last)
    await store.append(commit("r2", 0), 0)
    rest = [s async for s in replay]
    assert [s.commit.commit_id for s in [first, *rest]] == [f"r1-{n}" for n in range(5)]
    assert [s.seq async for s in store.load_all()][-2:] == [last, last + 1]


async def test_load_all_of_empty_store(store: EventStore) -> None:
    assert [s async for s in store.load_all()] == []


async def test_aggregate_ids_are_one_token_below_the_prefix(store: EventStore) -> None:
    assert await store.aggregate_ids("cron") == []
    for aggregate in ["cron.b", "cron.a", "cron.a.deeper", "cronx", "other.c", "cron"]:
        await store.append(commit(aggregate, 1), 0)
    assert await store.aggregate_ids("cron") == ["cron.a", "cron.b"]
    await store.purge("cron.a")
    assert await store.aggregate_ids("cron") == ["cron.b"]


async def test_purge_removes_one_history_and_the_run_can_start_again(store: EventStore) -> None:
    seq = await store.append(commit("r1", 1), 0)
    await store.append(commit("r1", 2), seq)
    kept = await store.append(commit("r2", 1), 0)
    await store.purge("r1")
    await store.purge("never-written")
    assert await store.load("r1") == []
    assert [(s.seq, s.commit.commit_id) async for s in store.load_all()] == [(kept, "r2-1")]
    again = await store.append(commit("r1", 3), 0)
    assert again > kept
    assert [s.seq for s in await store.load("r1")] == [again]


async def test_summaries_put_replace_delete(store: EventStore) -> None:
    assert await store.summaries() == []
    one = RunSummary(run_id="r1", name="wf", namespace="ns", phase="Running", created_at="2025-01-01T00:00:00Z")
    await store.put_summary(one)
    done = dataclasses.replace(one, phase="Succeeded", finished_at="2025-01-01T00:01:00Z", labels={"team": "data"})
    two = RunSummary(run_id="r2", name="wf2", namespace="ns", phase="Pending", created_at="x", cron_id="c1")
    await store.put_summary(two)
    await store.put_summary(done)
    assert sorted(await store.summaries(), key=lambda s: s.run_id) == [done, two]
    await store.delete_summary("r2")
    await store.delete_summary("never-written")
    assert await store.summaries() == [done]
    (read,) = await store.summaries()
    read.labels["team"] = "changed"  # what a caller does with a summary it read is not stored
    assert (await store.summaries())[0].labels == {"team": "data"}


async def test_invalid_ids_are_rejected(store: EventStore) -> None:
    with pytest.raises(ValueError, match="run id 'a b'"):
        await store.append(commit("a b", 1), 0)
    with pytest.raises(ValueError, match="run id 'a b'"):
        await store.put_summary(RunSummary(run_id="a b", name="", namespace="", phase="", created_at=""))


# --- the memory store's fault seams ------------------------------------------------------------------


async def test_memory_append_can_fail_before_or_after_landing() -> None:
    store = MemoryEventStore()
    store.fail_next("append", error=TimeoutError("no answer"))
    with pytest.raises(TimeoutError, match="no answer"):
        await store.append(commit("r1", 1), 0)
    assert await store.load("r1") == []

    store.fail_next("append", landed=True)
    with pytest.raises(ConnectionError, match="injected failure of append"):
        await store.append(commit("r1", 1), 0)
    (landed,) = await store.load("r1")
    assert await store.append(commit("r1", 1), 0) == landed.seq  # the caller's retry finds it


async def test_memory_faults_count_down_and_can_pick_their_calls() -> None:
    store = MemoryEventStore()
    store.fail_next("append", 2, ConcurrencyConflict("refused"), match=lambda c: c.run_id == "r1")
    assert await store.append(commit("r2", 1), 0) == 1  # not matched: goes through
    for _ in range(2):
        with pytest.raises(ConcurrencyConflict, match="refused"):
            await store.append(commit("r1", 1), 0)
    assert await store.append(commit("r1", 1), 0) == 2

    store.fail_next("load", error=OSError("disk"))
    with pytest.raises(OSError, match="disk"):
        await store.load("r1")
    assert len(await store.load("r1")) == 1
    store.fail_next("load_all")
    with pytest.raises(ConnectionError):
        [s async for s in store.load_all()]
    with pytest.raises(ValueError, match="cannot fail 'dispatch'"):
        store.fail_next("dispatch")
