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


@dataclass
class Replayed:
    states: dict[str, RunState] = field(default_factory=dict)
    events: int = 0
    seconds: float = 0.0

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


async def replay_all(store: EventStore) -> Replayed:
    """Every workflow run folded from one ordered pass over the whole log (other aggregates are counted only)."""
    replayed = Replayed()
    began = time.perf_counter()
    async for stored in store.load_all():
        for env in stored.commit.envelopes:
            replayed.events += 1
            if env.run_id.startswith(NOT_RUNS):
                continue
            state = replayed.states.get(env.run_id)
            if state is None:
                replayed.states[env.run_id] = state = start(env)
            else:
                apply(state, env)
            state.seq = stored.seq
    replayed.seconds = time.perf_counter() - began
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
    replayed.seconds = time.perf_counter() - began
    return replayed


async def verify(
    store: EventStore,
    replayed: Replayed,
    live: Callable[[str], Awaitable[dict[str, Any]]],
    attempts: int = 5,
) -> dict[str, list[Difference]]:
    """Differences between each rebuilt view and the live one, per run (runs that agree are left out).

    A run still moving may change between reading the log and asking the engine: such a run is read
    again, up to `attempts` times, before its differences count.
    """
    found: dict[str, list[Difference]] = {}
    for run_id, state in replayed.states.items():
        for attempt in range(attempts):
            view = await live(run_id)
            diff = list(differences(view, state.to_dict()))
            if not diff or (view.get("status") == state.phase and state.terminal) or attempt == attempts - 1:
                break
            await asyncio.sleep(0.1 * (attempt + 1))
            state = (await replay_runs(store, [run_id])).states[run_id]
        if diff:
            found[run_id] = diff
    return found
