"""`--allow-module`: which modules' functions a command's `python` executor may call (worker, run, serve)."""

from __future__ import annotations

import argparse

from aether_es.worker.executors.python import ALLOW_OPTION


def add_allow_module(parser: argparse.ArgumentParser, default_note: str = "none") -> None:
    parser.add_argument(
        ALLOW_OPTION,
        dest="allow_modules",
        action="append",
        default=[],
        type=module_name,
        metavar="MODULE",
        help=f"a module whose functions (its submodules' too) the python executor may call (repeatable; "
        f"default {default_note})",
    )


def module_name(text: str) -> str:
    """A dotted module name, else an argparse error naming it."""
    if not all(part.isidentifier() for part in text.split(".")):
        raise argparse.ArgumentTypeError(f"not a module name: {text!r}")
    return text
