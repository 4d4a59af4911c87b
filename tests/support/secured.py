"""docker/nats.conf on a real nats-server: its users, the file with only the store and monitoring port
replaced, the violations the server logged, and the refusals a client heard.

The server runs the shipped configuration itself (never a copy kept in the tests): `-sd` gives the store
directory and a trailing `http_port` a random monitoring port, so two test runs never fight over a port.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from aether_es.adapters.nats.connection import NatsAuth, NatsConnection, connect
from aether_es.adapters.nats.server import EmbeddedNatsServer

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "docker" / "nats.conf"

ENGINE = NatsAuth(user="engine", password="CHANGE-ME-engine-password")
WORKER = NatsAuth(user="worker", password="CHANGE-ME-worker-password")
PRODUCER = NatsAuth(user="producer", password="CHANGE-ME-producer-password")
READER = NatsAuth(user="reader", password="CHANGE-ME-reader-password")
OPERATOR = NatsAuth(user="operator", password="CHANGE-ME-operator-password")


def shipped_config(tmp_path: Path, extra: str = "") -> Path:
    """docker/nats.conf without its store_dir (the `-sd` flag gives one) and on a random monitoring port."""
    text, replaced = re.subn(r"^\s*store_dir:.*$", "", CONFIG.read_text(), flags=re.MULTILINE)
    assert replaced == 1, "docker/nats.conf should set store_dir exactly once"
    path = tmp_path / "nats.conf"
    path.write_text(f"{text}\nhttp_port: -1\n{extra}")
    return path


def secured_server(tmp_path: Path) -> EmbeddedNatsServer:
    """A started nats-server running the shipped file on a random client port."""
    server = EmbeddedNatsServer(tmp_path / "jetstream", config_file=shipped_config(tmp_path))
    server.start()
    return server


def violations(server: EmbeddedNatsServer) -> list[str]:
    """The permission violations the server logged (it logs every refused publish and subscribe)."""
    return [line for line in server.log_path.read_text().splitlines() if "Violation" in line]


def flags(auth: NatsAuth) -> list[str]:
    """The command-line flags that log in as `auth`."""
    return ["--user", auth.user or "", "--password", auth.password or ""]


class Refusals:
    """Collects what nats-py reports through its error callback: the server's permission violations."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.changed = asyncio.Event()

    async def record(self, exc: Exception) -> None:
        self.errors.append(str(exc))
        self.changed.set()

    async def expect(self, subject: str, timeout: float = 5.0) -> None:
        """Wait until the server refused a publish to `subject` (nats-py reports the error text lower-cased)."""
        wanted = f'nats: permissions violation for publish to "{subject}"'.lower()
        while wanted not in self.errors:
            self.changed.clear()
            await asyncio.wait_for(self.changed.wait(), timeout)


async def connect_as(server: EmbeddedNatsServer, auth: NatsAuth) -> tuple[NatsConnection, Refusals]:
    refusals = Refusals()
    conn = await connect(server.url, name=auth.user or "client", auth=auth, error_cb=refusals.record)
    return conn, refusals
