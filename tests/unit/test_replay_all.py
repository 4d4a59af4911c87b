"""Replaying the whole log keeps only the runs in flight, and still rebuilds every run as its own history does."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

from aether_es.adapters.memory.event_store import MemoryEventStore
from aether_es.events import catalogue as ev
from aether_es.events.envelope import commit_of, make_envelopes
from aether_es.events.values import Metrics
from aether_es.history.replay import replay_all, replay_runs
from aether_es.model import phases as ph
from aether_es.ports.event_store import StoredCommit
from aether_es.projections.run_state import RunState

DOCUMENT = json.loads((Path(__file__).parents[2] / "examples" / "hello-pipeline.json").read_text())
T0 = "2026-01-01T00:00:00.000Z"


class Counting(MemoryEventStore):
    """A store that counts the commits `load_all` has handed out so far."""

    def __init__(self) -> None:
        super().__init__()
        self.read = 0
        self.numbers: dict[str, int] = {}

    async def load_all(self, after_seq: int = 0) -> AsyncIterator[StoredCommit]:
        async for stored in super().load_all(after_seq):
            self.read += 1
            yield stored

    async def write(self, run_id: str, *events: ev.Event) -> None:
        first = self.numbers.get(run_id, 0) + 1
        self.numbers[run_id] = first + len(events) - 1
        commit = commit_of(run_id, make_envelopes(run_id, first, list(events), T0, "test", f"test:{first}"))
        last = [s.seq for s in await self.load(run_id)]
        await self.append(commit, last[-1] if last else 0)


def finished(phase: str = ph.SUCCEEDED) -> ev.RunFinished:
    return ev.RunFinished(phase=phase, metrics=Metrics(started_at=T0, finished_at=T0))


async def test_a_finished_run_is_handed_over_at_once_and_not_kept() -> None:
    store = Counting()
    await store.write("a", ev.RunSubmitted(workflow=DOCUMENT, created_at=T0))
    await store.write("b", ev.RunSubmitted(workflow=DOCUMENT, created_at=T0))
    await store.write("a", ev.RunReady(), finished())
    await store.write("b", ev.RunReady())
    handed: list[tuple[str, int]] = []

    async def on_run(state: RunState) -> None:
        handed.append((state.run_id, store.read))

    replayed = await replay_all(store, on_run)
    # a ends at the third commit; b, still running, only when the log does.
    assert handed == [("a", 3), ("b", 4)]
    assert (replayed.runs, replayed.events, replayed.states) == (2, 5, {})


async def test_a_reopened_run_is_rebuilt_from_its_own_history() -> None:
    store = Counting()
    await store.write("a", ev.RunSubmitted(workflow=DOCUMENT, created_at=T0), finished(ph.FAILED))
    await store.write("b", ev.RunSubmitted(workflow=DOCUMENT, created_at=T0))
    await store.write("a", ev.RunReopened())
    await store.write("b", finished())
    await store.write("a", finished())
    states: list[RunState] = []

    async def on_run(state: RunState) -> None:
        states.append(state)

    replayed = await replay_all(store, on_run)
    assert [(s.run_id, s.phase) for s in states] == [("a", ph.FAILED), ("b", ph.SUCCEEDED), ("a", ph.SUCCEEDED)]
    whole = (await replay_runs(store, ["a"])).states["a"]
    assert states[-1].to_dict() == whole.to_dict() and states[-1].events == whole.events == 4
    assert (replayed.runs, replayed.events) == (2, 6)
