"""One contract for the command line: each field spelt one way in every `--json`, and what cannot be done
refused with exit 2 (3 for what is gone) and a one-line message, against a served system."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

from support.cli import EXAMPLE, ROOT, SUSPENDING, Served, write
from support.naming import keys_of, spelling_problems

CRON_EXAMPLE = ROOT / "examples" / "disk-report.json"

SUSPENDING_DAG: dict[str, Any] = {
    **SUSPENDING,
    "spec": {
        "entrypoint": "gate",
        "templates": [
            {"dag": {"name": "gate", "tasks": [{"name": "hold", "template": "main"}]}},
            *SUSPENDING["spec"]["templates"],
        ],
    },
}
"""A DAG whose one node suspends: while it waits, the DAG itself is Running."""


def _json(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _refused(result: subprocess.CompletedProcess[str], code: int, *words: str) -> None:
    """Exit `code`, one line on stderr saying `words`, nothing on stdout."""
    assert result.returncode == code, (result.returncode, result.stderr)
    assert result.stderr.count("\n") == 1 and result.stdout == "", result.stderr
    assert all(word in result.stderr for word in words), result.stderr


def _waiting(served: Served, run_id: str) -> dict[str, Any]:
    """The run's view once one of its tasks is Suspended."""
    deadline = time.monotonic() + 20
    while True:
        view = _json(served.run("get", run_id, "--json"))
        if any(task["status"] == "Suspended" for task in view["tasks"]):
            return view
        assert time.monotonic() < deadline, view
        time.sleep(0.2)


def test_every_json_output_spells_each_concept_one_way(served: Served, tmp_path: Path) -> None:
    outputs = [
        submitted := _json(served.run("submit", str(EXAMPLE), "--json")),
        _json(served.run("submit", str(EXAMPLE), "--wait", "--json")),
        _json(served.run("get", submitted["runID"], "--json")),
        listed := _json(served.run("list", "--json")),
        cron := _json(served.run("cron", "submit", str(write(tmp_path, "c.json", _cron("spelling"))), "--json")),
        _json(served.run("cron", "list", "--json")),
        _json(served.run("cron", "get", cron["cronWorkflowID"], "--json")),
        _json(served.run("cron", "delete", cron["cronWorkflowID"], "--json")),
        _json(served.run("audit", "--json")),
        _json(served.run("workers", "--json")),
        _json(served.run("retention", "--keep", "1000", "--discard", "--dry-run", "--json")),
        history := _json(served.run("history", submitted["runID"], "--json")),
        [json.loads(line) for line in served.run("events", "--json").stdout.splitlines()],
        graph := _json(served.run("graph", submitted["runID"], "--format", "json")),
    ]
    assert {"status", "taskRunID"} <= set(graph["nodes"][0])
    assert set(listed["runs"][0]) >= {"runID", "status", "suspendedTasks", "cronWorkflowID", "createdAt"}
    assert {"taskRunID", "status", "startedAt"} <= {key for event in history for key in event["data"]}
    assert spelling_problems(key for output in outputs for key in keys_of(output)) == []


def test_resume_of_a_task_that_is_not_suspended_is_refused(served: Served, tmp_path: Path) -> None:
    done = _json(served.run("submit", str(EXAMPLE), "--wait", "--json"))
    task = done["tasks"][-1]
    _refused(served.run("resume", done["runID"], task["runID"]), 2, "terminal state Succeeded")
    run_id = served.run("submit", str(write(tmp_path, "gate.json", SUSPENDING_DAG))).stdout.strip()
    dag, hold = _waiting(served, run_id)["tasks"]
    _refused(served.run("resume", run_id, dag["runID"]), 2, f'task "{dag["runID"]}" is Running, not Suspended')
    resumed = _json(served.run("resume", run_id, hold["runID"], "--payload", '{"__resumed": true}', "--json"))
    assert resumed == {"runID": run_id, "taskRunID": hold["runID"], "resumed": True}
    commands = [entry["command"] for entry in _json(served.run("audit", "--run", run_id, "--json"))]
    assert commands == ["submit", "resume"]  # the refused one changed nothing and is not in the audit


def test_an_idempotency_key_with_another_document_is_a_conflict(served: Served, tmp_path: Path) -> None:
    first = served.run("submit", str(EXAMPLE), "--idempotency-key", "contract-1").stdout.strip()
    again = served.run("submit", str(EXAMPLE), "--idempotency-key", "contract-1")
    assert again.returncode == 0 and again.stdout.strip() == first
    other = served.run("submit", str(write(tmp_path, "other.json", SUSPENDING)), "--idempotency-key", "contract-1")
    _refused(other, 2, "aether: conflict:", f'already started run "{first}" with another document')


def test_events_refuse_an_unknown_type_or_run_and_take_several_types(served: Served) -> None:
    run_id = _json(served.run("submit", str(EXAMPLE), "--wait", "--json"))["runID"]
    _refused(served.run("events", "--type", "Bogus"), 2, "--type 'Bogus' is no event type", "RunFinished")
    _refused(served.run("events", "--run", "nosuch"), 3, 'no event of run "nosuch"')
    lines = served.run("events", "--run", run_id, "--type", "RunSubmitted", "--type", "RunFinished", "--json")
    assert [json.loads(line)["type"] for line in lines.stdout.splitlines()] == ["RunSubmitted", "RunFinished"]


