"""A history written in an older schema version replays correctly: old events are upcast on the way in."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from aether_es.events import catalogue as ev
from aether_es.events.catalogue import SCHEMA_VERSION
from aether_es.events.codec import CodecError, decode_commit, encode_commit
from aether_es.events.upcasting import upcast
from aether_es.model import phases as ph
from aether_es.projections.run_state import fold

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "history-v1.jsonl"


def _fixture() -> list[bytes]:
    return FIXTURE.read_bytes().splitlines()


def test_the_fixture_is_a_version_1_history() -> None:
    items = [item for line in _fixture() for item in orjson.loads(line)["events"]]
    assert {item["v"] for item in items} == {1} and SCHEMA_VERSION > 1
    assert any("failed_phase" in item["data"] for item in items)


def test_a_version_1_history_replays_to_the_same_run() -> None:
    commits = [decode_commit(line) for line in _fixture()]
    envelopes = [env for commit in commits for env in commit.envelopes]
    assert {env.version for env in envelopes} == {SCHEMA_VERSION}
    (retried,) = [env.event for env in envelopes if isinstance(env.event, ev.TaskRetried)]
    assert (retried.phase, retried.message) == (ph.ERROR, "simulated failure on attempt 1 (failCount=1)")
    state = fold(envelopes)
    assert state.phase == ph.SUCCEEDED
    by_name = {t.task_name: t for t in state.tasks.values()}
    assert (by_name["c"].phase, by_name["c"].retry_count) == (ph.SUCCEEDED, 1)
    # Written again today, the same facts read back identically.
    again = [decode_commit(encode_commit(commit)) for commit in commits]
    assert fold([env for commit in again for env in commit.envelopes]).to_dict() == state.to_dict()


def test_upcasting_leaves_other_events_and_current_versions_alone() -> None:
    data = {"type": "TaskFinished", "task_id": "t", "phase": "Succeeded"}
    assert upcast(dict(data), 1) == data
    current = {"type": "TaskRetried", "task_id": "t", "attempt": 1, "retry_count": 1, "phase": "Error"}
    assert upcast(dict(current), SCHEMA_VERSION) == current


def test_a_newer_version_is_still_refused() -> None:
    line = orjson.loads(_fixture()[0])
    line["events"][0]["v"] = SCHEMA_VERSION + 1
    with pytest.raises(CodecError, match="newer"):
        decode_commit(orjson.dumps(line))
