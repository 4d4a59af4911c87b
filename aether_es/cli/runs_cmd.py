"""`aether-es submit|get|list|watch|resume|cancel|retry`: workflow runs of a running system, through its API.

Human output by default, `--json` for scripts. Exit codes (`cli/exits.py`): 0 done, 1 unreachable, 2 invalid
input (a bad document or request, or one the run's state refuses), 3 not found, 4 a waited-for run ended in
another phase than Succeeded.

The models, the codec and the follower are imported by the actions that use them: `get` and `list` start
without them.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from aether_es.adapters.nats.layout import Layout, check_id
from aether_es.cli import exits
from aether_es.cli.arguments import with_arguments
from aether_es.cli.commands import summary
from aether_es.cli.failures import failure_lines, reference, resume_hint, shown
from aether_es.cli.io import print_json
from aether_es.cli.moments import moment
from aether_es.cli.remote import RemoteError, actor_of, add_actor_options, add_remote_options, fail, remote
from aether_es.cli.strict_option import add_strict_option
from aether_es.cli.tables import table
from aether_es.cli.terminal import say
from aether_es.client import Client
from aether_es.errors import AetherError, NotFoundError, ValidationError
from aether_es.model import clock
from aether_es.model import phases as ph
from aether_es.projections.names import display_name


def register(commands: Any) -> None:
    submit = commands.add_parser("submit", help=summary("submit"))
    submit.add_argument("file", help="path to the workflow JSON, or - for standard input")
    submit.add_argument("--wait", action="store_true", help="follow the run to its end (exit 4 unless Succeeded)")
    submit.add_argument("--idempotency-key", help="the same key always gives the same run, never a second one")
    submit.add_argument(
        "-p",
        "--param",
        action="append",
        dest="params",
        metavar="NAME=VALUE",
        help="a workflow argument (repeatable): JSON when the value parses as JSON, else a string",
    )
    submit.add_argument(
        "--timeout",
        type=float,
        metavar="S",
        help=f"with --wait: stop waiting after S seconds, exit {exits.TIMED_OUT} (the run goes on)",
    )
    add_strict_option(submit)
    get = commands.add_parser("get", help=summary("get"))
    get.add_argument("run_id")
    get.add_argument("--at", help="the run as it was right after event N (a number) or at an RFC3339 time")
    listing = commands.add_parser("list", help=summary("list"))
    listing.add_argument(
        "--phase", action="append", help="only runs in this phase (repeatable; Suspended: a task waits to be resumed)"
    )
    listing.add_argument("--name", help="only runs of the workflow with this name")
    listing.add_argument("--label", action="append", help="only runs with this label, as key=value (repeatable)")
    listing.add_argument("--cron", help="only runs of this CronWorkflow")
    listing.add_argument("--since", help="only runs created at or after this time: RFC3339, or a duration ago (1h, 2d)")
    listing.add_argument("--until", help="only runs created before this time: RFC3339, or a duration ago (1h, 2d)")
    listing.add_argument("--limit", type=int, default=50, help="runs per page (default 50)")
    listing.add_argument("--page", help="the page token a previous listing printed")
    watch = commands.add_parser("watch", help=summary("watch"))
    watch.add_argument("run_id")
    resume = commands.add_parser("resume", help=summary("resume"))
    resume.add_argument("run_id")
    resume.add_argument("task_run_id")
    resume.add_argument("--payload", help="a JSON object merged into the task's inputs")
    cancel = commands.add_parser("cancel", help=summary("cancel"))
    cancel.add_argument("run_id")
    retry = commands.add_parser("retry", help=summary("retry"))
    retry.add_argument("run_id")
    picked = retry.add_mutually_exclusive_group()
    picked.add_argument("--task", action="append", dest="tasks", metavar="TASK_RUN", help="only this failed task run")
    picked.add_argument(
        "--from",
        dest="from_task",
        metavar="TASK_RUN",
        help="this task run, even if it succeeded, and what depends on it",
    )
    retry.add_argument("--wait", action="store_true", help="follow the run to its end (exit 4 unless Succeeded)")
    for parser, action in (
        (submit, _submit),
        (get, _get),
        (listing, _list),
        (watch, _watch),
        (resume, _resume),
        (cancel, _cancel),
        (retry, _retry),
    ):
        add_remote_options(parser)
        if parser in (submit, resume, cancel, retry):
            add_actor_options(parser)
        parser.add_argument("--json", action="store_true", help="print JSON for scripts")
        parser.set_defaults(handler=_handler(parser.prog.rsplit(" ", 1)[-1], action))


Action = Callable[[argparse.Namespace, Client], Awaitable[int]]


def _handler(command: str, action: Action) -> Callable[[argparse.Namespace], Awaitable[int]]:
    async def handle(args: argparse.Namespace) -> int:
        try:
            async with remote(command, args.nats, args.prefix, args) as (connection, layout):
                client = await Client.connect(connection, prefix=layout.prefix, actor=actor_of(args))
                try:
                    return await action(args, client)
                except AetherError as exc:
                    say(exc, file=sys.stderr)
                    return exits.of_error(exc)
        except RemoteError as error:
            return fail(error)

    return handle


# --- actions ---------------------------------------------------------------------------------------


async def _submit(args: argparse.Namespace, client: Client) -> int:
    from aether_es.cli.validate_cmd import print_warnings, read_checked

    document = read_checked(args.file)
    if document is None:
        return exits.INVALID
    if args.timeout is not None and (not args.wait or args.timeout <= 0):
        say("aether: submit: --timeout needs --wait and a number of seconds above 0", file=sys.stderr)
        return exits.INVALID
    try:
        document = with_arguments(document, args.params or ())
    except ValueError as exc:
        say(f"aether: submit: {exc}", file=sys.stderr)
        return exits.INVALID
    # The engine judges the document it stores, with its arguments: its warnings, or its refusal under --strict.
    submitted = await client.submit_info(
        document, idempotency_key=args.idempotency_key, reason=args.reason, strict=args.strict
    )
    print_warnings(submitted.warnings)
    run_id = submitted.run_id
    if not args.wait:
        if args.json:
            print_json({"runID": run_id, "warnings": [w.model_dump(by_alias=True) for w in submitted.warnings]})
        else:
            say(run_id)
        return exits.OK
    if not args.json:
        say(f"run {run_id} submitted")
    return await _follow(args, client, run_id)


async def _get(args: argparse.Namespace, client: Client) -> int:
    if args.at is not None:
        return await _get_at(args, client)
    view = await client.get(args.run_id)
    if args.json:
        print_json(view)
    else:
        say(*describe(view))
    return exits.OK


async def _get_at(args: argparse.Namespace, client: Client) -> int:
    """Time travel: the fold of the run's history up to the point, read from the log itself."""
    from aether_es.adapters.nats.event_store import NatsEventStore
    from aether_es.history.timeline import entries, state_at

    store = NatsEventStore(client.nc, Layout(prefix=args.prefix))
    timeline = entries(await store.load(check_id("run id", args.run_id)))
    if not timeline:
        raise NotFoundError(f'workflow run "{args.run_id}" not found')
    try:
        state = state_at(timeline, event=int(args.at)) if args.at.isdigit() else state_at(timeline, time=args.at)
    except ValueError as exc:
        say(f"aether: get: --at {args.at}: {exc}", file=sys.stderr)
        return exits.INVALID
    view = state.to_dict()
    if args.json:
        print_json(view)
    else:
        say(f"as of event {state.events} ({state.updated_at}):")
        say(*describe(view))
    return exits.OK


