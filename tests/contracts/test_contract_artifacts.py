"""Every artifact repository passes the same contract: round trip, overwrite, missing, bad config."""

from __future__ import annotations

import http.server
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from nats.js import JetStreamContext

from aether_es.adapters.artifacts.http import HttpArtifactRepository
from aether_es.adapters.artifacts.local import LocalArtifactRepository
from aether_es.adapters.nats.object_store import NatsObjectStoreRepository
from aether_es.ports.artifacts import ArtifactError, ArtifactRepository


class _Blobs(http.server.BaseHTTPRequestHandler):
    """A tiny in-memory blob server on loopback: PUT stores, GET returns or 404s."""

    blobs: dict[str, bytes] = {}

    def do_PUT(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        self.blobs[self.path] = self.rfile.read(length)
        self.send_response(201)
        self.end_headers()

    def do_GET(self) -> None:
        body = self.blobs.get(self.path)
        self.send_response(200 if body is not None else 404)
        self.end_headers()
        if body is not None:
            self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def blob_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Blobs)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


@pytest_asyncio.fixture(params=["local", "http", "nats"])
async def repository(
    request: pytest.FixtureRequest, tmp_path: Path, blob_server: str, js: JetStreamContext
) -> AsyncIterator[tuple[ArtifactRepository, Any]]:
    """A repository and a function from a key to its config."""
    if request.param == "local":
        yield LocalArtifactRepository(tmp_path / "artifacts"), lambda key: {"path": f"runs/{key}"}
    elif request.param == "http":
        yield HttpArtifactRepository(timeout=5), lambda key: {"url": f"{blob_server}/{key}"}
    else:
        yield NatsObjectStoreRepository(js, "artifacts"), lambda key: {"key": key}


async def test_round_trip_and_overwrite(repository: tuple[ArtifactRepository, Any]) -> None:
    repo, config = repository
    stored = await repo.upload(config("report.csv"), b"a,b\n1,2\n")
    assert await repo.download(stored) == b"a,b\n1,2\n"
    assert await repo.download(config("report.csv")) == b"a,b\n1,2\n"
    await repo.upload(config("report.csv"), b"new")
    assert await repo.download(config("report.csv")) == b"new"
    big = bytes(range(256)) * 4096
    await repo.upload(config("big.bin"), big)
    assert await repo.download(config("big.bin")) == big


async def test_missing_artifact_is_an_artifact_error(repository: tuple[ArtifactRepository, Any]) -> None:
    repo, config = repository
    await repo.upload(config("present"), b"x")
    with pytest.raises(ArtifactError):
        await repo.download(config("absent"))


async def test_bad_config_is_an_artifact_error(repository: tuple[ArtifactRepository, Any]) -> None:
    repo, _ = repository
    with pytest.raises(ArtifactError):
        await repo.download({})
    with pytest.raises(ArtifactError):
        await repo.upload({}, b"x")


async def test_local_paths_cannot_leave_the_root(tmp_path: Path) -> None:
    repo = LocalArtifactRepository(tmp_path / "root")
    with pytest.raises(ArtifactError, match="leaves the repository root"):
        await repo.upload({"path": "../escape"}, b"x")
