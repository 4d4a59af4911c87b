"""Turning user input (JSON text or a decoded object) into aether/v1 documents.

Input is decoded the way Go's `encoding/json` decodes it into Aether's structs, so the same document means
the same thing here: keys match field names exactly or case-insensitively (last one wins), unknown keys are
ignored, and `null` leaves a field at its zero value (a `null` list element becomes the element's zero
value). Anything else that does not fit (malformed JSON, a non-object top level, a value of the wrong type)
is a `DocumentError` whose single-line detail names the JSON path and the cause; never a traceback.
"""

from __future__ import annotations

import functools
import re
import string
import types
from typing import Any, NamedTuple, TypeVar, Union, get_args, get_origin

import orjson
import pydantic
import pydantic_core
from pydantic import BaseModel

from aether_es.errors import DocumentError
from aether_es.limits import LimitExceeded, Limits, check
from aether_es.model.documents import CronWorkflow, Workflow

JsonInput = bytes | str | dict[str, Any]
_M = TypeVar("_M", bound=BaseModel)


def load_document(data: JsonInput, limits: Limits | None = None) -> Workflow | CronWorkflow:
    """A `CronWorkflow` when `kind` is "CronWorkflow", otherwise a `Workflow` (validation comes later); a
    document over the size or nesting limits is refused (`check_document`)."""
    obj = parse_object(data)
    check_document(data, limits, obj)
    if member(obj, "kind") == "CronWorkflow":
        return _build(CronWorkflow, obj)
    return _build(Workflow, obj)


def load_workflow(data: JsonInput) -> Workflow:
    """The input read as a `Workflow`, whatever its `kind` says."""
    return _build(Workflow, parse_object(data))


def load_cron_workflow(data: JsonInput) -> CronWorkflow:
    """The input read as a `CronWorkflow`, whatever its `kind` says."""
    return _build(CronWorkflow, parse_object(data))


def check_document(data: JsonInput, limits: Limits | None = None, parsed: object = None) -> None:
    """Refuse, as a `DocumentError` with `LimitExceeded`'s message, a document over `document_bytes` as JSON
    or nesting arrays and objects deeper than `nesting_depth`. Checked where documents come in (submit, run,
    validate), not where stored ones are read back: a lower limit later must not make a run unreadable."""
    limits = limits or Limits.from_env()
    try:
        if isinstance(data, str | bytes):
            size = len(data.encode() if isinstance(data, str) else data)
        else:  # a decoded object may hold what JSON cannot (refused later, naming it): measured all the same
            size = len(pydantic_core.to_json(data, fallback=str))
        check(limits, "document_bytes", "the document", size)
        tree = parse_object(data) if parsed is None else parsed
        check(limits, "nesting_depth", "the document's nesting", _depth(tree))
    except LimitExceeded as exc:
        raise DocumentError(f"invalid document: {exc}") from None


def _depth(value: object) -> int:
    """How deeply arrays and objects nest in a JSON value (a scalar is 0), without recursion."""
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        deepest = max(deepest, depth + 1)
        stack.extend((child, depth + 1) for child in children)
    return deepest


def parse_object(data: object) -> dict[str, Any]:
    """Decode JSON text (or pass a dict through) and require a JSON object at the top level."""
    if isinstance(data, dict):
        obj: object = data
    elif isinstance(data, bytes | bytearray | memoryview | str):
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise DocumentError(
                f"invalid document: malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
            ) from None
    else:
        raise DocumentError(f"invalid document: expected JSON text or an object, got {type(data).__name__}")
    if not isinstance(obj, dict):
        raise DocumentError(f"invalid document: the top level must be a JSON object, got {_json_kind(obj)}")
    return obj


def _build(cls: type[_M], obj: dict[str, Any]) -> _M:
    try:
        return cls.model_validate(_normalize_object(cls, obj))
    except pydantic.ValidationError as exc:
        raise DocumentError(f"invalid document: {_describe(cls, exc)}") from None


# --- Go decoding rules ----------------------------------------------------------------------------------


class JsonField(NamedTuple):
    alias: str
    annotation: Any
    raw: bool  # the model's own "before" validator interprets the raw JSON (e.g. dag.entrypoints)


_ASCII_UPPER = {ord(c): c.upper() for c in string.ascii_lowercase} | {0x212A: "K", 0x017F: "S"}


def _fold(key: str) -> str:
    """Go's `foldName`: ASCII case folding plus the two non-ASCII runes that fold onto ASCII letters."""
    return key.translate(_ASCII_UPPER)


