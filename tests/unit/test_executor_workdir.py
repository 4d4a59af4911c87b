"""Python code reaches its artifacts through paths: `@executor` functions take input artifacts and the work
directory as `Path` parameters (not inputs of the schema) and return files as `Path`s; the `python` executor
hands a `workdir` parameter the work directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from aether_es.ports.wire import ResultArtifact, TaskAssignment
from aether_es.worker.executors.python import PythonExecutor
from aether_es.worker.sdk import FunctionExecutor


def _assignment(workdir: Path, **artifacts: Path) -> TaskAssignment:
    return TaskAssignment.model_validate(
        {
            "taskRunID": "r-1",
            "workflowRunID": "r",
            "taskName": "t",
            "executorType": "x",
            "attempt": 1,
            "workdir": str(workdir),
            "inputs": [{"name": "unit", "value": "kg"}],
            "artifacts": [{"name": name, "path": str(path)} for name, path in artifacts.items()],
        }
    )


def upper(in_file: Path, workdir: Path, unit: str) -> dict[str, object]:
    (workdir / "out.txt").write_text(in_file.read_text().upper() + unit)
    return {"unit": unit, "out": Path("out.txt")}


async def test_a_function_takes_artifacts_as_paths_and_returns_files(tmp_path: Path) -> None:
    executor = FunctionExecutor("upper", upper)
    assert set(executor.input_schema["properties"]) == {"unit"} and executor.uses_workdir
    (tmp_path / "in").write_text("abc")
    result = await executor.execute(_assignment(tmp_path, **{"in-file": tmp_path / "in"}))
    assert result.code == 0 and [p.value for p in result.parameters] == ["kg"]
    assert result.artifacts == [ResultArtifact(name="out", path="out.txt")]
    assert (tmp_path / "out.txt").read_text() == "ABCkg"
    missing = await executor.execute(_assignment(tmp_path))
    assert missing.code == 2 and 'input artifact "in_file" is missing' in missing.message


async def test_the_python_executor_hands_workdir_to_a_function_taking_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "writes.py").write_text(
        "def write(workdir, unit):\n    (workdir / 'w.txt').write_text(unit)\n    return {'done': True}\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assignment = _assignment(tmp_path).model_copy(update={"config": {"callable": "writes:write"}})
    result = await PythonExecutor(["writes"]).execute(assignment)
    assert result.code == 0, result.message
    assert (tmp_path / "w.txt").read_text() == "kg"
