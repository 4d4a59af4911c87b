"""How names are spelt where people and programs read them: the one public spelling of a field
(`wire_name`, and `stored_name` back), and the nearest known name to a misspelt one, for hints."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

from pydantic.alias_generators import to_camel, to_snake

_ID = re.compile(r"Id(s?)(?=[A-Z]|$)")
_WIRE_ID = re.compile(r"ID(s?)(?=[A-Z]|$)")


def wire_name(field: str) -> str:
    """A field's JSON key: camelCase with Aether's `ID` (`run_id` -> `runID`, `task_run_ids` -> `taskRunIDs`)."""
    return _ID.sub(r"ID\1", to_camel(field))


def stored_name(key: str) -> str:
    """The snake_case field name `wire_name` spells as `key` (`runIDs` -> `run_ids`)."""
    return to_snake(_WIRE_ID.sub(r"Id\1", key))


def nearest(word: str, choices: Iterable[str]) -> str | None:
    """The choice closest to `word` (a misspelling, a different case), if any is close enough."""
    by_lower = {choice.lower(): choice for choice in choices}
    close = difflib.get_close_matches(word.lower(), list(by_lower), n=1, cutoff=0.6)
    return by_lower[close[0]] if close else None
