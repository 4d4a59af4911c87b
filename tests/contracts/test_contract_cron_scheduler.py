"""Contract tests for the CronScheduler adapters, plus CroniterScheduler planning with an injected clock and sleep."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio

from aether_es.adapters.cron_croniter import CroniterScheduler, ManualCronScheduler
from aether_es.ports.cron_scheduler import CronCallback, CronScheduler

T0 = datetime(2024, 1, 1, 12, 1, 30, tzinfo=UTC)


class FakeTime:
    """A settable clock and a sleep that only returns when `advance` moves the clock past its deadline."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start
        self.sleeps: list[float] = []
        self._waiters: list[tuple[datetime, asyncio.Future[None]]] = []

    def clock(self) -> datetime:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiter = (self.now + timedelta(seconds=seconds), future)
        self._waiters.append(waiter)
        try:
            await future
        finally:
            self._waiters.remove(waiter)

    async def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
        for deadline, future in list(self._waiters):
            if deadline <= self.now and not future.done():
                future.set_result(None)
        await settle()


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


class Recorder:
    def __init__(self) -> None:
        self.calls: list[datetime] = []

    async def __call__(self, scheduled: datetime) -> None:
        self.calls.append(scheduled)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


# --- contract: both schedulers ---------------------------------------------------------------------------

Factory = Callable[[FakeTime], CroniterScheduler | ManualCronScheduler]
FACTORIES: dict[str, Factory] = {
    "croniter": lambda t: CroniterScheduler(clock=t.clock, sleep=t.sleep, max_sleep=None),
    "manual": lambda t: ManualCronScheduler(clock=t.clock),
}


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest_asyncio.fixture(params=sorted(FACTORIES))
async def scheduler(
    request: pytest.FixtureRequest, fake_time: FakeTime
) -> AsyncIterator[CroniterScheduler | ManualCronScheduler]:
    sched = FACTORIES[request.param](fake_time)
    await sched.start()
    try:
        yield sched
    finally:
        await sched.stop()


def test_both_satisfy_the_protocol() -> None:
    schedulers: list[CronScheduler] = [CroniterScheduler(), ManualCronScheduler()]
    assert len(schedulers) == 2


async def test_fire_calls_back_with_the_given_time_as_utc(scheduler: CroniterScheduler | ManualCronScheduler) -> None:
    rec = Recorder()
    scheduler.add("c1", "*/5 * * * *", "UTC", rec)
    await scheduler.fire("c1", datetime(2024, 1, 1, 18, 0, tzinfo=ZoneInfo("Asia/Tokyo")))
    await scheduler.fire("c1", datetime(2024, 1, 1, 18, 0))  # naive: taken as UTC
    assert rec.calls == [utc(2024, 1, 1, 9, 0), utc(2024, 1, 1, 18, 0)]
    assert all(c.tzinfo == UTC for c in rec.calls)


async def test_fire_defaults_to_the_clock(scheduler: CroniterScheduler | ManualCronScheduler) -> None:
    rec = Recorder()
    scheduler.add("c1", "@daily", "Asia/Tokyo", rec)
    await scheduler.fire("c1")
    assert rec.calls == [T0]
    assert rec.calls[0].tzinfo == UTC


async def test_fire_propagates_the_callback_error(scheduler: CroniterScheduler | ManualCronScheduler) -> None:
    async def boom(_: datetime) -> None:
        raise RuntimeError("boom")

    scheduler.add("c1", "@hourly", "UTC", boom)
    with pytest.raises(RuntimeError, match="boom"):
        await scheduler.fire("c1")


async def test_fire_unknown_id_raises_keyerror(scheduler: CroniterScheduler | ManualCronScheduler) -> None:
    with pytest.raises(KeyError, match="nope"):
        await scheduler.fire("nope")


