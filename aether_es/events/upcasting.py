"""Upcasters: events stored in an older schema version read as the current one.

Histories are never rewritten, so every change to an event's shape comes with a function that turns the
old `data` into the new, registered by event type and the version it upgrades from; reading applies them
in order, one version at a time. Versions newer than this code are refused by the codec.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aether_es.events.catalogue import SCHEMA_VERSION

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


def _task_retried_v1(data: dict[str, Any]) -> dict[str, Any]:
    """Version 2 names the failed attempt's phase and message `phase` and `message`, as TaskFinished does."""
    upgraded = {k: v for k, v in data.items() if k not in ("failed_phase", "failed_message")}
    upgraded["phase"] = data.get("failed_phase", "")
    if data.get("failed_message"):
        upgraded["message"] = data["failed_message"]
    return upgraded


UPCASTERS: dict[tuple[str, int], Upcaster] = {
    ("TaskRetried", 1): _task_retried_v1,
}


def upcast(data: dict[str, Any], version: int) -> dict[str, Any]:
    """`data` written at `version`, as the current version writes it."""
    while version < SCHEMA_VERSION:
        upcaster = UPCASTERS.get((str(data.get("type", "")), version))
        if upcaster is not None:
            data = upcaster(data)
        version += 1
    return data
