"""Cron schedulers: `CroniterScheduler` (real time, `croniter`) and `ManualCronScheduler` (fires only by hand).

Both implement `aether_es.ports.cron_scheduler.CronScheduler` and add `fire` (a manual "fire now", used by
the conformance harness, tests and the CLI) and `next_fire`.

Schedules are 5-field cron expressions or one of the macros `@yearly @annually @monthly @weekly @daily
@midnight @hourly` (spec §1.10), evaluated in an IANA zone (`zoneinfo`; `""` means UTC, as Go's
`time.LoadLocation`). Daylight-saving transitions are handled by `croniter` on zone-aware datetimes.

`CroniterScheduler` runs one planner task that sleeps until the earliest planned fire time among all entries
(re-planned on add/remove, never polling). Fire times come from the schedule, not from how long a sleep
lasted, so nothing drifts. A callback receives the *scheduled* time as a UTC-aware datetime and runs as
its own task: a slow callback delays no other entry, and one that raises is logged and changes nothing.
When the planner wakes late past several fire times of an entry (machine suspended, loop blocked), the
entry fires once, for the earliest missed time, and is re-planned after "now" (as robfig/cron does).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, croniter

from aether_es.adapters.background import cancel_and_wait
from aether_es.ports.cron_scheduler import CronCallback

__all__ = ["MACROS", "CroniterScheduler", "ManualCronScheduler", "parse_schedule", "parse_timezone"]

log = logging.getLogger(__name__)

MACROS: dict[str, str] = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
"""The macros spec §1.10 accepts, as the 5-field expressions they stand for."""

Clock = Callable[[], datetime]
Sleep = Callable[[float], Awaitable[None]]


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _as_utc(moment: datetime) -> datetime:
    """A UTC-aware datetime; a naive one is taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def parse_timezone(timezone: str) -> ZoneInfo:
    """Load an IANA zone; raises ValueError naming it. `""` is UTC (Go's `time.LoadLocation("")`)."""
    name = timezone or "UTC"
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ValueError(f'cron timezone "{timezone}" is not a known IANA time zone: {exc}') from exc


def parse_schedule(schedule: str) -> str:
    """The 5-field expression for `schedule` (a macro or 5 fields); raises ValueError naming the schedule."""
    text = schedule.strip()
    if text.startswith("@"):
        if text not in MACROS:
            raise ValueError(f'cron schedule "{schedule}" is not a supported macro ({", ".join(MACROS)})')
        return MACROS[text]
    fields = text.split()
    if len(fields) != 5:
        raise ValueError(
            f'cron schedule "{schedule}" must be a 5-field cron expression or a macro (@hourly, @daily, etc.)'
        )
    expression = " ".join(fields)
    if not croniter.is_valid(expression):
        try:
            croniter(expression)
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f'cron schedule "{schedule}" is invalid: {exc}') from exc
        raise ValueError(f'cron schedule "{schedule}" is invalid')
    return expression


@dataclass
class _Entry:
    cron_id: str
    schedule: str
    expression: str
    zone: ZoneInfo
    callback: CronCallback
    next: datetime | None = None  # planned fire time (UTC); None = never again

    def after(self, moment: datetime) -> datetime | None:
        """The first fire time strictly after `moment`, in UTC; None if the schedule never fires again."""
        try:
            found = croniter(self.expression, moment.astimezone(self.zone)).get_next(datetime)
        except CroniterBadDateError:
            return None
        return _as_utc(found)


class _Registry:
    """Entries, validation and manual firing, shared by both schedulers."""

    def __init__(self, clock: Clock = _utc_now) -> None:
        self._clock = clock
        self._entries: dict[str, _Entry] = {}

    def _now(self) -> datetime:
        return _as_utc(self._clock())

    def _make(self, cron_id: str, schedule: str, timezone: str, callback: CronCallback) -> _Entry:
        expression = parse_schedule(schedule)
        zone = parse_timezone(timezone)
        entry = _Entry(cron_id, schedule, expression, zone, callback)
        entry.next = entry.after(self._now())
        if entry.next is None:
            raise ValueError(f'cron schedule "{schedule}" never fires')
        return entry

    def add(self, cron_id: str, schedule: str, timezone: str, callback: CronCallback) -> None:
        """Schedule (or reschedule) `cron_id`. Raises ValueError naming a bad schedule or zone."""
        self._entries[cron_id] = self._make(cron_id, schedule, timezone, callback)

    def remove(self, cron_id: str) -> None:
        """Unschedule; unknown ids are ignored."""
        self._entries.pop(cron_id, None)

    def ids(self) -> tuple[str, ...]:
        """The scheduled cron ids, in the order they were (last) added."""
        return tuple(self._entries)

    def next_fire(self, cron_id: str) -> datetime | None:
        """The next time (UTC) `cron_id` is due; None for an unknown id or a schedule that never fires again."""
        entry = self._entries.get(cron_id)
        return None if entry is None else entry.after(self._now())

    async def fire(self, cron_id: str, scheduled: datetime | None = None) -> None:
        """Call `cron_id`'s callback now with `scheduled` (default: the clock's now), awaiting it.

        Does not change the plan. Raises KeyError for an unknown id; the callback's own exception propagates.
        """
        entry = self._entries.get(cron_id)
        if entry is None:
            raise KeyError(f'cron id "{cron_id}" is not scheduled')
        await entry.callback(self._now() if scheduled is None else _as_utc(scheduled))


