"""Following one run from its history stream: its commits so far, then each one as it lands.

Reading the log itself (not the API's view) is what keeps following a run O(events): each commit is
folded once into a local `RunProgress`, and nothing is fetched twice. It needs read access to the history
stream (the `reader` role of docker/nats.conf); the run ends the iteration once it is terminal and every
commit stored so far has been read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Callable, Iterable

import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import ConsumerConfig, DeliverPolicy

from aether_es.adapters.nats.event_store import NatsEventStore
from aether_es.adapters.nats.layout import Layout, check_id
from aether_es.errors import ApiError, NotFoundError
from aether_es.events.envelope import Commit
from aether_es.ports.event_store import StoredCommit
from aether_es.projections.run_progress import RunProgress, Transition

IDLE_HEARTBEAT = 5.0
"""Seconds between the server's heartbeats on a quiet run: how soon a lost consumer is noticed and remade."""

LOAD_BUDGET = 5.0
"""Seconds reading the history so far may be retried: a server that refuses it (no read access) or is away
gets an error this soon rather than after the event store's longer budget."""

CLOSED_CHECK = 1.0
"""Seconds between checks, on a quiet run, that the connection is still open."""

POLL_FIRST, POLL_MAX = 0.02, 0.5
"""Seconds between two reads of a run followed by polling: short after a change, growing while it is quiet."""

log = logging.getLogger(__name__)


async def follow_run(
    nc: Client, layout: Layout, run_id: str
) -> AsyncGenerator[tuple[RunProgress, list[Transition]], None]:
    """The run's progress after each batch of commits read, with the phase changes that batch made.

    The first step holds the whole history so far; the iteration ends after the step in which the run is
    terminal with nothing more stored. Raises NotFoundError for a run with no history.
    """
    store = NatsEventStore(nc, layout, retry_budget=LOAD_BUDGET)
    stored = await _load(store, layout, run_id, 0)
    if not stored:
        raise NotFoundError(f'workflow run "{run_id}" not found')
    progress = RunProgress()
    yield progress, _changes(progress, (s.commit for s in stored))
    if progress.state is not None and progress.state.terminal:
        return
    async with contextlib.aclosing(_later_commits(nc, layout, store, run_id, stored[-1].seq)) as batches:
        async for commits, caught_up in batches:
            yield progress, _changes(progress, commits)
            if caught_up and progress.state is not None and progress.state.terminal:
                return


async def _load(store: NatsEventStore, layout: Layout, run_id: str, after_seq: int) -> list[StoredCommit]:
    try:
        return await store.load(run_id, after_seq)
    except (nats.errors.Error, TimeoutError) as exc:
        raise _unreadable(run_id, layout, exc) from None


async def _later_commits(
    nc: Client, layout: Layout, store: NatsEventStore, run_id: str, after_seq: int
) -> AsyncGenerator[tuple[list[Commit], bool], None]:
    """The commits after `after_seq` in batches as they land, each saying whether it reaches the end of what
    is stored: pushed by an ordered consumer, or polled when the server will not make one more consumer (a
    stream holds a limited number, and a thousand followers would take them all)."""
    pending: list[Msg] = []
    arrived = asyncio.Event()

    async def on_msg(msg: Msg) -> None:
        pending.append(msg)
        arrived.set()

    try:
        sub = await nc.jetstream().subscribe(
            layout.run_subject(check_id("run id", run_id)),
            stream=layout.runs_stream,
            cb=on_msg,
            ordered_consumer=True,
            idle_heartbeat=IDLE_HEARTBEAT,
            config=ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=after_seq + 1),
            pending_msgs_limit=-1,
            pending_bytes_limit=-1,
        )
    except nats.js.errors.BadRequestError as exc:
        log.info("run %s: followed by polling its history (%s)", run_id, exc.description)
        async with contextlib.aclosing(_polled(nc, layout, store, run_id, after_seq)) as polled:
            async for step in polled:
                yield step
        return
    except (nats.js.errors.Error, nats.errors.Error, TimeoutError) as exc:
        raise _unreadable(run_id, layout, exc) from None
    try:
        while True:
            await _arrival(arrived, nc, run_id)
            arrived.clear()
            batch, pending[:] = pending[:], []
            yield [await store.decode(msg.data) for msg in batch], batch[-1].metadata.num_pending == 0
    finally:
        with contextlib.suppress(Exception):  # the server forgets a consumer whose client went away
            await sub.unsubscribe()


async def _polled(
    nc: Client, layout: Layout, store: NatsEventStore, run_id: str, after_seq: int
) -> AsyncGenerator[tuple[list[Commit], bool], None]:
    """The commits after `after_seq`, read again after a pause that grows while nothing comes."""
    pause = POLL_FIRST
    while True:
        _check_open(nc, run_id)
        stored = await _load(store, layout, run_id, after_seq)
        if stored:
            after_seq, pause = stored[-1].seq, POLL_FIRST
            yield [s.commit for s in stored], True
        else:
            await asyncio.sleep(pause)
            pause = min(2 * pause, POLL_MAX)


def _unreadable(run_id: str, layout: Layout, exc: BaseException) -> ApiError:
    return ApiError(
        "unavailable",
        f"aether: unavailable: cannot read the history of run {run_id} from {layout.runs_stream} "
        f"(following a run reads it): {str(exc) or type(exc).__name__}",
    )


def _check_open(nc: Client, run_id: str) -> None:
    """A connection that closed (a one-shot command does not reconnect) is an error, not a wait for ever."""
    if nc.is_closed:
        raise ApiError(
            "unavailable", f"aether: unavailable: the connection to NATS closed while following run {run_id}"
        )


async def _arrival(arrived: asyncio.Event, nc: Client, run_id: str) -> None:
    """Wait for the next commit, checking meanwhile that the connection is still open."""
    while not arrived.is_set():
        _check_open(nc, run_id)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(arrived.wait(), CLOSED_CHECK)


async def follow_until(
    nc: Client,
    layout: Layout,
    run_id: str,
    timeout: float | None,
    on_step: Callable[[RunProgress, list[Transition]], None] = lambda progress, transitions: None,
) -> RunProgress:
    """Follow the run, calling `on_step` after each batch, until it ends or `timeout` passes; where it is then."""
    progress: RunProgress | None = None
    with contextlib.suppress(TimeoutError):
        async with (
            asyncio.timeout(timeout),
            contextlib.aclosing(follow_run(nc, layout, run_id)) as steps,
        ):
            async for progress, transitions in steps:
                on_step(progress, transitions)
    if progress is None:
        raise ApiError("unavailable", f"aether: unavailable: the history of run {run_id} was not read in time")
    return progress


def _changes(progress: RunProgress, commits: Iterable[Commit]) -> list[Transition]:
    return [transition for commit in commits for transition in progress.apply(commit)]
