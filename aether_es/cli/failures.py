"""Why a run failed, for people: each failed task's message and the tail of its stderr (and how to resume a
suspended task).

Read from the task records of a run's view (`get`) or of the state a follower folded (`run`, `watch`,
`submit --wait`), once, when the run is shown or has ended: following costs nothing more for it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from aether_es.events.references import Reference, UnresolvedReference, reference_of
from aether_es.model import phases as ph
from aether_es.model.phases import TemplateType
from aether_es.projections.names import display_name
from aether_es.projections.run_state import RunState

STDERR_LINES = 5
"""How many of a failed task's last stderr lines are shown."""

FAILED_PHASES = frozenset({ph.FAILED, ph.ERROR, ph.TIMEOUT})


def failed_task_records(state: RunState) -> list[dict[str, Any]]:
    """The records of the run's leaf task runs that failed, in creation order."""
    return [
        task.to_dict()
        for task in (state.tasks[task_id] for task_id in state.order)
        if task.template_type == TemplateType.TASK and task.phase in FAILED_PHASES
    ]


def failure_lines(tasks: Iterable[dict[str, Any]]) -> list[str]:
    """`<task> <id> <phase>: <message>` per failed leaf task record, each followed by its stderr's tail."""
    lines: list[str] = []
    for task in tasks:
        if task.get("templateType") != TemplateType.TASK or task.get("status") not in FAILED_PHASES:
            continue
        name = display_name(task["taskName"], task["scope"])
        message = f": {shown(task['message'])}" if task.get("message") else ""
        lines.append(f"  {name} ({task['runID']}) {task['status']}{message}")
        lines.extend(_stderr_tail(task))
    return lines


def _stderr_tail(task: dict[str, Any]) -> list[str]:
    parameters = (task.get("outputs") or {}).get("parameters") or []
    stderr = next((p.get("value") for p in parameters if p.get("name") == "stderr"), None)
    ref = reference(stderr)
    if ref is not None:
        return [f"    stderr: {ref.describe()}"]
    if not isinstance(stderr, str) or not stderr.strip():
        return []
    tail = stderr.rstrip("\n").split("\n")
    head = "stderr:" if len(tail) <= STDERR_LINES else f"stderr (last {STDERR_LINES} of {len(tail)} lines):"
    return [f"    {head}"] + [f"    | {line}" for line in tail[-STDERR_LINES:]]


def resume_hint(run_id: str, task_run_id: str) -> str:
    """The command that resumes a suspended task run, ready to paste."""
    return f"to resume: aether-es resume {run_id} {task_run_id}  (--payload '{{...}}' passes a JSON object)"


def failure_reason(state: RunState) -> str:
    """One line on why the run ended as it did: its message, then each failed task's (for the logs)."""
    parts = [state.message] if state.message else []
    parts.extend(
        f"{display_name(t['taskName'], t['scope'])} ({t['runID']}) {t['status']}"
        + (f": {shown(t['message'])}" if t.get("message") else "")
        for t in failed_task_records(state)
    )
    return "; ".join(parts) or "no reason recorded"


def reference(value: Any) -> Reference | None:
    """The reference a value stands for when it came by reference (too big for the reply), else None."""
    try:
        return reference_of(value)
    except UnresolvedReference:  # a value that merely looks like one is shown as it is
        return None


def shown(value: Any) -> str:
    """A value as printed: "by reference (N bytes, sha256:...)" for one too big for the reply."""
    ref = reference(value)
    return str(value) if ref is None else ref.describe()
