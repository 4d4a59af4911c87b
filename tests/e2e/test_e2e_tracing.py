"""Traces (the `tracing` extra): a run is one trace, its root span the run's, each task attempt's span a child
of it, recorded by the worker from the context its assignment carries."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from aether_es.adapters.nats.server import EmbeddedNatsServer
from aether_es.observability import tracing
from aether_es.ports.wire import TaskAssignment
from aether_es.runtime.stack import StackOptions, open_stack

pytest.importorskip("opentelemetry.sdk", reason="the tracing extra is not installed")

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(id_generator=tracing.id_generator())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.use(provider)
    try:
        yield exporter
    finally:
        tracing.use(None)


def test_tracing_is_off_unless_asked_and_then_assignments_carry_the_runs_context() -> None:
    assignment = TaskAssignment(task_run_id="r-2", workflow_run_id="r", task_name="t", executor_type="echo", attempt=1)
    assert not tracing.enabled() and tracing.traced(assignment) is assignment
    assert tracing.start_task_span(assignment) is None
    trace_id, span_id = tracing.run_ids("r")
    assert tracing.traceparent("r") == f"00-{trace_id:032x}-{span_id:016x}-01"
    assert tracing.run_ids("r") == (trace_id, span_id) != tracing.run_ids("r2")


async def test_a_run_is_one_trace_with_a_span_per_task_attempt(
    nats_server: EmbeddedNatsServer, tmp_path: Path, spans: InMemorySpanExporter
) -> None:
    stack = await open_stack(StackOptions(nats_url=nats_server.url, state_dir=tmp_path, workers=2))
    try:
        run_id = await stack.engine.submit((ROOT / "examples" / "hello-pipeline.json").read_text())
        view = await stack.engine.wait(run_id, timeout=30)
    finally:
        await stack.close()
    trace_id, root_id = tracing.run_ids(run_id)
    finished: tuple[ReadableSpan, ...] = spans.get_finished_spans()
    runs = [s for s in finished if s.name.startswith("run ")]
    tasks = [s for s in finished if s.name.startswith("task ")]
    assert [(s.name, s.context.trace_id, s.context.span_id, s.parent) for s in runs] == [
        ("run hello-pipeline", trace_id, root_id, None)
    ]
    assert runs[0].attributes == {"aether.run_id": run_id, "aether.phase": "Succeeded"}
    assert runs[0].start_time is not None and runs[0].end_time is not None
    assert runs[0].start_time <= min(s.start_time or 0 for s in tasks)
    attempts = {t["runID"] for t in view["tasks"] if t["templateType"] == "task"}
    assert {s.attributes["aether.task_run_id"] for s in tasks if s.attributes} == attempts
    for span in tasks:
        assert span.context.trace_id == trace_id and span.parent is not None and span.parent.span_id == root_id
        assert span.attributes is not None and span.attributes["aether.phase"] == "Succeeded"
