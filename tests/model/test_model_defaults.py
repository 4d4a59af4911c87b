"""FillDefaults / FillCronDefaults: zero or empty means default; the input is never mutated."""

from __future__ import annotations

from aether_es.model.defaults import fill_cron_defaults, fill_defaults
from aether_es.model.documents import CronWorkflow, Workflow
from aether_es.model.loading import load_cron_workflow, load_workflow


def _workflow(spec: dict[str, object] | None = None, namespace: str = "") -> Workflow:
    return load_workflow({"metadata": {"name": "w", "namespace": namespace}, "spec": spec or {}})


def test_workflow_defaults() -> None:
    filled = fill_defaults(_workflow())
    assert filled.metadata.namespace == "default"
    assert filled.spec.timeout == "1h"
    assert filled.spec.priority == 500
    assert filled.spec.max_nested_depth == 3


def test_zero_means_default() -> None:
    filled = fill_defaults(_workflow({"timeout": "", "priority": 0, "maxNestedDepth": 0}))
    assert (filled.spec.timeout, filled.spec.priority, filled.spec.max_nested_depth) == ("1h", 500, 3)


def test_explicit_values_kept() -> None:
    wf = _workflow({"timeout": "5m", "priority": -7, "maxNestedDepth": 12}, namespace="team")
    filled = fill_defaults(wf)
    assert filled.metadata.namespace == "team"
    assert (filled.spec.timeout, filled.spec.priority, filled.spec.max_nested_depth) == ("5m", -7, 12)


def test_invalid_timeout_is_kept_verbatim() -> None:
    assert fill_defaults(_workflow({"timeout": "soon"})).spec.timeout == "soon"


def test_input_not_mutated_and_only_what_defaults_change_is_copied() -> None:
    wf = _workflow({"templates": [{"task": {"name": "main", "executor": {"type": "echo"}}}]})
    before = wf.model_dump()
    filled = fill_defaults(wf)
    assert wf.model_dump() == before
    assert filled.metadata is not wf.metadata and filled.spec is not wf.spec
    assert filled.spec.templates[0] is wf.spec.templates[0]  # documents are read-only once loaded
    assert isinstance(filled, Workflow)


def test_cron_defaults() -> None:
    cw = load_cron_workflow({"kind": "CronWorkflow", "metadata": {"name": "c"}, "spec": {"schedule": "@daily"}})
    filled = fill_cron_defaults(cw)
    assert isinstance(filled, CronWorkflow)
    assert filled.metadata.namespace == "default"
    spec = filled.spec
    assert (spec.timezone, spec.concurrency_policy) == ("UTC", "Allow")
    assert (spec.successful_jobs_history_limit, spec.failed_jobs_history_limit) == (3, 1)
    assert spec.starting_deadline_seconds is None
    inner = spec.workflow_spec
    assert (inner.timeout, inner.priority, inner.max_nested_depth) == ("1h", 500, 3)
    assert cw.spec.timezone == "" and cw.spec.workflow_spec.priority == 0


def test_cron_explicit_values_kept() -> None:
    cw = load_cron_workflow(
        {
            "metadata": {"name": "c", "namespace": "ops"},
            "spec": {
                "timezone": "Europe/Paris",
                "concurrencyPolicy": "Forbid",
                "successfulJobsHistoryLimit": 10,
                "failedJobsHistoryLimit": -2,
                "workflowSpec": {"timeout": "2h", "priority": 1, "maxNestedDepth": 5},
            },
        }
    )
    spec = fill_cron_defaults(cw).spec
    assert (spec.timezone, spec.concurrency_policy) == ("Europe/Paris", "Forbid")
    assert (spec.successful_jobs_history_limit, spec.failed_jobs_history_limit) == (10, -2)
    inner = spec.workflow_spec
    assert (inner.timeout, inner.priority, inner.max_nested_depth) == ("2h", 1, 5)
