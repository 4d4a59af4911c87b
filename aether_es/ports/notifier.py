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


class HookNotifier(Protocol):
    async def notify(self, event: HookEvent) -> None: ...
