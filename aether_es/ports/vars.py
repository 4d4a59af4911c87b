"""Variable sources that add namespaced keys such as `system.os` to every evaluation env."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


class VarsSource(Protocol):
    def namespace(self) -> str: ...

    def vars(self) -> Mapping[str, Any]:
        """Keys without the namespace prefix."""
        ...
