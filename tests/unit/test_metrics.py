"""The metrics' names, labels and what moves them (the registry is the process's: tests compare deltas)."""

from __future__ import annotations

from aether_es.observability import metrics


def _value(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_decision_counts_itself_its_commit_and_the_runs_it_starts_and_ends() -> None:
    before = {
        name: _value(name) for name in ("aether_decisions_total", "aether_commits_total", "aether_runs_started_total")
    }
    failed = _value("aether_runs_finished_total", phase="Failed")
    latencies = _value("aether_commit_latency_seconds_count")
    metrics.observe_decision(None, "Running", 0.002)  # a submit
    metrics.observe_decision("Running", "Running", None)  # nothing to append
    metrics.observe_decision("Running", "Failed", 0.003)
    metrics.observe_decision("Failed", "Failed", 0.001)  # a late report on a finished run
    assert _value("aether_decisions_total") - before["aether_decisions_total"] == 4
    assert _value("aether_commits_total") - before["aether_commits_total"] == 3
    assert _value("aether_commit_latency_seconds_count") - latencies == 3
    assert _value("aether_runs_started_total") - before["aether_runs_started_total"] == 1
    assert _value("aether_runs_finished_total", phase="Failed") - failed == 1


def test_task_observations_are_labelled_by_executor_type_and_phase() -> None:
    started = _value("aether_task_start_latency_seconds_count", executor_type="unit")
    metrics.observe_task_start("unit", 0.25)
    assert _value("aether_tasks_running", executor_type="unit") == 1
    metrics.observe_task_end("unit", 1.5, "Succeeded")
    metrics.observe_task_start("unit", None)
    metrics.observe_task_end("unit", 0.1, "")  # cancelled: no result
    assert _value("aether_tasks_running", executor_type="unit") == 0
    assert _value("aether_task_start_latency_seconds_count", executor_type="unit") - started == 1
    assert _value("aether_task_duration_seconds_bucket", executor_type="unit", le="5.0") >= 2
    assert _value("aether_task_results_total", executor_type="unit", phase="Succeeded") >= 1


def test_the_exposition_is_prometheus_text_naming_every_metric() -> None:
    metrics.watch_deadlines(lambda: 7)
    body, content_type = metrics.exposition()
    text = body.decode()
    assert content_type.startswith("text/plain; version=")
    for name in (
        "aether_runs_started_total",
        "aether_runs_finished_total",
        "aether_decisions_total",
        "aether_commits_total",
        "aether_commit_latency_seconds",
        "aether_task_start_latency_seconds",
        "aether_task_duration_seconds",
        "aether_task_results_total",
        "aether_tasks_running",
        "aether_queue_depth",
        "aether_tasks_in_flight",
        "aether_feed_lag_commits",
        "aether_workers_live",
        "aether_deadlines_pending",
    ):
        assert f"\n# TYPE {name.removesuffix('_total')}" in text, name
    assert "aether_deadlines_pending 7.0" in text
    assert "_created" not in text
