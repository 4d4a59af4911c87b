"""The `aether-es` command as a user runs it: real processes, real nats-server, exit codes and output."""

from __future__ import annotations

import json
from pathlib import Path

from support.cli import EXAMPLE, FAILING, aether, write

from aether_es.adapters.nats.server import EmbeddedNatsServer


def test_validate_ok_and_invalid(tmp_path: Path) -> None:
    ok = aether("validate", str(EXAMPLE))
    assert ok.returncode == 0 and ok.stdout.strip() == "ok"
    bad = dict(FAILING, apiVersion="aether/v2")
    invalid = aether("validate", str(write(tmp_path, "bad.json", bad)))
    assert invalid.returncode == 2
    assert invalid.stderr.strip() == "aether: validation error: unsupported apiVersion: aether/v2"


def test_validate_reports_malformed_json_and_wrong_types_in_one_line(tmp_path: Path) -> None:
    malformed = aether("validate", str(write(tmp_path, "m.json", '{"apiVersion": "aether/v1",\n  "kind": }')))
    assert malformed.returncode == 2
    assert malformed.stderr.startswith("aether: validation error: invalid document: malformed JSON at line 2")
    assert "Traceback" not in malformed.stderr and len(malformed.stderr.strip().splitlines()) == 1
    typed = json.loads(EXAMPLE.read_text())
    typed["spec"]["templates"][1]["task"]["timeout"] = 5
    wrong = aether("validate", str(write(tmp_path, "t.json", typed)))
    assert wrong.returncode == 2
    assert "spec.templates[1].task.timeout" in wrong.stderr and "Traceback" not in wrong.stderr


def test_validate_reads_standard_input() -> None:
    result = aether("validate", "-", stdin=EXAMPLE.read_bytes())
    assert result.returncode == 0 and result.stdout.strip() == "ok"


def test_validate_missing_file() -> None:
    result = aether("validate", "does-not-exist.json")
    assert result.returncode == 2 and "cannot read does-not-exist.json" in result.stderr


def test_run_on_an_embedded_server_shows_progress_and_outputs(tmp_path: Path) -> None:
    result = aether("run", "--state-dir", str(tmp_path / "state"), str(EXAMPLE))
    assert result.returncode == 0, result.stderr
    assert "Succeeded  pipeline/score/score-one[2]" in result.stdout
    assert 'message = "hello"' in result.stdout and "scores = [7,7,7]" in result.stdout
    assert (tmp_path / "state" / "nats").is_dir()


def test_run_against_a_given_server_json_output(nats_server: EmbeddedNatsServer, tmp_path: Path) -> None:
    result = aether("run", "--nats", nats_server.url, "--json", str(EXAMPLE))
    assert result.returncode == 0, result.stderr
    view = json.loads(result.stdout)
    assert view["status"] == "Succeeded" and len(view["tasks"]) == 7


def test_run_exit_code_for_a_failed_run(nats_server: EmbeddedNatsServer, tmp_path: Path) -> None:
    result = aether("run", "--nats", nats_server.url, str(write(tmp_path, "f.json", FAILING)))
    assert result.returncode == 4
    assert "Failed" in result.stdout


def test_run_invalid_document_starts_nothing(tmp_path: Path) -> None:
    state = tmp_path / "state"
    bad = dict(FAILING, metadata={"name": "Not_A_Name"})
    result = aether("run", "--state-dir", str(state), str(write(tmp_path, "bad.json", bad)))
    assert result.returncode == 2
    assert 'metadata.name "Not_A_Name" is invalid' in result.stderr
    assert not state.exists()


def test_conformance_on_a_small_corpus(nats_server: EmbeddedNatsServer, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    (corpus / "workflows").mkdir(parents=True)
    (corpus / "assertions").mkdir()
    write(corpus / "workflows", "01-fails.json", FAILING)
    write(corpus / "assertions", "01-fails.json", {"expectPhase": "Failed", "expectTaskCount": 1})
    write(corpus / "workflows", "02-wrong.json", FAILING)
    write(corpus / "assertions", "02-wrong.json", {"expectPhase": "Succeeded"})
    both = aether("conformance", "--nats", nats_server.url, str(corpus))
    assert both.returncode == 1
    lines = both.stdout.strip().splitlines()
    assert lines[-1] == "1 passed, 1 failed"
    assert any(line.startswith("PASS 01-fails") for line in lines)
    assert any(line.startswith("FAIL 02-wrong") and "phase is 'Failed'" in line for line in lines)
    one = aether("conformance", "--nats", nats_server.url, "--only", "01-*", str(corpus))
    assert one.returncode == 0 and one.stdout.strip().splitlines()[-1] == "1 passed, 0 failed"


def test_conformance_rejects_a_directory_without_workflows(tmp_path: Path) -> None:
    result = aether("conformance", str(tmp_path))
    assert result.returncode == 2 and "no workflows/ folder" in result.stderr
