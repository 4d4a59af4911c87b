"""The `aether-es` command."""

from __future__ import annotations

import argparse
import importlib
import inspect
import logging
import os
import sys
from collections.abc import Sequence

from aether_es.cli.commands import COMMANDS
from aether_es.cli.terminal import PrintableFormatter

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID = 2


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser, with only the command `argv` names defined (every command listed)."""
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
    chosen = _command_in(argv if argv is not None else sys.argv[1:])
    if chosen is not None:
        importlib.import_module(COMMANDS[chosen][0]).register(commands)
    for name, (_, summary) in COMMANDS.items():
        if name not in commands.choices:
            commands.add_parser(name, help=summary)  # named for the listing; only the chosen one is defined
    return parser


def _command_in(argv: Sequence[str]) -> str | None:
    """The command the arguments name (the first word that is not an option), if it is one."""
    for word in argv:
        if not word.startswith("-"):
            return word if word in COMMANDS else None
    return None


def setup_logging(verbosity: int) -> None:
    """Problems (WARNING and up) always reach stderr, one line each and made `printable`; stdout stays the
    command's own output.

    `-v` adds this package's INFO lines; `-vv` adds DEBUG from everything, the NATS client included.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(PrintableFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.DEBUG if verbosity >= 2 else logging.WARNING, handlers=[handler])
    if verbosity == 1:
        logging.getLogger("aether_es").setLevel(logging.INFO)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    try:
        if inspect.iscoroutinefunction(args.handler):
            import asyncio  # only for the commands that need it: `validate` and `--help` start faster without

            code: int = asyncio.run(args.handler(args))
        else:
            code = args.handler(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (for example `| head`): stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    return code


if __name__ == "__main__":
    sys.exit(main())
