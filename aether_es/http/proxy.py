"""`POST /api/v1/<operation>`: the request/reply API's reads and a run's commands, over HTTP.

The body is the API's own request (docs/api.md) and the answer its reply, so the pages speak the one
contract the CLI and every client speak; the request goes to the engine over NATS through `Client`.
Commands need the token (`tokens`) and a reason, and are recorded with the actor the page names.
"""

from __future__ import annotations

from aiohttp import web

from aether_es.api import messages as m
from aether_es.api.service import invalid, parse_request
from aether_es.client import Client
from aether_es.http.replies import error_body, failure
from aether_es.http.tokens import Refused, check_token

READS = frozenset({"runs.get", "runs.tasks", "runs.list", "crons.get", "crons.list", "workers.list"})
COMMANDS = frozenset({"runs.resume", "runs.cancel", "runs.retry"})
WEB_ACTOR = "web"
"""The actor of a command whose page named nobody."""


class ApiProxy:
    """Forwards the allowed operations to the API through `client`; commands only with `token`."""

    def __init__(self, client: Client, token: str) -> None:
        self.client = client
        self.token = token

    async def handle(self, request: web.Request) -> web.Response:
        operation = request.match_info["operation"]
        if operation not in READS | COMMANDS:
            text = f"aether: not found: {operation!r} is not an operation of the web API"
            return web.json_response(error_body("not_found", text), status=404)
        try:
            if operation in COMMANDS:
                check_token(self.token, request)
            model, _ = m.OPERATIONS[operation]
            message = parse_request(model, await request.read())
            if operation in COMMANDS:
                message = _attributed(message)
            reply = await self.client.call(operation, message)
        except Refused as refused:
            return web.json_response(error_body(refused.code, str(refused)), status=refused.status)
        except Exception as exc:
            return failure(operation, exc)
        return web.Response(body=reply.to_json(), content_type="application/json")


def _attributed(message: m.Audited) -> m.Audited:
    """A command with its reason checked and its actor named: the audit trail says who and why."""
    if not message.reason.strip():
        raise invalid("reason", "reason: say why (it is recorded with the command)")
    if not message.actor.strip():
        message.actor = WEB_ACTOR
    return message
