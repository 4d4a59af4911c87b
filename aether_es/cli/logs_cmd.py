"""`aether-es logs RUN [TASK] [--follow]`: what a run's tasks printed, line by line, from the task logs stream.

TASK is a task run id (`<run>-3`, as `get` lists them) or a task name (every task run of that name: each
iteration of a loop goes by its body template's name). Without `--follow` it prints the lines stored so
far; with it, it goes on printing new lines as they are printed, until the run has ended and its last
lines are shown (or until interrupted). One line each (`TASK STREAM: LINE`), or with `--json` each record
as JSON, one per line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from typing import Any

import nats.errors
import orjson
from nats.aio.client import Client
from nats.js.errors import NotFoundError as JsNotFoundError

from aether_es.adapters.nats.layout import Layout, check_id
from aether_es.adapters.nats.run_follower import follow_until
from aether_es.adapters.nats.task_logs import read_logs
from aether_es.cli import exits
from aether_es.cli.commands import summary
from aether_es.cli.remote import RemoteError, add_remote_options, fail, remote
from aether_es.cli.terminal import json_text, say
from aether_es.errors import AetherError


def register(commands: Any) -> None:
    parser = commands.add_parser("logs", help=summary("logs"))
    parser.add_argument("run_id", metavar="RUN", help="the workflow run id")
    parser.add_argument("task", metavar="TASK", nargs="?", default="", help="a task run id or a task name")
    parser.add_argument("--follow", "-f", action="store_true", help="print new lines as they come, to the run's end")
    add_remote_options(parser)
    parser.add_argument("--json", action="store_true", help="print each line's record as JSON, one per line")
    parser.set_defaults(handler=handle)


async def handle(args: argparse.Namespace) -> int:
    try:
        async with remote("logs", args.nats, args.prefix, args) as (connection, layout):
            try:
                run_id = check_id("run id", args.run_id)
                task_run_id = check_id("task run id", args.task) if args.task.startswith(f"{run_id}-") else ""
            except ValueError as exc:
                say(f"aether: logs: {exc}", file=sys.stderr)
                return exits.INVALID
            try:
                return await _print(connection.nc, layout, args, run_id, task_run_id)
            except AetherError as exc:
                say(exc, file=sys.stderr)
                return exits.of_error(exc)
            except (nats.errors.Error, TimeoutError) as exc:
                say(f"aether: logs: reading the task logs failed: {str(exc) or type(exc).__name__}", file=sys.stderr)
                return exits.FAILED
    except RemoteError as error:
        return fail(error)


async def _print(nc: Client, layout: Layout, args: argparse.Namespace, run_id: str, task_run_id: str) -> int:
    js = nc.jetstream()
    try:
        await js.get_last_msg(layout.runs_stream, layout.run_subject(run_id))
    except JsNotFoundError:
        say(f'aether: logs: workflow run "{run_id}" not found', file=sys.stderr)
        return exits.NOT_FOUND
    try:
        await js.stream_info(layout.logs_stream)
    except JsNotFoundError:
        say(f"aether: logs: no task logs here (stream {layout.logs_stream}); the system predates them", file=sys.stderr)
        return exits.FAILED
    name = "" if task_run_id else args.task
    ended = asyncio.Event()
    watcher = asyncio.create_task(_until_ended(nc, layout, run_id, ended)) if args.follow else None
    try:
        async for record in read_logs(js, layout, run_id, task_run_id, follow=args.follow, stop=ended):
            if name and record.get("taskName") != name:
                continue
            _show(record, args.json, whole_run=not (task_run_id or name))
            sys.stdout.flush()
    finally:
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
    return exits.OK


async def _until_ended(nc: Client, layout: Layout, run_id: str, ended: asyncio.Event) -> None:
    """Set `ended` once the run is over (its history says so); a run that cannot be followed is followed
    until interrupted."""
    try:
        await follow_until(nc, layout, run_id, None)
    except AetherError as exc:
        say(f"aether: logs: {exc}; following until interrupted", file=sys.stderr)
        return
    ended.set()


def _show(record: dict[str, Any], as_json: bool, whole_run: bool) -> None:
    if as_json:
        sys.stdout.write(json_text(orjson.dumps(record).decode()) + "\n")
        return
    stream, line = record.get("stream", ""), record.get("line", "")
    if not whole_run:
        say(f"{stream}: {line}")
        return
    attempt = record.get("attempt", 1)
    task = f"{record.get('taskName', '')}" + (f"#{attempt}" if isinstance(attempt, int) and attempt > 1 else "")
    say(f"{task} {stream}: {line}")
