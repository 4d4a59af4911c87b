"""Measurements shared by the scenarios: latencies derived from run histories, percentiles and RSS.

Latencies come from the events themselves (millisecond timestamps), so they are what the history says
happened, not what the benchmark's own clock saw:

- start latency: a leaf's `TaskDispatched` envelope time -> its `TaskStarted.started_at` (ready to started);
- handoff latency: a leaf's `TaskFinished` envelope time -> the next `TaskDispatched` in the same run;
- cycle: one `TaskDispatched` -> the next in the same run (in a chain, the whole per-task round trip).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import resource
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

from aether_es.events import catalogue as ev
from aether_es.events.codec import encode_commit
from aether_es.model.clock import parse_time


def percentile(values: Iterable[float], q: float) -> float | None:
    """The q-th percentile (0..100) by linear interpolation; None for no values."""
    data = sorted(values)
    if not data:
        return None
    if len(data) == 1:
        return data[0]
    pos = (len(data) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def _status_kb(key: str) -> int | None:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def rss_kb() -> int:
    """Current resident set size in KiB (0 where /proc is unavailable)."""
    return _status_kb("VmRSS") or 0


def peak_rss_kb() -> int:
    """The process's lifetime peak RSS in KiB (VmHWM, else getrusage's ru_maxrss)."""
    return _status_kb("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux `clear_refs` 5); False where not permitted."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
        return True
    except OSError:
        return False


class RssSampler:
    """Samples VmRSS in the background: the peak during a scenario even if VmHWM cannot be reset."""

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.baseline_kb = 0
        self.peak_kb = 0
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> RssSampler:
        reset_peak_rss()
        self.baseline_kb = self.peak_kb = rss_kb()
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.peak_kb = max(self.peak_kb, rss_kb())

    async def _run(self) -> None:
        while True:
            self.peak_kb = max(self.peak_kb, rss_kb())
            await asyncio.sleep(self.interval)

    @property
    def growth_kb(self) -> int:
        return max(0, self.peak_kb - self.baseline_kb)


@lru_cache(maxsize=65536)
def _when(text: str) -> datetime:
    return parse_time(text)


def _ms(start: str, end: str) -> float:
    return (_when(end) - _when(start)).total_seconds() * 1000.0


@dataclass
class _RunTrack:
    dispatched: dict[str, str] = field(default_factory=dict)
    leaves: set[str] = field(default_factory=set)
    finished_at: str | None = None
    last_dispatch: str | None = None


@dataclass
class HistoryStats:
    """What a scenario's event stream holds, and the latencies derived from it."""

    commits: int = 0
    events: int = 0
    bytes: int = 0
    runs: int = 0
    leaves_dispatched: int = 0
    start_ms: list[float] = field(default_factory=list)
    handoff_ms: list[float] = field(default_factory=list)
    cycle_ms: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "start_p50_ms": percentile(self.start_ms, 50),
            "start_p99_ms": percentile(self.start_ms, 99),
            "handoff_p50_ms": percentile(self.handoff_ms, 50),
            "handoff_p99_ms": percentile(self.handoff_ms, 99),
            "cycle_p50_ms": percentile(self.cycle_ms, 50),
            "cycle_p99_ms": percentile(self.cycle_ms, 99),
        }


async def history_stats(commits: AsyncIterator[Any]) -> HistoryStats:
    """Count events and encoded bytes of every commit and derive latencies, streaming (no history kept).

    `commits` yields `StoredCommit`s, as `NatsEventStore.load_all()` does; runs are tracked separately.
    """
    stats = HistoryStats()
    runs: dict[str, _RunTrack] = {}
    async for stored in commits:
        commit = stored.commit
        stats.commits += 1
        stats.events += len(commit.envelopes)
        stats.bytes += len(encode_commit(commit))
        track = runs.get(commit.run_id)
        if track is None:
            track = runs[commit.run_id] = _RunTrack()
        for env in commit.envelopes:
            event = env.event
            if isinstance(event, ev.TaskDispatched):
                stats.leaves_dispatched += 1
                track.dispatched[event.task_id] = env.time
                track.leaves.add(event.task_id)
                if track.finished_at is not None:
                    stats.handoff_ms.append(_ms(track.finished_at, env.time))
                    track.finished_at = None
                if track.last_dispatch is not None:
                    stats.cycle_ms.append(_ms(track.last_dispatch, env.time))
                track.last_dispatch = env.time
            elif isinstance(event, ev.TaskStarted):
                dispatched = track.dispatched.pop(event.task_id, None)
                if dispatched is not None:
                    stats.start_ms.append(_ms(dispatched, event.started_at))
            elif isinstance(event, ev.TaskFinished):
                if event.task_id in track.leaves and track.finished_at is None:
                    track.finished_at = env.time
            elif isinstance(event, ev.RunFinished):
                track.dispatched.clear()
                track.leaves.clear()
    stats.runs = len(runs)
    return stats
