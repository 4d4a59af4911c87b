"""`aether-es validate FILE`: `ok`, or the validation error and exit code 2."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from aether_es.cli.io import read_document
from aether_es.errors import ValidationError
from aether_es.model.defaults import fill_cron_defaults, fill_defaults
from aether_es.model.documents import CronWorkflow
from aether_es.model.loading import load_document
from aether_es.model.validation import validate_cron_workflow, validate_workflow


def register(commands: Any) -> None:
    parser = commands.add_parser("validate", help="check a Workflow or CronWorkflow document")
    parser.add_argument("file", help="path to the JSON document, or - for standard input")
    parser.set_defaults(handler=handle)


def check(data: bytes) -> None:
    """Raise ValidationError (or DocumentError) exactly as a submit would."""
    document = load_document(data)
    if isinstance(document, CronWorkflow):
        validate_cron_workflow(fill_cron_defaults(document))
    else:
        validate_workflow(fill_defaults(document))


def handle(args: argparse.Namespace) -> int:
    try:
        check(read_document(args.file))
    except ValidationError as exc:
        print(exc, file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"aether: cannot read {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print("ok")
    return 0
