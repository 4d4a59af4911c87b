"""`submit -p name=value`: a workflow argument given on the command line.

The value is JSON when it parses as JSON (`-p count=3` is the number 3, `-p tags='["a"]'` a list), a string
otherwise (`-p who=world`); quote a string that would parse (`-p version='"1.0"'`). It replaces the value of
the document's `spec.arguments.parameters` entry of that name, or is added as a new one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from aether_es.model.loading import member, parse_object


def parse_argument(pair: str) -> tuple[str, Any]:
    """`name=value` as the name and its value (JSON when it parses, else the text); ValueError names the cause."""
    name, sep, text = pair.partition("=")
    if not sep or not name:
        raise ValueError(f"-p {pair!r}: expected name=value")
    try:
        return name, orjson.loads(text)
    except orjson.JSONDecodeError:
        return name, text


def with_arguments(data: bytes, pairs: Sequence[str]) -> bytes:
    """The document with each `name=value` of `pairs` set as a workflow argument (the last of a name wins)."""
    if not pairs:
        return data
    values = dict(parse_argument(pair) for pair in pairs)
    document = parse_object(data)
    spec = _object_at(document, "spec")
    arguments = _object_at(spec, "arguments")
    parameters = member(arguments, "parameters")
    if not isinstance(parameters, list):
        parameters = arguments["parameters"] = []
    for parameter in parameters:
        if isinstance(parameter, dict) and member(parameter, "name") in values:
            name = member(parameter, "name")
            for key in [k for k in parameter if k.lower() in ("value", "valuefrom")]:
                del parameter[key]
            parameter["value"] = values.pop(name)
    parameters.extend({"name": name, "value": value} for name, value in values.items())
    return orjson.dumps(document)


def _object_at(parent: dict[str, Any], key: str) -> dict[str, Any]:
    """The object under `key` (matched as Go's decoder matches it), made when there is none."""
    found = member(parent, key)
    if isinstance(found, dict):
        return found
    created: dict[str, Any] = {}
    parent[key] = created
    return created
