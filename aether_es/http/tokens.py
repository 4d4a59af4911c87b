"""Who may act through the web UI: a request carrying the token `serve --http-token` was given.

Reading is open to whoever reaches the address; resuming, cancelling and retrying are refused unless the
server has a token and the request sends it as `Authorization: Bearer <token>`.
"""

from __future__ import annotations

import hmac

from aiohttp import web

TOKEN_ENV = "AETHER_HTTP_TOKEN"


class Refused(Exception):
    """An action the token does not allow: `status` is the HTTP status, the text says why."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def check_token(expected: str, request: web.Request) -> None:
    """Raise Refused unless actions are on (`expected` not empty) and `request` carries that token."""
    if not expected:
        raise Refused(
            403, "actions_off", f"aether: actions are off: serve was started without --http-token (or ${TOKEN_ENV})"
        )
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected.encode()):
        raise Refused(401, "unauthenticated", "aether: this action needs the token the server was started with")