def test_get_at_an_event_beyond_the_history_is_refused(served: Served) -> None:
    run_id = _json(served.run("submit", str(EXAMPLE), "--wait", "--json"))["runID"]
    last = len(_json(served.run("history", run_id, "--json")))
    _refused(served.run("get", run_id, "--at", "999"), 2, f"the run has {last} events", "beyond its history")
    assert served.run("get", run_id, "--at", str(last)).returncode == 0


def test_cron_names_are_unique_and_a_deleted_cron_is_gone(served: Served, tmp_path: Path) -> None:
    path = write(tmp_path, "cron.json", _cron("unique-name"))
    cron_id = _json(served.run("cron", "submit", str(path), "--json"))["cronWorkflowID"]
    _refused(served.run("cron", "submit", str(path)), 2, "aether: conflict:", '"unique-name" exists already', cron_id)
    _refused(served.run("cron", "resume", cron_id), 2, "is not suspended")
    assert _json(served.run("cron", "delete", cron_id, "--json")) == {"cronWorkflowID": cron_id, "deleted": True}
    for again in (("delete", cron_id), ("suspend", cron_id), ("trigger", cron_id), ("update", cron_id, str(path))):
        _refused(served.run("cron", *again), 3, f'cron workflow "{cron_id}" not found')
    assert served.run("cron", "submit", str(path)).returncode == 0  # the name is free again


def test_cron_trigger_suspend_and_resume_with_the_example(served: Served) -> None:
    cron_id = _json(served.run("cron", "submit", str(CRON_EXAMPLE), "--json"))["cronWorkflowID"]
    assert _json(served.run("cron", "suspend", cron_id, "--json")) == {"cronWorkflowID": cron_id, "suspended": True}
    _refused(served.run("cron", "suspend", cron_id), 2, "already suspended")
    triggered = _json(served.run("cron", "trigger", cron_id, "--reason", "check now", "--json"))
    assert triggered["cronWorkflowID"] == cron_id
    watched = served.run("watch", triggered["runID"], "--json")
    assert watched.returncode == 0, watched.stderr
    assert " used on " in json.loads(watched.stdout)["outputs"]["parameters"][0]["value"]
    view = _json(served.run("cron", "get", cron_id, "--json"))
    assert view["suspend"] is True and [run["runID"] for run in view["runs"]] == [triggered["runID"]]
    assert served.run("cron", "resume", cron_id).stdout.strip() == f"{cron_id} resumed"
    assert _json(served.run("cron", "get", cron_id, "--json"))["suspend"] is False
    audit = _json(served.run("audit", "--run", f"cron.{cron_id}", "--json"))
    assert [(e["command"], e["reason"]) for e in audit][1:] == [
        ("suspend", ""),
        ("trigger", "check now"),
        ("resume", ""),
    ]
    assert served.run("cron", "delete", cron_id).returncode == 0


def test_list_and_audit_take_relative_times_and_name_the_option_at_fault(served: Served) -> None:
    run_id = served.run("submit", str(EXAMPLE)).stdout.strip()
    assert run_id in [r["runID"] for r in _json(served.run("list", "--since", "1h", "--json"))["runs"]]
    assert _json(served.run("list", "--until", "2d", "--json"))["runs"] == []
    assert run_id in [e["aggregate"] for e in _json(served.run("audit", "--since", "90m", "--json"))]
    _refused(served.run("list", "--since", "yesterday"), 2, "aether: list: --since 'yesterday'", "1h, 2d")
    _refused(served.run("audit", "--since", "soon"), 2, "aether: audit: --since 'soon'")
    _refused(served.run("audit", "--run", "nosuch"), 3, 'no history of "nosuch"')
    _refused(served.run("list", "--phase", "Waiting"), 2, "aether: list: --phase: unknown phase 'Waiting'", "Suspended")
    _refused(served.run("list", "--page", "nonsense"), 2, "aether: list: --page: not a token this API returned")


def test_list_phase_suspended_finds_a_run_waiting_for_approval(served: Served, tmp_path: Path) -> None:
    run_id = served.run("submit", str(write(tmp_path, "approval.json", SUSPENDING))).stdout.strip()
    task = next(t for t in _waiting(served, run_id)["tasks"] if t["status"] == "Suspended")
    waiting = _json(served.run("list", "--phase", "Suspended", "--json"))["runs"]
    assert [(r["runID"], r["status"], r["suspendedTasks"]) for r in waiting] == [(run_id, "Running", 1)]
    assert "Running (1 suspended)" in served.run("list", "--phase", "Suspended").stdout
    served.run("resume", run_id, task["runID"], "--payload", '{"__resumed": true}')
    assert served.run("watch", run_id).returncode == 0
    assert run_id not in [r["runID"] for r in _json(served.run("list", "--phase", "Suspended", "--json"))["runs"]]


def _cron(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "aether/v1",
        "kind": "CronWorkflow",
        "metadata": {"name": name},
        "spec": {
            "schedule": "0 0 1 1 *",
            "workflowSpec": {
                "entrypoint": "main",
                "templates": [{"task": {"name": "main", "executor": {"type": "echo"}}}],
            },
        },
    }
