"""The worker registry: which workers are alive and which executor types they serve."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol


class WorkerNotFound(Exception):
    """No live worker has that id."""


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """A live worker; `schemas` maps some of its executor types to the JSON Schema of their inputs."""

    id: str
    executor_types: tuple[str, ...]
    schemas: Mapping[str, dict[str, Any]] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    registered_at: str = ""
    heartbeat_at: str = ""


class WorkerRegistry(Protocol):
    async def register(self, info: WorkerInfo) -> None:
        """Upsert; the registration lapses unless heartbeats renew it within the registry's TTL."""
        ...

    async def unregister(self, worker_id: str) -> None:
        """Raises WorkerNotFound for an unknown id."""
        ...

    async def heartbeat(self, worker_id: str) -> None:
        """Raises WorkerNotFound when the registration has lapsed or never existed."""
        ...

    async def get(self, worker_id: str) -> WorkerInfo:
        """Raises WorkerNotFound."""
        ...

    async def list_all(self) -> list[WorkerInfo]: ...

    async def list_by_executor_type(self, executor_type: str) -> list[WorkerInfo]:
        """Empty when no live worker serves the type."""
        ...
