"""Events of retention: finished runs removed from the log on purpose, by whom and why.

Each purge is a commit on its own aggregate (`retention.<id>`) in the history stream, so removing runs is
itself history: `aether-es audit` lists it with its actor and reason, and nothing leaves the log unrecorded.
"""

from __future__ import annotations

from typing import Literal

from aether_es.events.catalogue import Event

AGGREGATE = "retention"


class RunsPurged(Event):
    """These finished runs' histories, summaries and feed events were removed (archived to `archive` first,
    when it is set)."""

    type: Literal["RunsPurged"] = "RunsPurged"
    run_ids: list[str]
    archive: str = ""


RETENTION_EVENTS: tuple[type[Event], ...] = (RunsPurged,)
