"""`aether-es cron submit|list|get|update|delete|suspend|resume|trigger`: the CronWorkflows of a running system.

Each action is a request to the serving engine's API (`crons.*`), as the run commands are: the engine
schedules what changed at once, and the commands need only the API's permissions (the `operator` role). Exit 0
on success, 1 when the system cannot be reached, 2 for invalid input or what the cron's state refuses (a name
in use, suspending a suspended cron), 3 when the cron workflow does not exist (or was deleted).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from aether_es.cli import exits
from aether_es.cli.commands import summary
from aether_es.cli.io import print_json
from aether_es.cli.remote import RemoteError, actor_of, add_actor_options, add_remote_options, fail, remote
from aether_es.cli.strict_option import add_strict_option
from aether_es.cli.tables import table
from aether_es.cli.terminal import say
from aether_es.cli.validate_cmd import print_warnings, read_checked, read_valid
from aether_es.client import Client
from aether_es.errors import AetherError


def register(commands: Any) -> None:
    parser = commands.add_parser("cron", help=summary("cron"))
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    submit = actions.add_parser("submit", help="submit a CronWorkflow document")
    submit.add_argument("file")
    add_strict_option(submit)
    actions.add_parser("list", help="list cron workflows")
    get = actions.add_parser("get", help="show a cron workflow and its runs")
    get.add_argument("cron_id")
    update = actions.add_parser("update", help="replace a cron workflow's settings (its workflowSpec is fixed)")
    update.add_argument("cron_id")
    update.add_argument("file")
    delete = actions.add_parser("delete", help="stop a cron workflow (its runs are kept)")
    delete.add_argument("cron_id")
    commands_on_one = [delete]
    for name, text in (
        ("suspend", "stop scheduling a cron workflow until it is resumed"),
        ("resume", "schedule a suspended cron workflow again"),
        ("trigger", "start a run of a cron workflow now, outside its schedule (even while suspended)"),
    ):
        command = actions.add_parser(name, help=text)
        command.add_argument("cron_id")
        commands_on_one.append(command)
    for action in (submit, get, update, *commands_on_one, actions.choices["list"]):
        add_remote_options(action)
        if action in (submit, update, *commands_on_one):
            add_actor_options(action)
        action.add_argument("--json", action="store_true", help="print JSON for scripts")
    parser.set_defaults(handler=handle)


async def handle(args: argparse.Namespace) -> int:
    document = None
    if args.action in ("submit", "update"):
        # submit prints the warnings of the engine's reply (or its refusal under --strict) instead
        document = read_checked(args.file) if args.action == "submit" else read_valid(args.file)
        if document is None:
            return exits.INVALID
    try:
        async with remote("cron", args.nats, args.prefix, args) as (connection, layout):
            client = await Client.connect(connection, prefix=layout.prefix, actor=actor_of(args))
            try:
                return await _act(args, client, document)
            except AetherError as exc:
                say(exc, file=sys.stderr)
                return exits.of_error(exc)
    except RemoteError as error:
        return fail(error)


async def _act(args: argparse.Namespace, client: Client, document: bytes | None) -> int:
    cron_id = getattr(args, "cron_id", "")
    if args.action == "submit":
        assert document is not None
        submitted = await client.cron_submit_info(document, reason=args.reason, strict=args.strict)
        print_warnings(submitted.warnings)
        warnings = [w.model_dump(by_alias=True) for w in submitted.warnings]
        _print(args, {"cronWorkflowID": submitted.cron_workflow_id, "warnings": warnings}, [submitted.cron_workflow_id])
    elif args.action == "list":
        views = await client.cron_list()
        _print(args, views, _table(views))
    elif args.action == "get":
        view = await client.cron_get(cron_id)
        _print(args, view, _describe(view))
    elif args.action == "update":
        assert document is not None
        await client.cron_update(cron_id, document, reason=args.reason)
        _print(args, {"cronWorkflowID": cron_id, "updated": True}, [f"{cron_id} updated"])
    elif args.action == "trigger":
        run_id = await client.cron_trigger(cron_id, reason=args.reason)
        _print(args, {"cronWorkflowID": cron_id, "runID": run_id}, [run_id])
    else:
        command = {"suspend": client.cron_suspend, "resume": client.cron_resume, "delete": client.cron_delete}
        await command[args.action](cron_id, reason=args.reason)
        done = {"suspend": "suspended", "resume": "resumed", "delete": "deleted"}[args.action]
        _print(args, {"cronWorkflowID": cron_id, done: True}, [f"{cron_id} {done}"])
    return exits.OK


def _print(args: argparse.Namespace, data: Any, lines: list[str]) -> None:
    if args.json:
        print_json(data)
    else:
        say(*lines)


def _table(views: list[dict[str, Any]]) -> list[str]:
    if not views:
        return ["no cron workflows"]
    header = ("ID", "NAME", "SCHEDULE", "TIMEZONE", "SUSPENDED", "LAST SCHEDULED", "RUNS")
    rows = [
        (
            v["cronWorkflowID"],
            v["name"],
            v["schedule"],
            v["timezone"],
            "yes" if v["suspend"] else "no",
            v["status"]["lastScheduleTime"] or "-",
            str(len(v["runIDs"])),
        )
        for v in views
    ]
    return table(header, rows)


def _describe(view: dict[str, Any]) -> list[str]:
    lines = [
        f"{view['cronWorkflowID']}  {view['name']}  schedule {view['schedule']} ({view['timezone']})"
        + ("  [suspended]" if view["suspend"] else ""),
        f"policy {view['concurrencyPolicy']}; last scheduled {view['status']['lastScheduleTime'] or '-'};"
        f" {view['status']['skipped']} skipped",
    ]
    for run in view["runs"]:
        lines.append(f"  {run['runID']}  {run['status']:<10} created {run['createdAt']}")
    return lines
