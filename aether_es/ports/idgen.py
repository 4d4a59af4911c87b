"""Identifiers for workflow runs (task run ids derive from their run's id)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class IdContext:
    workflow_run_id: str = ""
    workflow_kind: str = ""
    task_name: str = ""
    template_name: str = ""


class IdGenerator(Protocol):
    def generate(self, context: IdContext) -> str: ...
