"""`aether-es validate FILE [--strict]`: `ok`, or the validation error and exit code 2.

A valid document may still say what Aether will not do (`model.traps`): each such warning is printed on
stderr, and `--strict` (of `validate` and `run`) refuses the document for it. `submit` and `cron submit` print
the warnings of their reply instead, and pass `--strict` on: the engine judges the document it stores (with its
`-p` arguments), and its refusal names each warning.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from typing import Any, Protocol

from aether_es.cli.commands import summary
from aether_es.cli.io import read_document
from aether_es.cli.strict_option import add_strict_option
from aether_es.cli.terminal import say
from aether_es.errors import ValidationError
from aether_es.model.defaults import fill_cron_defaults, fill_defaults
from aether_es.model.documents import CronWorkflow
from aether_es.model.loading import load_document
from aether_es.model.traps import DocumentWarning, document_warnings
from aether_es.model.validation import validate_cron_workflow, validate_workflow


def register(commands: Any) -> None:
    parser = commands.add_parser("validate", help=summary("validate"))
    parser.add_argument("file", help="path to the JSON document, or - for standard input")
    add_strict_option(parser)
    parser.set_defaults(handler=handle)


def check(data: bytes) -> None:
    """Raise ValidationError (or DocumentError) exactly as a submit would."""
    document = load_document(data)
    if isinstance(document, CronWorkflow):
        validate_cron_workflow(fill_cron_defaults(document))
    else:
        validate_workflow(fill_defaults(document))


def read_checked(path: str) -> bytes | None:
    """The document's bytes when it is valid; otherwise None, with the reason printed on stderr."""
    try:
        data = read_document(path)
        check(data)
    except ValidationError as exc:
        say(exc, file=sys.stderr)
        return None
    except OSError as exc:
        say(f"aether: cannot read {path}: {exc.strerror or exc}", file=sys.stderr)
        return None
    return data


class AnyWarning(Protocol):
    """A document's warning, as `model.traps` finds it or as a submit reply gives it."""

    @property
    def path(self) -> str: ...

    @property
    def message(self) -> str: ...


def print_warnings(warnings: Iterable[AnyWarning]) -> None:
    """Each warning on stderr, one line: `aether: warning: <path>: <message>`."""
    say(*(f"aether: warning: {w.path}: {w.message}" for w in warnings), file=sys.stderr)


def read_valid(path: str, *, strict: bool = False, command: str = "validate") -> bytes | None:
    """`read_checked`, printing the document's warnings on stderr too, and refusing it for them when
    `strict`."""
    data = read_checked(path)
    if data is None:
        return None
    warnings = document_warnings(data)
    print_warnings(warnings)
    if strict and warnings:
        say(f"aether: {command}: refused by --strict: {_count(warnings)} above", file=sys.stderr)
        return None
    return data


def _count(warnings: list[DocumentWarning]) -> str:
    return "1 warning" if len(warnings) == 1 else f"{len(warnings)} warnings"


def handle(args: argparse.Namespace) -> int:
    if read_valid(args.file, strict=args.strict) is None:
        return 2
    say("ok")
    return 0
