"""Secret values, resolved only where they are needed and never written to the log."""

from __future__ import annotations

from typing import Protocol


class SecretProvider(Protocol):
    async def get(self, name: str, key: str) -> str: ...
