"""`aether-es audit [--since TIME] [--actor WHO] [--run RUN]`: who issued which command, when and why."""

from __future__ import annotations

import argparse
import sys
from collections.abc import AsyncIterator
from typing import Any

from aether_es.adapters.nats.event_store import NatsEventStore
from aether_es.adapters.nats.layout import check_id
from aether_es.cli import exits
from aether_es.cli.commands import summary
from aether_es.cli.io import print_json
from aether_es.cli.moments import moment
from aether_es.cli.remote import RemoteError, add_remote_options, fail, remote
from aether_es.cli.tables import table
from aether_es.cli.terminal import say
from aether_es.history.audit import audit_entries
from aether_es.ports.event_store import StoredCommit


def register(commands: Any) -> None:
    parser = commands.add_parser("audit", help=summary("audit"))
    parser.add_argument("--since", help="only commands at or after this time: RFC3339, or a duration ago (1h, 2d)")
    parser.add_argument("--actor", help="only commands of this actor (`alice` matches user:alice)")
    parser.add_argument("--run", help="only commands on this run (or cron.<id> for a CronWorkflow)")
    add_remote_options(parser)
    parser.add_argument("--json", action="store_true", help="print the entries as a JSON array")
    parser.set_defaults(handler=handle)


async def handle(args: argparse.Namespace) -> int:
    try:
        since = moment("--since", args.since) if args.since else None
    except ValueError as exc:
        say(f"aether: audit: {exc}", file=sys.stderr)
        return exits.INVALID
    try:
        async with remote("audit", args.nats, args.prefix, args) as (connection, layout):
            store = NatsEventStore(connection.nc, layout)
            commits = store.load_all()
            if args.run:  # one run's history, not the whole log; a run without one is not found
                try:
                    history = await store.load(check_id("--run", args.run))
                except ValueError as exc:
                    say(f"aether: audit: {exc}", file=sys.stderr)
                    return exits.INVALID
                if not history:
                    say(f'aether: not found: no history of "{args.run}"', file=sys.stderr)
                    return exits.NOT_FOUND
                commits = _each(history)
            entries = await audit_entries(commits, since=since, actor=args.actor, aggregate=args.run)
    except RemoteError as error:
        return fail(error)
    if args.json:
        data = [entry.to_dict() for entry in entries]
        print_json(data)
    elif not entries:
        say("no commands")
    else:
        rows = [(e.time, e.actor, e.command, e.aggregate, e.reason or "-") for e in entries]
        say(*table(("TIME", "ACTOR", "COMMAND", "ON", "REASON"), rows))
    return exits.OK


async def _each(commits: list[StoredCommit]) -> AsyncIterator[StoredCommit]:
    for commit in commits:
        yield commit
