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
from aether_es.ports.artifacts import ArtifactError, ArtifactRepository, ArtifactTooLarge


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


MAX = 1 << 30


async def put(repo: ArtifactRepository, config: dict[str, Any], data: bytes, folder: Path) -> dict[str, Any]:
    file = folder / "upload"
    file.write_bytes(data)
    return await repo.upload(config, file)


async def get(repo: ArtifactRepository, config: dict[str, Any], folder: Path, max_bytes: int = MAX) -> bytes:
    file = folder / "download"
    assert await repo.download(config, file, max_bytes) == file.stat().st_size
    return file.read_bytes()


async def test_round_trip_and_overwrite(repository: tuple[ArtifactRepository, Any], tmp_path: Path) -> None:
    repo, config = repository
    stored = await put(repo, config("report.csv"), b"a,b\n1,2\n", tmp_path)
    assert await get(repo, stored, tmp_path) == b"a,b\n1,2\n"
    assert await get(repo, config("report.csv"), tmp_path) == b"a,b\n1,2\n"
    await put(repo, config("report.csv"), b"new", tmp_path)
    assert await get(repo, config("report.csv"), tmp_path) == b"new"
    big = bytes(range(256)) * 4096 * 3  # several chunks of every repository
    await put(repo, config("big.bin"), big, tmp_path)
    assert await get(repo, config("big.bin"), tmp_path) == big


async def test_a_download_over_the_cap_is_refused_with_its_size(
    repository: tuple[ArtifactRepository, Any], tmp_path: Path
) -> None:
    repo, config = repository
    await put(repo, config("big.bin"), b"x" * 3_000_000, tmp_path)
    with pytest.raises(ArtifactTooLarge) as refused:
        await get(repo, config("big.bin"), tmp_path, max_bytes=1_000_000)
    assert refused.value.size > 1_000_000


async def test_missing_artifact_is_an_artifact_error(
    repository: tuple[ArtifactRepository, Any], tmp_path: Path
) -> None:
    repo, config = repository
    await put(repo, config("present"), b"x", tmp_path)
    with pytest.raises(ArtifactError):
        await get(repo, config("absent"), tmp_path)


async def test_bad_config_is_an_artifact_error(repository: tuple[ArtifactRepository, Any], tmp_path: Path) -> None:
    repo, _ = repository
    with pytest.raises(ArtifactError):
        await get(repo, {}, tmp_path)
    with pytest.raises(ArtifactError):
        await put(repo, {}, b"x", tmp_path)


async def test_local_paths_cannot_leave_the_root(tmp_path: Path) -> None:
    repo = LocalArtifactRepository(tmp_path / "root")
    with pytest.raises(ArtifactError, match="leaves the repository root"):
        await put(repo, {"path": "../escape"}, b"x", tmp_path)
