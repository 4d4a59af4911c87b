"""Reports that can never be decided as sent: not redelivered for ever, but recorded on the run."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from aether_es.adapters.nats.broker import refused_reports
from aether_es.adapters.nats.server import EmbeddedNatsServer
from aether_es.cluster.partitions import partition_of
from aether_es.events.envelope import Commit
from aether_es.runtime.stack import StackOptions, open_stack

SINGLE: dict[str, Any] = {
    "apiVersion": "aether/v1",
    "kind": "Workflow",
    "metadata": {"name": "single"},
    "spec": {"entrypoint": "say", "templates": [{"task": {"name": "say", "executor": {"type": "echo"}}}]},
}


async def test_a_report_that_does_not_fit_ends_its_attempt_as_an_error(nats_server: EmbeddedNatsServer) -> None:
    stack = await open_stack(StackOptions(nats_url=nats_server.url, workers=0))
    try:
        run_id = await stack.engine.submit(SINGLE)
        (task,) = (await stack.engine.get(run_id))["tasks"]
        poison = {
            "kind": "completed",
            "runID": run_id,
            "taskRunID": task["runID"],
            "attempt": 1,
            "workerID": "w1",
            "result": {"code": 0, "artifacts": [{"name": 5}]},
        }
        await stack.connection.js.publish(stack.layout.report_subject(run_id), orjson.dumps(poison))
        view = await stack.engine.wait(run_id, timeout=10)
        assert view["status"] == "Error"
        (task,) = view["tasks"]
        assert task["status"] == "Error"
        assert task["message"] == "report refused: result.artifacts.0.name: Input should be a valid string"
        await asyncio.sleep(stack.layout.report_ack_wait + 1)  # acked once decided: never delivered again
        consumer = stack.layout.partition_consumer(partition_of(run_id, stack.layout.partitions))
        info = await stack.connection.js.consumer_info(stack.layout.reports_stream, consumer)
        assert info.num_ack_pending == 0 and info.num_redelivered == 0
    finally:
        await stack.close()


@pytest.mark.parametrize(
    "body",
    [b"not json", b'{"kind": "completed"}', b'[{"kind": "completed", "runID": "r", "taskRunID": 7, "attempt": 1}]'],
)
def test_reports_that_name_no_attempt_are_not_salvaged(body: bytes) -> None:
    assert refused_reports(body) == []


def test_the_reports_that_fit_beside_one_that_does_not_are_kept() -> None:
    good = {"kind": "started", "runID": "r", "taskRunID": "r-1", "attempt": 1}
    bad = {"kind": "completed", "runID": "r", "taskRunID": "r-2", "attempt": 2, "result": {"code": "0"}}
    kept, refused = refused_reports(orjson.dumps([good, bad]))
    assert kept.kind == "started" and kept.result is None
    assert refused.task_run_id == "r-2" and refused.attempt == 2 and refused.result is not None
    assert (
        refused.result.code == 3
        and refused.result.message == "report refused: result.code: Input should be a valid integer"
    )


async def test_a_report_whose_commit_the_store_refused_is_decided_again(
    nats_server: EmbeddedNatsServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A refusal that is not the report's fault (the server away, a timeout): its message stays held and is
    signalled in progress, so only the engine itself can bring it back, after a short wait."""
    stack = await open_stack(StackOptions(nats_url=nats_server.url, workers=1))
    try:
        append = stack.engine.repo.append
        refused = 0

        async def refusing_once(commit: Commit, expected: int) -> int:
            nonlocal refused
            if not refused and any(envelope.type == "TaskFinished" for envelope in commit.envelopes):
                refused += 1
                raise TimeoutError("injected: the server did not answer")
            return await append(commit, expected)

        monkeypatch.setattr(stack.engine.repo, "append", refusing_once)
        run_id = await stack.engine.submit(SINGLE)
        view = await stack.engine.wait(run_id, timeout=10)
        assert refused == 1
        assert view["status"] == "Succeeded"
        assert any("reports are decided again in 0.1s" in r.getMessage() for r in caplog.records)
    finally:
        await stack.close()
