"""Server-Sent Events: a run as it moves, and the runs list's changes.

A run page's stream follows the run's history as `watch` does (`run_follower`): its first message is the
painted graph, then the `status` of the drawn task runs as they change, a new graph (at most once a second)
when task runs appear, and `end` once the run has ended. The runs list's stream hears the event feed's
run-level events and says which run changed; the page reads its list again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any, TypeVar, cast

import orjson
from aiohttp import web
from nats.aio.client import Client as Nats
from nats.aio.msg import Msg

from aether_es.adapters.nats.layout import Layout, check_id
from aether_es.adapters.nats.run_follower import follow_run
from aether_es.adapters.nats.task_logs import read_logs
from aether_es.errors import AetherError
from aether_es.http.run_views import graph_of, run_summary
from aether_es.projections.run_progress import RunProgress, Transition
from aether_es.projections.run_state import RunState

log = logging.getLogger("aether_es.http")

HEARTBEAT = 15.0
"""Seconds between two comments on a quiet stream: a browser that left is noticed by the failed write."""
GRAPH_EVERY = 1.0
"""At most one new graph a second while task runs appear: laying out costs the run's size."""
LIST_EVENTS = (
    "RunSubmitted",
    "RunStarted",
    "RunFinished",
    "RunCancelled",
    "RunTimedOut",
    "RunErrored",
    "RunReopened",
    "TaskSuspended",
    "TaskResumed",
)
"""The feed events that change a row of the runs list (its phase, or its count of suspended tasks)."""


class Streams:
    """The live endpoints of one server; `close` ends every open stream (the server is stopping)."""

    def __init__(self, nc: Nats, layout: Layout) -> None:
        self.nc = nc
        self.layout = layout
        self._open: set[asyncio.Task[Any]] = set()

    def close(self) -> None:
        for task in self._open:
            task.cancel()

    @contextlib.asynccontextmanager
    async def _stream(self, request: web.Request) -> AsyncIterator[web.StreamResponse]:
        headers = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        response = web.StreamResponse(headers=headers)  # the last header: a proxy must not hold events back
        await response.prepare(request)
        task = asyncio.current_task()
        assert task is not None
        self._open.add(task)
        try:
            yield response
        except (ConnectionResetError, asyncio.CancelledError):
            pass  # the browser left, or the server stops: nothing to answer
        finally:
            self._open.discard(task)

    async def run(self, request: web.Request) -> web.StreamResponse:
        """`GET /api/runs/{run}/live`."""
        run_id = request.match_info["run"]
        async with self._stream(request) as response:
            try:
                check_id("runID", run_id)
            except ValueError as exc:
                await _send(response, "failure", {"message": str(exc)})
                return response
            async with contextlib.aclosing(follow_run(self.nc, self.layout, run_id)) as steps:
                await _follow(response, steps)
        return response

    async def logs(self, request: web.Request) -> web.StreamResponse:
        """`GET /api/runs/{run}/tasks/{task}/logs`: `line` with each log record of the task run, those stored
        so far then each new one, until the browser leaves."""
        run_id, task_run_id = request.match_info["run"], request.match_info["task"]
        async with self._stream(request) as response:
            try:
                check_id("runID", run_id)
                check_id("taskRunID", task_run_id)
            except ValueError as exc:
                await _send(response, "failure", {"message": str(exc)})
                return response
            lines = read_logs(self.nc.jetstream(), self.layout, run_id, task_run_id, follow=True)
            async with contextlib.aclosing(_ticking(lines, lambda: HEARTBEAT)) as ticks:
                async for tick in ticks:
                    if isinstance(tick, _Quiet):
                        await response.write(b": quiet\n\n")
                    else:
                        await _send(response, "line", tick)
        return response

    async def runs(self, request: web.Request) -> web.StreamResponse:
        """`GET /api/runs/live`: `changed` with the run id of each run-level event of the feed."""
        changed: asyncio.Queue[str] = asyncio.Queue(maxsize=1000)

        async def heard(msg: Msg) -> None:
            # The subject is <prefix>.events.<run id>.<type>; a full queue already holds a refresh.
            with contextlib.suppress(asyncio.QueueFull):
                changed.put_nowait(msg.subject.split(".")[-2])

        prefix = self.layout.event_subjects.removesuffix(">")
        subscriptions = [await self.nc.subscribe(f"{prefix}*.{kind}", cb=heard) for kind in LIST_EVENTS]
        try:
            async with self._stream(request) as response:
                while True:
                    try:
                        run_id = await asyncio.wait_for(changed.get(), HEARTBEAT)
                    except TimeoutError:
                        await response.write(b": quiet\n\n")
                        continue
                    await _send(response, "changed", {"runID": run_id})
        finally:
            for subscription in subscriptions:
                with contextlib.suppress(Exception):
                    await subscription.unsubscribe()
        return response


