"""The `http` executor: one HTTP request, with the response as outputs.

Config (`executor.config`; use `{{inputs.parameters.NAME}}` in any string to take a value from the inputs):

* `url` (required): an `http://` or `https://` URL.
* `method`: default `GET`.
* `headers`: an object of header values.
* `body`: a string is sent as it is (UTF-8); any other JSON value is sent as JSON, with
  `Content-Type: application/json` unless `headers` sets one.
* `acceptedStatuses`: a list of codes (`404`) and classes (`"2xx"`); default `["2xx"]`.
* `timeout`: a duration for the whole request (default `30s`).
* `maxBodyBytes`: how much of the response body is kept (default 1 MiB).

Outputs: `status` (an int), `headers` (an object; repeated headers joined with `, `), `body` (the decoded
JSON value when the response says it is JSON and the body parses, else the text), `truncated` (whether
the body was cut at `maxBodyBytes`).

An accepted status is Succeeded; any other is Failed (code 2) with the status in the message and the
outputs kept; a network error, a timeout or a bad URL is Error (code 3).

The request runs in a thread (the standard library's `urllib`, no extra dependency). Cancelling the
attempt stops waiting at once; the abandoned request ends in its thread at the latest after `timeout`.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import re
import urllib.error
import urllib.request
from email.message import Message
from typing import Any, ClassVar

from aether_es.model.phases import ResultCode
from aether_es.ports.wire import TaskAssignment, TaskResult
from aether_es.worker.executors.common import (
    ConfigError,
    config_of,
    duration_setting,
    error,
    int_setting,
    object_setting,
    parameters,
    string_setting,
)

HTTP_TYPE = "http"
DEFAULT_MAX_BODY = 1024 * 1024
DEFAULT_TIMEOUT = "30s"
_STATUS = re.compile(r"[1-5][0-9][0-9]|[1-5]xx")


def accepted_statuses(config: dict[str, Any]) -> list[int | str]:
    """Codes and `Nxx` classes; a bad entry is a ConfigError naming it."""
    value = config.get("acceptedStatuses", ["2xx"])
    if not isinstance(value, list) or not value:
        raise ConfigError(f"http: config.acceptedStatuses must be a non-empty list, got {value!r}")
    out: list[int | str] = []
    for entry in value:
        text = str(entry).lower()
        if isinstance(entry, bool) or not _STATUS.fullmatch(text):
            raise ConfigError(f'http: config.acceptedStatuses entry {entry!r} is neither a status code nor like "2xx"')
        out.append(int(text) if text.isdigit() else text)
    return out


def is_accepted(status: int, accepted: list[int | str]) -> bool:
    return any(status == entry if isinstance(entry, int) else str(status)[0] == entry[0] for entry in accepted)


def _request(config: dict[str, Any]) -> urllib.request.Request:
    url = string_setting(config, "url", HTTP_TYPE)
    if not url or not url.startswith(("http://", "https://")):
        raise ConfigError(f"http: config.url must be an http:// or https:// URL, got {url!r}")
    method = (string_setting(config, "method", HTTP_TYPE, "GET") or "GET").upper()
    headers = object_setting(config, "headers", HTTP_TYPE)
    body = config.get("body")
    data: bytes | None = None
    if isinstance(body, str):
        data = body.encode()
    elif body is not None:
        data = json.dumps(body).encode()
        if not any(name.lower() == "content-type" for name in headers):
            headers["Content-Type"] = "application/json"
    return urllib.request.Request(url, data=data, method=method, headers=headers)


def _headers(message: Message) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in message.items():
        out[name] = f"{out[name]}, {value}" if name in out else value
    return out


def _decode(body: bytes, content_type: str) -> Any:
    text = body.decode("utf-8", "replace")
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "application/json" or media.endswith("+json"):
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


def _send(request: urllib.request.Request, timeout: float | None, limit: int) -> dict[str, Any]:
    """The outputs of one exchange; a status urllib raises as an error is a response too."""
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        response = exc
    with response:
        body: bytes = response.read(limit + 1)
        return {
            "status": response.status or 0,
            "headers": _headers(response.headers),
            "body": _decode(body[:limit], response.headers.get("Content-Type", "")),
            "truncated": len(body) > limit,
        }


class HttpExecutor:
    executor_type: ClassVar[str] = HTTP_TYPE

    async def execute(self, assignment: TaskAssignment) -> TaskResult:
        config = config_of(assignment)
        try:
            request = _request(config)
            accepted = accepted_statuses(config)
            timeout = duration_setting(config.get("timeout", DEFAULT_TIMEOUT), "config.timeout", HTTP_TYPE)
            limit = int_setting(config, "maxBodyBytes", HTTP_TYPE, DEFAULT_MAX_BODY)
        except (ConfigError, ValueError) as exc:
            return error(str(exc))
        target = f"{request.get_method()} {request.full_url}"
        try:
            outputs = await asyncio.to_thread(_send, request, timeout or None, limit)
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
            return error(f"http: {target}: {getattr(exc, 'reason', exc)}")
        status = outputs["status"]
        if is_accepted(status, accepted):
            return TaskResult(code=ResultCode.SUCCEEDED, parameters=parameters(outputs))
        message = f"http: {target} returned status {status}, not one of {', '.join(map(str, accepted))}"
        return TaskResult(code=ResultCode.FAILED, message=message, parameters=parameters(outputs))
