"""aether_es: an event-sourced aether/v1 workflow engine on NATS JetStream. `Client` talks to a running one."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aether_es.client import Client

__all__ = ["Client"]


def __getattr__(name: str) -> Any:
    """`Client` is imported on first use, so the command line starts without the NATS client and models."""
    if name == "Client":
        from aether_es.client import Client

        return Client
    raise AttributeError(f"module 'aether_es' has no attribute {name!r}")
