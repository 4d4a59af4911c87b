"""Encoding of commits to bytes and back (orjson); events newer than this version are refused on the way in."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, get_args, get_origin

import orjson
from pydantic import BaseModel, ValidationError
from pydantic_core import SchemaValidator
from pydantic_core import core_schema as cs

from aether_es.events.catalogue import SCHEMA_VERSION, AnyEvent, Event
from aether_es.events.cron_catalogue import AnyCronEvent
from aether_es.events.envelope import Commit, Envelope
from aether_es.events.references import MARKER
from aether_es.events.retention_catalogue import RETENTION_EVENTS
from aether_es.events.upcasting import upcast
from aether_es.model.loading import is_model, unoptional
from aether_es.spelling import stored_name, wire_name

_CLASSES: dict[str, type[Event]] = {
    cls.model_fields["type"].default: cls for cls in (*get_args(AnyEvent), *get_args(AnyCronEvent), *RETENTION_EVENTS)
}


def _commit_validator() -> SchemaValidator:
    """One pydantic-core call parses a stored commit's JSON straight into its `Commit`, `Envelope`s and events
    (the class chosen by `type`): no intermediate dicts, and no Python-level dataclass construction, which
    cost about a third of a commit's decoding. The envelopes' `run_id` is the commit's `run`, set once they
    exist. It takes only events of the current schema version; anything it refuses goes through the checked
    path, which upcasts older versions and gives the precise error (unknown type, newer version, bad field)."""
    text = cs.with_default_schema(cs.str_schema(), default="")
    events = cs.tagged_union_schema(
        {name: cls.__pydantic_core_schema__ for name, cls in _CLASSES.items()}, discriminator="type"
    )
    fields = {
        "event_id": cs.dataclass_field("event_id", cs.str_schema(), validation_alias="id"),
        "run_id": cs.dataclass_field("run_id", text, validation_alias="run"),
        "time": cs.dataclass_field("time", text),
        "actor": cs.dataclass_field("actor", text),
        "causation_id": cs.dataclass_field("causation_id", text, validation_alias="cause"),
        "event": cs.dataclass_field("event", events, validation_alias="data"),
        "version": cs.dataclass_field(
            "version",
            cs.int_schema(strict=True, ge=SCHEMA_VERSION, le=SCHEMA_VERSION),
            validation_alias="v",
        ),
        "reason": cs.dataclass_field("reason", text),
    }
    names = [f.name for f in dataclasses.fields(Envelope)]
    envelope = cs.dataclass_schema(
        Envelope,
        cs.dataclass_args_schema("Envelope", [fields[name] for name in names]),
        names,
        slots=True,
        frozen=True,
    )
    commit = cs.dataclass_args_schema(
        "Commit",
        [
            cs.dataclass_field("commit_id", cs.str_schema(), validation_alias="id"),
            cs.dataclass_field("run_id", cs.str_schema(), validation_alias="run"),
            cs.dataclass_field(
                "envelopes", cs.tuple_schema([envelope], variadic_item_index=0), validation_alias="events"
            ),
            cs.dataclass_field(
                "outbox",
                cs.with_default_schema(cs.tuple_schema([cs.any_schema()], variadic_item_index=0), default=()),
                init=False,
            ),
        ],
    )
    names = [f.name for f in dataclasses.fields(Commit)]
    return SchemaValidator(cs.dataclass_schema(Commit, commit, names, slots=True, frozen=True))


_COMMIT = _commit_validator()


class CodecError(Exception):
    """Bytes that are not a commit this version understands."""


def encode_commit(commit: Commit) -> bytes:
    return orjson.dumps(
        {
            "id": commit.commit_id,
            "run": commit.run_id,
            "events": [_encode_envelope(env) for env in commit.envelopes],
        }
    )


def _encode_envelope(env: Envelope) -> dict[str, Any]:
    body = env.event.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
    body["type"] = env.event.type
    encoded = {
        "id": env.event_id,
        "v": env.version,
        "time": env.time,
        "actor": env.actor,
        "cause": env.causation_id,
        "data": body,
    }
    if env.reason:
        encoded["reason"] = env.reason
    return encoded


# --- public records ----------------------------------------------------------------------------------

EVENT_FIELD_NAMES = {"task_id": "taskRunID", "parent_id": "parentRunID", "cron_id": "cronWorkflowID", "phase": "status"}
"""Event fields a public record spells as the views do, where `wire_name` alone would spell them otherwise.
Aether's own shapes inside events (outputs, metrics, parameters, artifacts) keep Aether's names."""


class _Renaming:
    """One way of one model's spelling: each key's new name, and the renaming of the keys that hold models (the
    others hold scalars or the user's values, never renamed); a key no field has is spelt by `other`."""

    __slots__ = ("names", "nested", "other")

    def __init__(self, other: Callable[[str], str]) -> None:
        self.names: dict[str, str] = {}
        self.nested: dict[str, tuple[str, _Renaming]] = {}
        self.other = other


class _Spelling:
    """How one model's stored fields are spelt in a public record (`out`), and back (`back`)."""

    __slots__ = ("back", "out")

    def __init__(self) -> None:
        self.out = _Renaming(wire_name)
        self.back = _Renaming(stored_name)


_SPELLINGS: dict[type[BaseModel], _Spelling] = {}


def _spelling(model: type[BaseModel]) -> _Spelling:
    found = _SPELLINGS.get(model)
    if found is None:
        found = _SPELLINGS[model] = _Spelling()
        for name, info in model.model_fields.items():
            public = info.alias or EVENT_FIELD_NAMES.get(name) or wire_name(name)
            found.out.names[name], found.back.names[public] = public, name
            nested = _model_in(info.annotation)
            if nested is not None:
                inner = _spelling(nested)
                found.out.nested[name], found.back.nested[public] = (public, inner.out), (name, inner.back)
        if len(found.back.names) != len(found.out.names):
            raise ValueError(f"{model.__name__}: two fields have one public name")
    return found


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model a field holds, alone or in a list; None for any other value."""
    annotation = unoptional(annotation)
    if get_origin(annotation) is list and get_args(annotation):
        annotation = unoptional(get_args(annotation)[0])
    return annotation if is_model(annotation) else None


_EVENT_SPELLINGS = {name: _spelling(cls) for name, cls in _CLASSES.items()}


def record_names(model: type[BaseModel]) -> dict[str, str]:
    """A model's field names and how a public record spells each (the event schemas are renamed with it)."""
    return dict(_spelling(model).out.names)


def _respell(value: Any, renaming: _Renaming) -> Any:
    """`value` with its keys renamed; a value by reference is left as it is. The feed renames every event, so
    this is one dict comprehension per object, and a call only for the fields that hold models."""
    if isinstance(value, list):
        return [_respell(item, renaming) for item in value]
    if not isinstance(value, dict) or MARKER in value:
        return value
    name_of, other = renaming.names.get, renaming.other
    renamed = {name_of(key) or other(key): item for key, item in value.items()}
    for key, (name, inner) in renaming.nested.items():
        if key in value:
            renamed[name] = _respell(value[key], inner)
    return renamed


def public_data(data: dict[str, Any]) -> dict[str, Any]:
    """An event's stored `data` in the public spelling."""
    spelling = _EVENT_SPELLINGS.get(data.get("type", ""))
    return data if spelling is None else _respell(data, spelling.out)


def stored_data(data: dict[str, Any]) -> dict[str, Any]:
    """An event's `data` in the public spelling, back as it is stored: the exact inverse of `public_data`."""
    spelling = _EVENT_SPELLINGS.get(data.get("type", ""))
    return data if spelling is None else _respell(data, spelling.back)


def event_records(data: bytes, seq: int) -> tuple[str, list[dict[str, Any]]]:
    """A stored commit's id and its events as public records, one JSON object per event: `{id, runID, type,
    v, time, actor, cause, seq, data}`, spelt as the API spells its fields (`taskRunID`, `status`,
    `startedAt`). The event feed, `events` and `history` print and export these; the history keeps its own
    spelling, so replay and upcasting read it unchanged."""
    try:
        commit = orjson.loads(data)
        run_id = commit["run"]
        records = [
            {
                "id": item["id"],
                "runID": run_id,
                "type": item["data"]["type"],
                "v": item.get("v", 1),
                "time": item.get("time", ""),
                "actor": item.get("actor", ""),
                "cause": item.get("cause", ""),
                "seq": seq,
                "data": public_data(item["data"]),
                **({"reason": item["reason"]} if item.get("reason") else {}),
            }
            for item in commit["events"]
        ]
        return str(commit["id"]), records
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CodecError(f"undecodable commit at sequence {seq}: {exc}") from exc


def record_run(record: dict[str, Any]) -> Any:
    """A record's run id: `runID`, or `run` in a record exported before records took the public spelling."""
    return record["runID"] if "runID" in record else record.get("run")


def commit_of_records(commit_id: str, records: list[dict[str, Any]]) -> Commit:
    """The commit that `event_records` took apart, checked as any stored commit is. Records in the stored
    spelling (`run`, exported before records took the public one) are taken as they are."""
    if not records:
        raise CodecError(f"commit {commit_id} has no events")
    try:
        run_id = record_run(records[0])
        if any(record_run(record) != run_id for record in records):
            raise CodecError(f"commit {commit_id} mixes events of several runs")
        events = [
            {
                **{key: record[key] for key in ("id", "v", "time", "actor", "cause", "reason") if key in record},
                "data": stored_data(record["data"]) if "runID" in record else record["data"],
            }
            for record in records
        ]
    except (AttributeError, KeyError, TypeError) as exc:
        raise CodecError(f"commit {commit_id}: an event is not a JSON object with its data ({exc})") from exc
    return decode_commit(orjson.dumps({"id": commit_id, "run": run_id, "events": events}))


def decode_commit(data: bytes) -> Commit:
    try:
        commit: Commit = _COMMIT.validate_json(data)
    except ValidationError:
        return _decode_commit_checked(data)
    run_id = commit.run_id
    for env in commit.envelopes:
        object.__setattr__(env, "run_id", run_id)  # frozen, and made by the validator a moment ago
    return commit


def _decode_commit_checked(data: bytes) -> Commit:
    """A commit the one-call path refused, decoded event by event: older versions upcast, errors precise."""
    try:
        raw = orjson.loads(data)
        run_id = raw["run"]
        envelopes = tuple(_decode_envelope(run_id, item) for item in raw["events"])
        return Commit(commit_id=raw["id"], run_id=run_id, envelopes=envelopes)
    except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError) as exc:
        raise CodecError(f"undecodable commit: {exc}") from exc


def _decode_envelope(run_id: str, item: dict[str, Any]) -> Envelope:
    """One envelope, checked step by step so that a refusal says exactly why."""
    version = int(item.get("v", 1))
    if version > SCHEMA_VERSION:
        raise CodecError(f"event {item.get('id')} has schema version {version}, newer than {SCHEMA_VERSION}")
    return Envelope(
        event_id=item["id"],
        run_id=run_id,
        time=item.get("time", ""),
        actor=item.get("actor", ""),
        causation_id=item.get("cause", ""),
        event=_event(upcast(item["data"], version)),
        version=SCHEMA_VERSION,
        reason=item.get("reason", ""),
    )


def _event(data: dict[str, Any]) -> Event:
    cls = _CLASSES.get(data.get("type", ""))
    if cls is None:
        raise CodecError(f"unknown event type {data.get('type')!r}")
    return cls.model_validate(data)
