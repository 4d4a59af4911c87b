"""Secret values, resolved only where they are needed and never written to the log."""

from __future__ import annotations

from typing import Protocol


class SecretNotFound(LookupError):
    """No provider holds secret `name`/`key`. The message names the secret, never any value."""

    def __init__(self, name: str, key: str, detail: str = "") -> None:
        self.name = name
        self.key = key
        self.detail = detail
        message = f"secret {name!r} key {key!r} not found"
        super().__init__(f"{message} ({detail})" if detail else message)


class SecretProvider(Protocol):
    async def get(self, name: str, key: str) -> str:
        """The value of secret `name`/`key`; raises SecretNotFound if there is none."""
        ...
