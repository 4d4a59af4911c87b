"""Hook notifications as NATS messages, stored in the `<PREFIX>_HOOKS` stream as they are sent; see docs/hooks.md.

Subject `<prefix>.hooks.<workflowRunID>.<hookType>`; payload JSON with the camelCase fields `hookType`,
`scope`, `workflowRunID`, `workflowName`, `taskRunID`, `taskName`, `template`, `context`, and `id`: the
notification's outbox id, the same on a repeat after a crash (also its `Nats-Msg-Id`, so the stream keeps
it once).
"""

from __future__ import annotations

import functools
from typing import Any

import orjson
from nats.aio.client import Client

from aether_es.adapters.nats.layout import Layout
from aether_es.adapters.nats.retry import publish_idempotent, retrying
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
    """Publishes each HookEvent through JetStream, so `notify` returns once the `<PREFIX>_HOOKS` stream keeps it
    (core subscribers get it as well); a stream without a leader for a moment (a node lost) is waited for,
    within `budget` seconds, rather than the notification being dropped while the relay acks its commit.

    An error means the notification could not be stored: the engine reports it as `hook.<hookType>`.
    """

    def __init__(self, nc: Client, layout: Layout, budget: float = 20.0) -> None:
        self.nc = nc
        self.layout = layout
        self.budget = budget

    async def notify(self, event: HookEvent) -> None:
        subject = self.layout.hook_subject(event.workflow_run_id, event.hook_type)
        data = orjson.dumps(hook_payload(event), default=str)
        js = self.nc.jetstream()
        if event.id:
            await publish_idempotent(js, subject, data, event.id, budget=self.budget)
        else:
            await retrying(
                functools.partial(js.publish, subject, data), what=f"publish to {subject}", budget=self.budget
            )
