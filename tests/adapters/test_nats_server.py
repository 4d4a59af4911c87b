"""The embedded nats-server: start, payload limit, restart on the same port and store, one server per store."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

from nats.js import JetStreamContext
from nats.js.api import StreamConfig

from aether_es.adapters.nats.connection import NatsConnection, connect
from aether_es.adapters.nats.server import MAX_PAYLOAD, PID_FILE, EmbeddedNatsServer, find_nats_server, servers_on


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


def test_the_run_folder_is_beside_the_store_cleared_at_start_and_removed_on_close(tmp_path: Path) -> None:
    server = EmbeddedNatsServer(tmp_path / "store")
    server.run_dir.mkdir()
    (server.run_dir / "nats-server_1.ports").write_text("left by a dead owner")
    with server:
        assert server.run_dir == tmp_path / "store-run"
        assert not (server.run_dir / "nats-server_1.ports").exists()
        assert (server.run_dir / PID_FILE).read_text().strip() == str(server.pid)
        assert servers_on(tmp_path / "store") == [server.pid]
    assert not server.run_dir.exists()
    assert servers_on(tmp_path / "store") == []


def test_a_server_left_on_the_store_is_stopped_before_starting(tmp_path: Path) -> None:
    store = tmp_path / "store"
    orphan = subprocess.Popen(
        [find_nats_server(), "-js", "-a", "127.0.0.1", "-p", "-1", "-sd", str(store)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while servers_on(store) != [orphan.pid] and time.monotonic() < deadline:
            time.sleep(0.02)  # until the child has exec'd the server
        assert servers_on(store) == [orphan.pid]
        with EmbeddedNatsServer(store) as server:
            assert orphan.wait(timeout=15) is not None
            assert servers_on(store) == [server.pid]
    finally:
        orphan.kill()
        orphan.wait()


async def test_a_server_started_from_a_passing_thread_outlives_it(tmp_path: Path) -> None:
    with EmbeddedNatsServer(tmp_path / "store") as server:
        server.stop()
        thread = threading.Thread(target=server.start)
        thread.start()
        thread.join()
        conn = await connect(server.url)
        await conn.nc.flush()
        await conn.close()
        assert server.running
