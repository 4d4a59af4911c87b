"""Moving artifacts around one task attempt: inputs downloaded before, outputs collected and uploaded after.

Each attempt with artifacts gets its own work directory, the executor's current folder. An input artifact
lands at its `path` there (by default `inputs/<name>`), a folder (stored as a tar archive) as a folder, and
the assignment the executor receives names its local path. After a successful attempt, every declared output
artifact with a `path` (a file or a folder in the work directory) and every `{"name", "path"}` the executor
returns is uploaded to its declared source, or the default repository under `<run>/<task run>/<name>`, and
recorded with its size and digest. A declared output that is missing fails the attempt, unless `optional`.

Files move in chunks in threads (hashing, packing, copying) and through the repositories' streaming calls,
so a large artifact neither fills memory nor holds the event loop; `Limits.artifact_bytes` caps each one.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import tarfile
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from aether_es.limits import LimitExceeded, Limits, check
from aether_es.model.documents import ArtifactSource
from aether_es.model.phases import ResultCode
from aether_es.ports.artifacts import ArtifactError, ArtifactRepository, ArtifactTooLarge
from aether_es.ports.wire import ResultArtifact, TaskAssignment, TaskResult, WireArtifact

TAR = "tar"
WORK_PREFIX = "aether-work-"
"""The archive type of a folder artifact: an uncompressed tar of its contents."""
INPUTS = "inputs"
_CHUNK = 1024 * 1024


class ArtifactStager:
    def __init__(
        self,
        repositories: Iterable[ArtifactRepository],
        root: Path,
        default_type: str = "",
        limits: Limits | None = None,
    ) -> None:
        self.repositories = {repo.type(): repo for repo in repositories}
        if not self.repositories:
            raise ValueError("an artifact stager needs at least one repository")
        self.default_type = default_type or next(iter(self.repositories))
        self.root = root
        self.limits = limits or Limits.from_env()

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

    def _scratch(self, assignment: TaskAssignment) -> Path:
        """Where archives and downloads wait, beside the work directory so the executor never sees them."""
        return self.root / f"{assignment.task_run_id}.{assignment.attempt}.scratch"

    async def stage(self, assignment: TaskAssignment) -> TaskAssignment:
        """Download the input artifacts; the returned assignment carries their local paths and the workdir."""
        workdir = self.workdir(assignment)
        scratch = self._scratch(assignment)
        await asyncio.to_thread(_make_dirs, workdir, scratch)
        staged = []
        for artifact in assignment.artifacts:
            what = f"input artifact {artifact.name!r}"
            if not artifact.source:
                raise ArtifactError(f"{what} has no source")
            target = inside(workdir, artifact.path or f"{INPUTS}/{artifact.name}", what)
            await self._fetch(artifact, target, scratch / artifact.name, what)
            staged.append(artifact.model_copy(update={"path": str(target)}))
        return assignment.model_copy(update={"artifacts": staged, "workdir": str(workdir)})

    async def _fetch(self, artifact: WireArtifact, target: Path, transit: Path, what: str) -> None:
        if artifact.archive not in ("", "none", TAR):
            raise ArtifactError(f"{what}: unknown archive type {artifact.archive!r} (aether_es packs folders as tar)")
        repository, config = self._repository(artifact.source)
        file = transit if artifact.archive == TAR else target
        await asyncio.to_thread(file.parent.mkdir, parents=True, exist_ok=True)
        try:
            await repository.download(config, file, self.limits.artifact_bytes)
        except ArtifactTooLarge as exc:
            raise ArtifactError(self._too_large(what, exc.size)) from None
        except ArtifactError as exc:
            raise ArtifactError(f"{what}: {exc}") from None
        if artifact.digest:
            digest = await asyncio.to_thread(file_digest, file)
            if digest != artifact.digest:
                raise ArtifactError(f"{what}: downloaded {digest}, not the recorded {artifact.digest}")
        if artifact.archive == TAR:
            await asyncio.to_thread(unpack, file, target, what)

    def _too_large(self, what: str, size: int) -> str:
        return str(LimitExceeded(what, "artifact_bytes", size, self.limits.artifact_bytes))

    async def publish(self, assignment: TaskAssignment, result: TaskResult) -> TaskResult:
        """Upload the declared outputs and those the executor returned; the result then names where each is
        stored. Every file is found before any is uploaded, so a missing one leaves nothing stored behind.
        A failed attempt's files are not collected (what the executor returned stored stays)."""
        returned = {a.name: a for a in result.artifacts}
        if result.code != ResultCode.SUCCEEDED:
            return result.model_copy(update={"artifacts": [a for a in returned.values() if not a.path]})
        workdir = Path(assignment.workdir) if assignment.workdir else None
        collected: list[ResultArtifact | tuple[str, Path, dict[str, Any] | None]] = []
        for declared in assignment.output_artifacts:
            produced = returned.pop(declared.name, None)
            if produced is not None and not produced.path:
                collected.append(produced)  # the executor stored it itself
                continue
            what = f"output artifact {declared.name!r}"
            if produced is not None:
                file = _returned_file(workdir, produced.path, what)
            elif declared.path and workdir is not None:
                file = inside(workdir, declared.path, what)
            else:
                continue  # declared without a path (as Aether has it): nothing to move
            if not await asyncio.to_thread(file.exists):
                if declared.optional:
                    continue
                shown = produced.path if produced is not None else declared.path
                raise ArtifactError(f"{what}: {shown} does not exist in the task's work directory")
            collected.append((declared.name, file, declared.source))
        for produced in returned.values():
            if produced.path:
                what = f"output artifact {produced.name!r}"
                collected.append((produced.name, _returned_file(workdir, produced.path, what), None))
            else:
                collected.append(produced)
        published = [
            item if isinstance(item, ResultArtifact) else await self._store(assignment, *item) for item in collected
        ]
        return result.model_copy(update={"artifacts": published})

    async def _store(
        self, assignment: TaskAssignment, name: str, file: Path, source: dict[str, Any] | None
    ) -> ResultArtifact:
        what = f"output artifact {name!r}"
        repository, config = self._repository(source or {"type": self.default_type})
        archive = ""
        if await asyncio.to_thread(file.is_dir):
            packed = self._scratch(assignment) / f"{name}.tar"
            await asyncio.to_thread(pack, file, packed)
            file, archive = packed, TAR
        try:
            size = (await asyncio.to_thread(file.stat)).st_size
        except OSError as exc:
            raise ArtifactError(f"{what}: cannot read {file.name}: {exc.strerror}") from None
        try:
            check(self.limits, "artifact_bytes", what, size)
        except LimitExceeded as exc:
            raise ArtifactError(str(exc)) from None
        digest = await asyncio.to_thread(file_digest, file)
        if not config:
            config = default_config(repository.type(), assignment, name)
        try:
            stored = await repository.upload(config, file)
        except ArtifactError as exc:
            raise ArtifactError(f"{what}: {exc}") from None
        except OSError as exc:
            raise ArtifactError(f"{what}: cannot read {file.name}: {exc.strerror}") from None
        return ResultArtifact(
            name=name,
            source=ArtifactSource(type=repository.type(), config=stored),
            size=size,
            digest=digest,
            archive=archive,
        )

    async def clean(self, assignment: TaskAssignment) -> None:
        for folder in (self.workdir(assignment), self._scratch(assignment)):
            await asyncio.to_thread(shutil.rmtree, folder, True)


