"""Retention as an operator runs it: archived first, removed everywhere, recorded, restorable."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

from support.cli import EXAMPLE, FAILING, aether, serve, write

from aether_es.adapters.nats.server import EmbeddedNatsServer


def _json(result: Any) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_old_runs_are_archived_removed_recorded_and_can_be_restored(tmp_path: Path) -> None:
    process, url = serve(tmp_path / ".aether", "--workers", "4")
    try:

        def run(*args: str) -> Any:
            return aether(*args, "--nats", url)

        failing = write(tmp_path, "fails.json", FAILING)
        first = _json(run("submit", str(EXAMPLE), "--wait", "--json"))["runID"]
        second = json.loads(run("submit", str(failing), "--wait", "--json").stdout)["runID"]
        third = _json(run("submit", str(EXAMPLE), "--wait", "--json"))["runID"]
        dry = _json(run("retention", "--keep", "1", "--discard", "--dry-run", "--json"))
        assert sorted(dry["runIDs"]) == sorted([first, second]) and dry["purged"] is False
        assert run("get", first).returncode == 0  # a dry run removes nothing

        archive = tmp_path / "archive"
        removed = _json(
            run(
                "retention", "--keep", "1", "--archive", str(archive), "--actor", "ops", "--reason", "30 days", "--json"
            )
        )
        assert sorted(removed["runIDs"]) == sorted([first, second]) and len(removed["purgeIDs"]) == 1
        assert sorted(p.name for p in archive.iterdir()) == sorted([f"{first}.jsonl", f"{second}.jsonl"])
        for gone in (first, second):
            assert run("get", gone).returncode == 3
            assert run("history", gone).returncode == 3
            assert run("events", "--run", gone, "--json").stdout.strip() == ""
        listed = [r["runID"] for r in _json(run("list", "--json"))["runs"]]
        assert listed == [third]
        audit = _json(run("audit", "--actor", "ops", "--json"))
        assert [(e["command"], e["reason"]) for e in audit] == [("purge", "30 days")]
        assert _json(run("replay", "--all", "--json"))["runs"] == 1

        elsewhere = EmbeddedNatsServer(tmp_path / "elsewhere")
        elsewhere.start()
        try:  # an archive is a history export: it restores into any JetStream
            restored = aether("history", "--import", str(archive / f"{first}.jsonl"), "--nats", elsewhere.url)
            assert restored.returncode == 0, restored.stderr
            assert _json(aether("replay", "--run", first, "--json", "--nats", elsewhere.url))["runs"] == 1
        finally:
            elsewhere.close()
        assert _json(run("retention", "--older-than", "0s", "--discard", "--dry-run", "--json"))["runIDs"]

        assert run("retention", "--older-than", "soon", "--discard").returncode == 2
        assert run("retention", "--keep", "1").returncode == 2  # neither --archive nor --discard
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
