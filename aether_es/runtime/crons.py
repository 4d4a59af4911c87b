"""CronWorkflows: stored as their own event histories, scheduled by a CronScheduler, fired exactly once.

A cron workflow is the aggregate `cron.<id>` in the run-history stream. Each scheduled time is decided by
one commit on that subject (fired, or skipped with the reason); the commit is guarded by the cron's last
sequence, so when several engines reach the same scheduled time only one decision lands and the others
reload and find it decided. The run a fire starts has an id derived from the cron and the scheduled time,
so even a fire whose run submission was interrupted is completed by whichever engine looks next.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from croniter import croniter

from aether_es.adapters.background import cancel_and_wait
from aether_es.adapters.cron_croniter import parse_schedule
from aether_es.engine.cron_decider import (
    RunInfo,
    check_live,
    check_new_name,
    check_update,
    decide_fire,
    suspended_document,
    workflow_for,
)
from aether_es.errors import InvalidStateError, NotFoundError, NotSupportedError, ValidationError
from aether_es.events.catalogue import Event
from aether_es.events.cron_catalogue import CronDeleted, CronSubmitted, CronUpdated
from aether_es.events.envelope import commit_of, make_envelopes
from aether_es.model import clock
from aether_es.model.defaults import fill_cron_defaults
from aether_es.model.documents import CronWorkflow, Workflow
from aether_es.model.loading import load_cron_workflow, parse_object
from aether_es.model.validation import validate_cron_workflow
from aether_es.ports.cron_scheduler import CronScheduler
from aether_es.ports.event_store import ConcurrencyConflict, EventStore
from aether_es.ports.idgen import IdContext, IdGenerator
from aether_es.ports.leases import Leases
from aether_es.projections.cron_state import CronState, apply_cron, fold_cron
from aether_es.projections.run_state import RunState


class Runs(Protocol):
    """What the cron service needs of the engine: its store and ids, and the run commands."""

    store: EventStore
    ids: IdGenerator
    actor: str

    async def submit(
        self,
        document: Workflow | dict[str, Any] | str | bytes,
        *,
        cron_id: str = "",
        run_id: str = "",
        actor: str = "",
        reason: str = "",
    ) -> str: ...

    async def get(self, run_id: str) -> dict[str, Any]: ...

    async def state(self, run_id: str) -> RunState: ...

    async def cancel(self, run_id: str, *, actor: str = "", reason: str = "") -> None: ...


log = logging.getLogger("aether_es.cron")

AGGREGATE = "cron"

SUBMIT_FIRED_FOR = 60.0
"""Seconds a fire's run is submitted again while its owner cannot take it (`CronService._submit_fired`)."""


def aggregate_id(cron_id: str) -> str:
    return f"{AGGREGATE}.{cron_id}"


