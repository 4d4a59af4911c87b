"""The naming convention every field of the API, the CLI's `--json` and the docs follows, as a check.

camelCase, Aether's `ID` (`runID`, `taskRunID`, `cronWorkflowID`, `runIDs`) and Aether's view names (a run's or
task's phase is its `status`). A concept spelt two ways is a mistake: `runId` beside `runID`, `phase` beside
`status`, `started_at` beside `startedAt`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

USER_VALUES = frozenset(
    {"labels", "annotations", "value", "payload", "document", "workflow", "schemas", "tags", "differences"}
)
"""Keys whose values are the user's (labels, parameter values, documents): their keys are not field names."""

SYNONYMS = ({"phase", "status"},)
"""Concepts with a name Aether gives them and a name it does not: never both."""

_SNAKE_OR_ID = re.compile(r"_|Id(s?)(?=[A-Z]|$)")


AETHER_NAMES = {"outputs": frozenset({"phase"})}
"""Keys Aether itself gives a record (its Outputs carry a `phase`, where its views say `status`): kept as is."""


def keys_of(data: Any) -> Iterator[str]:
    """Every object key in a JSON value, leaving the user's values and Aether's own names out."""
    stack: list[tuple[Any, frozenset[str]]] = [(data, frozenset())]
    while stack:
        node, exempt = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if key not in exempt:
                    yield key
                if key not in USER_VALUES:
                    stack.append((value, AETHER_NAMES.get(key, frozenset())))
        elif isinstance(node, list):
            stack.extend((item, exempt) for item in node)


def schema_keys(schema: Any) -> Iterator[str]:
    """Every property name a JSON Schema declares, at any depth."""
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            properties = node.get("properties")
            if isinstance(properties, dict):
                yield from properties
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def spelling_problems(keys: Iterable[str]) -> list[str]:
    """What breaks the convention among `keys`: snake_case, `Id` for `ID`, one concept spelt two ways."""
    seen = set(keys)
    problems = [f"{key}: not camelCase with ID" for key in sorted(seen) if _SNAKE_OR_ID.search(key)]
    by_concept: dict[str, set[str]] = {}
    for key in seen:
        by_concept.setdefault(key.lower().replace("_", ""), set()).add(key)
    problems += [f"one concept, spelt {sorted(names)}" for names in by_concept.values() if len(names) > 1]
    for group in SYNONYMS:
        if len(group & seen) > 1:
            problems.append(f"one concept, spelt {sorted(group & seen)}")
    return problems
