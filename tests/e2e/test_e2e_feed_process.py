"""`serve` projects the event feed in a child process it owns: every event reaches the feed, the child dies
with serve even on `kill -9`, stops with serve on SIGTERM, and is started again (with a WARNING) if it dies.

Real `aether-es serve` processes; the child is found among serve's children (of any of its threads) by the
module it runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
from pathlib import Path

import orjson
from support.cli import EXAMPLE, aether, serve
from support.processes import alive, until

from aether_es.adapters.nats.connection import connect
from aether_es.adapters.nats.layout import Layout
from aether_es.runtime.feed_process import MODULE

WAIT = 15.0
"""Seconds a change of the feed child or of the feed itself may take to show."""


def _children(pid: int) -> list[int]:
    pids: list[int] = []
    for path in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError):
            pids.extend(int(child) for child in path.read_text().split())
    return pids


def _feed_children(pid: int) -> list[int]:
    """serve's children running the feed module (zombies left out: they are gone, only not yet reaped)."""
    found = []
    for child in _children(pid):
        with contextlib.suppress(OSError):
            args = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
            if alive(child) and MODULE.encode() in args:
                found.append(child)
    return found


def _stop(process: subprocess.Popen[str]) -> tuple[str, str]:
    process.send_signal(signal.SIGTERM)
    try:
        return process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.communicate()


async def _counts(url: str) -> tuple[int, int]:
    """Events in the history (every commit decoded) and messages in the feed stream."""
    layout = Layout()
    connection = await connect(url)
    try:
        history = await connection.js.stream_info(layout.runs_stream)
        sub = await connection.js.pull_subscribe(layout.run_subjects, stream=layout.runs_stream)
        events = 0
        read = 0
        while read < history.state.messages:
            for msg in await sub.fetch(500, timeout=5):
                events += len(orjson.loads(msg.data)["events"])
                read += 1
        feed = await connection.js.stream_info(layout.feed_stream)
        return events, feed.state.messages
    finally:
        await connection.close()


def _feed_holds_every_event(url: str) -> bool:
    events, in_feed = asyncio.run(_counts(url))
    return events > 0 and in_feed == events


def test_serve_feeds_every_event_from_a_child_that_stops_on_sigterm(tmp_path: Path) -> None:
    process, url = serve(tmp_path / ".aether", "--workers", "2")
    try:
        (feed,) = _feed_children(process.pid)
        done = aether("submit", str(EXAMPLE), "--wait", "--nats", url)
        assert done.returncode == 0, done.stderr
        assert until(lambda: _feed_holds_every_event(url), WAIT)
    finally:
        _, err = _stop(process)
    assert process.returncode == 0, err
    assert not alive(feed)


def test_the_feed_child_dies_with_serve_on_kill_9(tmp_path: Path) -> None:
    process, _ = serve(tmp_path / ".aether")
    try:
        (feed,) = _feed_children(process.pid)
        process.kill()
        process.wait()
        assert until(lambda: not alive(feed), WAIT), f"feed process {feed} outlived serve"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(feed, signal.SIGKILL)


def test_a_killed_feed_child_is_reported_and_started_again_and_misses_nothing(tmp_path: Path) -> None:
    process, url = serve(tmp_path / ".aether", "--workers", "2")
    try:
        (feed,) = _feed_children(process.pid)
        os.kill(feed, signal.SIGKILL)
        assert until(lambda: len(_feed_children(process.pid)) == 1 and feed not in _feed_children(process.pid), WAIT)
        done = aether("submit", str(EXAMPLE), "--wait", "--nats", url)
        assert done.returncode == 0, done.stderr
        assert until(lambda: _feed_holds_every_event(url), WAIT)
    finally:
        _, err = _stop(process)
    assert process.returncode == 0, err
    warned = [line for line in err.splitlines() if " WARNING " in line and "event feed process" in line]
    assert len(warned) == 1 and "killed by signal 9" in warned[0] and "starting it again" in warned[0], err


def test_no_feed_starts_no_child(tmp_path: Path) -> None:
    process, _ = serve(tmp_path / ".aether", "--no-feed")
    try:
        assert _children(process.pid) and not _feed_children(process.pid)
    finally:
        _stop(process)
    assert process.returncode == 0