async def test_add_replaces_and_remove_unschedules(scheduler: CroniterScheduler | ManualCronScheduler) -> None:
    first, second = Recorder(), Recorder()
    scheduler.add("c1", "@hourly", "UTC", first)
    scheduler.add("c1", "@daily", "UTC", second)
    assert scheduler.ids() == ("c1",)
    assert scheduler.next_fire("c1") == utc(2024, 1, 2, 0, 0)
    await scheduler.fire("c1", T0)
    assert (first.calls, second.calls) == ([], [T0])
    scheduler.remove("c1")
    scheduler.remove("c1")  # unknown ids are ignored
    scheduler.remove("never-added")
    assert scheduler.ids() == ()
    assert scheduler.next_fire("c1") is None
    with pytest.raises(KeyError):
        await scheduler.fire("c1")


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        ("@yearly", utc(2025, 1, 1)),
        ("@annually", utc(2025, 1, 1)),
        ("@monthly", utc(2024, 2, 1)),
        ("@weekly", utc(2024, 1, 7)),  # 2024-01-01 is a Monday; weeks start on Sunday
        ("@daily", utc(2024, 1, 2)),
        ("@midnight", utc(2024, 1, 2)),
        ("@hourly", utc(2024, 1, 1, 13)),
        ("*/5 * * * *", utc(2024, 1, 1, 12, 5)),
        ("  0   9 * *  1-5 ", utc(2024, 1, 2, 9)),
        ("0 0 1,15 * *", utc(2024, 1, 15)),
    ],
)
async def test_schedule_forms(
    scheduler: CroniterScheduler | ManualCronScheduler, schedule: str, expected: datetime
) -> None:
    scheduler.add("c1", schedule, "UTC", Recorder())
    assert scheduler.next_fire("c1") == expected


