"""`aether-es workers`: list the live workers of a running system, from its worker registry.

Needs the system's NATS URL (`--nats` or $AETHER_NATS_URL): there is no embedded server to fall back on,
since an embedded server started here would hold no workers. Exit 0 with the list (possibly empty), 1 when
the server or its registry cannot be reached, 2 when no URL was given.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import orjson
from nats.js.errors import BucketNotFoundError

from aether_es.adapters.nats.connection import connect
from aether_es.adapters.nats.layout import Layout
from aether_es.adapters.nats.worker_registry import NatsWorkerRegistry, info_to_dict
from aether_es.ports.worker_registry import WorkerInfo
from aether_es.runtime.stack import NATS_URL_ENV, resolve_url


def register(commands: Any) -> None:
    parser = commands.add_parser("workers", help="list the live workers of a running system")
    parser.add_argument("--nats", help=f"NATS URL of the running system (default: ${NATS_URL_ENV})")
    parser.add_argument("--prefix", default="aether", help="the system's layout prefix (default: aether)")
    parser.add_argument("--json", action="store_true", help="print the workers as a JSON array")
    parser.set_defaults(handler=handle)


async def handle(args: argparse.Namespace) -> int:
    url = resolve_url(args.nats)
    if url is None:
        print(
            f"aether: workers: no NATS URL: pass --nats URL or set ${NATS_URL_ENV} to the running system's server",
            file=sys.stderr,
        )
        return 2
    try:
        layout = Layout(prefix=args.prefix)
    except ValueError as exc:
        print(f"aether: workers: {exc}", file=sys.stderr)
        return 2
    try:
        # One retry, no reconnects: a one-shot command should fail fast (0 attempts means "forever" in nats-py).
        connection = await connect(url, name="aether-es-workers", allow_reconnect=False, max_reconnect_attempts=1)
    except Exception as exc:
        print(f"aether: workers: cannot connect to {url}: {str(exc) or type(exc).__name__}", file=sys.stderr)
        return 1
    try:
        try:
            await connection.js.key_value(layout.workers_bucket)
        except BucketNotFoundError:
            print(
                f"aether: workers: no worker registry (bucket {layout.workers_bucket}) on {url}; "
                "is an aether-es system with this prefix running there?",
                file=sys.stderr,
            )
            return 1
        workers = await NatsWorkerRegistry(connection.js, layout).list_all()
    except Exception as exc:
        print(f"aether: workers: reading the registry failed: {str(exc) or type(exc).__name__}", file=sys.stderr)
        return 1
    finally:
        await connection.close()
    if args.json:
        sys.stdout.write(orjson.dumps([info_to_dict(w) for w in workers], option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        print_table(workers)
    return 0


def print_table(workers: list[WorkerInfo]) -> None:
    if not workers:
        print("no live workers")
        return
    header = ("ID", "EXECUTOR TYPES", "REGISTERED", "HEARTBEAT")
    rows = [(w.id, ",".join(w.executor_types), w.registered_at, w.heartbeat_at) for w in workers]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[-1])