_LIST_OPTIONS = {"status": "--phase", "cronWorkflowID": "--cron", "limit": "--limit", "pageToken": "--page"}
"""The `list` option behind each request field the API may refuse, so the message names what was typed."""


async def _list(args: argparse.Namespace, client: Client) -> int:
    labels: dict[str, str] = {}
    for label in args.label or []:
        key, sep, value = label.partition("=")
        if not sep or not key:
            say(f"aether: list: --label {label!r} is not key=value", file=sys.stderr)
            return exits.INVALID
        labels[key] = value
    try:
        since = moment("--since", args.since) if args.since else None
        until = moment("--until", args.until) if args.until else None
    except ValueError as exc:
        say(f"aether: list: {exc}", file=sys.stderr)
        return exits.INVALID
    try:
        page = await client.list(
            status=args.phase,
            name=args.name,
            labels=labels or None,
            cron_workflow_id=args.cron,
            created_after=since,
            created_before=until,
            limit=args.limit,
            page_token=args.page or "",
        )
    except ValidationError as exc:
        option = _LIST_OPTIONS.get(exc.field or "")
        if option is None:
            raise
        say(f"aether: list: {option}: {exc.detail.removeprefix(f'{exc.field}: ')}", file=sys.stderr)
        return exits.INVALID
    runs = [run.model_dump(by_alias=True) for run in page.runs]
    if args.json:
        print_json({"runs": runs, "nextPageToken": page.next_page_token})
        return exits.OK
    say(*runs_table(runs))
    if page.next_page_token:
        say(f"more: --page {page.next_page_token}")
    return exits.OK


