"""Error sinks that need no infrastructure: the Python log, and several sinks at once.

Like every error sink, these never raise and never wait on anything slow: a failing sink must not change
what the engine does.
"""

from __future__ import annotations

import logging

from aether_es.ports.error_sink import ErrorReport, ErrorSink, Severity

log = logging.getLogger(__name__)

LEVELS: dict[Severity, int] = {
    Severity.INFO: logging.INFO,
    Severity.WARNING: logging.WARNING,
    Severity.ERROR: logging.ERROR,
    Severity.CRITICAL: logging.CRITICAL,
}
"""The log level each severity is logged at."""


class LoggingErrorSink:
    """Logs each report at the level of its severity (see LEVELS), with the run and task run as `extra`."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.logger = logger if logger is not None else logging.getLogger("aether_es.errors")

    async def on_error(self, report: ErrorReport) -> None:
        try:
            self.logger.log(
                LEVELS.get(report.severity, logging.ERROR),
                "%s: %s (workflow run %s, task run %s)",
                report.operation,
                report.message,
                report.workflow_run_id or "-",
                report.task_run_id or "-",
                extra={
                    "aether_operation": report.operation,
                    "aether_severity": report.severity.name.lower(),
                    "aether_workflow_run_id": report.workflow_run_id,
                    "aether_task_run_id": report.task_run_id,
                },
            )
        except Exception:  # a broken logger must not reach the engine
            log.debug("logging error sink failed for %s", report.operation, exc_info=True)


class CompositeErrorSink:
    """Passes each report to every sink in order; a sink that raises is logged and skipped."""

    def __init__(self, *sinks: ErrorSink) -> None:
        self.sinks = sinks

    async def on_error(self, report: ErrorReport) -> None:
        for sink in self.sinks:
            try:
                await sink.on_error(report)
            except Exception:
                log.exception("error sink %s failed for %s", type(sink).__name__, report.operation)
