"""`aether-es history RUN [--json] [--export FILE]` and `aether-es history --import FILE`.

Every event of a run with its number, time, actor, cause and what it says; `--export` writes it as JSON
lines (one event each, with its commit id), which `--import` appends to another system's JetStream, decision
by decision, so a run can be examined elsewhere. Reads and writes the event log directly.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import orjson

from aether_es.adapters.nats.event_store import NatsEventStore
from aether_es.adapters.nats.layout import check_id, ensure
from aether_es.cli import exits
from aether_es.cli.commands import summary
from aether_es.cli.io import print_json
from aether_es.cli.remote import RemoteError, add_remote_options, fail, remote
from aether_es.cli.tables import table
from aether_es.cli.terminal import say
from aether_es.events.codec import CodecError
from aether_es.history.exchange import export_lines, import_records, parse_lines
from aether_es.history.timeline import describe, entries


def register(commands: Any) -> None:
    parser = commands.add_parser("history", help=summary("history"))
    parser.add_argument("run_id", nargs="?", help="the run")
    parser.add_argument("--export", metavar="FILE", help="write the run's history as JSON lines (- for stdout)")
    parser.add_argument("--import", dest="import_file", metavar="FILE", help="append an exported history here")
    add_remote_options(parser)
    parser.add_argument("--json", action="store_true", help="print the events as a JSON array")
    parser.set_defaults(handler=handle)


async def handle(args: argparse.Namespace) -> int:
    if (args.run_id is None) == (args.import_file is None):
        say("aether: history: give a run id, or --import FILE (not both)", file=sys.stderr)
        return exits.INVALID
    try:
        async with remote("history", args.nats, args.prefix, args) as (connection, layout):
            store = NatsEventStore(connection.nc, layout)
            if args.import_file is not None:
                await ensure(connection.js, layout)
                return await _import(store, args.import_file)
            try:
                commits = await store.load(check_id("run id", args.run_id))
            except ValueError as exc:
                say(f"aether: history: {exc}", file=sys.stderr)
                return exits.INVALID
    except RemoteError as error:
        return fail(error)
    if not commits:
        say(f'aether: not found: workflow run "{args.run_id}" not found', file=sys.stderr)
        return exits.NOT_FOUND
    if args.export is not None:
        lines = b"".join(export_lines(commits))
        if args.export == "-":
            sys.stdout.buffer.write(lines)
        else:
            Path(args.export).write_bytes(lines)
        return exits.OK
    if args.json:
        records = [orjson.loads(line) for line in export_lines(commits)]
        print_json(records)
        return exits.OK
    names: dict[str, str] = {}
    rows = [
        (
            str(e.number),
            e.envelope.time,
            e.envelope.actor,
            e.envelope.causation_id,
            e.envelope.type,
            describe(e.envelope, names),
        )
        for e in entries(commits)
    ]
    say(*table(("#", "TIME", "ACTOR", "CAUSE", "EVENT", "WHAT"), rows))
    return exits.OK


async def _import(store: NatsEventStore, path: str) -> int:
    try:
        text = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
        result = await import_records(store, parse_lines(text.splitlines()))
    except OSError as exc:
        say(f"aether: history: cannot read {path}: {exc.strerror or exc}", file=sys.stderr)
        return exits.INVALID
    except CodecError as exc:
        say(f"aether: history: {path}: {exc}", file=sys.stderr)
        return exits.INVALID
    for run_id, why in result.skipped.items():
        say(f"skipped {run_id}: {why}", file=sys.stderr)
    say(f"imported {len(result.runs)} runs, {result.events} events")
    return exits.OK if not result.skipped else exits.INVALID
