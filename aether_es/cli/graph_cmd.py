"""`aether-es graph FILE|RUN [--format mermaid|dot|svg|json]`: a picture of a workflow's DAGs and loops.

FILE (or `-` for standard input) is a Workflow or CronWorkflow document; anything else is taken as a run id
of the running system, whose document and task phases are read from its history (nodes coloured by phase).
`svg` is drawn from the same layout as the web UI's graph, `json` is that layout itself; `mermaid` and `dot`
leave the placing to their tools (`aether-es graph FILE --format dot | dot -Tsvg` for Graphviz's).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import nats.errors

from aether_es.cli import exits
from aether_es.cli.commands import summary
from aether_es.cli.io import print_json
from aether_es.cli.remote import RemoteError, add_remote_options, fail, remote
from aether_es.cli.terminal import say
from aether_es.errors import AetherError, NotFoundError
from aether_es.graph.layout import Graph, GraphError, layout_run, layout_workflow
from aether_es.graph.render import FORMATS, render
from aether_es.model.documents import CronWorkflow, Workflow


def register(commands: Any) -> None:
    parser = commands.add_parser("graph", help=summary("graph"))
    parser.add_argument("source", metavar="FILE|RUN", help="a workflow document (- for stdin) or a run id")
    parser.add_argument(
        "--format", choices=(*FORMATS, "json"), default="mermaid", help="what to print (default: mermaid)"
    )
    parser.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of standard output")
    add_remote_options(parser)
    parser.set_defaults(handler=handle)


async def handle(args: argparse.Namespace) -> int:
    try:
        if args.source == "-" or Path(args.source).is_file():
            graph = _of_document(args.source)
        else:
            graph = await _of_run(args)
    except RemoteError as error:
        detail = str(error).removeprefix("aether: graph: ")
        return fail(RemoteError(f"aether: graph: {args.source} is no file, and as a run id: {detail}", error.code))
    except GraphError as exc:
        say(f"aether: graph: {exc}", file=sys.stderr)
        return exits.INVALID
    except AetherError as exc:
        say(exc, file=sys.stderr)
        return exits.of_error(exc)
    if graph is None:
        return exits.INVALID
    return _write(graph, args)


def _of_document(path: str) -> Graph | None:
    from aether_es.cli.validate_cmd import read_valid
    from aether_es.model.loading import load_document

    data = read_valid(path, command="graph")
    if data is None:
        return None
    document = load_document(data)
    if isinstance(document, CronWorkflow):
        document = Workflow(metadata=document.metadata, spec=document.spec.workflow_spec)
    return layout_workflow(document)


async def _of_run(args: argparse.Namespace) -> Graph:
    from aether_es.adapters.nats.event_store import NatsEventStore
    from aether_es.adapters.nats.layout import check_id
    from aether_es.projections.run_state import fold

    try:
        run_id = check_id("run id", args.source)
    except ValueError:
        raise GraphError(f"{args.source!r} is neither a file nor a run id") from None
    async with remote("graph", args.nats, args.prefix, args) as (connection, layout):
        try:
            stored = await NatsEventStore(connection.nc, layout).load(run_id)
        except (nats.errors.Error, TimeoutError) as exc:
            raise RemoteError(
                f"aether: graph: cannot read the history of run {run_id}: {str(exc) or type(exc).__name__}",
                exits.FAILED,
            ) from None
    if not stored:
        raise NotFoundError(f'workflow run "{run_id}" not found, and there is no file of that name')
    state = fold([envelope for s in stored for envelope in s.commit.envelopes])
    return layout_run(state)


def _write(graph: Graph, args: argparse.Namespace) -> int:
    if args.format == "json" and not args.output:
        print_json(graph.to_json())
        return exits.OK
    text = render(graph, args.format) if args.format != "json" else _json(graph)
    if not args.output:
        sys.stdout.write(text)
        return exits.OK
    try:
        Path(args.output).write_text(text)
    except OSError as exc:
        say(f"aether: graph: cannot write {args.output}: {exc.strerror or exc}", file=sys.stderr)
        return exits.FAILED
    return exits.OK


def _json(graph: Graph) -> str:
    import orjson

    return orjson.dumps(graph.to_json(), option=orjson.OPT_INDENT_2).decode() + "\n"
