"""Aether's `FillDefaults` / `FillCronDefaults`: what an omitted (or zero) field means.

A zero or empty value means "use the default", exactly as in Aether, so `priority: 0` and
`maxNestedDepth: 0` cannot be expressed. The caller's document is never mutated: a defaulted copy is returned.
"""

from __future__ import annotations

from aether_es.model.documents import CronWorkflow, Workflow, WorkflowSpec

DEFAULT_NAMESPACE = "default"
DEFAULT_TIMEOUT = "1h"
DEFAULT_PRIORITY = 500
DEFAULT_MAX_NESTED_DEPTH = 3
DEFAULT_TIMEZONE = "UTC"
DEFAULT_CONCURRENCY_POLICY = "Allow"
DEFAULT_SUCCESSFUL_HISTORY = 3
DEFAULT_FAILED_HISTORY = 1


def fill_defaults(wf: Workflow) -> Workflow:
    """A copy of `wf` with Aether's workflow defaults applied (namespace, timeout, priority, depth).

    Only the metadata and spec objects the defaults change are copied; templates are shared, which keeps
    submitting a large document from costing a deep copy of it.
    """
    filled = wf.model_copy(update={"metadata": wf.metadata.model_copy(), "spec": wf.spec.model_copy()})
    if not filled.metadata.namespace:
        filled.metadata.namespace = DEFAULT_NAMESPACE
    _fill_spec(filled.spec)
    return filled


def fill_cron_defaults(cw: CronWorkflow) -> CronWorkflow:
    """A deep copy of `cw` with Aether's cron defaults, plus the workflow-spec defaults on `workflowSpec`."""
    filled = cw.model_copy(deep=True)
    if not filled.metadata.namespace:
        filled.metadata.namespace = DEFAULT_NAMESPACE
    spec = filled.spec
    spec.timezone = spec.timezone or DEFAULT_TIMEZONE
    spec.concurrency_policy = spec.concurrency_policy or DEFAULT_CONCURRENCY_POLICY
    spec.successful_jobs_history_limit = spec.successful_jobs_history_limit or DEFAULT_SUCCESSFUL_HISTORY
    spec.failed_jobs_history_limit = spec.failed_jobs_history_limit or DEFAULT_FAILED_HISTORY
    _fill_spec(spec.workflow_spec)
    return filled


def _fill_spec(spec: WorkflowSpec) -> None:
    """The spec part of `FillDefaults` (the only part `FillCronDefaults` applies to `workflowSpec`)."""
    spec.timeout = spec.timeout or DEFAULT_TIMEOUT
    spec.priority = spec.priority or DEFAULT_PRIORITY
    spec.max_nested_depth = spec.max_nested_depth or DEFAULT_MAX_NESTED_DEPTH