async def _watch(args: argparse.Namespace, client: Client) -> int:
    return await _follow(args, client, args.run_id, since=clock.now())


async def _resume(args: argparse.Namespace, client: Client) -> int:
    payload: Any = None
    if args.payload is not None:
        try:
            payload = orjson.loads(args.payload)
        except orjson.JSONDecodeError as exc:
            say(f"aether: resume: --payload is not JSON: {exc}", file=sys.stderr)
            return exits.INVALID
        if not isinstance(payload, dict):
            say("aether: resume: --payload must be a JSON object", file=sys.stderr)
            return exits.INVALID
    await client.resume(args.run_id, args.task_run_id, payload, reason=args.reason)
    _done(args, {"runID": args.run_id, "taskRunID": args.task_run_id, "resumed": True}, "resumed")
    return exits.OK


async def _cancel(args: argparse.Namespace, client: Client) -> int:
    await client.cancel(args.run_id, reason=args.reason)
    _done(args, {"runID": args.run_id, "cancelled": True}, f"{args.run_id} cancelled")
    return exits.OK


async def _retry(args: argparse.Namespace, client: Client) -> int:
    await client.retry(args.run_id, args.tasks or (), from_task=args.from_task or "", reason=args.reason)
    if args.wait:
        return await _follow(args, client, args.run_id)
    _done(args, {"runID": args.run_id, "retried": True}, f"{args.run_id} retried")
    return exits.OK


def _done(args: argparse.Namespace, data: dict[str, Any], text: str) -> None:
    if args.json:
        print_json(data)
    else:
        say(text)


# --- following a run ---------------------------------------------------------------------------------


async def _follow(args: argparse.Namespace, client: Client, run_id: str, since: str | None = None) -> int:
    """A live panel on a terminal (a line per change elsewhere, nothing with --json) until the run ends; exit by
    its phase. `since`: when watching began, to tell a run that had ended before (None: it was just started)."""
    from aether_es.cli.follow import LINES, LIVE, QUIET, finish, follow

    show = QUIET if args.json else LIVE if sys.stdout.isatty() else LINES
    began = time.monotonic()
    timeout = getattr(args, "timeout", None)
    state = await follow(client.nc, client.layout, run_id, show=show, timeout=timeout)
    finished = state.metrics.finished_at if state.terminal and state.metrics is not None else None
    ended_before = since is not None and finished is not None and clock.seconds_between(finished, since) > 0
    seconds = None if show == LIVE and state.terminal else time.monotonic() - began
    return finish(state, as_json=args.json, seconds=seconds, ended_before=ended_before)


# --- rendering ---------------------------------------------------------------------------------------


def describe(view: dict[str, Any]) -> list[str]:
    """The run's header and its task runs as an indented tree with their durations, the outputs that came by
    reference and how to resume a suspended task run; then why each failed task failed."""
    message = f" ({shown(view['message'])})" if view.get("message") else ""
    lines = [f"{view['runID']}  {view['name']}  {view['status']}{message}  created {view['createdAt']}"]
    for task in view["tasks"]:
        name = display_name(task["taskName"], task["scope"])
        took = (task.get("metrics") or {}).get("duration")
        note = "".join(f"  {part}" for part in (took, task.get("message") and shown(task["message"])) if part)
        lines.append(f"{'  ' * (task['depth'] + 1)}{name:<24} {task['status']:<10} {task['runID']}{note}")
        for parameter in (task.get("outputs") or {}).get("parameters") or []:
            ref = reference(parameter.get("value"))
            if ref is not None:
                lines.append(f"{'  ' * (task['depth'] + 2)}{parameter.get('name')}: {ref.describe()}")
        if task["status"] == ph.SUSPENDED:
            lines.append(f"{'  ' * (task['depth'] + 2)}{resume_hint(view['runID'], task['runID'])}")
    failed = failure_lines(view["tasks"])
    return lines + (["failed:", *failed] if failed else [])


def _status(run: dict[str, Any]) -> str:
    """A run's phase, and how many of its tasks wait to be resumed (the run itself stays Running)."""
    waiting = run.get("suspendedTasks") or 0
    return f"{run['status']} ({waiting} suspended)" if waiting else str(run["status"])


def runs_table(runs: list[dict[str, Any]]) -> list[str]:
    if not runs:
        return ["no runs"]
    header = ("RUN", "NAME", "PHASE", "CREATED", "FINISHED")
    rows = [(r["runID"], r["name"], _status(r), r["createdAt"], r.get("finishedAt") or "-") for r in runs]
    return table(header, rows)
