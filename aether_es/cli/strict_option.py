"""`--strict`: refuse a document that has warnings (validate, run, submit, cron submit), rather than run it as Aether
would."""

from __future__ import annotations

import argparse


def add_strict_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--strict",
        action="store_true",
        help="refuse (exit 2) a document with warnings: unknown fields, fields Aether ignores where they are, "
        "{{...}} left literal in argument values, loop iterations that lose their values",
    )
