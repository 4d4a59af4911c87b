"""The assertion checks of the conformance harness (conformance/README.md §2)."""

from __future__ import annotations

from typing import Any

from aether_es.conformance.compare import subset_failures
from aether_es.model import phases as ph


def _given(assertion: dict[str, Any], key: str) -> bool:
    """A key is checked when present and neither null nor the empty string (0 is checked)."""
    value = assertion.get(key)
    return value is not None and value != ""


def _params(record: dict[str, Any] | None, field: str) -> list[dict[str, Any]]:
    section = (record or {}).get(field) or {}
    parameters: list[dict[str, Any]] = section.get("parameters") or []
    return parameters


def check_tasks(expectations: list[dict[str, Any]], tasks: list[dict[str, Any]]) -> list[str]:
    """Per-task checks against the last record with each name, in creation order."""
    index = {task["taskName"]: task for task in tasks}
    failures: list[str] = []
    for want in expectations:
        name = want.get("taskName", "")
        task = index.get(name)
        if task is None:
            failures.append(f"task {name!r}: not found")
            continue
        label = f"task {name!r}"
        for key, field in (
            ("expectPhase", "status"),
            ("expectRetryCount", "retryCount"),
            ("expectTemplateType", "templateType"),
            ("expectScope", "scope"),
            ("expectDepth", "depth"),
        ):
            if _given(want, key) and task.get(field) != want[key]:
                failures.append(f"{label}: {field} is {task.get(field)!r}, expected {want[key]!r}")
        if _given(want, "expectOutputs"):
            failures += subset_failures(f"{label} outputs", want["expectOutputs"], _params(task, "outputs"))
        if _given(want, "expectInputs"):
            failures += subset_failures(f"{label} inputs", want["expectInputs"], _params(task, "inputs"))
    return failures


def check_workflow(assertion: dict[str, Any], execution: dict[str, Any]) -> list[str]:
    failures: list[str] = []
    if _given(assertion, "expectPhase") and execution["status"] != assertion["expectPhase"]:
        failures.append(f"phase is {execution['status']!r}, expected {assertion['expectPhase']!r}")
    if _given(assertion, "expectTaskCount") and len(execution["tasks"]) != assertion["expectTaskCount"]:
        failures.append(f"task count is {len(execution['tasks'])}, expected {assertion['expectTaskCount']}")
    if _given(assertion, "expectOutputs"):
        expected = assertion["expectOutputs"]
        if isinstance(expected, list):  # the older form: [{name, value}]
            expected = {item["name"]: item.get("value") for item in expected}
        failures += subset_failures("workflow outputs", expected, _params(execution, "outputs"))
    if _given(assertion, "expectTasks"):
        failures += check_tasks(assertion["expectTasks"], execution["tasks"])
    return failures


def check_cron(assertion: dict[str, Any], runs: list[dict[str, Any]]) -> list[str]:
    """Cron checks over the cron workflow's runs, oldest first."""
    failures: list[str] = []
    if _given(assertion, "expectRunCount") and len(runs) != assertion["expectRunCount"]:
        failures.append(f"run count is {len(runs)}, expected {assertion['expectRunCount']}")
    if _given(assertion, "expectCancelledCount"):
        cancelled = sum(1 for run in runs if run["status"] == ph.CANCELLED)
        if cancelled != assertion["expectCancelledCount"]:
            failures.append(f"cancelled runs: {cancelled}, expected {assertion['expectCancelledCount']}")
    if runs and _given(assertion, "expectRunPhase") and runs[-1]["status"] != assertion["expectRunPhase"]:
        failures.append(f"last run phase is {runs[-1]['status']!r}, expected {assertion['expectRunPhase']!r}")
    if runs and _given(assertion, "expectTasks"):
        failures += check_tasks(assertion["expectTasks"], runs[-1]["tasks"])
    return failures
