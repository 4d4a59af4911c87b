"""OpenTelemetry traces (the optional `tracing` extra), off unless `AETHER_TRACING` says where spans go.

A run is one trace: its trace id and its root span's id are derived from the run id, so every process
that touches the run (engines before and after a restart, any worker) names the same trace without asking
anyone. Each assignment carries that context as a W3C `traceparent`; the worker running an attempt records
a span `task <name>` under it, and the engine that ends the run records the run's span `run <name>`, from
its creation to its end. Nothing here runs while tracing is off: the engine and workers check `enabled()`.

`AETHER_TRACING=otlp` exports over OTLP/HTTP (configured by the standard `OTEL_EXPORTER_OTLP_*`
variables; needs `opentelemetry-exporter-otlp-proto-http`, in the extra), `console` prints spans on
stdout; `OTEL_SERVICE_NAME` names the process (default `aether-es`). See docs/observability.md.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aether_es.model import phases as ph
from aether_es.model.clock import parse_time
from aether_es.ports.wire import TaskAssignment, TaskResult

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span, Tracer

    from aether_es.projections.run_state import RunState

log = logging.getLogger(__name__)

ENV = "AETHER_TRACING"
EXPORTERS = ("otlp", "console")

_tracer: Tracer | None = None
_forced: ContextVar[tuple[int, int] | None] = ContextVar("forced_trace_ids", default=None)


def enabled() -> bool:
    return _tracer is not None


def run_ids(run_id: str) -> tuple[int, int]:
    """The trace id and root span id of a run: its digest, so every process derives the same ones."""
    digest = hashlib.sha256(f"aether-run:{run_id}".encode()).digest()
    return int.from_bytes(digest[:16]) or 1, int.from_bytes(digest[16:24]) or 1


def traceparent(run_id: str) -> str:
    """The W3C `traceparent` of the run's root span (sampled)."""
    trace_id, span_id = run_ids(run_id)
    return f"00-{trace_id:032x}-{span_id:016x}-01"


def id_generator() -> Any:
    """The SDK's random ids, except where a run's own ids are asked for (`_forced`): give it to the
    `TracerProvider` that `use` gets."""
    from opentelemetry.sdk.trace.id_generator import RandomIdGenerator

    class RunIds(RandomIdGenerator):
        def generate_trace_id(self) -> int:
            forced = _forced.get()
            return forced[0] if forced is not None else super().generate_trace_id()

        def generate_span_id(self) -> int:
            forced = _forced.get()
            return forced[1] if forced is not None else super().generate_span_id()

    return RunIds()


def use(provider: TracerProvider | None) -> None:
    """Record spans with `provider` (built with `id_generator()`) from now on; None turns tracing off."""
    global _tracer
    _tracer = provider.get_tracer("aether_es") if provider is not None else None


def configure_from_env() -> bool:
    """Turn tracing on as `AETHER_TRACING` asks (once per process); whether it is on. A value it cannot
    honour (unknown, or the extra not installed) is a WARNING, and tracing stays off."""
    if _tracer is not None:
        return True
    wanted = os.environ.get(ENV, "").strip().lower()
    if not wanted or wanted in ("0", "off", "false", "none"):
        return False
    if wanted not in EXPORTERS:
        log.warning("%s=%s: expected one of %s; tracing stays off", ENV, wanted, ", ".join(EXPORTERS))
        return False
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

        exporter: SpanExporter
        if wanted == "otlp":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter()
        else:
            exporter = ConsoleSpanExporter()
    except ImportError as exc:
        log.warning("%s=%s needs the tracing extra (pip install 'aether-es[tracing]'): %s", ENV, wanted, exc)
        return False
    service = os.environ.get("OTEL_SERVICE_NAME", "aether-es")
    provider = TracerProvider(resource=Resource.create({"service.name": service}), id_generator=id_generator())
    provider.add_span_processor(BatchSpanProcessor(exporter))
    use(provider)
    return True


def traced(assignment: TaskAssignment) -> TaskAssignment:
    """The assignment carrying its run's trace context (as it is when tracing is off)."""
    if _tracer is None or assignment.traceparent:
        return assignment
    return assignment.model_copy(update={"traceparent": traceparent(assignment.workflow_run_id)})


def start_task_span(assignment: TaskAssignment) -> Span | None:
    """The span of one attempt, under the trace its assignment carries; None while tracing is off."""
    if _tracer is None:
        return None
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    parent = TraceContextTextMapPropagator().extract(
        {"traceparent": assignment.traceparent or traceparent(assignment.workflow_run_id)}
    )
    return _tracer.start_span(
        f"task {assignment.task_name}",
        context=parent,
        attributes={
            "aether.run_id": assignment.workflow_run_id,
            "aether.task_run_id": assignment.task_run_id,
            "aether.attempt": assignment.attempt,
            "aether.executor_type": assignment.executor_type,
        },
    )


def end_task_span(span: Span, result: TaskResult | None) -> None:
    """End an attempt's span with the phase its result means (`Cancelled` without one)."""
    phase = ph.CANCELLED if result is None else ph.code_to_phase(result.code)
    span.set_attribute("aether.phase", phase)
    if phase not in (ph.SUCCEEDED, ph.SUSPENDED):
        _error(span, result.message if result is not None else "cancelled")
    span.end()


def run_finished(state: RunState) -> None:
    """Record the run's span, from its creation to now that it has ended (an engine's `finished` listener)."""
    if _tracer is None:
        return
    with _ids(run_ids(state.run_id)):
        span = _tracer.start_span(
            f"run {state.workflow.metadata.name or state.run_id}",
            context=_root(),
            start_time=_nanos(state.created_at),
            attributes={"aether.run_id": state.run_id, "aether.phase": state.phase},
        )
    if state.phase != ph.SUCCEEDED:
        _error(span, state.message or state.phase)
    span.end(end_time=_nanos(state.updated_at) if state.updated_at else None)


@contextlib.contextmanager
def _ids(ids: tuple[int, int]) -> Iterator[None]:
    token = _forced.set(ids)
    try:
        yield
    finally:
        _forced.reset(token)


def _root() -> Any:
    from opentelemetry.context import Context

    return Context()  # no parent: the run's span is its trace's root


def _error(span: Span, message: str) -> None:
    from opentelemetry.trace import Status, StatusCode

    span.set_status(Status(StatusCode.ERROR, message))


def _nanos(rfc3339: str) -> int:
    moment: datetime = parse_time(rfc3339)
    return int(moment.timestamp() * 1_000_000_000)
