"""`aether-es engines`: the live engines of a running system, what each holds, and its partition count.

Read from the leases bucket, where every engine heartbeats its record (`adapters/nats/membership.py`), as
`workers` reads the worker registry: exit 0 with the list, 1 when the server or the bucket cannot be
reached, 2 when no URL was found.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from nats.js.errors import BucketNotFoundError

from aether_es.api import messages as m
from aether_es.api.engines import read_engines
from aether_es.cli.commands import summary
from aether_es.cli.io import print_json
from aether_es.cli.remote import RemoteError, add_remote_options, fail, remote
from aether_es.cli.tables import table
from aether_es.cli.terminal import say


def register(commands: Any) -> None:
    parser = commands.add_parser("engines", help=summary("engines"))
    add_remote_options(parser)
    parser.add_argument("--json", action="store_true", help="print the engines and the partition count as JSON")
    parser.set_defaults(handler=handle)


async def handle(args: argparse.Namespace) -> int:
    try:
        async with remote("engines", args.nats, args.prefix, args) as (connection, layout):
            try:
                reply = await read_engines(connection.js, layout)
            except BucketNotFoundError:
                say(
                    f"aether: engines: no leases bucket ({layout.leases_bucket}); "
                    "is an aether-es system with this prefix running there?",
                    file=sys.stderr,
                )
                return 1
            except Exception as exc:
                say(f"aether: engines: reading the leases failed: {str(exc) or type(exc).__name__}", file=sys.stderr)
                return 1
    except RemoteError as error:
        return fail(error)
    if args.json:
        print_json(reply.model_dump(by_alias=True))
    else:
        print_table(reply)
    return 0


def print_table(reply: m.ListEnginesReply) -> None:
    held = {p for engine in reply.engines for p in engine.partitions}
    orphans = [str(p) for p in range(reply.partition_count) if p not in held]
    engines = f"{len(reply.engines)} live engine{'' if len(reply.engines) == 1 else 's'}"
    say(f"{reply.partition_count} partitions, {engines}" + (f"; held by none: {','.join(orphans)}" if orphans else ""))
    if not reply.engines:
        return
    header = ("ENGINE", "HOST", "PID", "STARTED", "PARTITIONS", "SINGLETONS", "LEASE AGES")
    say(*table(header, [_row(engine) for engine in reply.engines]))


def _row(engine: m.EngineView) -> tuple[str, ...]:
    ages = sorted(engine.lease_ages.values())
    span = "-" if not ages else f"{ages[0]:.1f}-{ages[-1]:.1f} s" if len(ages) > 1 else f"{ages[0]:.1f} s"
    return (
        engine.engine_id,
        engine.host,
        str(engine.pid),
        engine.started_at,
        ",".join(map(str, engine.partitions)) or "-",
        ",".join(engine.singletons) or "-",
        span,
    )
