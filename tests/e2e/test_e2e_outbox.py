"""Hook notifications come from the log: an engine that dies between a commit and its notification loses
none, and a notification carried out twice is kept once in the hooks stream."""

from __future__ import annotations

from typing import Any

from aether_es.adapters.nats.notifier import NatsHookNotifier
from aether_es.adapters.nats.outbox import NatsOutboxRelay
from aether_es.adapters.nats.server import EmbeddedNatsServer
from aether_es.adapters.notifiers import CompositeNotifier
from aether_es.adapters.recording import RecordingNotifier
from aether_es.engine.effects import Notify
from aether_es.runtime.outbox import OutboxDelivery
from aether_es.runtime.stack import Stack, StackOptions, open_stack

HOOKED: dict[str, Any] = {
    "apiVersion": "aether/v1",
    "kind": "Workflow",
    "metadata": {"name": "hooked"},
    "spec": {
        "entrypoint": "main",
        "hooks": {"onStart": {"template": "say"}, "onExit": {"template": "say"}},
        "templates": [
            {
                "dag": {
                    "name": "main",
                    "tasks": [
                        {"name": "a", "template": "say", "hooks": {"onSuccess": {"template": "say"}}},
                        {"name": "b", "template": "say", "dependencies": ["a"]},
                    ],
                }
            },
            {"task": {"name": "say", "executor": {"type": "echo"}}},
        ],
    },
}
EXPECTED = ["onStart", "onSuccess", "onExit"]


async def hooks_stored(stack: Stack) -> int:
    return (await stack.connection.js.stream_info(stack.layout.hooks_stream)).state.messages


async def test_notifications_committed_while_no_relay_runs_are_delivered_by_the_next(
    nats_server: EmbeddedNatsServer,
) -> None:
    first = RecordingNotifier()
    stack = await open_stack(StackOptions(nats_url=nats_server.url, workers=2, notifier=first))
    try:
        assert stack.relay is not None
        await stack.relay.stop()  # the engine's process dies between its commits and their notifications
        run_id = await stack.engine.submit(HOOKED)
        assert (await stack.engine.wait(run_id, timeout=20))["status"] == "Succeeded"
        assert first.events == [] and await hooks_stored(stack) == 0

        second = RecordingNotifier()
        notifier = CompositeNotifier(NatsHookNotifier(stack.connection.nc, stack.layout), second)
        relay = NatsOutboxRelay(stack.connection.js, stack.layout, OutboxDelivery(notifier, None))
        await relay.start()
        try:
            await relay.caught_up(10)
        finally:
            await relay.stop()
        assert [e.hook_type for e in second.for_run(run_id)] == EXPECTED
        assert all(e.id for e in second.events) and len({e.id for e in second.events}) == len(EXPECTED)
        await stack.connection.nc.flush()
        assert await hooks_stored(stack) == len(EXPECTED)

        again = [Notify(event) for event in second.events]  # a relay that died before acking does it again
        await OutboxDelivery(notifier, None).deliver(again)
        await stack.connection.nc.flush()
        assert await hooks_stored(stack) == len(EXPECTED)  # the stream kept each notification once
    finally:
        await stack.close()


async def test_a_served_stack_notifies_through_its_relay(nats_server: EmbeddedNatsServer) -> None:
    recorder = RecordingNotifier()
    stack = await open_stack(StackOptions(nats_url=nats_server.url, workers=2, notifier=recorder))
    try:
        run_id = await stack.engine.submit(HOOKED)
        assert (await stack.engine.wait(run_id, timeout=20))["status"] == "Succeeded"
        assert stack.relay is not None
        await stack.relay.caught_up(10)
        assert [e.hook_type for e in recorder.for_run(run_id)] == EXPECTED
    finally:
        await stack.close()
