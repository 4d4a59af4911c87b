"""aether_es: an event-sourced aether/v1 workflow engine on NATS JetStream. `Client` talks to a running one."""

from aether_es.client import Client

__all__ = ["Client"]
