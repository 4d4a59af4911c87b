"""Following a run on the command line (`run`, `watch`, `submit --wait`, `retry --wait`).

Each batch of commits read from the run's history changes only the lines of the task runs it touched: a
line per phase change, or on a terminal a live panel (header, progress bar, the task runs still going)
redrawn at most every `LIVE_FRAME` seconds, so a 10,000-task run is followed at the cost of its events.
"""

from __future__ import annotations

import shutil
import sys
import time
from typing import Any

import orjson
from nats.aio.client import Client

from aether_es.adapters.nats.layout import Layout
from aether_es.adapters.nats.run_follower import follow_until
from aether_es.cli import exits
from aether_es.cli.failures import failed_task_records, failure_lines, resume_hint
from aether_es.cli.io import print_json
from aether_es.cli.terminal import say
from aether_es.model import phases as ph
from aether_es.projections.run_progress import Progress, RunProgress, Transition
from aether_es.projections.run_state import RunState

LIVE_FRAME = 0.1
"""Seconds between two redraws of the live panel at most."""

LINES, LIVE, QUIET = "lines", "live", "quiet"


async def follow(nc: Client, layout: Layout, run_id: str, *, show: str, timeout: float | None = None) -> RunState:
    """Show the run's progress as `show` says until it ends (or `timeout` passes); its state then."""
    drawn = 0.0

    def on_step(progress: RunProgress, transitions: list[Transition]) -> None:
        nonlocal drawn
        if show == LINES:
            _print_lines(progress, transitions)
        elif show == LIVE and time.monotonic() - drawn >= LIVE_FRAME:
            _draw(progress)
            drawn = time.monotonic()

    progress = await follow_until(nc, layout, run_id, timeout, on_step)
    if show == LIVE:
        _draw(progress)
    assert progress.state is not None
    return progress.state


def finish(state: RunState, *, as_json: bool, seconds: float | None, ended_before: bool = False) -> int:
    """Print the run's end (its whole view with `as_json`; else its phase, why it failed, and outputs) and its
    exit code: `exits.TIMED_OUT` for a run still going (`--timeout` passed). `ended_before`: the run had ended
    before it was followed, so its end time is told rather than `seconds`."""
    if as_json:
        print_json(state.to_dict())
    else:
        message = f" ({state.message})" if state.message else ""
        if not state.terminal:
            say(f"{state.phase}{message}: stopped waiting after {seconds or 0:.2f}s (--timeout); the run goes on")
        elif ended_before:
            finished = state.metrics.finished_at if state.metrics is not None else None
            say(f"{state.phase}{message}, ended {finished or state.updated_at}")
        elif seconds is not None:
            say(f"{state.phase}{message} in {seconds:.2f}s")
        failed = failure_lines(failed_task_records(state))
        say(*(["failed:", *failed] if failed else []))
        say(*outputs_lines(None if state.outputs is None else state.outputs.dump()))
    if not state.terminal:
        return exits.TIMED_OUT
    return exits.OK if state.phase == ph.SUCCEEDED else exits.NOT_SUCCEEDED


def outputs_lines(outputs: dict[str, Any] | None) -> list[str]:
    """`outputs:` and a `name = value` line per output parameter of a run, or nothing."""
    params = (outputs or {}).get("parameters") or []
    if not params:
        return []
    return ["outputs:"] + [f"  {p['name']} = {orjson.dumps(p.get('value')).decode()}" for p in params]


def _print_lines(progress: RunProgress, transitions: list[Transition]) -> None:
    if not transitions:
        return
    say(*(line for t in transitions for line in _transition_lines(progress, t)), flush=True)


def _transition_lines(progress: RunProgress, t: Transition) -> list[str]:
    line = f"  {t.phase:<10} {progress.path(t.task)}  [{t.progress}]"
    if t.phase != ph.SUSPENDED:
        return [line]
    note = f": {t.task.message}" if t.task.message else ""
    return [f"{line}  {t.task.id}{note}", f"    {resume_hint(t.task.workflow_run_id, t.task.id)}"]


def header(state: RunState) -> str:
    message = f" ({state.message})" if state.message else ""
    return f"{state.run_id}  {state.workflow.metadata.name}  {state.phase}{message}  created {state.created_at}"


def progress_bar(progress: Progress, width: int = 30) -> str:
    """`[#######.......] 7/15`."""
    if progress.total <= 0:
        return ""
    filled = width * min(progress.done, progress.total) // progress.total
    return f"[{'#' * filled}{'.' * (width - filled)}] {progress}"


def _draw(progress: RunProgress) -> None:
    """Redraw the panel: as many of the task runs still going as the terminal has rows for."""
    state = progress.state
    if state is None:
        return
    lines = [header(state)]
    bar = progress_bar(progress.progress)
    if bar:
        lines.append(bar)
    top, room = len(lines), max(1, shutil.get_terminal_size().lines - len(lines) - 2)
    for shown, task_id in enumerate(progress.active):
        if len(lines) - top >= room:  # a suspended task run's line has its resume command under it
            lines.append(f"  ... and {len(progress.active) - shown} more going")
            break
        task = state.tasks[task_id]
        note = f"  {task.message}" if task.message else ""
        lines.append(f"  {task.phase:<10} {progress.path(task)}{note}")
        if task.phase == ph.SUSPENDED:
            lines.append(f"    {resume_hint(state.run_id, task.id)}")
    sys.stdout.write("\x1b[H\x1b[2J")
    say(*lines, flush=True)
