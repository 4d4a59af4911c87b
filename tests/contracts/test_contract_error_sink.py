"""Every error sink accepts reports of every severity, never raises and never makes the caller wait,
including a NATS sink whose server is gone."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
import pytest_asyncio
from nats.js import JetStreamContext

from aether_es.adapters.error_sinks import LEVELS, CompositeErrorSink, LoggingErrorSink
from aether_es.adapters.nats.error_sink import NatsErrorSink
from aether_es.adapters.nats.layout import Layout, ensure
from aether_es.adapters.nats.server import EmbeddedNatsServer
from aether_es.adapters.recording import RecordingErrorSink
from aether_es.ports.error_sink import ErrorReport, ErrorSink, Severity

FAST = 0.05  # seconds one on_error may take at most: "immediately", with room for a loaded CI machine

REPORTS = [
    ErrorReport(f"contract.{severity.name.lower()}", f"something {severity.name}", severity, "wf-1", "wf-1-t")
    for severity in Severity
] + [ErrorReport("tryMarkWorkflowError", "engine internal error: x" * 10_000, Severity.CRITICAL)]


class FailingSink:
    def __init__(self) -> None:
        self.calls = 0

    async def on_error(self, report: ErrorReport) -> None:
        self.calls += 1
        raise RuntimeError("sink down")


class BrokenLogger(logging.Logger):
    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("logger down")


async def _nats_sink(js: JetStreamContext) -> NatsErrorSink:
    layout = Layout(prefix="sinkc")
    await ensure(js, layout)
    sink = NatsErrorSink(js, layout, publish_timeout=0.5, stop_timeout=0.5)
    sink.start()
    return sink


@pytest.fixture(params=["logging", "logging-broken", "composite", "recording", "nats"])
def sink_kind(request: pytest.FixtureRequest) -> tuple[str, JetStreamContext | None]:
    """The sink to build, with a JetStream context (and so a server) only for the NATS sink."""
    return request.param, request.getfixturevalue("js") if request.param == "nats" else None


@pytest_asyncio.fixture
async def sink(sink_kind: tuple[str, JetStreamContext | None]) -> AsyncIterator[ErrorSink]:
    kind, js = sink_kind
    if js is not None:
        nats_sink = await _nats_sink(js)
        yield nats_sink
        await nats_sink.stop()
        return
    sinks: dict[str, ErrorSink] = {
        "logging": LoggingErrorSink(logging.getLogger("contract.errors")),
        "logging-broken": LoggingErrorSink(BrokenLogger("broken")),
        "composite": CompositeErrorSink(RecordingErrorSink(), FailingSink(), LoggingErrorSink()),
        "recording": RecordingErrorSink(),
    }
    yield sinks[kind]


async def _timed(sink: ErrorSink, report: ErrorReport) -> float:
    start = time.perf_counter()
    await sink.on_error(report)
    return time.perf_counter() - start


async def test_accepts_every_severity_without_raising_or_blocking(sink: ErrorSink) -> None:
    for report in REPORTS:
        assert await _timed(sink, report) < FAST


async def test_many_reports_do_not_block(sink: ErrorSink) -> None:
    start = time.perf_counter()
    for i in range(2000):
        await sink.on_error(ErrorReport("contract.burst", f"report {i}", Severity(i % 4)))
    assert time.perf_counter() - start < 1.0


# --- what each sink does with a report --------------------------------------------------------------------


async def test_logging_sink_maps_severities_to_levels(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="contract.levels")
    sink = LoggingErrorSink(logging.getLogger("contract.levels"))
    for report in REPORTS[:4]:
        await sink.on_error(report)
    assert [r.levelno for r in caplog.records] == [LEVELS[s] for s in Severity]
    assert [LEVELS[s] for s in Severity] == [logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL]
    assert "contract.warning: something WARNING (workflow run wf-1, task run wf-1-t)" in caplog.text


async def test_composite_sink_reaches_every_sink_despite_failures() -> None:
    first, failing, last = RecordingErrorSink(), FailingSink(), RecordingErrorSink()
    sink = CompositeErrorSink(first, failing, last)
    for report in REPORTS:
        await sink.on_error(report)
    assert first.reports == last.reports == REPORTS
    assert failing.calls == len(REPORTS)


async def _stored(js: JetStreamContext, layout: Layout, count: int) -> list[tuple[str, dict[str, Any]]]:
    sub = await js.pull_subscribe(layout.error_subjects, stream=layout.errors_stream)
    out: list[tuple[str, dict[str, Any]]] = []
    deadline = time.monotonic() + 10
    while len(out) < count and time.monotonic() < deadline:
        try:
            msgs = await sub.fetch(count - len(out), timeout=1)
        except TimeoutError:
            continue
        out += [(m.subject, orjson.loads(m.data)) for m in msgs]
    await sub.unsubscribe()
    return out


async def test_nats_sink_publishes_json_reports_by_severity(js: JetStreamContext) -> None:
    sink = await _nats_sink(js)
    for report in REPORTS:
        await sink.on_error(report)
    await sink.stop()
    assert sink.published == len(REPORTS) and sink.pending == 0
    stored = await _stored(js, sink.layout, len(REPORTS))
    assert [subject for subject, _ in stored] == [f"sinkc.errors.{r.severity.name.lower()}" for r in REPORTS]
    first = stored[0][1]
    assert first["reportedAt"].endswith("Z")
    del first["reportedAt"]
    assert first == {
        "operation": "contract.info",
        "message": "something INFO",
        "severity": "info",
        "severityLevel": 0,
        "workflowRunID": "wf-1",
        "taskRunID": "wf-1-t",
    }
    assert len(stored[-1][1]["message"]) < 20_000  # huge messages are cut


async def test_nats_sink_drops_the_oldest_when_full(js: JetStreamContext) -> None:
    layout = Layout(prefix="sinkfull")
    await ensure(js, layout)
    sink = NatsErrorSink(js, layout, capacity=5)
    for i in range(12):
        await sink.on_error(ErrorReport("contract.full", str(i), Severity.WARNING))
    assert (sink.dropped, sink.pending) == (7, 5)
    sink.start()
    await sink.stop(timeout=5)
    assert [payload["message"] for _, payload in await _stored(js, layout, 5)] == ["7", "8", "9", "10", "11"]


async def test_nats_sink_with_the_server_killed_returns_immediately(
    js: JetStreamContext, nats_server: EmbeddedNatsServer, reconnected: asyncio.Event
) -> None:
    sink = await _nats_sink(js)
    reconnected.clear()
    nats_server.kill()
    durations = [await _timed(sink, report) for report in REPORTS * 50]
    assert max(durations) < FAST
    await asyncio.sleep(0.3)  # the background task is now stuck publishing to nobody
    assert max([await _timed(sink, report) for report in REPORTS]) < FAST
    start = time.perf_counter()
    await sink.stop()
    assert time.perf_counter() - start < 2.0
    assert sink.pending > 0  # unpublished, not lost silently: counted and logged
    nats_server.start()  # so the connection closes cleanly at teardown
    await asyncio.wait_for(reconnected.wait(), 10)


async def test_nats_sink_publishes_what_it_queued_during_an_outage(
    js: JetStreamContext, nats_server: EmbeddedNatsServer, reconnected: asyncio.Event
) -> None:
    sink = await _nats_sink(js)
    nats_server.stop()
    for report in REPORTS:
        await sink.on_error(report)
    reconnected.clear()
    nats_server.start()
    await asyncio.wait_for(reconnected.wait(), 10)
    deadline = time.monotonic() + 10
    while sink.pending and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    await sink.stop()
    assert sink.pending == 0
    stored = await _stored(js, sink.layout, len(REPORTS))
    assert [payload["operation"] for _, payload in stored] == [r.operation for r in REPORTS]
