"""What reaches a terminal: values rendered so that none of them can steer it.

Labels, parameters, actors, reasons and messages come from whoever submitted or steered a run. Printed
raw, an escape sequence in one clears the screen, retitles the window or rewrites earlier lines, and a bidi
override makes text read backwards. Every human-readable line of `aether-es` passes through `printable`,
which shows such characters as escapes (`\\x1b`, `\\u202e`) instead; `json_text` does the same for `--json`
output with JSON's own escapes, so the value a script decodes is unchanged.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}

_STEERING = [
    *map(chr, range(0x00, 0x20)),
    *map(chr, range(0x7F, 0xA0)),
    "\u061c",
    "\u200e",
    "\u200f",
    "\u2028",
    "\u2029",
    *map(chr, range(0x202A, 0x202F)),
    *map(chr, range(0x2066, 0x206A)),
]
"""C0 and C1 controls and DEL, the line and paragraph separators, and every bidi mark, embedding, override
and isolate: what a terminal acts on rather than shows."""


def _escape(char: str) -> str:
    code = ord(char)
    return _NAMED.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


_ESCAPES = str.maketrans({char: _escape(char) for char in _STEERING})
_JSON_ESCAPES = str.maketrans({char: f"\\u{ord(char):04x}" for char in _STEERING if ord(char) >= 0x20})


def printable(text: str) -> str:
    """`text` with every character a terminal would act on shown as an escape; newlines included."""
    return text.translate(_ESCAPES)


def json_text(text: str) -> str:
    """Serialized JSON with the controls the encoder leaves raw (DEL, C1, bidi, separators) as `\\uXXXX`.

    Such characters can only occur inside JSON strings, where the escape decodes to the same value.
    """
    return text.translate(_JSON_ESCAPES)


def say(*lines: object, file: TextIO | None = None, flush: bool = False) -> None:
    """Print each of `lines` on a line of its own, made `printable`: the only newlines are the ones between."""
    out = sys.stdout if file is None else file
    out.write("".join(printable(str(line)) + "\n" for line in lines))
    if flush:
        out.flush()


class PrintableFormatter(logging.Formatter):
    """Log lines made `printable`, each line of a traceback on its own: logs echo values too."""

    def format(self, record: logging.LogRecord) -> str:
        return "\n".join(printable(line) for line in super().format(record).split("\n"))
