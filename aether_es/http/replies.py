"""Errors over HTTP: the API's error body (`{"error": {"code", "message", "field"}}`) with its HTTP status."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from aether_es.api.service import STATUS, error_reply
from aether_es.errors import ApiError

log = logging.getLogger("aether_es.http")


def error_body(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "field": field}}


def failure(what: str, exc: Exception) -> web.Response:
    """The reply for `exc`: Aether's errors by kind, an API that cannot answer as such, the rest as internal
    (never a traceback); a failure of the server's side is logged at WARNING, naming `what` failed."""
    if isinstance(exc, ApiError):
        code, message, field = exc.code, str(exc), exc.field
    else:
        detail = error_reply(exc).error
        code, message, field = detail.code, detail.message, detail.field
    status = int(STATUS.get(code, "500"))
    if status >= 500:
        log.warning("web %s failed: %s", what, message)
    return web.json_response(error_body(code, message, field), status=status)
