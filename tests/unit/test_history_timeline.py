"""Time travel and replay verification on histories the decider writes, without NATS."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from support.driver import Driver

from aether_es.engine.triggers import Trigger
from aether_es.errors import AetherError
from aether_es.events.codec import CodecError, commit_of_records, encode_commit, event_records
from aether_es.events.envelope import commit_of
from aether_es.history.replay import Replayed, verify
from aether_es.history.timeline import Entry, describe, state_at
from aether_es.ports.event_store import StoredCommit
from aether_es.projections.diff import differences

DOCUMENT: dict[str, Any] = {
    "apiVersion": "aether/v1",
    "kind": "Workflow",
    "metadata": {"name": "travel"},
    "spec": {
        "entrypoint": "main",
        "templates": [
            {
                "dag": {
                    "name": "main",
                    "tasks": [
                        {"name": "a", "template": "echo"},
                        {"name": "b", "template": "echo", "dependencies": ["a"]},
                        {
                            "name": "c",
                            "template": "erroring",
                            "dependencies": ["a"],
                            "arguments": {"parameters": [{"name": "fail-count", "value": 1}]},
                            "retry": {"limit": 2},
                        },
                    ],
                }
            },
            {"task": {"name": "echo", "executor": {"type": "echo"}}},
            {"task": {"name": "erroring", "executor": {"type": "echo"}, "phaseConditions": {"error": "code == 2"}}},
        ],
    },
}


class RecordingDriver(Driver):
    """Keeps the committed view after every decision, with the number of the last event it had."""

    def __init__(self) -> None:
        super().__init__()
        self.snapshots: list[tuple[int, dict[str, Any]]] = []

    def deliver(self, trigger: Trigger) -> AetherError | None:
        error = super().deliver(trigger)
        if self.state is not None:
            self.snapshots.append((len(self.history), copy.deepcopy(self.state.to_dict())))
        return error


def _timeline(driver: Driver) -> list[Entry]:
    return [Entry(seq=n, commit_id=f"c{n}", envelope=env) for n, env in enumerate(driver.history, 1)]


def test_the_state_at_every_point_is_what_the_engine_had_then() -> None:
    driver = RecordingDriver()
    assert driver.submit(DOCUMENT) is None
    driver.run()
    assert driver.view().phase == "Succeeded"
    timeline = _timeline(driver)
    assert len(driver.snapshots) > 5
    for events, view in driver.snapshots:
        assert state_at(timeline, event=events).to_dict() == view
    assert state_at(timeline).to_dict() == driver.view().to_dict()


def test_travel_by_time_and_before_the_run_existed() -> None:
    driver = Driver()
    driver.submit(DOCUMENT)
    driver.run()
    timeline = _timeline(driver)
    first = timeline[0].envelope.time
    assert (
        state_at(timeline, time=first).to_dict() == state_at(timeline, event=_last_number_at(timeline, first)).to_dict()
    )
    with pytest.raises(ValueError, match="no events at or before"):
        state_at(timeline, time="2000-01-01T00:00:00Z")
    with pytest.raises(ValueError, match="event 0"):
        state_at(timeline, event=0)
    last = timeline[-1].number
    with pytest.raises(ValueError, match=f"the run has {last} events: event {last + 1} is beyond its history"):
        state_at(timeline, event=last + 1)
    with pytest.raises(ValueError, match="is in the future"):
        state_at(timeline, time="2999-01-01T00:00:00Z")


def _last_number_at(timeline: list[Entry], time: str) -> int:
    return max(e.number for e in timeline if e.envelope.time <= time)


def test_every_event_gets_a_readable_description() -> None:
    driver = Driver()
    driver.submit(DOCUMENT)
    driver.run()
    names: dict[str, str] = {}
    lines = [describe(env, names) for env in driver.history]
    assert lines[0] == "workflow 'travel' submitted"
    assert any(line == "'c' attempt 1 Error, retry 1" for line in lines)
    assert any(line == "'b' Succeeded" for line in lines)
    assert lines[-1] == "run Succeeded"
    assert all(line and "<" not in line for line in lines)


def test_records_round_trip_to_the_same_commit() -> None:
    driver = Driver()
    driver.submit(DOCUMENT)
    commit = commit_of("run", driver.history[:3])
    commit_id, records = event_records(encode_commit(commit), 7)
    assert commit_id == commit.commit_id and [r["seq"] for r in records] == [7, 7, 7]
    assert commit_of_records(commit_id, records) == commit
    with pytest.raises(CodecError, match="several runs"):
        commit_of_records(commit_id, [records[0], {**records[1], "runID": "other"}])
    with pytest.raises(CodecError, match="no events"):
        commit_of_records(commit_id, [])


async def test_verification_reports_every_difference_and_passes_equal_views() -> None:
    driver = Driver()
    driver.submit(DOCUMENT)
    driver.run()
    replayed = Replayed(states={"run": driver.replayed()}, events=len(driver.history))
    live = driver.view().to_dict()

    async def same(run_id: str) -> dict[str, Any]:
        return live

    assert await verify(_NoStore(), replayed, same) == {}
    tampered = copy.deepcopy(live)
    tampered["tasks"][1]["status"] = "Failed"
    tampered["message"] = "changed"

    async def wrong(run_id: str) -> dict[str, Any]:
        return tampered

    found = await verify(_NoStore(), replayed, wrong)
    assert [d.path for d in found["run"]] == ["$.message", "$.tasks[1].status"]
    assert [str(d) for d in differences([1, 2], [1])] == ["$ (length): 2 != 1"]


class _NoStore:
    """Verification of finished runs never reads the log again."""

    async def load(self, run_id: str, after_seq: int = 0) -> list[StoredCommit]:
        raise AssertionError("a finished run is not reloaded")
