"""Lifecycle hooks as Aether fires them: notifications with a fixed context, never task runs."""

from __future__ import annotations

from typing import Any

from aether_es.engine.decision import Decision
from aether_es.engine.effects import Notify
from aether_es.model import phases as ph
from aether_es.model.documents import Hooks
from aether_es.ports.notifier import HookEvent
from aether_es.projections.run_state import TaskRunView

PHASE_HOOKS: dict[str, str] = {
    ph.RUNNING: "onStart",
    ph.SUCCEEDED: "onSuccess",
    ph.FAILED: "onFailure",
    ph.ERROR: "onError",
    ph.TIMEOUT: "onError",
    ph.CANCELLED: "onCancel",
    ph.SUSPENDED: "onSuspend",
}


def _keys(phase: str) -> list[str]:
    keys = [PHASE_HOOKS[phase]] if phase in PHASE_HOOKS else []
    if phase in ph.TERMINAL:
        keys.append("onExit")
    return keys


def workflow_hooks(decision: Decision, phase: str) -> None:
    """Workflow-scope hooks for a phase the run reached (its phase hook, then onExit when terminal)."""
    hooks = decision.workflow.spec.hooks
    state = decision.state
    for key in _keys(phase):
        context: dict[str, Any] = {
            "workflowRunID": state.run_id,
            "workflowName": decision.workflow.metadata.name,
        }
        if key == "onExit":
            context["phase"] = phase
        _notify(decision, hooks, key, "workflow", context, workflow_name=decision.workflow.metadata.name)


def task_hooks(decision: Decision, task: TaskRunView, phase: str | None = None, key: str = "") -> None:
    """Task-scope hooks declared on the task's DAG node (none for root tasks or loop iterations)."""
    node = decision.node(decision.parent(task), task.task_name)
    if node is None or node.hooks is None:
        return
    keys = [key] if key else _keys(phase or task.phase)
    for hook_key in keys:
        context: dict[str, Any] = {
            "workflowRunID": decision.state.run_id,
            "taskRunID": task.id,
            "taskName": task.task_name,
        }
        if hook_key == "onExit":
            context["phase"] = phase or task.phase
        _notify(decision, node.hooks, hook_key, "task", context, task=task)


def _notify(
    decision: Decision,
    hooks: Hooks | None,
    key: str,
    scope: str,
    context: dict[str, Any],
    workflow_name: str = "",
    task: TaskRunView | None = None,
) -> None:
    template = hooks.template_for(key) if hooks is not None else ""
    if not template:
        return
    decision.effect(
        Notify(
            HookEvent(
                hook_type=key,
                scope=scope,
                workflow_run_id=decision.state.run_id,
                template=template,
                workflow_name=workflow_name,
                task_run_id=task.id if task else "",
                task_name=task.task_name if task else "",
                context=context,
            )
        )
    )
