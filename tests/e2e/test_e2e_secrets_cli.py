"""`run` (and `serve`, with the same options) reads secrets from the environment by default and from a
folder of files when given one; a secret that cannot be resolved fails its task, naming it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from support.cli import aether, write

VALUE = "s3cr3t-value-for-the-test"

USES_SECRET: dict[str, Any] = {
    "apiVersion": "aether/v1",
    "kind": "Workflow",
    "metadata": {"name": "uses-secret"},
    "spec": {
        "entrypoint": "main",
        "templates": [
            {
                "task": {
                    "name": "main",
                    "inputs": {
                        "parameters": [{"name": "token", "valueFrom": {"secretKeyRef": {"name": "db", "key": "pw"}}}]
                    },
                    "executor": {"type": "echo"},
                }
            }
        ],
    },
}


def run(tmp_path: Path, *flags: str, env: dict[str, str] | None = None) -> tuple[int, dict[str, Any], str]:
    document = write(tmp_path, "secret.json", USES_SECRET)
    done = aether("run", str(document), "--state-dir", str(tmp_path / "state"), "--json", *flags, env=env)
    view = json.loads(done.stdout) if done.stdout.strip() else {}
    return done.returncode, view, done.stdout + done.stderr


def test_from_the_environment_by_default(tmp_path: Path) -> None:
    code, view, output = run(tmp_path, env={"AETHER_SECRET_DB_PW": VALUE})
    assert code == 0 and view["status"] == "Succeeded"
    assert VALUE not in output


def test_from_a_folder_first(tmp_path: Path) -> None:
    (tmp_path / "secrets" / "db").mkdir(parents=True)
    (tmp_path / "secrets" / "db" / "pw").write_text(VALUE + "\n")
    code, view, output = run(tmp_path, "--secrets-dir", str(tmp_path / "secrets"), "--secrets-env-prefix", "")
    assert code == 0 and view["status"] == "Succeeded"
    assert VALUE not in output


def test_a_missing_secret_fails_its_task_naming_it(tmp_path: Path) -> None:
    code, view, _ = run(tmp_path, "--secrets-env-prefix", "TEST_NONE_")
    assert code == 4 and view["status"] == "Error"
    (task,) = view["tasks"]
    assert task["message"] == (
        'input "token": secret "db" key "pw" not found (environment variable TEST_NONE_DB_PW is not set)'
    )


def test_a_secrets_folder_that_is_not_one_is_refused_by_name(tmp_path: Path) -> None:
    code, _, output = run(tmp_path, "--secrets-dir", str(tmp_path / "absent"))
    assert code == 2
    assert output.strip() == f"aether: run: --secrets-dir ($AETHER_SECRETS_DIR) {tmp_path / 'absent'} is not a folder"
