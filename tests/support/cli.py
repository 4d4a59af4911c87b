"""Running the `aether-es` command as a user does: a real process, its output and exit code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "hello-pipeline.json"

FAILING: dict[str, Any] = {
    "apiVersion": "aether/v1",
    "kind": "Workflow",
    "metadata": {"name": "always-fails"},
    "spec": {
        "entrypoint": "main",
        "templates": [
            {
                "task": {
                    "name": "main",
                    "inputs": {"parameters": [{"name": "fail-count", "value": 9}]},
                    "executor": {"type": "echo"},
                }
            }
        ],
    },
}
"""One task that fails every attempt (echo's `fail-count` gate)."""


def aether(
    *args: str, stdin: bytes | None = None, timeout: float = 60, cwd: Path = ROOT, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The command's run; `env` adds variables to this process's environment."""
    return subprocess.run(
        [sys.executable, "-m", "aether_es.cli.main", *args],
        input=stdin.decode() if stdin is not None else None,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env={**os.environ, **env} if env is not None else None,
    )


def write(tmp: Path, name: str, document: Any) -> Path:
    path = tmp / name
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    return path


SUSPENDING: dict[str, Any] = {
    "apiVersion": "aether/v1",
    "kind": "Workflow",
    "metadata": {"name": "approval", "labels": {"team": "ops"}},
    "spec": {
        "entrypoint": "main",
        "templates": [
            {
                "task": {
                    "name": "main",
                    "inputs": {"parameters": [{"name": "suspend", "value": True}]},
                    "executor": {"type": "echo"},
                }
            }
        ],
    },
}
"""One task that suspends until resumed with `__resumed` (echo's suspend gate), labelled team=ops."""


class Served:
    """A running `aether-es serve` process and the URL it serves on."""

    def __init__(self, process: subprocess.Popen[str], url: str, state: Path) -> None:
        self.process = process
        self.url = url
        self.state = state

    def run(self, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        """The command against this server: by URL, or found from the state folder when run in `cwd`."""
        if cwd is None:
            return aether(*args, "--nats", self.url)
        return aether(*args, cwd=cwd)


def serve(state: Path, *extra: str) -> tuple[subprocess.Popen[str], str]:
    """Start `aether-es serve` on an embedded server under `state`; returns once it says it is serving."""
    process = subprocess.Popen(
        [sys.executable, "-m", "aether_es.cli.main", "serve", "--state-dir", str(state), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    assert "serving on" in line, line + (process.stderr.read() if process.stderr else "")
    return process, line.split("serving on ", 1)[1].split(" ", 1)[0]
