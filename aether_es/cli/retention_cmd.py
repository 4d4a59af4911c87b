"""`aether-es retention (--older-than DUR | --keep N) (--archive DIR | --discard) [--dry-run]`.

Removes finished runs from the log, on purpose and on the record: each chosen run's history is first
written to `DIR/<run>.jsonl` (the `history --export` format, which `history --import` restores), unless
`--discard` says to drop it; then the engine removes histories, summaries and feed events and records a
`RunsPurged` event with who and why, which `aether-es audit` lists. Runs still going are never chosen.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aether_es.adapters.nats.event_store import NatsEventStore
from aether_es.cli import exits
from aether_es.cli.commands import summary
from aether_es.cli.io import print_json
from aether_es.cli.remote import RemoteError, actor_of, add_actor_options, add_remote_options, fail, remote
from aether_es.cli.terminal import say
from aether_es.client import Client
from aether_es.errors import AetherError
from aether_es.history.exchange import export_lines
from aether_es.model import phases as ph
from aether_es.model.clock import parse_time
from aether_es.model.durations import parse_duration

PURGE_CHUNK = 500


def register(commands: Any) -> None:
    parser = commands.add_parser("retention", help=summary("retention"))
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--older-than", metavar="DURATION", help="finished runs that ended longer ago, e.g. 720h")
    which.add_argument("--keep", type=int, metavar="N", help="keep the N newest finished runs, remove the others")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--archive", type=Path, metavar="DIR", help="write each run's history here first")
    where.add_argument("--discard", action="store_true", help="remove without keeping a copy")
    parser.add_argument("--dry-run", action="store_true", help="only list the runs that would be removed")
    add_remote_options(parser)
    add_actor_options(parser)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(handler=handle)


async def handle(args: argparse.Namespace) -> int:
    cutoff = None
    if args.older_than is not None:
        seconds = parse_duration(args.older_than)
        if seconds is None or seconds < 0:
            say(f"aether: retention: --older-than {args.older_than!r} is not a duration such as 720h", file=sys.stderr)
            return exits.INVALID
        cutoff = datetime.now(UTC) - timedelta(seconds=seconds)
    if args.keep is not None and args.keep < 0:
        say("aether: retention: --keep must be 0 or more", file=sys.stderr)
        return exits.INVALID
    try:
        async with remote("retention", args.nats, args.prefix, args) as (connection, layout):
            client = await Client.connect(connection, prefix=layout.prefix, actor=actor_of(args))
            try:
                finished = [run async for run in client.runs(status=sorted(ph.TERMINAL))]
                if cutoff is not None:
                    chosen = [r.run_id for r in finished if r.finished_at and parse_time(r.finished_at) < cutoff]
                else:
                    chosen = [r.run_id for r in finished[args.keep :]]
                purge_ids: list[str] = []
                if chosen and not args.dry_run:
                    if args.archive is not None:
                        await _archive(NatsEventStore(connection.nc, layout), chosen, args.archive)
                    archive = str(args.archive.resolve()) if args.archive is not None else ""
                    for start in range(0, len(chosen), PURGE_CHUNK):
                        part = chosen[start : start + PURGE_CHUNK]
                        purge_ids.append(await client.purge(part, archive=archive, reason=args.reason))
            except AetherError as exc:
                say(exc, file=sys.stderr)
                return exits.of_error(exc)
    except RemoteError as error:
        return fail(error)
    if args.json:
        result = {"runIDs": chosen, "purged": not args.dry_run, "purgeIDs": purge_ids}
        print_json(result)
    else:
        verb = "would remove" if args.dry_run else "removed"
        say(
            f"{verb} {len(chosen)} finished runs"
            + (f", archived in {args.archive}" if args.archive and not args.dry_run else "")
        )
        for run_id in chosen:
            say(f"  {run_id}")
    return exits.OK


async def _archive(store: NatsEventStore, run_ids: list[str], folder: Path) -> None:
    """Every chosen run's history written out before anything is removed."""
    folder.mkdir(parents=True, exist_ok=True)
    for run_id in run_ids:
        (folder / f"{run_id}.jsonl").write_bytes(b"".join(export_lines(await store.load(run_id))))
