"""An engine with its API on a real nats-server, a Client of it and a plain nats-py connection.

`api_server` is the test's server; a module overrides it to serve the same stack from a differently
configured one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest
import pytest_asyncio
from nats.aio.client import Client as Nats

from aether_es import Client
from aether_es.adapters.cron_croniter import ManualCronScheduler
from aether_es.adapters.nats.server import EmbeddedNatsServer
from aether_es.api.service import start_api
from aether_es.runtime.stack import Stack, StackOptions, open_stack


@pytest.fixture
def api_server(nats_server: EmbeddedNatsServer) -> EmbeddedNatsServer:
    return nats_server


@pytest_asyncio.fixture
async def stack(api_server: EmbeddedNatsServer, tmp_path: Path) -> AsyncIterator[Stack]:
    options = StackOptions(
        nats_url=api_server.url, state_dir=tmp_path / "state", workers=2, cron_scheduler=ManualCronScheduler()
    )
    opened = await open_stack(options)
    api = await start_api(opened)
    try:
        yield opened
    finally:
        await api.stop()
        await opened.close()


@pytest_asyncio.fixture
async def client(stack: Stack, api_server: EmbeddedNatsServer) -> AsyncIterator[Client]:
    async with await Client.connect(api_server.url) as opened:
        yield opened


@pytest_asyncio.fixture
async def plain(api_server: EmbeddedNatsServer) -> AsyncIterator[Nats]:
    nc = await nats.connect(api_server.url)
    try:
        yield nc
    finally:
        await nc.close()
