"""Reports made in one event-loop turn are sent together; each caller still learns its own outcome."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from aether_es.ports.wire import Report
from aether_es.worker.coalescing import ReportCoalescer


def _report(n: int) -> Report:
    return Report.model_validate({"kind": "completed", "runID": "r", "taskRunID": f"t{n}", "attempt": 1})


class Sink:
    def __init__(self, fail: bool = False) -> None:
        self.calls: list[list[str]] = []
        self.fail = fail

    async def send(self, reports: Sequence[Report]) -> None:
        self.calls.append([r.task_run_id for r in reports])
        await asyncio.sleep(0.01)
        if self.fail:
            raise ConnectionError("nats away")


async def test_one_turns_reports_go_in_one_call_and_later_ones_in_the_next() -> None:
    sink = Sink()
    coalescer = ReportCoalescer(sink.send)
    await asyncio.gather(*(coalescer.report(_report(n)) for n in range(5)))
    await coalescer.report(_report(9))
    assert sink.calls == [["t0", "t1", "t2", "t3", "t4"], ["t9"]]


async def test_every_caller_sees_the_failure_of_its_batch() -> None:
    coalescer = ReportCoalescer(Sink(fail=True).send)
    results = await asyncio.gather(*(coalescer.report(_report(n)) for n in range(3)), return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)


async def test_a_cancelled_caller_does_not_cancel_the_others_send() -> None:
    sink = Sink()
    coalescer = ReportCoalescer(sink.send)
    first = asyncio.create_task(coalescer.report(_report(1)))
    second = asyncio.create_task(coalescer.report(_report(2)))
    await asyncio.sleep(0.002)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    await second
    assert sink.calls == [["t1", "t2"]]