async def _send(response: web.StreamResponse, event: str, data: Any) -> None:
    await response.write(b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n")


_Step = tuple[RunProgress, list[Transition]]
T = TypeVar("T")


class _Quiet:
    """What `_ticking` yields when its source has been quiet for a while."""


QUIET = _Quiet()


async def _ticking(items: AsyncIterator[T], wait: Callable[[], float]) -> AsyncGenerator[T | _Quiet, None]:
    """`items` as they come, and `QUIET` whenever `wait()` seconds pass without one, so the caller can write
    to a browser that may have left (the only way to notice) while its source is idle. Ends when `items` ends;
    raises what it raised."""
    queue: asyncio.Queue[tuple[T | None, Exception | None, bool]] = asyncio.Queue()

    async def pump() -> None:
        try:
            async for item in items:
                await queue.put((item, None, False))
            await queue.put((None, None, True))
        except Exception as exc:
            await queue.put((None, exc, True))

    reader = asyncio.create_task(pump())
    try:
        while True:
            try:
                item, failure, ended = await asyncio.wait_for(queue.get(), wait())
            except TimeoutError:
                yield QUIET
                continue
            if failure is not None:
                raise failure
            if ended:
                return
            yield cast(T, item)
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader


async def _follow(response: web.StreamResponse, steps: AsyncIterator[_Step]) -> None:
    """Relay a run's steps: `graph`, `status` and, when it has ended, `end` (or `failure` saying why not)."""
    painter = _Painter()
    try:
        async with contextlib.aclosing(_ticking(steps, lambda: GRAPH_EVERY if painter.owed else HEARTBEAT)) as ticks:
            async for tick in ticks:
                if isinstance(tick, _Quiet):
                    await (painter.flush(response) if painter.owed else response.write(b": quiet\n\n"))
                else:
                    await painter.step(response, *tick)
    except (ConnectionResetError, asyncio.CancelledError):
        raise
    except Exception as exc:
        if not isinstance(exc, AetherError):
            log.warning("web: following a run failed: %r", exc)
        await _send(response, "failure", {"message": str(exc) or type(exc).__name__})
        return
    await painter.flush(response, force=True)
    await _send(response, "end", painter.run())


class _Painter:
    """What the browser has been sent: the task runs its graph knows, and phase changes not yet sent."""

    def __init__(self) -> None:
        self.state: RunState | None = None
        self.seen: set[str] = set()
        self.drawn: set[str] = set()
        self.owed = False
        self.changes: dict[str, str] = {}
        self.last = 0.0

    def run(self) -> dict[str, Any]:
        assert self.state is not None
        return run_summary(self.state)

    async def step(self, response: web.StreamResponse, progress: RunProgress, transitions: list[Transition]) -> None:
        self.state = progress.state
        for transition in transitions:
            task_id = transition.task.id
            if task_id in self.drawn:
                self.changes[task_id] = transition.phase
            elif task_id not in self.seen:
                self.owed = True
        if self.owed:
            await self.flush(response)
        if self.changes:
            await _send(response, "status", {"tasks": self.changes, "run": self.run()})
            self.changes = {}

    async def flush(self, response: web.StreamResponse, *, force: bool = False) -> None:
        """Send the graph owed, unless one went out less than `GRAPH_EVERY` ago (`force`: regardless)."""
        now = time.monotonic()
        if self.state is None or not self.owed or (not force and now - self.last < GRAPH_EVERY):
            return
        graph = graph_of(self.state)
        self.drawn = {node["taskRunID"] for node in graph["nodes"] if "taskRunID" in node}
        self.seen = set(self.state.order)
        self.owed, self.changes, self.last = False, {}, now
        await _send(response, "graph", graph)
