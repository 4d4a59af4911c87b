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
from aether_es.runtime.engine import Engine


def run_summary(state: RunState) -> dict[str, Any]:
    """What a run page shows of the run itself: its `status` (phase), message and progress."""
    return {"status": state.phase, "message": state.message, "progress": str(state.progress())}


def graph_of(state: RunState) -> dict[str, Any]:
    """The run's picture (`aether_es.graph`) with each node's `status`, and the run's `run_summary`."""
    graph = layout_run(state).to_json()
    graph["run"] = run_summary(state)
    return graph


def timeline_of(timeline: list[Entry], names: dict[str, str]) -> list[dict[str, Any]]:
    """Every event with its number, time, actor, cause, reason, task run, attempt, status and start time (a
    started attempt's, on the worker's clock), and what it says; `names` holds the names of the task runs
    created before the first (and gains those created in `timeline`)."""
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
                "status": getattr(event, "phase", ""),
                "startedAt": getattr(event, "started_at", ""),
                "what": describe(envelope, names),
            }
        )
    return out


def _names(state: RunState) -> dict[str, str]:
    return {task.id: task.task_name for task in state.tasks.values()}


class RunViews:
    """`GET /api/runs/{run}/history[?after=SEQ]` and `GET /api/runs/{run}/graph[?at=N]`."""

    def __init__(self, store: NatsEventStore, engine: Engine) -> None:
        self.store = store
        self.engine = engine

    async def _timeline(self, run_id: str, after: int = 0) -> list[Entry]:
        commits = await self.store.load(run_id, after)
        if not commits and not after:
            raise NotFoundError(f'workflow run "{run_id}" not found')
        return entries(commits)

    async def history(self, request: web.Request) -> dict[str, Any]:
        """The events of the commits after stream sequence `after` (all by default), and the sequence to ask
        after next: a page that follows a run reads each commit once."""
        run_id = _run_id(request)
        after = _number(request, "after", "a history stream sequence (0 for the whole history)")
        timeline = await self._timeline(run_id, after or 0)
        names = await self.engine.read(run_id, _names) if after else {}
        events = await asyncio.to_thread(timeline_of, timeline, names)
        return {"events": events, "seq": timeline[-1].seq if timeline else after or 0}

    async def graph(self, request: web.Request) -> dict[str, Any]:
        """The graph now (from the engine's state of the run), or right after event `at` (folded afresh)."""
        run_id = _run_id(request)
        at = _number(request, "at", "an event number (1 for the first event)")
        if at is None:
            return await self.engine.read(run_id, graph_of)
        timeline = await self._timeline(run_id)

        def build() -> dict[str, Any]:
            try:
                return graph_of(state_at(timeline, event=at))
            except ValueError as exc:
                raise invalid("at", f"at: {exc}") from None

        return await asyncio.to_thread(build)


def _run_id(request: web.Request) -> str:
    run_id = request.match_info["run"]
    try:
        return check_id("runID", run_id)
    except ValueError as exc:
        raise invalid("runID", str(exc)) from None


def _number(request: web.Request, name: str, what: str) -> int | None:
    value = request.query.get(name)
    if value is None:
        return None
    if not value.isdigit():
        raise invalid(name, f"{name}: {value!r} is not {what}")
    return int(value)
