"""The stager on a local repository: declared outputs collected, folders round-tripped, paths kept inside the
work directory, the size cap named, a tampered input refused by its digest."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import pytest

from aether_es.adapters.artifacts.local import LocalArtifactRepository
from aether_es.limits import Limits
from aether_es.ports.artifacts import ArtifactError
from aether_es.ports.wire import TaskAssignment, TaskResult, WireArtifact
from aether_es.worker.artifacts import WORK_PREFIX, ArtifactStager, work_root


def _stager(tmp_path: Path, **limits: int) -> ArtifactStager:
    return ArtifactStager([LocalArtifactRepository(tmp_path / "repo")], tmp_path / "work", limits=Limits(**limits))


def _assignment(outputs: list[WireArtifact], inputs: list[WireArtifact] | None = None) -> TaskAssignment:
    return TaskAssignment.model_validate(
        {
            "taskRunID": "r-1",
            "workflowRunID": "r",
            "taskName": "t",
            "executorType": "shell",
            "attempt": 1,
            "outputArtifacts": [o.model_dump() for o in outputs],
            "artifacts": [i.model_dump() for i in inputs or ()],
        }
    )


async def _collect(stager: ArtifactStager, assignment: TaskAssignment, files: dict[str, str]) -> TaskResult:
    staged = await stager.stage(assignment)
    for name, text in files.items():
        path = Path(staged.workdir) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    try:
        return await stager.publish(staged, TaskResult())
    finally:
        await stager.clean(assignment)


async def test_a_folder_output_arrives_as_a_folder_where_the_input_is_declared(tmp_path: Path) -> None:
    stager = _stager(tmp_path)
    out = await _collect(
        stager, _assignment([WireArtifact(name="site", path="site")]), {"site/index.html": "<p/>", "site/a/b.css": "b"}
    )
    (stored,) = out.artifacts
    assert stored.archive == "tar" and stored.size > 0 and stored.digest.startswith("sha256:")
    source = {"type": "local", "config": stored.source.config if stored.source else None}
    reader = _assignment(
        [], [WireArtifact(name="site", source=source, archive="tar", path="web", digest=stored.digest)]
    )
    staged = await stager.stage(reader)
    assert (Path(staged.workdir) / "web" / "a" / "b.css").read_text() == "b"
    assert staged.artifacts[0].path == str(Path(staged.workdir) / "web")
    await stager.clean(reader)
    assert not (tmp_path / "work" / "r-1.1").exists() and not (tmp_path / "work" / "r-1.1.scratch").exists()


async def test_a_missing_output_fails_the_attempt_before_anything_is_stored(tmp_path: Path) -> None:
    outputs = [WireArtifact(name="a", path="a.txt"), WireArtifact(name="b", path="b.txt")]
    with pytest.raises(ArtifactError, match=r"output artifact 'b': b\.txt does not exist in the task's work directory"):
        await _collect(_stager(tmp_path), _assignment(outputs), {"a.txt": "here"})
    assert not (tmp_path / "repo").exists()


async def test_a_declared_path_may_not_leave_the_work_directory(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match=r"output artifact 'x': path '\.\./x' must name a file or folder inside"):
        await _collect(_stager(tmp_path), _assignment([WireArtifact(name="x", path="../x")]), {})


async def test_an_artifact_over_the_cap_fails_naming_it_and_the_limit(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError) as refused:
        await _collect(
            _stager(tmp_path, artifact_bytes=10), _assignment([WireArtifact(name="big", path="b")]), {"b": "x" * 11}
        )
    assert str(refused.value) == (
        "output artifact 'big' is 11 bytes, over the limit of 10 bytes (raise it with AETHER_LIMIT_ARTIFACT_BYTES)"
    )


async def test_an_input_that_does_not_match_its_digest_is_refused(tmp_path: Path) -> None:
    stager = _stager(tmp_path)
    (stored,) = (await _collect(stager, _assignment([WireArtifact(name="f", path="f")]), {"f": "one"})).artifacts
    config = stored.source.config if stored.source else None
    (tmp_path / "repo" / config["path"]).write_text("two")  # type: ignore[index]
    reader = _assignment([], [WireArtifact(name="f", source={"type": "local", "config": config}, digest=stored.digest)])
    with pytest.raises(ArtifactError, match="input artifact 'f': downloaded sha256:"):
        await stager.stage(reader)
    await stager.clean(reader)


def test_a_worker_removes_the_work_folders_of_workers_killed_before_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    gone = subprocess.Popen(["true"])
    gone.wait()
    left = tmp_path / f"{WORK_PREFIX}{gone.pid}-abc"  # a worker killed with -9: its process is gone
    (left / "attempt").mkdir(parents=True)
    living = tmp_path / f"{WORK_PREFIX}{os.getppid()}-def"  # a worker still running
    living.mkdir()
    other = tmp_path / f"{WORK_PREFIX}notapid"
    other.mkdir()
    work = work_root()
    try:
        assert Path(work.name).name.startswith(f"{WORK_PREFIX}{os.getpid()}-")
        assert not left.exists()
        assert living.exists() and other.exists()
    finally:
        work.cleanup()
    assert not Path(work.name).exists()
