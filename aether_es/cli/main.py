"""The `aether-es` command."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence

from aether_es.cli import (
    audit_cmd,
    conformance_cmd,
    cron_cmd,
    events_cmd,
    history_cmd,
    replay_cmd,
    retention_cmd,
    run_cmd,
    runs_cmd,
    serve_cmd,
    validate_cmd,
    worker_cmd,
    workers_cmd,
)
from bench import cli as bench_cli

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aether-es", description="Event-sourced aether/v1 workflows on NATS JetStream"
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="log more on stderr: -v what the system does (INFO), -vv everything (DEBUG); problems are always logged",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    validate_cmd.register(commands)
    run_cmd.register(commands)
    serve_cmd.register(commands)
    runs_cmd.register(commands)
    events_cmd.register(commands)
    history_cmd.register(commands)
    replay_cmd.register(commands)
    audit_cmd.register(commands)
    retention_cmd.register(commands)
    conformance_cmd.register(commands)
    cron_cmd.register(commands)
    workers_cmd.register(commands)
    worker_cmd.register(commands)
    bench_cli.register(commands)
    return parser


def setup_logging(verbosity: int) -> None:
    """Problems (WARNING and up) always reach stderr, one line each; stdout stays the command's own output.

    `-v` adds this package's INFO lines; `-vv` adds DEBUG from everything, the NATS client included.
    """
    logging.basicConfig(
        level=logging.DEBUG if verbosity >= 2 else logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if verbosity == 1:
        logging.getLogger("aether_es").setLevel(logging.INFO)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    try:
        code: int = asyncio.run(args.handler(args)) if asyncio.iscoroutinefunction(args.handler) else args.handler(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (for example `| head`): stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    return code


if __name__ == "__main__":
    sys.exit(main())
