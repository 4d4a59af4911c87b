"""Reading documents from files or standard input, and printing JSON for scripts."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import orjson

from aether_es.cli.terminal import json_text


def read_document(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    return Path(path).read_bytes()


def print_json(data: Any) -> None:
    """What `--json` prints: indented JSON and a newline, with no raw terminal control in it."""
    sys.stdout.write(json_text(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode()) + "\n")
