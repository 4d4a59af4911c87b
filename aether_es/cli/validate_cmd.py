"""`aether-es validate FILE [--strict]`: `ok`, or the validation error and exit code 2.

A valid document may still say what Aether will not do (`model.traps`): each such warning is printed on
stderr, and `--strict` (of `validate`, `run` and `submit`) refuses the document for it.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

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


def read_valid(path: str, *, strict: bool = False, command: str = "validate") -> bytes | None:
    """The document's bytes when it is valid; otherwise None, with the reason printed on stderr. Its warnings
    are printed on stderr too, and refuse it when `strict`."""
    try:
        data = read_document(path)
        check(data)
    except ValidationError as exc:
        say(exc, file=sys.stderr)
        return None
    except OSError as exc:
        say(f"aether: cannot read {path}: {exc.strerror or exc}", file=sys.stderr)
        return None
    warnings = document_warnings(data)
    say(*(f"aether: warning: {warning}" for warning in warnings), file=sys.stderr)
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