@functools.cache
def json_fields(cls: type[BaseModel]) -> tuple[dict[str, JsonField], dict[str, JsonField]]:
    """A model's fields by exact JSON name and by folded JSON name."""
    raw_names = {
        name
        for decorator in cls.__pydantic_decorators__.field_validators.values()
        if decorator.info.mode in ("before", "plain", "wrap")
        for name in decorator.info.fields
    }
    exact: dict[str, JsonField] = {}
    for name, info in cls.model_fields.items():
        alias = info.alias or name
        exact[alias] = JsonField(alias, info.annotation, name in raw_names)
    return exact, {_fold(alias): field for alias, field in exact.items()}


def json_field(cls: type[BaseModel], key: str) -> JsonField | None:
    """The field Go's decoder fills from `key` (exact name first, then case-insensitively), if any."""
    exact, folded = json_fields(cls)
    return exact.get(key) or folded.get(_fold(key))


def member(obj: dict[str, Any], name: str) -> Any:
    """The value Go would decode into the field `name`: the last non-null key matching it."""
    found = None
    for key, value in obj.items():
        if isinstance(key, str) and value is not None and (key == name or _fold(key) == _fold(name)):
            found = value
    return found


def _normalize_object(cls: type[BaseModel], obj: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in obj.items():
        field = json_field(cls, key) if isinstance(key, str) else None
        if field is None or value is None:
            continue
        out[field.alias] = value if field.raw else _normalize(field.annotation, value)
    return out


def _normalize(annotation: Any, value: Any) -> Any:
    """`value` under Go's null and key-matching rules; wrong types are left for pydantic to report."""
    annotation = unoptional(annotation)
    if is_model(annotation):
        return _normalize_object(annotation, value) if isinstance(value, dict) else value
    origin, args = get_origin(annotation), get_args(annotation)
    if not args or args[-1] is Any:  # raw JSON (loop items, enums): kept verbatim, nulls included
        return value
    if origin is list and isinstance(value, list):
        return [_zero(args[0]) if item is None else _normalize(args[0], item) for item in value]
    if origin is dict and isinstance(value, dict):
        return {k: _zero(args[1]) if v is None else _normalize(args[1], v) for k, v in value.items()}
    return value


def _zero(annotation: Any) -> Any:
    """Go's zero value of a list element or map value that was JSON null."""
    annotation = unoptional(annotation)
    if is_model(annotation):
        return {}
    zeros: dict[Any, Any] = {str: "", int: 0, bool: False, float: 0.0}
    return zeros.get(annotation)


def unoptional(annotation: Any) -> Any:
    """`X | None` → `X`; unions of several types (e.g. `str | int | float`) are returned unchanged."""
    if get_origin(annotation) in (Union, types.UnionType):
        members = [arg for arg in get_args(annotation) if arg is not type(None)]
        if len(members) == 1:
            return members[0]
    return annotation


def is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


# --- error rendering ------------------------------------------------------------------------------------

_EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "float_type": "a number",
    "bool_type": "a boolean",
    "list_type": "an array",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
}
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


def _describe(cls: type[BaseModel], exc: pydantic.ValidationError) -> str:
    """`<json path>: expected <type>, got <type>` for the first error (all members of a union together)."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    path = _json_path(cls, first["loc"])
    expected: list[str] = []
    for error in errors:
        noun = _EXPECTED.get(error["type"])
        if noun and noun not in expected and _json_path(cls, error["loc"]) == path:
            expected.append(noun)
    if "a number" in expected and "an integer" in expected:
        expected.remove("an integer")
    if expected:
        choices = expected[0] if len(expected) == 1 else ", ".join(expected[:-1]) + " or " + expected[-1]
        cause = f"expected {choices}, got {_json_kind(first['input'])}"
    else:
        cause = str(first["msg"])
    return f"{path or '(top level)'}: {cause}"


def _json_path(cls: type[BaseModel], loc: tuple[int | str, ...]) -> str:
    """A pydantic error location as a JSON path (`spec.templates[2].task.retry.limit`), no union tags."""
    path = ""
    annotation: Any = cls
    for item in loc:
        annotation = unoptional(annotation)
        origin, args = get_origin(annotation), get_args(annotation)
        if is_model(annotation) and isinstance(item, str):
            field = json_fields(annotation)[0].get(item)
            path += ("." if path else "") + item
            annotation = field.annotation if field is not None else Any
        elif origin is list and isinstance(item, int):
            path += f"[{item}]"
            annotation = args[0]
        elif origin is dict:
            key = str(item)
            plain = _PLAIN_KEY.fullmatch(key)
            path += (("." if path else "") + key) if plain else f"[{orjson.dumps(key).decode()}]"
            annotation = args[1]
        # anything else is a union member tag such as "str" (resources.cpu): not part of the JSON path
    return path


def _json_kind(value: object) -> str:
    """How a JSON value is named in messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return f"a Python {type(value).__name__}"
