"""Artifacts as files under one root directory (config: `{"path": "<relative path>"}`)."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

from aether_es.ports.artifacts import ArtifactError, ArtifactTooLarge


class LocalArtifactRepository:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def type(self) -> str:
        return "local"

    def _path(self, config: dict[str, Any]) -> Path:
        relative = config.get("path")
        if not isinstance(relative, str) or not relative:
            raise ArtifactError("local artifact config needs a non-empty string `path`")
        path = (self.root / relative).resolve()
        if not path.is_relative_to(self.root):
            raise ArtifactError(f"local artifact path {relative!r} leaves the repository root")
        return path

    async def upload(self, config: dict[str, Any], file: Path) -> dict[str, Any]:
        path = self._path(config)

        def write() -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(path.name + ".partial")
            shutil.copyfile(file, partial)
            partial.replace(path)  # readers never see half an artifact

        await asyncio.to_thread(write)
        return {"path": str(path.relative_to(self.root))}

    async def download(self, config: dict[str, Any], file: Path, max_bytes: int) -> int:
        path = self._path(config)

        def copy() -> int:
            size = path.stat().st_size
            if size > max_bytes:
                raise ArtifactTooLarge(f"local artifact {config.get('path')!r}", size)
            shutil.copyfile(path, file)
            return size

        try:
            return await asyncio.to_thread(copy)
        except FileNotFoundError:
            raise ArtifactError(f"local artifact {config.get('path')!r} does not exist") from None
