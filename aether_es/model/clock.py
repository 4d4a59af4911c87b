"""Timestamps: RFC3339 in UTC with millisecond precision, the one format every event and view uses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def now() -> str:
    return format_time(datetime.now(UTC))


def parse_time(text: str) -> datetime:
    """Parse an RFC3339 timestamp (with or without fractional seconds, `Z` or an offset)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def add_seconds(text: str, seconds: float) -> str:
    return format_time(parse_time(text) + timedelta(seconds=seconds))


def seconds_between(start: str, end: str) -> float:
    return (parse_time(end) - parse_time(start)).total_seconds()
