"""What a newcomer reaches for: `--version`, typo hints per (sub)command, `submit -p`, `--wait --timeout`,
finding the system from any folder, `watch` of a finished run, and `--strict` with the warnings."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

from support.cli import EXAMPLE, FAILING, SUSPENDING, Served, aether, serve, write

from aether_es.adapters.nats.server import EmbeddedNatsServer
from aether_es.runtime.state_dir import user_url_file

ARGUMENTS: dict[str, Any] = {
    "apiVersion": "aether/v1",
    "kind": "Workflow",
    "metadata": {"name": "arguments"},
    "spec": {
        "entrypoint": "main",
        "arguments": {"parameters": [{"name": "who", "value": "nobody"}]},
        "templates": [
            {
                "dag": {
                    "name": "main",
                    "outputs": {
                        "parameters": [
                            {"name": name, "valueFrom": {"parameter": f"workflow.parameters.{name}"}}
                            for name in ("who", "count", "tags", "version")
                        ]
                    },
                    "tasks": [{"name": "t", "template": "echo"}],
                }
            },
            {"task": {"name": "echo", "executor": {"type": "echo"}}},
        ],
    },
}
"""Its outputs are its workflow arguments, as the run saw them."""


def test_version() -> None:
    result = aether("--version")
    assert result.returncode == 0 and result.stdout.startswith("aether-es 0.") and not result.stderr


def test_a_misspelt_option_names_the_nearest_option_of_that_command() -> None:
    result = aether("submit", str(EXAMPLE), "--wiat")
    assert result.returncode == 2
    assert result.stderr.startswith("usage: aether-es submit ")
    assert result.stderr.rstrip().endswith("error: unrecognized arguments: --wiat (did you mean --wait?)")
    listing = aether("list", "--limt=3")
    assert listing.returncode == 2 and "--limt=3 (did you mean --limit?)" in listing.stderr
    nested = aether("cron", "list", "--jsn")
    assert nested.returncode == 2 and "usage: aether-es cron list " in nested.stderr
    assert "--jsn (did you mean --json?)" in nested.stderr


def test_a_misspelt_command_names_the_nearest_command() -> None:
    result = aether("sumbit", str(EXAMPLE))
    assert result.returncode == 2 and result.stderr.rstrip().endswith("did you mean 'submit'?")
    nested = aether("cron", "sumbit", "x.json")
    assert nested.returncode == 2 and nested.stderr.rstrip().endswith("did you mean 'submit'?")


def test_submit_p_sets_workflow_arguments_typed_as_json_when_they_parse(served: Served, tmp_path: Path) -> None:
    path = write(tmp_path, "args.json", ARGUMENTS)
    params = ("-p", "who=world", "-p", "count=3", "-p", "tags=[1, 2]", "-p", 'version="1.0"', "-p", "count=4")
    result = served.run("submit", str(path), *params, "--wait", "--json")
    assert result.returncode == 0, result.stderr
    outputs = {p["name"]: p["value"] for p in json.loads(result.stdout)["outputs"]["parameters"]}
    assert outputs == {"who": "world", "count": 4, "tags": [1, 2], "version": "1.0"}
    bad = served.run("submit", str(path), "-p", "novalue")
    assert bad.returncode == 2 and bad.stderr.strip() == "aether: submit: -p 'novalue': expected name=value"


def test_submit_timeout_needs_wait(served: Served) -> None:
    result = served.run("submit", str(EXAMPLE), "--timeout", "5")
    assert result.returncode == 2 and "--timeout needs --wait" in result.stderr


def test_run_exits_6_when_its_timeout_passes_first(nats_server: EmbeddedNatsServer, tmp_path: Path) -> None:
    result = aether("run", "--nats", nats_server.url, "--timeout", "1", str(write(tmp_path, "s.json", SUSPENDING)))
    assert result.returncode == 6, result.stderr
    assert "Running: stopped waiting after 1." in result.stdout and "to resume: aether-es resume " in result.stdout


def test_watch_of_a_finished_run_says_when_it_ended(served: Served, tmp_path: Path) -> None:
    view = json.loads(served.run("submit", str(write(tmp_path, "f.json", FAILING)), "--wait", "--json").stdout)
    watched = served.run("watch", view["runID"])
    assert watched.returncode == 4
    assert f"Failed (one or more tasks failed), ended {view['metrics']['finishedAt']}" in watched.stdout
    assert " in 0.0" not in watched.stdout


def test_commands_find_the_system_from_a_folder_below_the_served_one(served: Served) -> None:
    below = served.state.parent / "project" / "src"
    below.mkdir(parents=True, exist_ok=True)
    result = served.run("list", "--json", cwd=below)
    assert result.returncode == 0, result.stderr


def test_serve_records_the_user_level_default_while_it_runs(tmp_path: Path) -> None:
    anywhere = tmp_path / "elsewhere"
    anywhere.mkdir()
    process, url = serve(tmp_path / "state" / ".aether")
    try:
        assert user_url_file().read_text().splitlines() == [url, str((tmp_path / "state" / ".aether").resolve())]
        assert aether("list", cwd=anywhere).returncode == 0
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
    assert not user_url_file().exists()
    gone = aether("list", cwd=anywhere)
    assert gone.returncode == 2 and "no NATS URL" in gone.stderr and str(user_url_file()) in gone.stderr


def test_a_url_written_by_hand_as_the_user_level_default_counts_and_is_named(tmp_path: Path) -> None:
    recorded = user_url_file()
    recorded.parent.mkdir(parents=True, exist_ok=True)
    recorded.write_text("nats://127.0.0.1:9\n")
    try:
        result = aether("list", cwd=tmp_path)
    finally:
        recorded.unlink()
    assert result.returncode == 1
    assert result.stderr.startswith("aether: list: cannot connect to nats://127.0.0.1:9: ")
    assert result.stderr.rstrip().endswith(f" (the URL from {recorded})")
