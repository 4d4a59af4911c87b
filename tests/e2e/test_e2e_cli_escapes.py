"""Values that would steer a terminal reach every human-readable command's output escaped, never raw.

One run carries escape sequences in its labels, an input parameter (echoed to its outputs), its actor,
the reasons of its commands and a resume payload's key; each command is run as a user runs it.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from support.cli import SUSPENDING, Served, aether, write
from support.processes import until

CLEAR = "\x1b[2J"
TITLE = "\x1b]0;title\x07"
REWRITE = "\r\b"
C1 = "\x85\x9b"
BIDI = "\u202e\u2067"
HOSTILE = CLEAR + TITLE + REWRITE + C1 + BIDI
SHOWN = "\\x1b[2J\\x1b]0;title\\x07\\r\\x08\\x85\\x9b\\u202e\\u2067"
"""How HOSTILE reads in human output."""

RAW = {*map(chr, range(0x20)), *map(chr, range(0x7F, 0xA0)), *map(chr, range(0x202A, 0x202F))}
RAW |= {*map(chr, range(0x2066, 0x206A))}
RAW -= {"\n"}

ACTOR = "mallory" + HOSTILE
REASON = "because" + HOSTILE


def _clean(result: subprocess.CompletedProcess[str]) -> str:
    """The command's stdout and stderr, asserted free of every raw control but the line ends."""
    text = result.stdout + result.stderr
    assert not RAW & set(text), repr(text)
    return text


def _document() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(json.dumps(SUSPENDING))
    document["metadata"]["labels"] = {"note": HOSTILE}
    document["spec"]["templates"][0]["task"]["inputs"]["parameters"].append({"name": "greeting", "value": HOSTILE})
    return document


@pytest.fixture(scope="module")
def run_id(served: Served, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The hostile run, submitted, resumed with a hostile payload key, and finished."""
    path = write(tmp_path_factory.mktemp("docs"), "hostile.json", _document())
    submitted = served.run("submit", str(path), "--actor", ACTOR, "--reason", REASON)
    assert submitted.returncode == 0, submitted.stderr
    run = _clean(submitted).strip()
    tasks: list[str] = []

    def suspended() -> bool:
        view = json.loads(served.run("get", run, "--json").stdout)
        tasks[:] = [t["runID"] for t in view["tasks"] if t["status"] == "Suspended"]
        return bool(tasks)

    assert until(suspended, timeout=30)
    payload = json.dumps({"__resumed": True, "key" + HOSTILE: HOSTILE})
    resumed = served.run("resume", run, tasks[0], "--payload", payload, "--actor", ACTOR, "--reason", REASON)
    assert resumed.returncode == 0, resumed.stderr
    _clean(resumed)
    return run


def test_json_output_keeps_the_exact_values_with_no_raw_control(served: Served, run_id: str) -> None:
    result = served.run("list", "--label", f"note={HOSTILE}", "--json")
    runs = json.loads(_clean(result))["runs"]
    assert [(r["runID"], r["labels"]["note"]) for r in runs] == [(run_id, HOSTILE)]
    audit = json.loads(_clean(served.run("audit", "--run", run_id, "--json")))
    assert {(entry["actor"], entry["reason"]) for entry in audit} == {("user:" + ACTOR, REASON)}
    feed = [json.loads(line) for line in _clean(served.run("events", "--run", run_id, "--json")).splitlines()]
    assert "user:" + ACTOR in {event["actor"] for event in feed}


def test_watch_shows_the_echoed_outputs_escaped(served: Served, run_id: str) -> None:
    text = _clean(served.run("watch", run_id))
    assert "Succeeded" in text and "\\x85\\x9b\\u202e\\u2067" in text and "\\u001b[2J" in text


def test_history_shows_actor_and_payload_key_escaped(served: Served, run_id: str) -> None:
    text = _clean(served.run("history", run_id))
    assert f"user:mallory{SHOWN}" in text and f"key{SHOWN}" in text


def test_audit_shows_actor_and_reason_escaped(served: Served, run_id: str) -> None:
    text = _clean(served.run("audit", "--run", run_id))
    assert f"user:mallory{SHOWN}" in text and f"because{SHOWN}" in text


def test_events_show_the_actor_escaped(served: Served, run_id: str) -> None:
    text = _clean(served.run("events", "--run", run_id))
    assert f"user:mallory{SHOWN}" in text


def test_run_and_submit_wait_show_the_outputs_escaped(served: Served, tmp_path: Path) -> None:
    document = _document()
    del document["spec"]["templates"][0]["task"]["inputs"]["parameters"][0]
    path = write(tmp_path, "plain.json", document)
    for result in (
        served.run("submit", str(path), "--wait"),
        aether("run", str(path), cwd=served.state.parent, env={"AETHER_ACTOR": ACTOR}),
    ):
        assert result.returncode == 0, result.stderr
        assert "\\x85\\x9b\\u202e\\u2067" in _clean(result)


def test_errors_echo_values_escaped(served: Served) -> None:
    for result in (served.run("get", "run" + HOSTILE), served.run("list", "--label", HOSTILE)):
        assert result.returncode != 0
        assert SHOWN in _clean(result)


@pytest.mark.parametrize(
    "command",
    [
        ("get", "{run}"),
        ("get", "{run}", "--at", "3"),
        ("list",),
        ("list", "--label", f"note={HOSTILE}"),
        ("cron", "list"),
        ("workers",),
        ("retention", "--keep", "1000", "--discard", "--dry-run"),
        ("replay", "--run", "{run}", "--verify"),
        ("events",),
    ],
)
def test_other_commands_print_no_raw_control(served: Served, run_id: str, command: tuple[str, ...]) -> None:
    result = served.run(*(word.replace("{run}", run_id) for word in command))
    assert result.returncode == 0, result.stderr
    _clean(result)
