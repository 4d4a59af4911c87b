"""Artifact repositories: where task input and output artifacts are stored and fetched."""

from __future__ import annotations

from typing import Any, Protocol


class ArtifactError(Exception):
    """An artifact could not be stored or fetched; the message names the artifact and the cause."""


class ArtifactRepository(Protocol):
    def type(self) -> str:
        """The `source.type` this repository serves (for example `local`, `http`, `nats`)."""
        ...

    async def upload(self, config: dict[str, Any], data: bytes) -> dict[str, Any]:
        """Store `data` where `config` says; return the config that fetches it back."""
        ...

    async def download(self, config: dict[str, Any]) -> bytes: ...
