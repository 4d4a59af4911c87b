"""Artifact repositories: where task input and output artifacts are stored and fetched.

Artifacts are files of any size, so a repository moves them between a local file and its store in chunks,
never holding one whole in memory or on the event loop.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol


class ArtifactError(Exception):
    """An artifact could not be stored or fetched; the message names the artifact and the cause."""


class ArtifactTooLarge(ArtifactError):
    """An artifact is over the size a worker may move; `size` is its size in bytes."""

    def __init__(self, what: str, size: int) -> None:
        super().__init__(what)
        self.size = size


class ArtifactRepository(Protocol):
    def type(self) -> str:
        """The `source.type` this repository serves (for example `local`, `http`, `nats`)."""
        ...

    async def upload(self, config: dict[str, Any], file: Path) -> dict[str, Any]:
        """Store the file's bytes where `config` says; return the config that fetches them back."""
        ...

    async def download(self, config: dict[str, Any], file: Path, max_bytes: int) -> int:
        """Write what `config` names to `file` and return its size; `ArtifactTooLarge` (before writing
        more than that) when it is over `max_bytes`."""
        ...


class ArtifactRemover(Protocol):
    async def delete(self, config: dict[str, Any]) -> None:
        """Remove what `config` names; nothing happens when it does not exist."""
        ...
