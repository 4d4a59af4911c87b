"""The run of a recorded cron fire is submitted again while its owner cannot take it (a dying engine, a
partition changing hands), and a document that cannot be submitted is not tried again."""

from __future__ import annotations

from typing import Any

import pytest

from aether_es.adapters.cron_croniter import ManualCronScheduler
from aether_es.errors import ApiError, ValidationError
from aether_es.runtime.crons import CronService


class _Engine:
    def __init__(self, failures: list[Exception]) -> None:
        self.failures = failures
        self.submitted: list[str] = []
        self.actor = "test"

    async def submit(self, document: Any, *, cron_id: str = "", run_id: str = "", **_: Any) -> str:
        if self.failures:
            raise self.failures.pop(0)
        self.submitted.append(run_id)
        return run_id


async def test_a_fired_run_its_owner_could_not_take_is_submitted_again() -> None:
    engine = _Engine([ApiError("unavailable", "aether: unavailable: no owner"), ApiError("unavailable", "again")])
    service = CronService(engine, ManualCronScheduler())  # type: ignore[arg-type]
    await service._submit_fired({}, "nightly", "nightly-1")
    assert engine.submitted == ["nightly-1"] and not engine.failures


async def test_a_fired_run_whose_document_is_refused_is_not_tried_again() -> None:
    engine = _Engine([ValidationError("bad document"), ApiError("unavailable", "never reached")])
    service = CronService(engine, ManualCronScheduler())  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        await service._submit_fired({}, "nightly", "nightly-1")
    assert engine.submitted == [] and len(engine.failures) == 1