@pytest.mark.parametrize(
    ("zone", "expected"),
    [
        ("Asia/Tokyo", utc(2024, 1, 2, 0, 0)),  # 09:00 JST = 00:00 UTC
        ("America/New_York", utc(2024, 1, 1, 14, 0)),  # EST, UTC-5
        ("UTC", utc(2024, 1, 2, 9, 0)),
        ("", utc(2024, 1, 2, 9, 0)),  # empty zone is UTC, as in Go
    ],
)
async def test_timezone(scheduler: CroniterScheduler | ManualCronScheduler, zone: str, expected: datetime) -> None:
    scheduler.add("c1", "0 9 * * *", zone, Recorder())
    assert scheduler.next_fire("c1") == expected
    assert expected.tzinfo == UTC


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ("", r'cron schedule "" must be a 5-field'),
        ("* * * *", r'cron schedule "\* \* \* \*" must be a 5-field'),
        ("0 * * * * *", r'cron schedule "0 \* \* \* \* \*" must be a 5-field'),
        ("61 * * * *", r'cron schedule "61 \* \* \* \*" is invalid'),
        ("a b c d e", r'cron schedule "a b c d e" is invalid'),
        ("@reboot", r'cron schedule "@reboot" is not a supported macro'),
        ("@every 1h", r'cron schedule "@every 1h" is not a supported macro'),
        ("0 0 30 2 *", r'cron schedule "0 0 30 2 \*" never fires'),
    ],
)
async def test_invalid_schedule(
    scheduler: CroniterScheduler | ManualCronScheduler, schedule: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        scheduler.add("c1", schedule, "UTC", Recorder())
    assert scheduler.ids() == ()


@pytest.mark.parametrize("zone", ["Mars/Olympus", "not a zone", "../etc/passwd", "/etc/localtime"])
async def test_invalid_timezone(scheduler: CroniterScheduler | ManualCronScheduler, zone: str) -> None:
    with pytest.raises(ValueError, match=f'cron timezone "{zone}" is not a known IANA time zone'):
        scheduler.add("c1", "@daily", zone, Recorder())
    assert scheduler.ids() == ()


async def test_invalid_add_keeps_the_previous_entry(scheduler: CroniterScheduler | ManualCronScheduler) -> None:
    scheduler.add("c1", "@hourly", "UTC", Recorder())
    with pytest.raises(ValueError):
        scheduler.add("c1", "bad", "UTC", Recorder())
    assert scheduler.next_fire("c1") == utc(2024, 1, 1, 13)


async def test_manual_scheduler_never_fires_on_its_own(fake_time: FakeTime) -> None:
    sched = ManualCronScheduler(clock=fake_time.clock)
    rec = Recorder()
    await sched.start()
    sched.add("c1", "* * * * *", "UTC", rec)
    await fake_time.advance(3600)
    await sched.stop()
    assert rec.calls == []
    assert sched.next_fire("c1") == utc(2024, 1, 1, 13, 2)


# --- CroniterScheduler planning (fake clock and sleep) --------------------------------------------------


@pytest_asyncio.fixture
async def planner(fake_time: FakeTime) -> AsyncIterator[CroniterScheduler]:
    sched = CroniterScheduler(clock=fake_time.clock, sleep=fake_time.sleep, max_sleep=None)
    await sched.start()
    try:
        yield sched
    finally:
        await sched.stop()


async def test_sleeps_until_the_next_fire_without_polling(planner: CroniterScheduler, fake_time: FakeTime) -> None:
    await settle()
    assert fake_time.sleeps == []  # no entries: waits for add, no timer
    rec = Recorder()
    planner.add("c1", "*/5 * * * *", "UTC", rec)
    await settle()
    assert fake_time.sleeps == [210.0]  # 12:01:30 -> 12:05:00
    await fake_time.advance(209)
    assert rec.calls == []
    await fake_time.advance(1)
    assert rec.calls == [utc(2024, 1, 1, 12, 5)]
    assert planner.next_fire("c1") == utc(2024, 1, 1, 12, 10)
    assert fake_time.sleeps == [210.0, 300.0]


async def test_late_wakeup_passes_the_scheduled_time_and_does_not_drift(
    planner: CroniterScheduler, fake_time: FakeTime
) -> None:
    rec = Recorder()
    planner.add("c1", "*/5 * * * *", "UTC", rec)
    await settle()
    await fake_time.advance(210 + 7)  # woke 7 s late
    assert rec.calls == [utc(2024, 1, 1, 12, 5)]  # the scheduled time, not the wall clock
    assert fake_time.sleeps[-1] == 293.0  # next sleep is shortened: no drift
    await fake_time.advance(293)
    assert rec.calls == [utc(2024, 1, 1, 12, 5), utc(2024, 1, 1, 12, 10)]


async def test_missed_fires_are_coalesced(planner: CroniterScheduler, fake_time: FakeTime) -> None:
    rec = Recorder()
    planner.add("c1", "* * * * *", "UTC", rec)
    await settle()
    await fake_time.advance(3600)  # slept through 60 fire times
    assert rec.calls == [utc(2024, 1, 1, 12, 2)]
    assert planner.next_fire("c1") == utc(2024, 1, 1, 13, 2)


async def test_replans_on_add_and_remove(planner: CroniterScheduler, fake_time: FakeTime) -> None:
    hourly, fivemin = Recorder(), Recorder()
    planner.add("hourly", "@hourly", "UTC", hourly)
    await settle()
    assert fake_time.sleeps == [3510.0]  # 12:01:30 -> 13:00
    planner.add("five", "*/5 * * * *", "UTC", fivemin)
    await settle()
    assert fake_time.sleeps[-1] == 210.0  # an earlier entry shortens the sleep
    planner.remove("five")
    await settle()
    assert fake_time.sleeps[-1] == 3510.0  # and removing it lengthens it again
    await fake_time.advance(210)
    assert fivemin.calls == []
    await fake_time.advance(3300)
    assert hourly.calls == [utc(2024, 1, 1, 13)]


async def test_entries_due_together_all_fire(planner: CroniterScheduler, fake_time: FakeTime) -> None:
    recs = [Recorder() for _ in range(3)]
    planner.add("a", "0 13 * * *", "UTC", recs[0])
    planner.add("b", "@hourly", "UTC", recs[1])
    planner.add("c", "0 22 * * *", "Asia/Tokyo", recs[2])  # 22:00 JST = 13:00 UTC
    await settle()
    await fake_time.advance(3510)
    assert [r.calls for r in recs] == [[utc(2024, 1, 1, 13)]] * 3


async def test_slow_callback_does_not_delay_others(planner: CroniterScheduler, fake_time: FakeTime) -> None:
    release = asyncio.Event()
    slow_started: list[datetime] = []

    async def slow(scheduled: datetime) -> None:
        slow_started.append(scheduled)
        await release.wait()

    fast = Recorder()
    planner.add("slow", "* * * * *", "UTC", slow)
    planner.add("fast", "*/5 * * * *", "UTC", fast)
    await settle()
    await fake_time.advance(30)  # 12:02
    assert slow_started == [utc(2024, 1, 1, 12, 2)]
    for _ in range(3):
        await fake_time.advance(60)
    assert fast.calls == [utc(2024, 1, 1, 12, 5)]
    assert len(slow_started) == 4  # the slow entry itself keeps firing too (overlaps are the engine's concern)
    release.set()
    await settle()


async def test_raising_callback_is_logged_and_scheduler_continues(
    planner: CroniterScheduler, fake_time: FakeTime, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[datetime] = []

    async def boom(scheduled: datetime) -> None:
        calls.append(scheduled)
        raise RuntimeError("kaboom")

    other = Recorder()
    planner.add("boom", "* * * * *", "UTC", boom)
    planner.add("other", "* * * * *", "UTC", other)
    with caplog.at_level(logging.ERROR, logger="aether_es.adapters.cron_croniter"):
        await fake_time.advance(30)
        await fake_time.advance(60)
    assert calls == [utc(2024, 1, 1, 12, 2), utc(2024, 1, 1, 12, 3)]
    assert other.calls == calls
    assert any("boom" in r.getMessage() and r.exc_info for r in caplog.records)


async def test_dst_transition_in_new_york(planner: CroniterScheduler, fake_time: FakeTime) -> None:
    fake_time.now = utc(2024, 3, 9, 12)
    rec = Recorder()
    planner.add("c1", "0 9 * * *", "America/New_York", rec)
    assert planner.next_fire("c1") == utc(2024, 3, 9, 14)  # EST (UTC-5)
    await settle()
    await fake_time.advance(2 * 3600)
    assert planner.next_fire("c1") == utc(2024, 3, 10, 13)  # EDT (UTC-4) after spring forward
    await fake_time.advance(23 * 3600)
    assert rec.calls == [utc(2024, 3, 9, 14), utc(2024, 3, 10, 13)]


async def test_start_plans_from_now(fake_time: FakeTime) -> None:
    sched = CroniterScheduler(clock=fake_time.clock, sleep=fake_time.sleep, max_sleep=None)
    rec = Recorder()
    sched.add("c1", "*/5 * * * *", "UTC", rec)  # before start: planned for 12:05
    fake_time.now = utc(2024, 1, 1, 12, 31)
    await sched.start()
    try:
        await settle()
        assert rec.calls == []  # the times that passed while stopped are not fired
        assert sched.next_fire("c1") == utc(2024, 1, 1, 12, 35)
    finally:
        await sched.stop()


async def test_max_sleep_caps_each_sleep(fake_time: FakeTime) -> None:
    sched = CroniterScheduler(clock=fake_time.clock, sleep=fake_time.sleep, max_sleep=60.0)
    rec = Recorder()
    await sched.start()
    try:
        sched.add("c1", "@hourly", "UTC", rec)
        await settle()
        assert fake_time.sleeps == [60.0]
        for _ in range(58):
            await fake_time.advance(60)
        assert fake_time.sleeps[-1] == 30.0
        await fake_time.advance(30)
        assert rec.calls == [utc(2024, 1, 1, 13)]
    finally:
        await sched.stop()


async def test_stop_cancels_planner_and_running_callbacks(fake_time: FakeTime) -> None:
    sched = CroniterScheduler(clock=fake_time.clock, sleep=fake_time.sleep, max_sleep=None)
    cancelled = asyncio.Event()

    async def hang(_: datetime) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    sched.add("c1", "* * * * *", "UTC", hang)
    await sched.start()
    await settle()
    await fake_time.advance(30)
    await sched.stop()
    assert cancelled.is_set()
    await fake_time.advance(60)
    await sched.stop()  # idempotent
    await sched.start()  # restartable
    await settle()
    await sched.stop()


# --- CroniterScheduler in real time -----------------------------------------------------------------------


async def test_real_time_fire_with_the_scheduled_time() -> None:
    """A clock offset so that a minute boundary is ~1 s away; real asyncio.sleep."""
    real = datetime.now(UTC)
    boundary = real.replace(second=0, microsecond=0) + timedelta(minutes=1)
    offset = boundary - timedelta(seconds=1) - real

    def clock() -> datetime:
        return datetime.now(UTC) + offset

    fired: asyncio.Future[tuple[datetime, datetime]] = asyncio.get_running_loop().create_future()

    async def callback(scheduled: datetime) -> None:
        if not fired.done():
            fired.set_result((scheduled, clock()))

    sched = CroniterScheduler(clock=clock)
    cb: CronCallback = callback
    await sched.start()
    try:
        sched.add("c1", "* * * * *", "UTC", cb)
        scheduled, at = await asyncio.wait_for(fired, timeout=5)
    finally:
        await sched.stop()
    assert scheduled == boundary
    assert scheduled.tzinfo == UTC
    assert timedelta(0) <= at - boundary < timedelta(seconds=1)
