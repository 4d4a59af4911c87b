"""The `aether-es` command."""

from __future__ import annotations

import argparse
import importlib
import inspect
import logging
import os
import re
import sys
from collections.abc import Sequence
from typing import NoReturn

from aether_es.cli.commands import COMMANDS
from aether_es.cli.terminal import PrintableFormatter
from aether_es.spelling import nearest


class Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors name the nearest choice to a misspelt one (its subcommands' parsers
    are of this class too)."""

    def error(self, message: str) -> NoReturn:
        wrong = _INVALID_CHOICE.search(message)
        if wrong is not None:
            close = nearest(wrong.group(1), (choice.strip(" '") for choice in wrong.group(2).split(",")))
            if close is not None:
                message += f"; did you mean {close!r}?"
        super().error(message)

    def unrecognized(self, extras: Sequence[str]) -> NoReturn:
        """Refuse arguments this (sub)command does not take, naming its nearest option to each misspelt one."""
        options = [option for action in self._actions for option in action.option_strings]
        named = []
        for extra in extras:
            word = extra.split("=", 1)[0]
            close = nearest(word, options) if word.startswith("-") else None
            named.append(extra if close is None else f"{extra} (did you mean {close}?)")
        self.error(f"unrecognized arguments: {' '.join(named)}")


_INVALID_CHOICE = re.compile(r"invalid choice: '([^']*)' \(choose from (.*)\)")
"""argparse's message; the choices are quoted or not depending on the Python version."""


class _Version(argparse.Action):
    """`--version`: the installed package's version, looked up only when asked."""

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        from importlib.metadata import version

        sys.stdout.write(f"aether-es {version('aether-es')}\n")
        parser.exit()


def build_parser(argv: Sequence[str] | None = None) -> Parser:
    """The parser, with only the command `argv` names defined (every command listed)."""
    parser = Parser(prog="aether-es", description="Event-sourced aether/v1 workflows on NATS JetStream")
    parser.add_argument("--version", action=_Version, nargs=0, help="print the version and exit")
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


def _chosen(parser: Parser, args: argparse.Namespace) -> Parser:
    """The parser of the (sub)command the arguments chose: the one whose options a misspelt option was meant for."""
    while True:
        commands = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
        chosen = commands.choices.get(getattr(args, commands.dest, None) or "") if commands is not None else None
        if not isinstance(chosen, Parser):
            return parser
        parser = chosen


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
    args, extras = parser.parse_known_args(argv)
    if extras:
        _chosen(parser, args).unrecognized(extras)
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
