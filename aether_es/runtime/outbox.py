"""The outbox: hook notifications and error reports travel inside the commit of the decision that asked for
them, so they are durable the moment the decision is, and a relay carries them out afterwards.

Dispatches, cancels and deadlines need no outbox: a restarted engine derives them from the run's state. A
notification cannot be derived that way (it is about a moment, not a state), so its commit carries it. Each
item gets an id made of the commit id and its position: a relay that repeats a commit after a crash repeats
the same ids, which the NATS hooks and errors streams drop as duplicates.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, replace
from typing import Any

from aether_es.engine.effects import Effect, Notify, ReportError
from aether_es.ports.error_sink import ErrorReport, Severity
from aether_es.ports.notifier import HookEvent, HookNotifier

log = logging.getLogger("aether_es.outbox")

OutboxEffect = Notify | ReportError

ErrorPublisher = Callable[[ErrorReport], Awaitable[None]]
"""Publishes one error report durably, raising when it could not (the relay then tries again)."""


def split_outbox(effects: Sequence[Effect]) -> tuple[list[Effect], list[OutboxEffect]]:
    """The effects the engine carries out itself, and those that go into the commit's outbox."""
    own: list[Effect] = []
    outbox: list[OutboxEffect] = []
    for effect in effects:
        if isinstance(effect, Notify | ReportError):
            outbox.append(effect)
        else:
            own.append(effect)
    return own, outbox


def encode_outbox(effects: Sequence[OutboxEffect]) -> list[dict[str, Any]]:
    """The JSON items a commit carries for these effects."""
    items: list[dict[str, Any]] = []
    for effect in effects:
        if isinstance(effect, Notify):
            items.append({"hook": asdict(effect.event)})
        else:
            report = asdict(effect.report)
            report["severity"] = int(effect.report.severity)
            items.append({"error": report})
    return items


def decode_outbox(commit_id: str, items: Sequence[dict[str, Any]]) -> list[OutboxEffect]:
    """The effects of a commit's outbox, each with its deterministic id; an unreadable item is skipped
    with a warning (it can never be carried out, and must not block the ones after it)."""
    effects: list[OutboxEffect] = []
    for index, item in enumerate(items):
        ident = f"{commit_id}/{index}"
        try:
            if "hook" in item:
                effects.append(Notify(replace(HookEvent(**item["hook"]), id=ident)))
            else:
                data = dict(item["error"])
                data["severity"] = Severity(data["severity"])
                effects.append(ReportError(replace(ErrorReport(**data), id=ident)))
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("commit %s: outbox item %d unreadable (%r); skipped", commit_id, index, exc)
    return effects


class OutboxDelivery:
    """Carries out one commit's outbox. A notifier that refuses a notification is reported as an error (as
    Aether does), so one bad listener never holds back the commits after it; an error report that cannot be
    published raises, so the relay delivers the commit again (the ids make the repeat harmless)."""

    def __init__(self, notifier: HookNotifier | None, publish_error: ErrorPublisher | None) -> None:
        self.notifier = notifier
        self.publish_error = publish_error

    async def deliver(self, effects: Sequence[OutboxEffect]) -> None:
        for effect in effects:
            if isinstance(effect, Notify):
                await self._notify(effect.event)
            elif self.publish_error is not None:
                await self.publish_error(effect.report)

    async def _notify(self, event: HookEvent) -> None:
        if self.notifier is None:
            return
        try:
            await self.notifier.notify(event)
        except Exception as exc:
            if self.publish_error is None:
                log.warning("hook.%s: %s (run %s)", event.hook_type, exc, event.workflow_run_id)
                return
            report = ErrorReport(
                f"hook.{event.hook_type}", str(exc), Severity.WARNING, event.workflow_run_id, event.task_run_id
            )
            await self.publish_error(replace(report, id=f"{event.id}/refused" if event.id else ""))
