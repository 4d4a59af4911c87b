"""Moving artifacts around one task execution: inputs downloaded before, outputs uploaded after.

Each attempt with input artifacts or declared output artifacts gets its own directory. Input artifacts are
downloaded into it and their local `path` set in the assignment the executor receives (with `workdir` set
too). An executor reports output artifacts as `{"name", "path"}` (relative to `workdir` or absolute); each is
uploaded to the source declared for it (or to the default repository under `<run>/<task run>/<name>`), and
the result then names where it is stored. Attempts without artifacts skip all of this.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from aether_es.model.documents import ArtifactSource
from aether_es.ports.artifacts import ArtifactError, ArtifactRepository
from aether_es.ports.wire import ResultArtifact, TaskAssignment, TaskResult


class ArtifactStager:
    def __init__(self, repositories: Iterable[ArtifactRepository], root: Path, default_type: str = "") -> None:
        self.repositories = {repo.type(): repo for repo in repositories}
        if not self.repositories:
            raise ValueError("an artifact stager needs at least one repository")
        self.default_type = default_type or next(iter(self.repositories))
        self.root = root

    def _repository(self, source: dict[str, Any] | None) -> tuple[ArtifactRepository, dict[str, Any]]:
        kind = str((source or {}).get("type") or self.default_type)
        repository = self.repositories.get(kind)
        if repository is None:
            raise ArtifactError(f"no artifact repository of type {kind!r} on this worker")
        config = (source or {}).get("config") or {}
        if not isinstance(config, dict):
            raise ArtifactError("artifact source config must be an object")
        return repository, dict(config)

    def workdir(self, assignment: TaskAssignment) -> Path:
        return self.root / f"{assignment.task_run_id}.{assignment.attempt}"

    async def stage(self, assignment: TaskAssignment) -> TaskAssignment:
        """Download the input artifacts; the returned assignment carries their local paths and the workdir."""
        workdir = self.workdir(assignment)
        await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
        staged = []
        for artifact in assignment.artifacts:
            if not artifact.source:
                raise ArtifactError(f"input artifact {artifact.name!r} has no source")
            repository, config = self._repository(artifact.source)
            data = await repository.download(config)
            path = workdir / "inputs" / artifact.name
            await asyncio.to_thread(_write, path, data)
            staged.append(artifact.model_copy(update={"path": str(path)}))
        return assignment.model_copy(update={"artifacts": staged, "workdir": str(workdir)})

    async def publish(self, assignment: TaskAssignment, result: TaskResult) -> TaskResult:
        """Upload the artifacts the executor produced; the result then names where each is stored."""
        if not result.artifacts:
            return result
        declared = {a.name: a.source for a in assignment.output_artifacts}
        workdir = self.workdir(assignment)
        published: list[ResultArtifact] = []
        for produced in result.artifacts:
            name, path = produced.name, produced.path
            if not path:
                published.append(produced)  # already a stored artifact
                continue
            file = Path(path) if Path(path).is_absolute() else workdir / path
            try:
                data = await asyncio.to_thread(file.read_bytes)
            except OSError as exc:
                raise ArtifactError(f"output artifact {name!r}: cannot read {path}: {exc.strerror}") from None
            source = declared.get(name) or {"type": self.default_type}
            repository, config = self._repository(source)
            if not config:
                config = _default_config(repository.type(), assignment, name)
            stored = await repository.upload(config, data)
            published.append(ResultArtifact(name=name, source=ArtifactSource(type=repository.type(), config=stored)))
        return result.model_copy(update={"artifacts": published})

    async def clean(self, assignment: TaskAssignment) -> None:
        await asyncio.to_thread(shutil.rmtree, self.workdir(assignment), True)


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _default_config(kind: str, assignment: TaskAssignment, name: str) -> dict[str, Any]:
    where = f"{assignment.workflow_run_id}/{assignment.task_run_id}/{name}"
    return {"path": where} if kind == "local" else {"key": where}
