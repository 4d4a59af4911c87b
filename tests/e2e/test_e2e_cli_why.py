"""Why a run failed, as the commands tell it: each failed task's message and stderr tail (`run`, `submit --wait`,
`watch`, `get`), per-task durations in `get`, and `serve` logging each failed run with its reason."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

from support.cli import SUSPENDING, Served, aether, serve, write

from aether_es.adapters.nats.server import EmbeddedNatsServer

STDERR_LINES = [f"line {n}" for n in range(1, 8)]

SHELL_FAILS: dict[str, Any] = {
    "apiVersion": "aether/v1",
    "kind": "Workflow",
    "metadata": {"name": "shell-fails"},
    "spec": {
        "entrypoint": "main",
        "templates": [
            {"dag": {"name": "main", "tasks": [{"name": "ok", "template": "sh"}, {"name": "bad", "template": "bad"}]}},
            {"task": {"name": "sh", "executor": {"type": "shell", "config": {"command": ["true"]}}}},
            {
                "task": {
                    "name": "bad",
                    "executor": {
                        "type": "shell",
                        "config": {
                            "command": ["sh", "-c", "; ".join(f"echo '{s}' >&2" for s in STDERR_LINES) + "; exit 3"]
                        },
                    },
                }
            },
        ],
    },
}
"""Two shell tasks: `ok` succeeds, `bad` prints seven lines on stderr and exits 3."""

WHY = "bad ("
TAIL = ["    stderr (last 5 of 7 lines):", *(f"    | {s}" for s in STDERR_LINES[2:])]


def _why(stdout: str) -> list[str]:
    """The `failed:` section of what a command printed."""
    lines = stdout.splitlines()
    start = lines.index("failed:")
    return lines[start + 1 : start + 2 + len(TAIL)]


def test_run_prints_the_failed_task_its_message_and_stderr_tail(
    nats_server: EmbeddedNatsServer, tmp_path: Path
) -> None:
    result = aether("run", "--nats", nats_server.url, str(write(tmp_path, "f.json", SHELL_FAILS)))
    assert result.returncode == 4, result.stderr
    first, *tail = _why(result.stdout)
    assert first.startswith("  bad (") and first.endswith(") Failed: shell: command exited with code 3")
    assert tail == TAIL
    assert "line 1" not in result.stdout and "ok (" not in result.stdout


def test_a_served_system_says_why_everywhere_and_logs_the_failed_run(tmp_path: Path) -> None:
    process, url = serve(tmp_path / ".aether", "--workers", "2")
    try:
        waited = aether("submit", str(write(tmp_path, "f.json", SHELL_FAILS)), "--wait", "--nats", url)
        assert waited.returncode == 4, waited.stderr
        run_id = waited.stdout.split()[1]
        assert _why(waited.stdout)[1:] == TAIL
        assert "Failed (one or more tasks failed) in " in waited.stdout  # how long it took, not when it ended

        got = aether("get", run_id, "--nats", url)
        assert got.returncode == 0, got.stderr
        assert _why(got.stdout)[1:] == TAIL
        bad = next(line for line in got.stdout.splitlines() if line.strip().startswith("bad ") and "Failed" in line)
        assert bad.split(f"{run_id}-")[1].split()[1].endswith("s")  # its duration, after its id

        watched = aether("watch", run_id, "--nats", url)
        assert watched.returncode == 4
        ended = json.loads(aether("get", run_id, "--json", "--nats", url).stdout)["metrics"]["finishedAt"]
        assert f"Failed (one or more tasks failed), ended {ended}" in watched.stdout
        assert " in 0.00s" not in watched.stdout and _why(watched.stdout)[1:] == TAIL
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    logged = [line for line in stderr.splitlines() if run_id in line]
    assert len(logged) == 1 and " WARNING " in logged[0], stderr
    assert "shell-fails Failed: one or more tasks failed; bad (" in logged[0]
    assert "shell: command exited with code 3" in logged[0]


def test_a_suspended_task_is_shown_with_its_id_and_the_resume_command(served: Served, tmp_path: Path) -> None:
    waited = served.run("submit", str(write(tmp_path, "s.json", SUSPENDING)), "--wait", "--timeout", "1.5")
    assert waited.returncode == 6, waited.stderr
    run_id = waited.stdout.split()[1]
    hint = f"to resume: aether-es resume {run_id} {run_id}-1"
    suspended = next(line for line in waited.stdout.splitlines() if line.startswith("  Suspended "))
    assert f"  {run_id}-1: suspended" in suspended
    assert f"    {hint}  (--payload" in waited.stdout
    assert "Running: stopped waiting after 1." in waited.stdout and "(--timeout); the run goes on" in waited.stdout
    got = served.run("get", run_id)
    assert f"\n    {hint}  (--payload" in got.stdout, got.stdout
    assert served.run(*hint.split(": ", 1)[1].split()[1:], "--payload", '{"__resumed": true}').returncode == 0
    assert served.run("watch", run_id).returncode == 0
