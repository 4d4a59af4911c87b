"""Built-in executors take values as data: a value never becomes shell syntax, a program, a callable, or a
second round of placeholders."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from support.assignments import assignment

from aether_es.ports.wire import TaskResult, WireParameter
from aether_es.worker.executors.python import PythonExecutor
from aether_es.worker.executors.shell import ShellExecutor

P = "{{inputs.parameters.p}}"
HOSTILE = ["'; touch pwned; '", "$(touch pwned)", '"; touch pwned; "', "x\ntouch pwned", "`touch pwned`"]


def stdout(result: TaskResult) -> Any:
    return {p.name: p.value for p in result.parameters}["stdout"]


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize("command", [f"echo '{P}'", f"echo {P}", f'echo "{P}"', f"echo \"'{P}'\""])
async def test_a_shell_value_is_echoed_and_never_run(command: str, value: str, tmp_path: Path) -> None:
    result = await ShellExecutor().execute(assignment("shell", {"command": command, "cwd": str(tmp_path)}, p=value))
    assert result.code == 0, result.message
    assert stdout(result) == (f"'{value}'" if command.startswith("echo \"'") else value)
    assert list(tmp_path.iterdir()) == []


async def test_a_shell_command_that_is_only_a_placeholder_is_refused() -> None:
    result = await ShellExecutor().execute(assignment("shell", {"command": f" {P} "}, p="id"))
    assert result.code == 3 and "config.command must not be only a placeholder" in result.message


async def test_a_list_command_takes_values_in_its_words_but_never_as_the_program(tmp_path: Path) -> None:
    words = await ShellExecutor().execute(assignment("shell", {"command": ["echo", f"<{P}>", P]}, p="$(id) {{x}}"))
    assert stdout(words) == "<$(id) {{x}}> $(id) {{x}}"
    program = await ShellExecutor().execute(assignment("shell", {"command": [P, "-c", "id"]}, p="/bin/sh"))
    assert program.code == 3 and "config.command[0] must not hold a placeholder" in program.message


async def test_a_value_naming_a_secret_placeholder_stays_text() -> None:
    sent = assignment("shell", {"command": 'echo "$A|$B"', "env": {"A": "{{inputs.parameters.token}}", "B": "x"}})
    sent.templates = [["env", "B"]]  # listed by the engine; A is a value's text that the engine filled in
    sent.inputs.append(WireParameter(name="token", value="hunter2", secret=True))
    result = await ShellExecutor().execute(sent)
    assert stdout(result) == "{{inputs.parameters.token}}|x"


async def test_python_refuses_a_module_the_worker_does_not_allow(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    result = await PythonExecutor(("json",)).execute(assignment("python", {"callable": "os:system"}, command="id"))
    assert result.code == 3
    assert "module 'os'" in result.message and "--allow-module os" in result.message
    assert [r.levelno for r in caplog.records if "r-1 refused: python: module 'os'" in r.getMessage()] == [
        logging.WARNING
    ]


async def test_python_allows_a_module_and_its_submodules_only() -> None:
    executor = PythonExecutor(("json",))
    allowed = await executor.execute(assignment("python", {"callable": "json.decoder:JSONDecoder"}))
    assert allowed.code == 0, allowed.message
    lookalike = await executor.execute(assignment("python", {"callable": "jsonschema:validate"}))
    assert lookalike.code == 3 and "not allowed" in lookalike.message
    nothing = await PythonExecutor().execute(assignment("python", {"callable": "json:dumps"}, obj=1))
    assert nothing.code == 3 and "not allowed" in nothing.message


async def test_python_refuses_a_placeholder_in_the_callable() -> None:
    result = await PythonExecutor(("os",)).execute(assignment("python", {"callable": f"os:{P}"}, p="system"))
    assert result.code == 3 and "values never choose the code that runs" in result.message