class CronService:
    def __init__(
        self, engine: Runs, scheduler: CronScheduler, leases: Leases | None = None, refresh_interval: float = 5.0
    ) -> None:
        self.engine = engine
        self.scheduler = scheduler
        self.leases = leases
        self.refresh_interval = refresh_interval
        self._states: dict[str, CronState] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._scheduled: dict[str, int] = {}
        self._refresher: asyncio.Task[None] | None = None

    # --- lifecycle -----------------------------------------------------------------------------------

    async def start(self) -> None:
        await self.scheduler.start()
        await self.restore()
        self._refresher = asyncio.create_task(self._refresh_forever(), name="cron-refresh")

    async def restore(self) -> None:
        """Schedule every stored cron workflow; catch up what downtime missed. Safe to repeat."""
        for aggregate in await self.engine.store.aggregate_ids(AGGREGATE):
            cron_id = aggregate[len(AGGREGATE) + 1 :]
            try:
                state = await self._load(cron_id)
                await self._complete_fired_runs(state)
                self._schedule(state)
                await self._catch_up(state)
            except Exception:
                log.exception("cron workflow %s could not be restored", cron_id)

    async def refresh(self) -> None:
        """Pick up cron workflows submitted, updated or deleted elsewhere (another engine, the CLI)."""
        for aggregate in await self.engine.store.aggregate_ids(AGGREGATE):
            cron_id = aggregate[len(AGGREGATE) + 1 :]
            async with self._lock(cron_id):
                state = await self._load(cron_id)
            if self._scheduled.get(cron_id) != state.revision:
                self.scheduler.remove(cron_id)
                self._schedule(state)

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_interval)
            try:
                await self.refresh()
            except Exception:
                log.exception("refreshing cron workflows failed; trying again later")

    async def stop(self) -> None:
        if self._refresher is not None:
            await cancel_and_wait(self._refresher)
            self._refresher = None
        await self.scheduler.stop()

    # --- API -----------------------------------------------------------------------------------------

    async def submit(
        self, document: CronWorkflow | dict[str, Any] | str | bytes, *, actor: str = "", reason: str = ""
    ) -> str:
        """Who asked (`actor`) and why (`reason`) are recorded with the events, as for every cron command. A
        name the namespace has a cron workflow of already is refused (a conflict naming it)."""
        raw, cron = _checked(document)
        check_new_name(cron, await self._live())
        cron_id = self.engine.ids.generate(IdContext(workflow_kind="CronWorkflow"))
        now = clock.now()
        submitted: list[Event] = [CronSubmitted(document=raw, created_at=now)]
        state = await self._commit(cron_id, None, submitted, f"submit:{cron_id}", actor, reason)
        self._schedule(state)
        return cron_id

    async def get(self, cron_id: str) -> dict[str, Any]:
        """The cron workflow's view with the views of its runs, oldest first."""
        state = await self._state(cron_id)
        check_live(state)
        view = state.to_dict()
        view["runs"] = [await self.engine.get(run_id) for run_id in state.runs]
        return view

    async def list_all(self) -> list[dict[str, Any]]:
        return [state.to_dict() for state in await self._live()]

    async def _live(self) -> list[CronState]:
        """Every cron workflow not deleted."""
        states = []
        for aggregate in await self.engine.store.aggregate_ids(AGGREGATE):
            state = await self._state(aggregate[len(AGGREGATE) + 1 :])
            if not state.deleted:
                states.append(state)
        return states

    async def update(
        self,
        cron_id: str,
        document: CronWorkflow | dict[str, Any] | str | bytes,
        *,
        actor: str = "",
        reason: str = "",
    ) -> None:
        """Change schedule, zone, policy, limits or suspend (suspend/resume is an update, as in Aether)."""
        raw, cron = _checked(document)

        def updated(state: CronState) -> list[Event]:
            check_live(state)
            check_update(state, cron)
            return [CronUpdated(document=raw)]

        state = await self._commit_latest(cron_id, updated, f"update:{cron_id}", actor, reason)
        self.scheduler.remove(cron_id)
        self._schedule(state)

    async def delete(self, cron_id: str, *, actor: str = "", reason: str = "") -> None:
        """Stop scheduling; the cron's history and its runs are kept. Deleting it again is not found."""

        def deleted(state: CronState) -> list[Event]:
            check_live(state)
            return [CronDeleted()]

        await self._commit_latest(cron_id, deleted, f"delete:{cron_id}", actor, reason)
        self.scheduler.remove(cron_id)

    async def suspend(self, cron_id: str, suspend: bool = True, *, actor: str = "", reason: str = "") -> None:
        """Stop (`suspend`) or restart its schedule: an update of `spec.suspend`, as Aether does it."""
        command = "suspend" if suspend else "resume"

        def updated(state: CronState) -> list[Event]:
            return [CronUpdated(document=suspended_document(state, suspend))]

        state = await self._commit_latest(cron_id, updated, f"{command}:{cron_id}", actor, reason)
        self.scheduler.remove(cron_id)
        self._schedule(state)

    async def trigger(self, cron_id: str, *, actor: str = "", reason: str = "") -> str:
        """Start a run now, outside the schedule (even while suspended); returns its id. A Forbid policy with
        a run still active refuses it."""
        moment = datetime.now(UTC)
        run_id = await self.fire(cron_id, moment, manual=True, actor=actor, reason=reason)
        if not run_id:  # another trigger or the schedule decided this very millisecond
            raise InvalidStateError(f'cron workflow "{cron_id}" was decided at {clock.format_time(moment)}; try again')
        return run_id

    async def fire(
        self,
        cron_id: str,
        scheduled: datetime | None = None,
        *,
        manual: bool = False,
        actor: str = "",
        reason: str = "",
    ) -> str:
        """Decide one scheduled time (now, when not given): the scheduler's callback, and a `manual` trigger.
        Returns the id of the run it started ("" when the time was skipped or decided already)."""
        moment = (scheduled or datetime.now(UTC)).astimezone(UTC)
        async with self._lock(cron_id):
            while True:
                state = await self._state(cron_id)
                check_live(state)
                runs = [await self._run_info(run_id) for run_id in state.runs]
                decision = decide_fire(state, moment, datetime.now(UTC), runs, manual=manual)
                if not decision.events:
                    return ""
                try:
                    cause = f"{'trigger' if manual else 'fire'}:{clock.format_time(moment)}"
                    await self._commit(cron_id, state, decision.events, cause, actor or f"cron:{cron_id}", reason)
                    break
                except ConcurrencyConflict:
                    self._states.pop(cron_id, None)  # another engine decided first: look again
        for run_id in decision.cancel:
            with contextlib.suppress(InvalidStateError):  # it finished meanwhile
                await self.engine.cancel(run_id)
        if decision.run_id and decision.workflow is not None:
            await self._submit_fired(decision.workflow, cron_id, decision.run_id)
        return decision.run_id

    async def _submit_fired(self, workflow: dict[str, Any], cron_id: str, run_id: str) -> None:
        """Submit the run of a recorded fire, trying again while the engine that owns it cannot take it (one
        dying, a partition changing hands) for up to `SUBMIT_FIRED_FOR` seconds; a fire still without its run
        then is completed by the next `restore` (a start, or this service moving to another engine)."""
        give_up = time.monotonic() + SUBMIT_FIRED_FOR
        delay = 0.5
        while True:
            try:
                await self.engine.submit(workflow, cron_id=cron_id, run_id=run_id)
                return
            except (ValidationError, NotSupportedError):
                raise  # the document itself: trying again changes nothing
            except Exception as exc:
                if time.monotonic() + delay > give_up:
                    log.warning("cron %s: run %s not submitted (%r); the next restore submits it", cron_id, run_id, exc)
                    raise
                log.warning("cron %s: run %s not submitted (%r); trying again in %.1fs", cron_id, run_id, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    # --- internals -----------------------------------------------------------------------------------

    def _lock(self, cron_id: str) -> asyncio.Lock:
        return self._locks.setdefault(cron_id, asyncio.Lock())

    async def _state(self, cron_id: str) -> CronState:
        state = self._states.get(cron_id)
        if state is None:
            state = await self._load(cron_id)
        return state

    async def _load(self, cron_id: str) -> CronState:
        commits = await self.engine.store.load(aggregate_id(cron_id))
        if not commits:
            raise NotFoundError(f'cron workflow "{cron_id}" not found')
        state = fold_cron(cron_id, [env for stored in commits for env in stored.commit.envelopes])
        state.seq = commits[-1].seq
        self._states[cron_id] = state
        return state

    async def _commit_latest(
        self, cron_id: str, decide: Callable[[CronState], list[Event]], cause: str, actor: str, reason: str
    ) -> CronState:
        """Commit what `decide` makes of the cron's latest state: another engine firing the same cron may
        write first, and the command is then decided again on what it wrote rather than refused."""
        async with self._lock(cron_id):
            while True:
                state = await self._state(cron_id)
                events = decide(state)
                try:
                    return await self._commit(cron_id, state, events, cause, actor, reason)
                except ConcurrencyConflict:
                    self._states.pop(cron_id, None)

    async def _commit(
        self,
        cron_id: str,
        state: CronState | None,
        events: list[Event],
        cause: str,
        actor: str = "",
        reason: str = "",
    ) -> CronState:
        aggregate = aggregate_id(cron_id)
        first = (state.events if state is not None else 0) + 1
        envelopes = make_envelopes(aggregate, first, events, clock.now(), actor or self.engine.actor, cause, reason)
        seq = await self.engine.store.append(commit_of(aggregate, envelopes), state.seq if state is not None else 0)
        if state is None:
            state = fold_cron(cron_id, envelopes)
        else:
            for envelope in envelopes:
                apply_cron(state, envelope)
        state.seq = seq
        self._states[cron_id] = state
        return state

    async def _run_info(self, run_id: str) -> RunInfo:
        try:
            run = await self.engine.state(run_id)
        except NotFoundError:
            return RunInfo(run_id, "", "")  # decided but not yet submitted: counts as active
        return RunInfo(run_id, run.phase, run.created_at)

    def _schedule(self, state: CronState) -> None:
        self._scheduled[state.cron_id] = state.revision
        if state.deleted or state.cron.spec.suspend:
            return
        spec = state.cron.spec

        async def callback(scheduled: datetime) -> None:
            # The lease spares other replicas the attempt; exactly-once comes from the decision itself.
            if self.leases is None or await self.leases.hold(aggregate_id(state.cron_id)):
                await self.fire(state.cron_id, scheduled)

        self.scheduler.add(state.cron_id, spec.schedule, spec.timezone, callback)

    async def _complete_fired_runs(self, state: CronState) -> None:
        """A fire recorded before a crash whose run was never submitted is submitted now (same run id)."""
        for run_id in state.runs:
            try:
                await self.engine.state(run_id)
            except NotFoundError:
                await self.engine.submit(workflow_for(state.cron), cron_id=state.cron_id, run_id=run_id)

    async def _catch_up(self, state: CronState) -> None:
        """After downtime, fire the latest scheduled time missed since the last one (only that one)."""
        if state.deleted or state.cron.spec.suspend:
            return
        since = clock.parse_time(state.last_schedule_time or state.created_at)
        missed = _latest_scheduled(state.cron, datetime.now(UTC))
        if missed > since:
            await self.fire(state.cron_id, missed)


def _checked(document: CronWorkflow | dict[str, Any] | str | bytes) -> tuple[dict[str, Any], CronWorkflow]:
    """The document as given, and its defaulted, validated model (ValidationError otherwise)."""
    raw = document.dump() if isinstance(document, CronWorkflow) else parse_object(document)
    cron = fill_cron_defaults(load_cron_workflow(raw))
    validate_cron_workflow(cron)
    return raw, cron


def _latest_scheduled(cron: CronWorkflow, now: datetime) -> datetime:
    """The latest scheduled time at or before `now`, in the cron's zone."""
    zone = ZoneInfo(cron.spec.timezone or "UTC")
    moment: datetime = croniter(parse_schedule(cron.spec.schedule), now.astimezone(zone)).get_prev(datetime)
    return moment.astimezone(UTC)
