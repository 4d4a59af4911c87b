"""`aether-es replay [--run RUN ... | --all] [--verify]`: rebuild run views from the event log.

Reports how fast the log folds; with `--verify` compares every rebuilt view with the one the running engine
serves (through the API) and prints every difference. Exit 0 when all agree, 5 when any differs. `--all` keeps
only the runs in flight at each point of the log, so its memory does not grow with the log's length.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from aether_es.adapters.nats.event_store import NatsEventStore
from aether_es.cli import exits
from aether_es.cli.commands import summary
from aether_es.cli.io import print_json
from aether_es.cli.remote import RemoteError, add_remote_options, fail, remote
from aether_es.cli.terminal import say
from aether_es.client import Client
from aether_es.errors import AetherError
from aether_es.history.replay import replay_all, replay_runs, verify, verify_run
from aether_es.projections.diff import Difference
from aether_es.projections.run_state import RunState


def register(commands: Any) -> None:
    parser = commands.add_parser("replay", help=summary("replay"))
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--run", action="append", dest="runs", metavar="RUN", help="this run (repeatable)")
    which.add_argument("--all", action="store_true", help="every run in the log")
    parser.add_argument("--verify", action="store_true", help="compare with the views the running engine serves")
    add_remote_options(parser)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(handler=handle)


async def handle(args: argparse.Namespace) -> int:
    found: dict[str, list[Difference]] = {}
    try:
        async with remote("replay", args.nats, args.prefix, args) as (connection, layout):
            store = NatsEventStore(connection.nc, layout)
            client: Client | None = None

            async def check(state: RunState) -> None:
                """Each run is compared as it is rebuilt, so a replay of the whole log holds one run at a time."""
                if client is not None:
                    diff = await verify_run(store, state, client.get)
                    if diff:
                        found[state.run_id] = diff

            try:
                if args.verify:
                    client = await Client.connect(connection, prefix=layout.prefix)
                if args.all:
                    replayed = await replay_all(store, check)
                else:
                    replayed = await replay_runs(store, args.runs)
                    if client is not None:
                        found.update(await verify(store, replayed, client.get))
            except LookupError as exc:
                say(f"aether: not found: {exc.args[0]}", file=sys.stderr)
                return exits.NOT_FOUND
            except AetherError as exc:
                say(exc, file=sys.stderr)
                return exits.FAILED
    except RemoteError as error:
        return fail(error)
    report = {
        "runs": replayed.runs,
        "events": replayed.events,
        "seconds": replayed.seconds,
        "eventsPerSecond": replayed.events_per_s,
        "verified": args.verify,
        "differences": {run: [str(d) for d in diffs] for run, diffs in found.items()},
    }
    if args.json:
        print_json(report)
    else:
        say(
            f"replayed {replayed.events:,} events of {replayed.runs:,} runs in {replayed.seconds:.2f}s "
            f"({replayed.events_per_s:,.0f} events/s)"
        )
        for run, diffs in found.items():
            say(f"{run}: {len(diffs)} differences")
            for diff in diffs:
                say(f"  {diff}")
        if args.verify and not found:
            say("every rebuilt view equals the live one")
    return exits.DIFFERENT if found else exits.OK
