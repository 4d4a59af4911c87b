"""Replay, time travel, history and its export/import, as a user runs them against a served system."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from support.cli import EXAMPLE, FAILING, SUSPENDING, Served, aether, write

from aether_es.adapters.nats.server import EmbeddedNatsServer
from aether_es.events.codec import stored_data


def _json(result: Any) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def runs(served: Served, tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    failing = write(tmp_path_factory.mktemp("docs"), "fails.json", FAILING)
    ids = []
    for path, code in ((EXAMPLE, 0), (failing, 4)):
        result = served.run("submit", str(path), "--wait", "--json")
        assert result.returncode == code, result.stderr
        ids.append(json.loads(result.stdout)["runID"])
    return ids


def test_replay_all_verifies_against_the_live_views(served: Served, runs: list[str]) -> None:
    result = served.run("replay", "--all", "--verify")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "every rebuilt view equals the live one" in result.stdout and "events/s" in result.stdout
    summary = _json(served.run("replay", "--run", runs[0], "--verify", "--json"))
    assert summary["runs"] == 1 and summary["events"] > 10 and summary["differences"] == {}
    unknown = served.run("replay", "--run", "no-such-run")
    assert unknown.returncode == 3 and "not found" in unknown.stderr


def test_get_at_shows_the_run_as_it_was(served: Served, runs: list[str]) -> None:
    first = _json(served.run("get", runs[0], "--at", "1", "--json"))
    assert first["status"] == "Created" and first["tasks"] == []
    events = _json(served.run("history", runs[0], "--json"))
    later = _json(served.run("get", runs[0], "--at", str(len(events)), "--json"))
    assert later == _json(served.run("get", runs[0], "--json"))
    by_time = _json(served.run("get", runs[0], "--at", events[3]["time"], "--json"))
    assert len(by_time["tasks"]) >= 1
    human = served.run("get", runs[0], "--at", "2")
    assert human.returncode == 0 and "as of event 2" in human.stdout
    assert served.run("get", runs[0], "--at", "not-a-time").returncode == 2
    assert served.run("get", "no-such-run", "--at", "1").returncode == 3


def test_history_lists_every_event_with_actor_and_cause(served: Served, runs: list[str]) -> None:
    events = _json(served.run("history", runs[1], "--json"))
    assert [int(e["id"].rsplit(":", 1)[1]) for e in events] == list(range(1, len(events) + 1))
    assert {"id", "runID", "type", "v", "time", "actor", "cause", "seq", "data", "commitID"} <= set(events[0])
    started = next(e["data"] for e in events if e["type"] == "TaskStarted")
    assert {"taskRunID", "startedAt"} <= set(started) and "task_id" not in started  # the API's spelling
    assert next(e for e in events if e["type"] == "RunFinished")["data"]["status"] == "Failed"
    human = served.run("history", runs[1])
    assert human.returncode == 0
    assert "ACTOR" in human.stdout and "RunFinished" in human.stdout and "run Failed" in human.stdout
    assert served.run("history", "no-such-run").returncode == 3
    assert served.run("history").returncode == 2


def test_an_exported_history_imports_into_another_jetstream(served: Served, runs: list[str], tmp_path: Path) -> None:
    exported = tmp_path / "run.jsonl"
    assert served.run("history", runs[0], "--export", str(exported)).returncode == 0
    other = EmbeddedNatsServer(tmp_path / "other")
    other.start()
    try:
        imported = aether("history", "--import", str(exported), "--nats", other.url)
        assert imported.returncode == 0, imported.stderr
        assert "imported 1 runs" in imported.stdout
        here = _json(served.run("history", runs[0], "--json"))
        there = _json(aether("history", runs[0], "--json", "--nats", other.url))
        assert [(e["id"], e["type"], e["data"]) for e in there] == [(e["id"], e["type"], e["data"]) for e in here]
        replayed = _json(aether("replay", "--run", runs[0], "--json", "--nats", other.url))
        assert replayed["events"] == len(here)
        again = aether("history", "--import", str(exported), "--nats", other.url)
        assert again.returncode == 2 and "already exists" in again.stderr
        bad = aether("history", "--import", str(write(tmp_path, "bad.jsonl", "{not json\n")), "--nats", other.url)
        assert bad.returncode == 2 and "line 1" in bad.stderr
    finally:
        other.close()


def _as_exported_before(line: str) -> str:
    """An exported line as `history --export` wrote it before records took the public spelling."""
    record = json.loads(line)
    run, commit, data = record.pop("runID"), record.pop("commitID"), stored_data(record.pop("data"))
    return json.dumps({**record, "run": run, "commit": commit, "data": data}) + "\n"


def _unsequenced(line: str) -> dict[str, Any]:
    return {key: value for key, value in json.loads(line).items() if key != "seq"}


def test_an_export_made_before_records_took_the_public_spelling_still_imports(
    served: Served, runs: list[str], tmp_path: Path
) -> None:
    lines = served.run("history", runs[1], "--export", "-").stdout.splitlines()
    older = write(tmp_path, "older.jsonl", "".join(map(_as_exported_before, lines)))
    assert '"task_id"' in older.read_text() and '"runID"' not in older.read_text()
    other = EmbeddedNatsServer(tmp_path / "other")
    other.start()
    try:
        imported = aether("history", "--import", str(older), "--nats", other.url)
        assert imported.returncode == 0, imported.stderr
        there = aether("history", runs[1], "--export", "-", "--nats", other.url).stdout.splitlines()
        assert list(map(_unsequenced, there)) == list(map(_unsequenced, lines))  # the stream's sequences differ
    finally:
        other.close()


def test_retry_of_a_failed_run_from_the_cli(served: Served, tmp_path: Path) -> None:
    flaky = json.loads(json.dumps(FAILING))
    flaky["spec"]["templates"][0]["task"]["inputs"]["parameters"][0]["value"] = 1  # fails once, then succeeds
    first = served.run("submit", str(write(tmp_path, "flaky.json", flaky)), "--wait", "--json")
    assert first.returncode == 4
    run_id = json.loads(first.stdout)["runID"]
    retried = served.run("retry", run_id, "--reason", "fixed the cause", "--wait", "--json")
    assert retried.returncode == 0, retried.stderr
    view = json.loads(retried.stdout)
    assert view["status"] == "Succeeded" and view["tasks"][0]["retryCount"] == 1
    events = _json(served.run("history", run_id, "--json"))
    reopened = [e for e in events if e["type"] == "RunReopened"]
    assert len(reopened) == 1 and reopened[0]["reason"] == "fixed the cause"
    again = served.run("retry", run_id)
    assert again.returncode == 2 and "no failed task" in again.stderr


CRON = {
    "apiVersion": "aether/v1",
    "kind": "CronWorkflow",
    "metadata": {"name": "nightly"},
    "spec": {
        "schedule": "0 3 * * *",
        "workflowSpec": {
            "entrypoint": "main",
            "templates": [{"task": {"name": "main", "executor": {"type": "echo"}}}],
        },
    },
}


def test_every_kind_of_command_is_audited_with_its_actor_and_reason(served: Served, tmp_path: Path) -> None:
    who = ("--actor", "alice")
    path = write(tmp_path, "audited.json", SUSPENDING)
    run_id = served.run("submit", str(path), *who, "--reason", "nightly import").stdout.strip()
    task = ""
    for _ in range(100):
        view = _json(served.run("get", run_id, "--json"))
        task = next((t["runID"] for t in view["tasks"] if t["status"] == "Suspended"), "")
        if task:
            break
    assert task
    assert served.run("resume", run_id, task, "--payload", "{}", *who, "--reason", "looked fine").returncode == 0
    second = served.run("submit", str(path), "--actor", "bob").stdout.strip()
    assert served.run("cancel", second, "--actor", "bob", "--reason", "not needed").returncode == 0
    assert served.run("retry", second, *who, "--reason", "needed after all").returncode == 0
    cron_json = served.run("cron", "submit", str(write(tmp_path, "cron.json", CRON)), *who, "--json")
    cron_id = _json(cron_json)["cronWorkflowID"]
    assert served.run("cron", "update", cron_id, str(write(tmp_path, "cron.json", CRON)), *who).returncode == 0
    assert served.run("cron", "delete", cron_id, *who, "--reason", "moved").returncode == 0

    entries = _json(served.run("audit", "--json"))
    mine = [
        (e["actor"], e["command"], e["aggregate"], e["reason"])
        for e in entries
        if e["aggregate"] in (run_id, second, f"cron.{cron_id}")
    ]
    assert mine == [
        ("user:alice", "submit", run_id, "nightly import"),
        ("user:alice", "resume", run_id, "looked fine"),
        ("user:bob", "submit", second, ""),
        ("user:bob", "cancel", second, "not needed"),
        ("user:alice", "retry", second, "needed after all"),
        ("user:alice", "submit", f"cron.{cron_id}", ""),
        ("user:alice", "update", f"cron.{cron_id}", ""),
        ("user:alice", "delete", f"cron.{cron_id}", "moved"),
    ]
    bobs = _json(served.run("audit", "--actor", "bob", "--json"))
    assert {e["actor"] for e in bobs} == {"user:bob"} and len(bobs) == 2
    only_run = _json(served.run("audit", "--run", second, "--json"))
    assert [e["command"] for e in only_run] == ["submit", "cancel", "retry"]
    later = _json(served.run("audit", "--since", "2999-01-01T00:00:00Z", "--json"))
    assert later == []
    assert "ACTOR" in served.run("audit").stdout
    assert served.run("audit", "--since", "yesterday").returncode == 2


def test_retry_from_a_step_reruns_it_and_its_dependents(served: Served) -> None:
    view = _json(served.run("submit", str(EXAMPLE), "--wait", "--json"))
    run_id = view["runID"]
    greet = next(t["runID"] for t in view["tasks"] if t["taskName"] == "greet")
    retried = served.run("retry", run_id, "--from", greet, "--reason", "re-run the pipeline", "--wait", "--json")
    assert retried.returncode == 0, retried.stderr
    after = json.loads(retried.stdout)
    assert after["status"] == "Succeeded" and after["outputs"] == view["outputs"]
    superseded = [t for t in after["tasks"] if t["message"] == "superseded by a retry"]
    assert superseded and all(t["taskName"] != "greet" for t in superseded)
    types = [e["type"] for e in _json(served.run("history", run_id, "--json"))]
    assert types.count("TaskSuperseded") == len(superseded) and types.count("RunFinished") == 2
    assert _json(served.run("replay", "--run", run_id, "--verify", "--json"))["differences"] == {}
