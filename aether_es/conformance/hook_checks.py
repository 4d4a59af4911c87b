"""The hook-event expectations of Aether's Go tests, which its assertion files do not carry (README §6)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from aether_es.ports.error_sink import ErrorReport
from aether_es.ports.notifier import HookEvent

EMPTY_LOOP_CASES = {
    "31-empty-loop-minimal",
    "32-empty-loop-binding",
    "33-empty-loop-siblings",
    "34-empty-loop-root",
    "35-empty-loop-nested-siblings",
    "36-empty-loop-refill",
    "37-empty-loop-repeat",
    "38-empty-loop-deep",
    "39-empty-loop-declared-outputs",
}


def _count(events: list[HookEvent], scope: str) -> Counter[str]:
    return Counter(e.hook_type for e in events if e.scope == scope)


def _present(counts: Counter[str], scope: str, hooks: list[str], at_least: int = 1) -> list[str]:
    return [
        f"{scope} hook {hook}: fired {counts[hook]} times, expected at least {at_least}"
        for hook in hooks
        if counts[hook] < at_least
    ]


def check_hooks(
    case: str,
    events: list[HookEvent],
    errors: list[ErrorReport],
    execution: dict[str, Any],
    suspended_events: list[HookEvent] | None = None,
) -> list[str]:
    """Failures for the known hook cases; other cases have no hook expectations."""
    workflow, task = _count(events, "workflow"), _count(events, "task")
    failures: list[str] = []
    if case == "24-hooks-lifecycle":
        failures += _present(workflow, "workflow", ["onStart", "onSuccess", "onExit"])
        failures += _present(task, "task", ["onStart", "onSuccess", "onExit"], at_least=2)
        for event in events:
            if not event.workflow_run_id:
                failures.append(f"{event.hook_type} event without a workflow run id")
            if event.scope == "task" and not event.task_name:
                failures.append(f"task {event.hook_type} event without a task name")
            if event.template != "hook-task":
                failures.append(f"{event.hook_type} event names template {event.template!r}, not 'hook-task'")
        failures += [f"error reported: {e.operation}: {e.message}" for e in errors]
    elif case == "25-hooks-suspend-resume":
        if suspended_events is not None and not _count(suspended_events, "task")["onSuspend"]:
            failures.append("task onSuspend had not fired by the time the task was suspended")
        failures += _present(task, "task", ["onStart", "onSuspend", "onResume", "onSuccess", "onExit"])
    elif case == "26-hooks-cancel":
        failures += _present(workflow, "workflow", ["onStart", "onCancel", "onExit"])
        if not any(e.scope == "task" and e.hook_type == "onCancel" and e.task_name == "wait" for e in events):
            failures.append("no task onCancel event for task 'wait'")
    elif case in EMPTY_LOOP_CASES:
        for hook in ("onSuccess", "onExit"):
            if workflow[hook] != 1:
                failures.append(f"workflow hook {hook}: fired {workflow[hook]} times, expected exactly 1")
        if not any(t["templateType"] == "task" for t in execution["tasks"]):
            if workflow["onStart"]:
                failures.append("workflow onStart fired although no task was dispatched")
            metrics = execution.get("metrics") or {}
            if metrics.get("startedAt"):
                failures.append("metrics.startedAt is set although no task was dispatched")
            if not metrics.get("finishedAt"):
                failures.append("metrics.finishedAt is empty")
    return failures
