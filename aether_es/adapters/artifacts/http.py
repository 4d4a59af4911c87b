"""Artifacts over HTTP (config: `{"url": "...", "headers": {...}}`): GET to download, PUT to upload."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from typing import Any

from aether_es.ports.artifacts import ArtifactError


class HttpArtifactRepository:
    def __init__(self, timeout: float = 30.0, max_bytes: int = 256 * 1024 * 1024) -> None:
        self.timeout = timeout
        self.max_bytes = max_bytes

    def type(self) -> str:
        return "http"

    def _request(self, config: dict[str, Any], method: str, data: bytes | None = None) -> urllib.request.Request:
        url = config.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ArtifactError("http artifact config needs an http:// or https:// `url`")
        headers = config.get("headers") or {}
        if not isinstance(headers, dict):
            raise ArtifactError("http artifact `headers` must be an object")
        return urllib.request.Request(
            url, data=data, method=method, headers={str(k): str(v) for k, v in headers.items()}
        )

    def _send(self, request: urllib.request.Request) -> bytes:
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                body: bytes = response.read(self.max_bytes + 1)
        except urllib.error.HTTPError as exc:
            raise ArtifactError(f"{request.get_method()} {request.full_url}: HTTP {exc.code}") from None
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ArtifactError(f"{request.get_method()} {request.full_url}: {reason}") from None
        if len(body) > self.max_bytes:
            raise ArtifactError(f"{request.full_url}: larger than {self.max_bytes} bytes")
        return body

    async def upload(self, config: dict[str, Any], data: bytes) -> dict[str, Any]:
        await asyncio.to_thread(self._send, self._request(config, "PUT", data))
        return {"url": config["url"]}

    async def download(self, config: dict[str, Any]) -> bytes:
        return await asyncio.to_thread(self._send, self._request(config, "GET"))
