"""Commands for a run another engine owns go to that engine (`cluster.partitions`): only the owner decides."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

Command = dict[str, Any]
"""A command as JSON: `command` (`submit`, `resume`, `cancel`, `retry`), `runID` and the command's fields."""

CommandHandler = Callable[[Command], Awaitable[None]]


class Served(Protocol):
    async def stop(self) -> None: ...


class CommandRouter(Protocol):
    async def forward(self, partition: int, command: Command) -> None:
        """Have the partition's owner carry out `command`; returns once it is decided (durable), raises its
        error, or an `unavailable` ApiError when no owner answers in time."""
        ...

    async def serve(self, partition: int, handler: CommandHandler) -> Served:
        """Take the commands forwarded to `partition` (while this engine owns it) until `stop`."""
        ...
