"""Artifacts over HTTP (config: `{"url": "...", "headers": {...}}`): GET to download, PUT to upload.

Both stream the body in chunks in a thread, so a large artifact neither fills memory nor holds the event loop.
"""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, BinaryIO

from aether_es.ports.artifacts import ArtifactError, ArtifactTooLarge

CHUNK = 1024 * 1024


class HttpArtifactRepository:
    def __init__(self, timeout: float = 30.0) -> None:
        self.timeout = timeout

    def type(self) -> str:
        return "http"

    def _request(self, config: dict[str, Any], method: str, body: BinaryIO | None = None) -> urllib.request.Request:
        url = config.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ArtifactError("http artifact config needs an http:// or https:// `url`")
        headers = config.get("headers") or {}
        if not isinstance(headers, dict):
            raise ArtifactError("http artifact `headers` must be an object")
        return urllib.request.Request(
            url, data=body, method=method, headers={str(k): str(v) for k, v in headers.items()}
        )

    def _send(self, request: urllib.request.Request, into: BinaryIO | None = None, max_bytes: int = 0) -> int:
        """Send the request; with `into`, copy the response body there (at most `max_bytes`) and return its size."""
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                if into is None:
                    return 0
                size = 0
                while chunk := response.read(CHUNK):
                    size += len(chunk)
                    if size > max_bytes:
                        raise ArtifactTooLarge(f"{request.full_url}: more than {max_bytes:,} bytes", size)
                    into.write(chunk)
                return size
        except urllib.error.HTTPError as exc:
            raise ArtifactError(f"{request.get_method()} {request.full_url}: HTTP {exc.code}") from None
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ArtifactError(f"{request.get_method()} {request.full_url}: {reason}") from None

    async def upload(self, config: dict[str, Any], file: Path) -> dict[str, Any]:
        def put() -> None:
            with file.open("rb") as body:
                request = self._request(config, "PUT", body)
                request.add_header("Content-Length", str(file.stat().st_size))
                self._send(request)

        await asyncio.to_thread(put)
        return {"url": config["url"]}

    async def download(self, config: dict[str, Any], file: Path, max_bytes: int) -> int:
        request = self._request(config, "GET")

        def get() -> int:
            with file.open("wb") as into:
                return self._send(request, into, max_bytes)

        return await asyncio.to_thread(get)
