"""The Prometheus metrics of an engine or worker process, and their text exposition.

One registry per process (`REGISTRY`), holding only this project's metrics and the process collector's.
What the engine and workers do updates counters and histograms through the `observe_*` functions here,
each O(1) per call; what can only be read from NATS (queue depth, feed lag, live workers) is sampled when
scraped (`aether_es.observability.sampler`). Every name, label and meaning is listed in
docs/observability.md.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
    start_http_server,
)

from aether_es.model import phases as ph

log = logging.getLogger(__name__)

disable_created_metrics()  # a `_created` series per counter doubles the exposition for no use here
REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)

_FAST = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_WAIT = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
_RUN = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0)

RUNS_STARTED = Counter("aether_runs_started", "Workflow runs submitted to this engine.", registry=REGISTRY)
RUNS_FINISHED = Counter(
    "aether_runs_finished", "Workflow runs this engine brought to an end, by final phase.", ["phase"], registry=REGISTRY
)
DECISIONS = Counter("aether_decisions", "Decisions taken (a batch of one run's triggers).", registry=REGISTRY)
COMMITS = Counter(
    "aether_commits", "Commits appended to the history (one per decision with events).", registry=REGISTRY
)
COMMIT_LATENCY = Histogram(
    "aether_commit_latency_seconds", "Time to append one commit to the history.", buckets=_FAST, registry=REGISTRY
)
TASK_START_LATENCY = Histogram(
    "aether_task_start_latency_seconds",
    "From an assignment's dispatch (its publish to the work queue) to its executor starting, by executor type.",
    ["executor_type"],
    buckets=_WAIT,
    registry=REGISTRY,
)
TASK_DURATION = Histogram(
    "aether_task_duration_seconds",
    "From an executor starting to its result, by executor type.",
    ["executor_type"],
    buckets=_RUN,
    registry=REGISTRY,
)
TASK_RESULTS = Counter(
    "aether_task_results",
    "Task attempts finished by workers, by executor type and phase.",
    ["executor_type", "phase"],
    registry=REGISTRY,
)
TASKS_RUNNING = Gauge(
    "aether_tasks_running",
    "Executors running now in this process, by executor type.",
    ["executor_type"],
    registry=REGISTRY,
)
QUEUE_DEPTH = Gauge(
    "aether_queue_depth", "Assignments waiting for a worker, by executor type.", ["executor_type"], registry=REGISTRY
)
TASKS_IN_FLIGHT = Gauge(
    "aether_tasks_in_flight",
    "Assignments held by workers and not yet acknowledged, by executor type.",
    ["executor_type"],
    registry=REGISTRY,
)
FEED_LAG = Gauge("aether_feed_lag_commits", "History commits not yet published to the event feed.", registry=REGISTRY)
WORKERS_LIVE = Gauge(
    "aether_workers_live",
    "Workers registered and heartbeating, by executor type they serve.",
    ["executor_type"],
    registry=REGISTRY,
)
DEADLINES_PENDING = Gauge(
    "aether_deadlines_pending",
    "Deadlines (task and run timeouts, retry backoffs) the timeout watcher holds.",
    registry=REGISTRY,
)


def observe_decision(phase_before: str | None, phase_after: str | None, commit_seconds: float | None) -> None:
    """A decision taken about a run: `phase_before` None for a run it created, `commit_seconds` None when it
    had no events to append."""
    DECISIONS.inc()
    if commit_seconds is not None:
        COMMITS.inc()
        COMMIT_LATENCY.observe(commit_seconds)
    if phase_after is None:
        return
    if phase_before is None:
        RUNS_STARTED.inc()
    if ph.is_terminal(phase_after) and (phase_before is None or not ph.is_terminal(phase_before)):
        RUNS_FINISHED.labels(phase_after).inc()


class _TaskMetrics:
    """One executor type's series, bound once: a label lookup costs more than the update itself."""

    __slots__ = ("duration", "results", "running", "waited")

    def __init__(self, executor_type: str) -> None:
        self.running = TASKS_RUNNING.labels(executor_type)
        self.waited = TASK_START_LATENCY.labels(executor_type)
        self.duration = TASK_DURATION.labels(executor_type)
        self.results = {phase: TASK_RESULTS.labels(executor_type, phase) for phase in ph.TERMINAL | {ph.SUSPENDED}}


_tasks: dict[str, _TaskMetrics] = {}


def _task_metrics(executor_type: str) -> _TaskMetrics:
    bound = _tasks.get(executor_type)
    if bound is None:
        bound = _tasks[executor_type] = _TaskMetrics(executor_type)
    return bound


def observe_task_start(executor_type: str, waited: float | None) -> None:
    """An executor starts, `waited` seconds after its assignment was dispatched (None when not known)."""
    bound = _task_metrics(executor_type)
    bound.running.inc()
    if waited is not None:
        bound.waited.observe(max(0.0, waited))


def observe_task_end(executor_type: str, ran: float, phase: str) -> None:
    """An executor returned after `ran` seconds, its attempt ending in `phase` ("" when cancelled)."""
    bound = _task_metrics(executor_type)
    bound.running.dec()
    bound.duration.observe(ran)
    counter = bound.results.get(phase)
    if counter is not None:
        counter.inc()


def watch_deadlines(pending: Callable[[], int]) -> None:
    """Report `pending()` as the deadlines pending, read at each scrape (the watcher of this process)."""
    DEADLINES_PENDING.set_function(lambda: float(pending()))


def exposition() -> tuple[bytes, str]:
    """The Prometheus text exposition of this process's metrics and its content type, for a `/metrics`."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def serve_metrics(host: str, port: int) -> WSGIServer:
    """Serve `/metrics` on `host:port` from a daemon thread; `shutdown()` and `server_close()` stop it."""
    server, _ = start_http_server(port, addr=host, registry=REGISTRY)
    return server
