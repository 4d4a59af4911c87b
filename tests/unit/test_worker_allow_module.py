"""Which modules a worker's `python` executor may call: `--allow-module`, the `--import` modules, nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest

from aether_es.cli.main import build_parser
from aether_es.cli.worker_cmd import choose_executors
from aether_es.worker.executors.python import PythonExecutor


def test_allowed_are_the_named_and_the_imported_modules(tmp_path: Path) -> None:
    module = tmp_path / "team_tasks_probe.py"
    module.write_text("def hello() -> str:\n    return 'hi'\n")
    executors = choose_executors("python,shell", [str(module)], ["json"])
    python = executors["python"]
    assert isinstance(python, PythonExecutor)
    assert python.allowed_modules == ("json", "team_tasks_probe")


def test_without_options_nothing_is_allowed() -> None:
    python = choose_executors("python", [], [])["python"]
    assert isinstance(python, PythonExecutor) and python.allowed_modules == ()


@pytest.mark.parametrize("command", ["worker", "run", "serve"])
def test_each_command_takes_the_one_option(command: str) -> None:
    required = {"worker": ["--executors", "python"], "run": ["wf.json"], "serve": []}[command]
    argv = [command, *required, "--allow-module", "a.b", "--allow-module", "c"]
    args = build_parser(argv).parse_args(argv)
    assert args.allow_modules == ["a.b", "c"]


def test_a_name_that_is_not_a_module_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["worker", "--executors", "python", "--allow-module", "os;id"]
    with pytest.raises(SystemExit) as exit_:
        build_parser(argv).parse_args(argv)
    assert exit_.value.code == 2
    assert "--allow-module: not a module name: 'os;id'" in capsys.readouterr().err
