"""Times given on the command line: an RFC3339 time, or how long ago (`--since 1h`, `--since 2d`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aether_es.model.clock import parse_time
from aether_es.model.durations import parse_duration

EXAMPLES = "an RFC3339 time (2026-01-02T03:04:05Z) or a duration ago (90m, 1h, 2d)"


def moment(option: str, text: str, now: datetime | None = None) -> datetime:
    """The time `text` names; a ValueError naming `option` when it names none."""
    seconds = parse_duration(text) if text else None
    if seconds is not None:
        return (now or datetime.now(UTC)) - timedelta(seconds=seconds)
    try:
        return parse_time(text)
    except ValueError:
        raise ValueError(f"{option} {text!r} is not {EXAMPLES}") from None
