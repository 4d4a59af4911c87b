"""The embedded nats-server: start, payload limit, restart on the same port and store."""

from __future__ import annotations

from pathlib import Path

from nats.js import JetStreamContext
from nats.js.api import StreamConfig

from aether_es.adapters.nats.connection import NatsConnection, connect
from aether_es.adapters.nats.server import MAX_PAYLOAD, EmbeddedNatsServer, find_nats_server


def test_find_nats_server_returns_an_executable() -> None:
    assert Path(find_nats_server()).is_file()


async def test_max_payload_is_8_mb(nats_conn: NatsConnection) -> None:
    assert nats_conn.nc.max_payload == MAX_PAYLOAD


async def test_restart_keeps_port_and_store(tmp_path: Path) -> None:
    with EmbeddedNatsServer(tmp_path / "store") as server:
        url = server.url
        conn = await connect(url)
        js: JetStreamContext = conn.js
        await js.add_stream(StreamConfig(name="KEEP", subjects=["keep.>"]))
        await js.publish("keep.a", b"1")
        await conn.close()
        assert server.restart(hard=True) == url
        conn = await connect(url)
        info = await conn.js.stream_info("KEEP")
        assert info.state.messages == 1
        await conn.close()
    assert not server.running


def test_user_config_is_included(tmp_path: Path) -> None:
    config = tmp_path / "user.conf"
    config.write_text("max_connections: 7\n")
    with EmbeddedNatsServer(tmp_path / "store", config_file=config) as server:
        assert server.url.startswith("nats://127.0.0.1:")
        assert "Using configuration file" in server.log_path.read_text()