def inside(workdir: Path, relative: str, what: str) -> Path:
    """`relative` within the work directory; an ArtifactError when it is absolute or leads out of it."""
    base = workdir.resolve()
    path = (base / relative).resolve()
    if Path(relative).is_absolute() or not path.is_relative_to(base) or path == base:
        raise ArtifactError(f"{what}: path {relative!r} must name a file or folder inside the work directory")
    return path


def _returned_file(workdir: Path | None, path: str, what: str) -> Path:
    """A path an executor returned: absolute, or relative to the work directory (your code, your files)."""
    if Path(path).is_absolute():
        return Path(path)
    if workdir is None:
        raise ArtifactError(f"{what}: relative path {path!r} but the task has no work directory")
    return workdir / path


def default_config(kind: str, assignment: TaskAssignment, name: str) -> dict[str, Any]:
    where = f"{assignment.workflow_run_id}/{assignment.task_run_id}/{name}"
    return {"path": where} if kind == "local" else {"key": where}


def _make_dirs(*folders: Path) -> None:
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)


def file_digest(file: Path) -> str:
    """`sha256:<hex>` of the file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with file.open("rb") as data:
        while chunk := data.read(_CHUNK):
            digest.update(chunk)
    return f"sha256:{digest.hexdigest()}"


def pack(folder: Path, archive: Path) -> None:
    """The folder's contents as an uncompressed tar (links kept as links)."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "w") as tar:
        for child in sorted(folder.iterdir()):
            tar.add(child, arcname=child.name)


def unpack(archive: Path, folder: Path, what: str) -> None:
    """A tar made by `pack` into `folder`; members that would land outside it (or be devices) are refused."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive, "r:") as tar:
            tar.extractall(folder, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise ArtifactError(f"{what}: cannot unpack its archive: {exc}") from None


def work_root() -> tempfile.TemporaryDirectory[str]:
    """A worker process's folder for its attempts' work directories, named with its pid. Those a worker
    killed with -9 left behind (whose process is gone) are removed first: it could not clean up after
    SIGKILL, so the next worker on the machine does."""
    for folder in Path(tempfile.gettempdir()).glob(f"{WORK_PREFIX}*-*"):
        pid = folder.name[len(WORK_PREFIX) :].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
    return tempfile.TemporaryDirectory(prefix=f"{WORK_PREFIX}{os.getpid()}-")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True
