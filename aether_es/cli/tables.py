"""Plain-text tables for human output: left-aligned columns, two spaces apart, no trailing blanks.

Cells are made `printable` before the columns are measured, so a value cannot break or steer the table.
"""

from __future__ import annotations

from collections.abc import Sequence

from aether_es.cli.terminal import printable


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """The table's lines, header first."""
    cells = [[printable(cell) for cell in row] for row in [header, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in cells]
