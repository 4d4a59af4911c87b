"""The run commands as a user runs them against `aether-es serve`: real processes, output and exit codes."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from support.cli import EXAMPLE, FAILING, SUSPENDING, Served, aether, serve, write

from bench.scenarios import loop_workflow


def _json(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_submit_wait_prints_progress_and_outputs(served: Served) -> None:
    result = served.run("submit", str(EXAMPLE), "--wait")
    assert result.returncode == 0, result.stderr
    assert "Succeeded" in result.stdout and "outputs:" in result.stdout and "verdict" in result.stdout


def test_submit_wait_of_a_failing_run_exits_4(served: Served, tmp_path: Path) -> None:
    result = served.run("submit", str(write(tmp_path, "fails.json", FAILING)), "--wait", "--json")
    assert result.returncode == 4
    assert json.loads(result.stdout)["status"] == "Failed"


def test_an_invalid_document_exits_2_and_starts_nothing(served: Served, tmp_path: Path) -> None:
    before = _json(served.run("list", "--json"))["runs"]
    result = served.run("submit", str(write(tmp_path, "bad.json", dict(FAILING, apiVersion="aether/v2"))))
    assert result.returncode == 2
    assert result.stderr.strip() == "aether: validation error: unsupported apiVersion: aether/v2"
    assert _json(served.run("list", "--json"))["runs"] == before


def test_idempotency_key_gives_one_run(served: Served) -> None:
    first = served.run("submit", str(EXAMPLE), "--idempotency-key", "order-42")
    again = served.run("submit", str(EXAMPLE), "--idempotency-key", "order-42")
    assert first.returncode == again.returncode == 0
    assert first.stdout.strip() == again.stdout.strip()


def test_get_shows_the_tree_and_json(served: Served) -> None:
    run_id = served.run("submit", str(EXAMPLE), "--wait", "--json")
    view = json.loads(run_id.stdout)
    human = served.run("get", view["runID"])
    assert human.returncode == 0 and view["runID"] in human.stdout and "greet" in human.stdout
    assert _json(served.run("get", view["runID"], "--json"))["runID"] == view["runID"]


def test_unknown_run_exits_3(served: Served) -> None:
    for command in (("get", "no-such-run"), ("watch", "no-such-run"), ("cancel", "no-such-run")):
        result = served.run(*command)
        assert result.returncode == 3, (command, result.stderr)
        assert "not found" in result.stderr


def test_list_filters_and_pages(served: Served, tmp_path: Path) -> None:
    path = write(tmp_path, "approval.json", SUSPENDING)
    run_id = served.run("submit", str(path)).stdout.strip()
    labelled = _json(served.run("list", "--label", "team=ops", "--json"))["runs"]
    assert run_id in [r["runID"] for r in labelled]
    assert all(r["labels"] == {"team": "ops"} for r in labelled)
    succeeded = _json(served.run("list", "--phase", "Succeeded", "--json"))["runs"]
    assert run_id not in [r["runID"] for r in succeeded]
    page = _json(served.run("list", "--limit", "1", "--json"))
    assert len(page["runs"]) == 1 and page["nextPageToken"]
    rest = _json(served.run("list", "--limit", "1000", "--page", page["nextPageToken"], "--json"))["runs"]
    assert page["runs"][0]["runID"] not in [r["runID"] for r in rest]
    assert "RUN" in served.run("list").stdout
    bad = served.run("list", "--label", "nolabel")
    assert bad.returncode == 2 and "key=value" in bad.stderr
    served.run("cancel", run_id)


def test_resume_with_payload_then_the_run_succeeds(served: Served, tmp_path: Path) -> None:
    run_id = served.run("submit", str(write(tmp_path, "approval.json", SUSPENDING))).stdout.strip()
    task = _suspended_task(served, run_id)
    bad = served.run("resume", run_id, task, "--payload", "[1]")
    assert bad.returncode == 2 and "JSON object" in bad.stderr
    assert served.run("resume", run_id, task, "--payload", '{"__resumed": true}').returncode == 0
    watched = served.run("watch", run_id)
    assert watched.returncode == 0, watched.stderr
    assert "Succeeded" in watched.stdout
    again = served.run("resume", run_id, "nope")
    assert again.returncode == 2 and "does not belong" in again.stderr


def test_cancel_then_cancel_again_is_invalid(served: Served, tmp_path: Path) -> None:
    run_id = served.run("submit", str(write(tmp_path, "approval.json", SUSPENDING))).stdout.strip()
    _suspended_task(served, run_id)
    assert served.run("cancel", run_id).returncode == 0
    assert _json(served.run("get", run_id, "--json"))["status"] == "Cancelled"
    again = served.run("cancel", run_id)
    assert again.returncode == 2 and "terminal" in again.stderr
    assert served.run("watch", run_id).returncode == 4


def test_events_of_a_run_in_order_and_by_type(served: Served) -> None:
    view = _json(served.run("submit", str(EXAMPLE), "--wait", "--json"))
    run_id = view["runID"]
    lines = _events(served, "--run", run_id, "--json")
    ids = [int(event["id"].rsplit(":", 1)[1]) for event in lines]
    assert ids == list(range(1, len(ids) + 1))
    assert lines[0]["type"] == "RunSubmitted" and lines[-1]["type"] == "RunFinished"
    finished = _events(served, "--run", run_id, "--type", "RunFinished", "--json")
    assert [event["type"] for event in finished] == ["RunFinished"]
    human = served.run("events", "--run", run_id)
    assert human.returncode == 0 and "TaskFinished" in human.stdout
    assert served.run("events", "--type", "not a type").returncode == 2


def test_commands_find_a_local_serve_without_a_url(served: Served) -> None:
    workdir = served.state.parent
    result = served.run("list", "--json", cwd=workdir)
    assert result.returncode == 0, result.stderr


def test_serve_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    state = tmp_path / ".aether"
    process, url = serve(state)
    assert (state / "nats.url").read_text().strip() == url
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "stopped" in out
    assert not (state / "nats.url").exists()


def _suspended_task(served: Served, run_id: str) -> str:
    for _ in range(100):
        view = _json(served.run("get", run_id, "--json"))
        suspended = [t["runID"] for t in view["tasks"] if t["status"] == "Suspended"]
        if suspended:
            return suspended[0]
        time.sleep(0.1)
    raise AssertionError(f"no suspended task in {run_id}")


def _events(served: Served, *args: str) -> list[dict[str, Any]]:
    for _ in range(50):  # the feed follows the history: give it a moment to catch up
        result = served.run("events", *args)
        assert result.returncode == 0, result.stderr
        events = [json.loads(line) for line in result.stdout.splitlines()]
        if events and events[-1]["type"] in ("RunFinished", "RunCancelled", "RunTimedOut", "RunErrored"):
            return events
        if "--type" in args and events:
            return events
        time.sleep(0.1)
    raise AssertionError(f"the feed never showed the run's end: {args}")


def test_a_run_stopped_mid_way_by_sigterm_finishes_after_a_restart(tmp_path: Path) -> None:
    items = 2000
    loop = loop_workflow(items)
    state = tmp_path / ".aether"
    process, url = serve(state, "--workers", "4")
    try:
        run_id = aether("submit", str(write(tmp_path, "many.json", loop)), "--nats", url).stdout.strip()
        for _ in range(100):  # stop it once work is under way, not before and not after
            view = json.loads(aether("get", run_id, "--json", "--nats", url).stdout)
            done = sum(1 for t in view["tasks"] if t["status"] == "Succeeded")
            if done > 50:
                break
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=60)
    assert process.returncode == 0
    assert view["status"] not in ("Succeeded", "Failed")
    process, url = serve(state, "--workers", "4")
    try:
        watched = aether("watch", run_id, "--json", "--nats", url, timeout=120)
        assert watched.returncode == 0, watched.stderr
        final = json.loads(watched.stdout)
        leaves = [t for t in final["tasks"] if t["templateType"] == "task"]
        assert len(leaves) == items and all(t["status"] == "Succeeded" for t in leaves)
        assert all(t["retryCount"] == 0 for t in leaves)
        assert final["progress"] == f"{items + 1}/{items + 1}"
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=60)


def test_serve_refuses_a_bad_replica_count(tmp_path: Path) -> None:
    result = aether("serve", "--state-dir", str(tmp_path), "--replicas", "0")
    assert result.returncode == 2 and "--replicas" in result.stderr
