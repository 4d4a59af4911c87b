"""A task log cuts chunks into lines per stream, scrubs secrets in every form and stays bounded."""

from __future__ import annotations

import base64
from typing import Any

from nats.js.api import DiscardPolicy

from aether_es.adapters.nats.layout import Layout
from aether_es.ports.wire import TaskAssignment, WireParameter
from aether_es.worker import task_log
from aether_es.worker.task_log import TaskLog


def _log(secret: str = "") -> tuple[TaskLog, list[dict[str, Any]]]:
    sent: list[dict[str, Any]] = []

    async def emit(record: dict[str, Any]) -> None:
        sent.append(record)

    inputs = [WireParameter(name="token", value=secret, secret=True)] if secret else []
    assignment = TaskAssignment(
        task_run_id="r-2", workflow_run_id="r", task_name="build", executor_type="shell", attempt=2, inputs=inputs
    )
    return TaskLog(assignment, emit), sent


async def test_lines_are_sent_when_they_end_each_stream_on_its_own() -> None:
    log, sent = _log()
    await log.write("stdout", b"one\ntw")
    await log.write("stderr", b"oops\r\n")
    await log.write("stdout", b"o\nthree")
    assert [(r["stream"], r["line"]) for r in sent] == [("stdout", "one"), ("stderr", "oops"), ("stdout", "two")]
    await log.close()
    assert (sent[-1]["stream"], sent[-1]["line"]) == ("stdout", "three")
    assert {k: sent[0][k] for k in ("runID", "taskRunID", "taskName", "attempt")} == {
        "runID": "r", "taskRunID": "r-2", "taskName": "build", "attempt": 2
    }  # fmt: skip
    assert sent[0]["time"].endswith("Z")


async def test_secrets_are_redacted_as_written_and_encoded_even_across_chunks() -> None:
    secret = "hunter2-very-secret"
    log, sent = _log(secret)
    encoded = base64.b64encode(secret.encode())
    await log.write("stderr", b"token=hunter2-ve")
    await log.write("stderr", b"ry-secret and " + encoded + b"\n")
    assert sent[0]["line"] == "token=[redacted] and [redacted]"


async def test_long_lines_are_cut_and_a_noisy_attempt_stops_after_its_budget(monkeypatch: Any) -> None:
    log, sent = _log()
    await log.write("stdout", b"x" * (task_log.MAX_LINE + 10) + b"\n")
    assert len(sent[0]["line"]) == task_log.MAX_LINE and sent[0]["line"].endswith("…")
    monkeypatch.setattr(task_log, "MAX_BYTES", 100)
    log, sent = _log()
    await log.write("stdout", b"0123456789\n" * 50)
    await log.write("stderr", b"later\n")
    await log.close()
    assert len(sent) == 10
    assert sent[-1]["line"] == "[aether: the log of this attempt was cut after 100 bytes]"


def test_the_logs_stream_is_bounded_by_age_and_size_with_a_subject_per_task_run() -> None:
    layout = Layout(prefix="t1")
    config = layout.logs_stream_config()
    assert (config.name, config.subjects, config.discard) == ("T1_LOGS", ["t1.logs.>"], DiscardPolicy.OLD)
    assert (config.max_age, config.max_bytes) == (7 * 24 * 3600.0, 1024**3)
    assert (layout.log_subject("r", "r-2"), layout.run_log_subjects("r")) == ("t1.logs.r.r-2", "t1.logs.r.>")
