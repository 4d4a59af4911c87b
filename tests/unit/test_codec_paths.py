"""The one-call decoding of a commit gives exactly what the checked, event-by-event path gives, for every event type;
and the public records of a commit (the feed's, `history --export`'s) give the commit back exactly."""

from __future__ import annotations

import types
import typing
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from aether_es.events import catalogue as ev
from aether_es.events.codec import (
    _COMMIT,
    CodecError,
    _decode_commit_checked,
    commit_of_records,
    decode_commit,
    encode_commit,
    event_records,
    public_data,
    stored_data,
)
from aether_es.events.envelope import Commit, commit_of, make_envelopes
from aether_es.events.schema import EVENT_CLASSES
from aether_es.spelling import stored_name, wire_name

JSON: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**9), 10**9) | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)


def strategy(annotation: Any) -> st.SearchStrategy[Any]:
    """Values of a field's type, nested models included, with JSON for `Any`."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is Any:
        return JSON
    if origin in (typing.Union, types.UnionType):
        return st.one_of(*(strategy(arg) for arg in args))
    if origin is list:
        return st.lists(strategy(args[0]), max_size=2)
    if origin is dict:
        return st.dictionaries(st.text(max_size=5), strategy(args[1]), max_size=3)
    if origin is typing.Literal:
        return st.sampled_from(args)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return models(annotation)
    scalars = {str: st.text(max_size=8), int: st.integers(0, 10**6), bool: st.booleans(), type(None): st.none()}
    return scalars[annotation]


def models(cls: type[BaseModel]) -> st.SearchStrategy[Any]:
    hints = typing.get_type_hints(cls)
    return st.builds(cls, **{name: strategy(hints[name]) for name in cls.model_fields})  # type: ignore[arg-type]


def one_commit(events: list[ev.Event]) -> Commit:
    return commit_of("run-1", make_envelopes("run-1", 1, events, "2026-01-01T00:00:00.000Z", "user", "cmd:1", "why"))


@settings(max_examples=30, deadline=None)
@given(st.data())
def test_every_event_type_decodes_alike_on_both_paths(data: st.DataObject) -> None:
    for cls in EVENT_CLASSES:
        commit = one_commit([data.draw(models(cls), label=cls.__name__), ev.RunReady()])
        encoded = encode_commit(commit)
        assert isinstance(_COMMIT.validate_json(encoded), Commit)  # not refused, so the one-call path is what ran
        fast, checked = decode_commit(encoded), _decode_commit_checked(encoded)
        assert fast == checked
        assert [type(env.event) for env in fast.envelopes] == [cls, ev.RunReady]
        assert encode_commit(fast) == encoded


def test_the_one_call_path_takes_current_commits_and_leaves_older_ones_to_the_checked_path() -> None:
    commit = one_commit([ev.RunReady(), ev.TaskNoted(task_id="t", message="m")])
    assert decode_commit(encode_commit(commit)) == commit
    older = orjson.loads(encode_commit(commit))
    older["events"][1]["v"] = 1
    with pytest.raises(ValidationError):
        _COMMIT.validate_json(orjson.dumps(older))
    assert decode_commit(orjson.dumps(older)) == commit


@settings(max_examples=30, deadline=None)
@given(st.data())
def test_the_public_records_of_every_event_type_give_the_commit_back(data: st.DataObject) -> None:
    for cls in EVENT_CLASSES:
        commit = one_commit([data.draw(models(cls), label=cls.__name__), ev.RunReady()])
        commit_id, records = event_records(encode_commit(commit), 9)
        assert commit_id == commit.commit_id and {r["runID"] for r in records} == {"run-1"}
        assert commit_of_records(commit_id, records) == commit
        stored = orjson.loads(encode_commit(commit))["events"]
        assert [stored_data(record["data"]) for record in records] == [item["data"] for item in stored]
        exported_before = [  # as `history --export` wrote them before records took the public spelling
            {**{k: v for k, v in record.items() if k != "runID"}, "run": "run-1", "data": item["data"]}
            for record, item in zip(records, stored, strict=True)
        ]
        assert commit_of_records(commit_id, exported_before) == commit


def test_a_record_is_spelt_as_the_api_spells_its_fields() -> None:
    stored = {
        "type": "TaskFinished",
        "task_id": "r-2",
        "phase": "Failed",
        "outputs": {
            "phase": "Failed",
            "metrics": {"started_at": "t0"},
            "parameters": [{"name": "p", "value": {"task_id": 1}, "value_from": {"secret_key_ref": {"key": "k"}}}],
            "artifacts": [{"name": "a", "from_": "x"}],
        },
        "metrics": {"$aetherRef": {"bucket": "b", "key": "k", "size": 1, "digest": "d"}},
    }
    assert public_data(stored) == {
        "type": "TaskFinished",
        "taskRunID": "r-2",
        "status": "Failed",
        "outputs": {
            "phase": "Failed",  # Aether's Outputs say `phase`
            "metrics": {"startedAt": "t0"},
            "parameters": [{"name": "p", "value": {"task_id": 1}, "valueFrom": {"secretKeyRef": {"key": "k"}}}],
            "artifacts": [{"name": "a", "from": "x"}],
        },
        "metrics": stored["metrics"],  # a value by reference is left as it is
    }
    older = {"type": "TaskRetried", "task_id": "r-2", "failed_phase": "Error"}  # schema version 1
    assert public_data(older) == {"type": "TaskRetried", "taskRunID": "r-2", "failedPhase": "Error"}
    assert stored_data(public_data(older)) == older


@given(st.lists(st.from_regex(r"[a-z]{2,6}", fullmatch=True), min_size=1, max_size=4).map("_".join))
def test_a_field_name_outside_the_catalogue_is_spelt_back_as_it_was(name: str) -> None:
    assert stored_name(wire_name(name)) == name


def test_records_without_a_run_or_data_are_refused() -> None:
    _, records = event_records(encode_commit(one_commit([ev.RunReady()])), 1)
    with pytest.raises(CodecError, match="several runs"):
        commit_of_records("c", [records[0], {**records[0], "runID": "other"}])
    with pytest.raises(CodecError, match="with its data"):
        commit_of_records("c", [{k: v for k, v in records[0].items() if k != "data"}])
