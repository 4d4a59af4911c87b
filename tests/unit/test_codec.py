"""The commit codec: what goes out comes back equal, and what this version cannot understand is refused."""

from __future__ import annotations

import orjson
import pytest

from aether_es.events import catalogue as ev
from aether_es.events.catalogue import SCHEMA_VERSION
from aether_es.events.codec import CodecError, decode_commit, encode_commit
from aether_es.events.cron_catalogue import CronFired
from aether_es.events.envelope import Commit, Envelope, commit_of, make_envelopes
from aether_es.events.values import Metrics, ResultOutputs
from aether_es.model.documents import Parameter

T0 = "2026-01-01T00:00:00.000Z"


def a_commit() -> Commit:
    params = [Parameter(name="item", value={"n": [1, None]})]
    events: list[ev.Event] = [
        ev.RunSubmitted(workflow={"kind": "Workflow", "spec": {"templates": []}}, created_at=T0),
        ev.TaskCreated(task_id="t", task_name="t", template_type="task", created_at=T0, inputs=params),
        ev.TaskDispatched(task_id="t", attempt=1, executor_type="echo", inputs=params),
        ev.TaskFinished(
            task_id="t",
            attempt=1,
            phase="Succeeded",
            outputs=ResultOutputs(phase="Succeeded", code=0, parameters=params),
            metrics=Metrics(started_at=T0, finished_at=T0, duration="0s"),
        ),
        ev.RunReady(),
    ]
    return commit_of("run-1", make_envelopes("run-1", 1, events, T0, "user", "cmd:1"))


def raw(commit: Commit) -> dict:
    return orjson.loads(encode_commit(commit))


def test_a_commit_comes_back_equal() -> None:
    commit = a_commit()
    decoded = decode_commit(encode_commit(commit))
    assert decoded == commit
    assert all(type(env) is Envelope for env in decoded.envelopes)
    assert [type(env.event) for env in decoded.envelopes] == [type(env.event) for env in commit.envelopes]


def test_cron_events_decode_too() -> None:
    event = CronFired(scheduled_at=T0, run_id="r", replaced=["a"])
    commit = commit_of("cron.c", make_envelopes("cron.c", 1, [event], T0, "cron", ""))
    assert decode_commit(encode_commit(commit)) == commit


def test_missing_envelope_fields_take_their_defaults() -> None:
    data = raw(a_commit())
    for item in data["events"]:
        for key in ("v", "time", "actor", "cause"):
            del item[key]
    decoded = decode_commit(orjson.dumps(data))
    # A missing version means the first one, read (upcast) as the current one.
    assert {(env.version, env.time, env.actor, env.causation_id) for env in decoded.envelopes} == {
        (SCHEMA_VERSION, "", "", "")
    }


@pytest.mark.parametrize("position", [0, 3, 4])
def test_a_newer_schema_version_is_refused(position: int) -> None:
    data = raw(a_commit())
    data["events"][position]["v"] = SCHEMA_VERSION + 1
    with pytest.raises(CodecError, match=f"schema version {SCHEMA_VERSION + 1}, newer than {SCHEMA_VERSION}"):
        decode_commit(orjson.dumps(data))


@pytest.mark.parametrize("position", [0, 4])
def test_an_unknown_event_type_is_refused(position: int) -> None:
    data = raw(a_commit())
    data["events"][position]["data"]["type"] = "TaskTeleported"
    with pytest.raises(CodecError, match="unknown event type 'TaskTeleported'"):
        decode_commit(orjson.dumps(data))


def test_an_event_without_a_type_is_refused() -> None:
    data = raw(a_commit())
    del data["events"][1]["data"]["type"]
    with pytest.raises(CodecError, match="unknown event type"):
        decode_commit(orjson.dumps(data))


@pytest.mark.parametrize(
    "mangle",
    [
        lambda d: d["events"][2]["data"].update(attempt="one"),
        lambda d: d["events"][3]["data"].pop("phase"),
        lambda d: d["events"][1].pop("id"),
        lambda d: d.update(events=[1]),
        lambda d: d.pop("run"),
    ],
)
def test_malformed_commits_are_refused(mangle: object) -> None:
    data = raw(a_commit())
    mangle(data)  # type: ignore[operator]
    with pytest.raises(CodecError, match="undecodable commit"):
        decode_commit(orjson.dumps(data))


def test_bytes_that_are_not_json_are_refused() -> None:
    with pytest.raises(CodecError):
        decode_commit(b"{not json")


def test_an_older_schema_version_is_read_as_the_current_one() -> None:
    data = raw(a_commit())
    data["events"][2]["v"] = 0
    assert decode_commit(orjson.dumps(data)) == a_commit()


def test_a_reason_travels_with_its_events_and_is_left_out_when_there_is_none() -> None:
    events = [ev.RunReady(), ev.RunStarted(started_at="2026-01-01T00:00:00.000Z")]
    given = commit_of("r", make_envelopes("r", 2, events, "2026-01-01T00:00:00.000Z", "user:alice", "c", "because"))
    data = encode_commit(given)
    assert [item["reason"] for item in orjson.loads(data)["events"]] == ["because", "because"]
    assert decode_commit(data) == given
    plain = encode_commit(commit_of("r", make_envelopes("r", 2, events, "2026-01-01T00:00:00.000Z", "user", "c")))
    assert all("reason" not in item for item in orjson.loads(plain)["events"])
    assert all(env.reason == "" for env in decode_commit(plain).envelopes)
