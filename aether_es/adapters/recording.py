"""In-memory notifier and error sink that keep what they receive, for harnesses and tests."""

from __future__ import annotations

from aether_es.ports.error_sink import ErrorReport
from aether_es.ports.notifier import HookEvent


class RecordingNotifier:
    def __init__(self) -> None:
        self.events: list[HookEvent] = []

    async def notify(self, event: HookEvent) -> None:
        self.events.append(event)

    def for_run(self, run_id: str) -> list[HookEvent]:
        return [e for e in self.events if e.workflow_run_id == run_id]


class RecordingErrorSink:
    def __init__(self) -> None:
        self.reports: list[ErrorReport] = []

    async def on_error(self, report: ErrorReport) -> None:
        self.reports.append(report)

    def for_run(self, run_id: str) -> list[ErrorReport]:
        return [r for r in self.reports if r.workflow_run_id == run_id]
