"""Rebuilding run views from the event log, and checking them against the views an engine serves.

A rebuilt view that differs from the live one means the fold or the log is not what the engine used:
that is a bug to see, so verification reports every differing JSON path, not just whether they differ.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aether_es.ports.event_store import EventStore
from aether_es.projections.diff import Difference, differences
from aether_es.projections.run_state import RunState, apply, fold, start

NOT_RUNS = ("cron.", "retention.")
"""Aggregates in the log that are not workflow runs: CronWorkflows and retention records."""

OnRun = Callable[[RunState], Awaitable[None]]
Live = Callable[[str], Awaitable[dict[str, Any]]]


@dataclass
class Replayed:
    states: dict[str, RunState] = field(default_factory=dict)
    """The rebuilt runs (`replay_runs`); `replay_all` hands each to its caller instead of keeping it."""
    events: int = 0
    seconds: float = 0.0
    runs: int = 0

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


async def replay_all(store: EventStore, on_run: OnRun | None = None) -> Replayed:
    """Every workflow run folded from one ordered pass over the whole log (other aggregates are counted only).

    Memory holds only the runs in flight at the current point of the log, not every view: a run is handed to
    `on_run` and dropped once it is terminal, the rest at the end. A finished run that the log takes up again
    (a retry reopens it) is rebuilt from its own history, whose commits the pass then skips; it is handed over
    again when it ends. `seconds` leaves out the time spent in `on_run`.
    """
    replayed = Replayed()
    folding: dict[str, RunState] = {}
    finished: set[str] = set()
    handing = 0.0

    async def hand_over(state: RunState) -> None:
        nonlocal handing
        if on_run is not None:
            began = time.perf_counter()
            await on_run(state)
            handing += time.perf_counter() - began

    began = time.perf_counter()
    async for stored in store.load_all():
        commit = stored.commit
        replayed.events += len(commit.envelopes)
        run_id = commit.run_id
        if run_id.startswith(NOT_RUNS):
            continue
        state = folding.get(run_id)
        if state is None and run_id in finished:
            finished.discard(run_id)
            folding[run_id] = state = (await replay_runs(store, [run_id])).states[run_id]
        if state is not None and stored.seq <= state.seq:
            continue  # folded already, by the rebuild of a reopened run
        for env in commit.envelopes:
            if state is None:
                folding[run_id] = state = start(env)
                replayed.runs += 1
            else:
                apply(state, env)
        if state is None:
            continue
        state.seq = stored.seq
        if state.terminal:
            del folding[run_id]
            finished.add(run_id)
            await hand_over(state)
    for state in folding.values():
        await hand_over(state)
    replayed.seconds = time.perf_counter() - began - handing
    return replayed


async def replay_runs(store: EventStore, run_ids: list[str]) -> Replayed:
    """The given runs folded from their own histories; an unknown id is a LookupError naming it."""
    replayed = Replayed()
    began = time.perf_counter()
    for run_id in run_ids:
        commits = await store.load(run_id)
        if not commits:
            raise LookupError(f'workflow run "{run_id}" not found in the event log')
        envelopes = [env for stored in commits for env in stored.commit.envelopes]
        state = fold(envelopes)
        state.seq = commits[-1].seq
        replayed.states[run_id] = state
        replayed.events += len(envelopes)
    replayed.runs = len(replayed.states)
    replayed.seconds = time.perf_counter() - began
    return replayed


async def verify(store: EventStore, replayed: Replayed, live: Live, attempts: int = 5) -> dict[str, list[Difference]]:
    """Differences between each rebuilt view and the live one, per run (runs that agree are left out)."""
    found: dict[str, list[Difference]] = {}
    for run_id, state in replayed.states.items():
        diff = await verify_run(store, state, live, attempts)
        if diff:
            found[run_id] = diff
    return found


async def verify_run(store: EventStore, state: RunState, live: Live, attempts: int = 5) -> list[Difference]:
    """Differences between one rebuilt view and the live one.

    A run still moving may change between reading the log and asking the engine: such a run is read
    again, up to `attempts` times, before its differences count.
    """
    run_id = state.run_id
    diff: list[Difference] = []
    for attempt in range(attempts):
        view = await live(run_id)
        diff = list(differences(view, state.to_dict()))
        if not diff or (view.get("status") == state.phase and state.terminal) or attempt == attempts - 1:
            break
        await asyncio.sleep(0.1 * (attempt + 1))
        state = (await replay_runs(store, [run_id])).states[run_id]
    return diff
