"""Checking a task's bound inputs against the JSON Schema its executor type registered.

Pure, so the decider can call it: the runtime reads the schemas from the worker registry. Values are
checked as the JSON values they are on the wire (the string "3" is not an integer); inputs resolved from
secrets have no value in the decider and are left out of the check.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from aether_es.engine.env import param_value
from aether_es.model.documents import Parameter


def check_schema(schema: Any) -> str:
    """Why `schema` is not a usable JSON Schema, or "" if it is."""
    from jsonschema import exceptions, validators  # on first use: most systems register no schema

    if not isinstance(schema, dict):
        return f"a schema must be a JSON object, got {type(schema).__name__}"
    try:
        validators.validator_for(schema).check_schema(schema)
    except exceptions.SchemaError as exc:
        return exc.message
    return ""


def input_problem(schema: Mapping[str, Any], params: Iterable[Parameter]) -> str:
    """The first way the inputs do not fit `schema`, naming the input (e.g. `input "width": ...`), or ""."""
    from jsonschema import exceptions, validators  # on first use: most systems register no schema

    instance: dict[str, Any] = {}
    secret: set[str] = set()
    for param in params:
        ref = param.value_from.secret_key_ref if param.value_from is not None else None
        if ref is not None and param.value is None:
            secret.add(param.name)
        else:
            instance[param.name] = param_value(param)
    checked = dict(schema)
    if secret and isinstance(checked.get("required"), list):
        checked["required"] = [name for name in checked["required"] if name not in secret]
    error = exceptions.best_match(validators.validator_for(checked)(checked).iter_errors(instance))
    if error is None:
        return ""
    path = [str(part) for part in error.absolute_path]
    if path:
        return f'input "{".".join(path)}": {error.message}'
    if error.validator == "required":
        missing = [n for n in checked.get("required", ()) if n not in instance]
        if missing:
            return f'input "{missing[0]}": required, but not given'
    return f"inputs: {error.message}"
