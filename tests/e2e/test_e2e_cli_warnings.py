"""Warnings about what Aether will not do, from `validate`, `run`, `submit` and `cron submit` (and the API's submit
replies), and `--strict`, which refuses such a document with exit 2: `submit` and `cron submit` leave judging to
the engine, which judges the document it stores, and print its warnings or its refusal, once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from support.cli import EXAMPLE, ROOT, Served, aether, write

TYPO = "spec.templates[0].dag.tasks[1].dependancies"


def _with_traps() -> dict[str, Any]:
    """The example with a misspelt `dependencies` and a `retry` on a task template: valid, but not as meant."""
    doc = json.loads(EXAMPLE.read_text())
    doc["spec"]["templates"][0]["dag"]["tasks"][1]["dependancies"] = ["greet"]
    doc["spec"]["templates"][1]["task"]["retry"] = {"limit": 2}
    return doc


WARNINGS = [
    f'aether: warning: {TYPO}: unknown field, ignored; did you mean "dependencies"?',
    'aether: warning: spec.templates[1].task.retry: ignored on a task template: Aether uses "retry" only on the DAG '
    "node that calls the template (dag.tasks[]); move it there",
]


def test_validate_prints_the_warnings_and_says_ok(tmp_path: Path) -> None:
    result = aether("validate", str(write(tmp_path, "w.json", _with_traps())))
    assert result.returncode == 0 and result.stdout.strip() == "ok"
    assert result.stderr.splitlines() == WARNINGS


def test_validate_strict_refuses_a_document_with_warnings(tmp_path: Path) -> None:
    result = aether("validate", "--strict", str(write(tmp_path, "w.json", _with_traps())))
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [*WARNINGS, "aether: validate: refused by --strict: 2 warnings above"]
    clean = aether("validate", "--strict", str(EXAMPLE))
    assert clean.returncode == 0 and clean.stderr == ""


def test_run_strict_starts_nothing(tmp_path: Path) -> None:
    state = tmp_path / "state"
    result = aether("run", "--strict", "--state-dir", str(state), str(write(tmp_path, "w.json", _with_traps())))
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == "aether: run: refused by --strict: 2 warnings above"
    assert not state.exists()


def test_submit_runs_a_document_with_warnings_and_the_reply_carries_them(served: Served, tmp_path: Path) -> None:
    path = write(tmp_path, "w.json", _with_traps())
    result = served.run("submit", str(path), "--json")
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == WARNINGS
    reply = json.loads(result.stdout)
    assert [w["path"] for w in reply["warnings"]] == [TYPO, "spec.templates[1].task.retry"]
    assert reply["warnings"][0]["message"] == 'unknown field, ignored; did you mean "dependencies"?'
    assert json.loads(served.run("submit", str(EXAMPLE), "--json").stdout)["warnings"] == []


def refusal(warnings: list[str]) -> str:
    """The engine's refusal under strict, as the command prints it: every warning, on one line."""
    listed = "; ".join(w.removeprefix("aether: warning: ") for w in warnings)
    count = "1 warning" if len(warnings) == 1 else f"{len(warnings)} warnings"
    return f"aether: validation error: refused by strict, the document has {count}: {listed}"


def test_submit_strict_refuses_once_and_starts_nothing(served: Served, tmp_path: Path) -> None:
    before = json.loads(served.run("list", "--json").stdout)["runs"]
    result = served.run("submit", "--strict", "--json", str(write(tmp_path, "w.json", _with_traps())))
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.splitlines() == [refusal(WARNINGS)]
    assert json.loads(served.run("list", "--json").stdout)["runs"] == before
    clean = served.run("submit", "--strict", "--json", str(EXAMPLE))
    assert clean.returncode == 0 and clean.stderr == "" and json.loads(clean.stdout)["warnings"] == []


def test_submit_strict_judges_the_document_with_its_arguments(served: Served) -> None:
    """A clean file whose `-p` value leaves `{{...}}` literal: the document the engine would store is refused."""
    literal = served.run("submit", "--strict", str(EXAMPLE), "-p", "greeting={{workflow.name}}")
    assert literal.returncode == 2 and literal.stdout == ""
    assert literal.stderr.startswith(
        "aether: validation error: refused by strict, the document has 1 warning: spec.arguments.parameters[0].value: "
    )
    warned = served.run("submit", str(EXAMPLE), "-p", "greeting={{workflow.name}}", "--json")
    assert warned.returncode == 0 and warned.stderr == literal.stderr.replace(
        "aether: validation error: refused by strict, the document has 1 warning: ", "aether: warning: "
    )
    assert [w["path"] for w in json.loads(warned.stdout)["warnings"]] == ["spec.arguments.parameters[0].value"]


def test_cron_submit_carries_the_warnings_and_strict_is_judged_by_the_engine(served: Served, tmp_path: Path) -> None:
    cron = json.loads((ROOT / "examples" / "disk-report.json").read_text())
    cron["metadata"]["name"] = "warned"
    cron["spec"]["shedule"] = cron["spec"]["schedule"]
    path = write(tmp_path, "cron.json", cron)
    warning = 'aether: warning: spec.shedule: unknown field, ignored; did you mean "schedule"?'
    refused = served.run("cron", "submit", "--strict", str(path))
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.splitlines() == [refusal([warning])]
    assert json.loads(served.run("cron", "list", "--json").stdout) == []
    submitted = served.run("cron", "submit", str(path), "--json")
    assert submitted.returncode == 0 and submitted.stderr.splitlines() == [warning]
    reply = json.loads(submitted.stdout)
    assert [w["path"] for w in reply["warnings"]] == ["spec.shedule"] and reply["cronWorkflowID"]
    assert served.run("cron", "delete", reply["cronWorkflowID"]).returncode == 0
