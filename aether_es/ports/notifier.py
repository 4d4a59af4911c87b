"""Lifecycle hook notifications (Aether's hooks are notifications, never task runs)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class HookEvent:
    hook_type: str
    scope: str
    workflow_run_id: str
    template: str
    workflow_name: str = ""
    task_run_id: str = ""
    task_name: str = ""
    context: dict[str, Any] = field(default_factory=dict)
    id: str = ""
    """Set when the notification comes from a commit's outbox: the same for every repeat of it, so a listener
    (and the NATS hooks stream) can recognise a notification delivered again after a crash."""


class HookNotifier(Protocol):
    async def notify(self, event: HookEvent) -> None: ...
