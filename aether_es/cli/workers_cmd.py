"""`aether-es workers`: list the live workers of a running system, from its worker registry.

Needs the system's NATS URL (`--nats` or $AETHER_NATS_URL): there is no embedded server to fall back on,
since an embedded server started here would hold no workers. Exit 0 with the list (possibly empty), 1 when
the server or its registry cannot be reached, 2 when no URL was given.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from nats.js.errors import BucketNotFoundError

from aether_es.adapters.nats.worker_registry import NatsWorkerRegistry, info_to_dict
from aether_es.cli.commands import summary
from aether_es.cli.io import print_json
from aether_es.cli.remote import RemoteError, add_remote_options, fail, remote
from aether_es.cli.tables import table
from aether_es.cli.terminal import say
from aether_es.ports.worker_registry import WorkerInfo


def register(commands: Any) -> None:
    parser = commands.add_parser("workers", help=summary("workers"))
    add_remote_options(parser)
    parser.add_argument("--json", action="store_true", help="print the workers as a JSON array")
    parser.set_defaults(handler=handle)


async def handle(args: argparse.Namespace) -> int:
    try:
        async with remote("workers", args.nats, args.prefix, args) as (connection, layout):
            try:
                await connection.js.key_value(layout.workers_bucket)
            except BucketNotFoundError:
                say(
                    f"aether: workers: no worker registry (bucket {layout.workers_bucket}); "
                    "is an aether-es system with this prefix running there?",
                    file=sys.stderr,
                )
                return 1
            try:
                workers = await NatsWorkerRegistry(connection.js, layout).list_all()
            except Exception as exc:
                say(f"aether: workers: reading the registry failed: {str(exc) or type(exc).__name__}", file=sys.stderr)
                return 1
    except RemoteError as error:
        return fail(error)
    if args.json:
        print_json([info_to_dict(w) for w in workers])
    else:
        print_table(workers)
    return 0


def print_table(workers: list[WorkerInfo]) -> None:
    if not workers:
        say("no live workers")
        return
    header = ("ID", "EXECUTOR TYPES", "REGISTERED", "HEARTBEAT")
    say(*table(header, [(w.id, ",".join(w.executor_types), w.registered_at, w.heartbeat_at) for w in workers]))
