"""A run's history and its graph as it was after any event: what the run page's timeline and slider show.

Both come from the run's history (as `aether-es history` and `get --at` do), read once per request and
folded in a worker thread, so a long history never holds the event loop the engine shares.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from aether_es.adapters.nats.event_store import NatsEventStore
from aether_es.adapters.nats.layout import check_id
from aether_es.api.service import invalid
from aether_es.errors import NotFoundError
from aether_es.graph.layout import layout_run
from aether_es.history.timeline import Entry, describe, entries, state_at
from aether_es.projections.run_state import RunState


def graph_of(state: RunState) -> dict[str, Any]:
    """The run's picture (`aether_es.graph`) with each node's phase, and the run's own phase, message and
    progress."""
    graph = layout_run(state).to_json()
    graph["run"] = {"status": state.phase, "message": state.message, "progress": str(state.progress())}
    return graph


def timeline_of(timeline: list[Entry]) -> list[dict[str, Any]]:
    """Every event with its number, time, actor, cause, reason, task run, attempt, phase and start time (a
    started attempt's, on the worker's clock), and what it says."""
    names: dict[str, str] = {}
    out = []
    for entry in timeline:
        envelope = entry.envelope
        event = envelope.event
        out.append(
            {
                "number": entry.number,
                "time": envelope.time,
                "actor": envelope.actor,
                "cause": envelope.causation_id,
                "reason": envelope.reason,
                "type": envelope.type,
                "taskRunID": getattr(event, "task_id", ""),
                "attempt": getattr(event, "attempt", 0),
                "phase": getattr(event, "phase", ""),
                "startedAt": getattr(event, "started_at", ""),
                "what": describe(envelope, names),
            }
        )
    return out


class RunViews:
    """`GET /api/runs/{run}/history` and `GET /api/runs/{run}/graph[?at=N]`."""

    def __init__(self, store: NatsEventStore) -> None:
        self.store = store

    async def _timeline(self, request: web.Request) -> list[Entry]:
        run_id = request.match_info["run"]
        try:
            check_id("runID", run_id)
        except ValueError as exc:
            raise invalid("runID", str(exc)) from None
        commits = await self.store.load(run_id)
        if not commits:
            raise NotFoundError(f'workflow run "{run_id}" not found')
        return entries(commits)

    async def history(self, request: web.Request) -> dict[str, Any]:
        timeline = await self._timeline(request)
        return {"events": await asyncio.to_thread(timeline_of, timeline)}

    async def graph(self, request: web.Request) -> dict[str, Any]:
        at = request.query.get("at")
        if at is not None and not at.isdigit():
            raise invalid("at", f"at: {at!r} is not an event number (1 for the first event)")
        timeline = await self._timeline(request)

        def build() -> dict[str, Any]:
            try:
                state = state_at(timeline, event=int(at) if at is not None else None)
            except ValueError as exc:
                raise invalid("at", f"at: {exc}") from None
            return graph_of(state)

        return await asyncio.to_thread(build)
