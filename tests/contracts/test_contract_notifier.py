"""Every hook notifier delivers every HookEvent with all its fields (for NATS: to a plain nats-py
subscriber on `<prefix>.hooks.>`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import nats
import orjson
import pytest
import pytest_asyncio
from nats.aio.client import Client
from nats.aio.msg import Msg

from aether_es.adapters.nats.layout import Layout, ensure_stream
from aether_es.adapters.nats.notifier import NatsHookNotifier
from aether_es.adapters.nats.server import EmbeddedNatsServer
from aether_es.adapters.notifiers import CompositeNotifier, NotifyErrors
from aether_es.adapters.recording import RecordingNotifier
from aether_es.ports.notifier import HookEvent, HookNotifier

HOOK_TYPES = ["onStart", "onSuccess", "onFailure", "onError", "onSuspend", "onResume", "onCancel", "onExit"]


def _events() -> list[HookEvent]:
    events = []
    for hook_type in HOOK_TYPES:
        phase = {"phase": "Succeeded"} if hook_type == "onExit" else {}
        if hook_type != "onSuspend":
            events.append(
                HookEvent(
                    hook_type,
                    "workflow",
                    "wf-run-1",
                    f"wf-{hook_type}",
                    workflow_name="hello",
                    context={"workflowRunID": "wf-run-1", "workflowName": "hello", **phase},
                )
            )
        events.append(
            HookEvent(
                hook_type,
                "task",
                "wf-run-1",
                f"task-{hook_type}",
                task_run_id="wf-run-1-build-0",
                task_name="build",
                context={"workflowRunID": "wf-run-1", "taskRunID": "wf-run-1-build-0", "taskName": "build", **phase},
            )
        )
    return events


EVENTS = _events()


@dataclass
class Harness:
    notifier: HookNotifier
    received: Callable[[int], Awaitable[list[HookEvent]]]
    """The events delivered so far, once at least the given number have been (or a timeout passed)."""


def _recorded(recorder: RecordingNotifier) -> Callable[[int], Awaitable[list[HookEvent]]]:
    async def received(count: int) -> list[HookEvent]:
        return list(recorder.events)

    return received


def _event_of(payload: dict[str, object]) -> HookEvent:
    assert set(payload) == {
        "hookType",
        "scope",
        "workflowRunID",
        "workflowName",
        "taskRunID",
        "taskName",
        "template",
        "context",
        "id",
    }
    context = payload["context"]
    assert isinstance(context, dict)
    return HookEvent(
        hook_type=str(payload["hookType"]),
        scope=str(payload["scope"]),
        workflow_run_id=str(payload["workflowRunID"]),
        template=str(payload["template"]),
        workflow_name=str(payload["workflowName"]),
        task_run_id=str(payload["taskRunID"]),
        task_name=str(payload["taskName"]),
        context=context,
        id=str(payload["id"]),
    )


@pytest_asyncio.fixture
async def subscriber(nats_server: EmbeddedNatsServer) -> AsyncIterator[tuple[Client, list[Msg]]]:
    """A plain nats-py client of its own, subscribed to `hookc.hooks.>`."""
    client = await nats.connect(nats_server.url)
    messages: list[Msg] = []

    async def collect(msg: Msg) -> None:
        messages.append(msg)

    await client.subscribe("hookc.hooks.>", cb=collect)
    await client.flush()
    yield client, messages
    await client.close()


@pytest.fixture(params=["recording", "composite", "nats"])
def harness(request: pytest.FixtureRequest) -> Harness:
    if request.param == "recording":
        recorder = RecordingNotifier()
        return Harness(recorder, _recorded(recorder))
    if request.param == "composite":
        first, second = RecordingNotifier(), RecordingNotifier()

        async def both(count: int) -> list[HookEvent]:
            assert first.events == second.events
            return list(first.events)

        return Harness(CompositeNotifier(first, second), both)
    nc: Client = request.getfixturevalue("nc")
    _, messages = request.getfixturevalue("subscriber")

    async def received(count: int) -> list[HookEvent]:
        await nc.flush()
        for _ in range(200):
            if len(messages) >= count:
                break
            await asyncio.sleep(0.02)
        for msg in messages:
            event = _event_of(orjson.loads(msg.data))
            assert msg.subject == f"hookc.hooks.{event.workflow_run_id}.{event.hook_type}"
        return [_event_of(orjson.loads(m.data)) for m in messages]

    return Harness(_Stored(NatsHookNotifier(nc, Layout(prefix="hookc"))), received)


class _Stored:
    """The NATS notifier with the hooks stream it stores notifications in (a system's `ensure` makes it)."""

    def __init__(self, notifier: NatsHookNotifier) -> None:
        self.notifier = notifier

    async def notify(self, event: HookEvent) -> None:
        await ensure_stream(self.notifier.nc.jetstream(), self.notifier.layout.hooks_stream_config())
        await self.notifier.notify(event)


async def test_every_event_is_delivered_with_all_fields(harness: Harness) -> None:
    for event in EVENTS:
        await harness.notifier.notify(event)
    assert await harness.received(len(EVENTS)) == EVENTS


async def test_events_of_several_runs_stay_apart(harness: Harness) -> None:
    events = [HookEvent("onStart", "workflow", f"run-{i}", "t", workflow_name="w") for i in range(20)]
    for event in events:
        await harness.notifier.notify(event)
    assert await harness.received(len(events)) == events


# --- composite specifics ------------------------------------------------------------------------------


class Failing:
    def __init__(self, message: str) -> None:
        self.message = message

    async def notify(self, event: HookEvent) -> None:
        raise RuntimeError(self.message)


async def test_composite_calls_all_then_raises_one_error_joining_failures() -> None:
    first, last = RecordingNotifier(), RecordingNotifier()
    composite = CompositeNotifier(first, Failing("webhook down"), last, Failing("slack down"))
    with pytest.raises(NotifyErrors) as info:
        await composite.notify(EVENTS[0])
    assert first.events == last.events == [EVENTS[0]]
    assert [str(e) for e in info.value.errors] == ["webhook down", "slack down"]
    assert str(info.value) == "webhook down\nslack down"


async def test_empty_composite_does_nothing() -> None:
    await CompositeNotifier().notify(EVENTS[0])


def test_hook_subject() -> None:
    layout = Layout(prefix="hookc")
    assert layout.hook_subject("wf-1", "onExit") == "hookc.hooks.wf-1.onExit"
    assert layout.hook_subjects == "hookc.hooks.>"
    with pytest.raises(ValueError):
        layout.hook_subject("wf 1", "onExit")
    with pytest.raises(ValueError):
        layout.hook_subject("wf-1", "on.Exit")
