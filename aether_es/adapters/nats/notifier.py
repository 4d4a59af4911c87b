"""Hook notifications as NATS messages, also kept in the `<PREFIX>_HOOKS` stream; see docs/hooks.md.

Subject `<prefix>.hooks.<workflowRunID>.<hookType>`; payload JSON with the camelCase fields `hookType`,
`scope`, `workflowRunID`, `workflowName`, `taskRunID`, `taskName`, `template`, `context`, and `id`: the
notification's outbox id, the same on a repeat after a crash (also its `Nats-Msg-Id`, so the stream keeps
it once).
"""

from __future__ import annotations

from typing import Any

import orjson
from nats.aio.client import Client
from nats.js.api import Header

from aether_es.adapters.nats.layout import Layout
from aether_es.ports.notifier import HookEvent


def hook_payload(event: HookEvent) -> dict[str, Any]:
    """The JSON object published for `event`."""
    return {
        "hookType": event.hook_type,
        "scope": event.scope,
        "workflowRunID": event.workflow_run_id,
        "workflowName": event.workflow_name,
        "taskRunID": event.task_run_id,
        "taskName": event.task_name,
        "template": event.template,
        "context": event.context,
        "id": event.id,
    }


class NatsHookNotifier:
    """Publishes each HookEvent on core NATS; while disconnected, nats-py buffers it until it reconnects.

    `notify` does not wait for the server: an error means the client could not even buffer the message
    (closed connection, full reconnect buffer) and the engine reports it as `hook.<hookType>`.
    """

    def __init__(self, nc: Client, layout: Layout) -> None:
        self.nc = nc
        self.layout = layout

    async def notify(self, event: HookEvent) -> None:
        subject = self.layout.hook_subject(event.workflow_run_id, event.hook_type)
        data = orjson.dumps(hook_payload(event), default=str)
        await self.nc.publish(subject, data, headers={Header.MSG_ID.value: event.id} if event.id else None)
