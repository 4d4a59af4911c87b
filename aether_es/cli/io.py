"""Reading documents from files or standard input."""

from __future__ import annotations

import sys
from pathlib import Path


def read_document(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    return Path(path).read_bytes()