class ManualCronScheduler(_Registry):
    """Validates and holds entries like `CroniterScheduler` but never fires on its own: only `fire` does."""

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


class CroniterScheduler(_Registry):
    """Fires each entry's callback at its scheduled times (see the module docstring).

    `clock` returns the current time (aware; naive means UTC) and `sleep` waits a number of seconds; both are
    injectable for tests. A sleep is capped at `max_sleep` seconds (None = no cap) so a stepped wall clock
    is noticed: asyncio sleeps on the monotonic clock.
    """

    def __init__(
        self,
        clock: Clock = _utc_now,
        *,
        sleep: Sleep = asyncio.sleep,
        max_sleep: float | None = 60.0,
    ) -> None:
        super().__init__(clock)
        self._sleep = sleep
        self._max_sleep = max_sleep
        self._wake = asyncio.Event()
        self._planner: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()

    # --- CronScheduler -----------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._planner is not None and not self._planner.done():
            return
        now = self._now()
        for entry in self._entries.values():  # plan from now: times that passed while stopped are not fired
            entry.next = entry.after(now)
        self._planner = asyncio.create_task(self._plan(), name="cron-planner")

    async def stop(self) -> None:
        planner, self._planner = self._planner, None
        if planner is not None:
            await cancel_and_wait(planner)
        running, self._running = self._running, set()
        for task in list(running):
            await cancel_and_wait(task)

    def add(self, cron_id: str, schedule: str, timezone: str, callback: CronCallback) -> None:
        super().add(cron_id, schedule, timezone, callback)
        self._wake.set()

    def remove(self, cron_id: str) -> None:
        if self._entries.pop(cron_id, None) is not None:
            self._wake.set()

    def next_fire(self, cron_id: str) -> datetime | None:
        """The planned next fire time (UTC) of `cron_id`; None if unknown or never again."""
        entry = self._entries.get(cron_id)
        return None if entry is None else entry.next

    # --- planner -------------------------------------------------------------------------------------------

    async def _plan(self) -> None:
        while True:
            self._wake.clear()
            now = self._now()
            for entry in list(self._entries.values()):
                if entry.next is not None and entry.next <= now:
                    self._launch(entry, entry.next)
                    entry.next = entry.after(max(entry.next, now))
            planned = [entry.next for entry in self._entries.values() if entry.next is not None]
            delay = max((min(planned) - self._now()).total_seconds(), 0.0) if planned else None
            if delay is not None and self._max_sleep is not None:
                delay = min(delay, self._max_sleep)
            await self._wait(delay)

    async def _wait(self, delay: float | None) -> None:
        """Until `delay` seconds have passed (None: forever) or the plan changed."""
        waiters: set[asyncio.Task[None]] = {asyncio.create_task(self._until_woken())}
        if delay is not None:
            waiters.add(asyncio.create_task(self._sleep_for(delay)))
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    async def _until_woken(self) -> None:
        await self._wake.wait()

    async def _sleep_for(self, delay: float) -> None:
        await self._sleep(delay)

    def _launch(self, entry: _Entry, scheduled: datetime) -> None:
        task = asyncio.create_task(self._call(entry, scheduled), name=f"cron-fire-{entry.cron_id}")
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    @staticmethod
    async def _call(entry: _Entry, scheduled: datetime) -> None:
        try:
            await entry.callback(scheduled)
        except Exception:
            log.exception("cron %s: callback for %s failed", entry.cron_id, scheduled.isoformat())
