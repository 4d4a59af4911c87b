"""CronWorkflows on a real nats-server: policies, limits, updates, restarts, and exactly-once across engines."""

from __future__ import annotations

import asyncio
import itertools
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from every_second import EverySecond

from aether_es.adapters.cron_croniter import ManualCronScheduler
from aether_es.adapters.nats.server import EmbeddedNatsServer
from aether_es.errors import NotSupportedError, ValidationError
from aether_es.runtime.crons import aggregate_id
from aether_es.runtime.stack import Stack, StackOptions, open_stack

HERE = Path(__file__).resolve().parent


_NAMES = itertools.count()


def cron(policy: str = "Allow", suspend_task: bool = False, **spec: Any) -> dict[str, Any]:
    inputs = [{"name": "suspend", "value": True}] if suspend_task else [{"name": "fail-count", "value": 0}]
    return {
        "apiVersion": "aether/v1",
        "kind": "CronWorkflow",
        "metadata": {"name": f"nightly-{next(_NAMES)}"},  # a live cron's name is its own
        "spec": {
            "schedule": "*/5 * * * *",
            "concurrencyPolicy": policy,
            **spec,
            "workflowSpec": {
                "entrypoint": "main",
                "templates": [
                    {"task": {"name": "main", "inputs": {"parameters": inputs}, "executor": {"type": "echo"}}}
                ],
            },
        },
    }


T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest_asyncio.fixture
async def stack(nats_server: EmbeddedNatsServer, tmp_path: Path) -> AsyncIterator[Stack]:
    opened = await open_stack(
        StackOptions(nats_url=nats_server.url, state_dir=tmp_path, cron_scheduler=ManualCronScheduler())
    )
    try:
        yield opened
    finally:
        await opened.close()


async def _settle(stack: Stack, cron_id: str) -> dict[str, Any]:
    view = await stack.engine.cron().get(cron_id)
    for run in view["runs"]:
        await stack.engine.wait(run["runID"], timeout=0.5)
    return await stack.engine.cron().get(cron_id)


async def test_allow_fires_one_run_per_scheduled_time_and_never_twice(stack: Stack) -> None:
    crons = stack.engine.cron()
    cron_id = await crons.submit(cron())
    await crons.fire(cron_id, T0)
    await crons.fire(cron_id, T0)  # the same scheduled time again: already decided
    await crons.fire(cron_id, T0 + timedelta(minutes=5))
    view = await _settle(stack, cron_id)
    assert [run["status"] for run in view["runs"]] == ["Succeeded", "Succeeded"]
    assert all(run["cronWorkflowID"] == cron_id for run in view["runs"])
    assert view["status"]["lastScheduleTime"] == "2026-01-01T00:05:00.000Z"  # the scheduled time, not now


async def test_forbid_skips_and_replace_cancels(stack: Stack) -> None:
    crons = stack.engine.cron()
    forbid = await crons.submit(cron("Forbid", suspend_task=True))
    await crons.fire(forbid, T0)
    await crons.fire(forbid, T0 + timedelta(minutes=5))
    view = await crons.get(forbid)
    assert len(view["runs"]) == 1 and view["status"]["skipped"] == 1

    replace = await crons.submit(cron("Replace", suspend_task=True))
    await crons.fire(replace, T0)
    await asyncio.sleep(0.3)
    await crons.fire(replace, T0 + timedelta(minutes=5))
    view = await crons.get(replace)
    assert view["runs"][0]["status"] == "Cancelled"
    assert len(view["runs"]) == 2


async def test_window_deadline_and_suspend_through_update(stack: Stack) -> None:
    crons = stack.engine.cron()
    windowed = await crons.submit(cron(startAt="2026-01-01T01:00:00Z", endAt="2026-01-01T02:00:00Z"))
    for minutes in (0, 60, 180):
        await crons.fire(windowed, T0 + timedelta(minutes=minutes))
    assert len((await crons.get(windowed))["runs"]) == 1

    late = await crons.submit(cron(startingDeadlineSeconds=30))
    await crons.fire(late, datetime.now(UTC) - timedelta(minutes=5))
    assert (await crons.get(late))["runs"] == []

    paused = await crons.submit(cron())
    await crons.update(paused, cron(suspend=True))
    await crons.fire(paused, T0)
    assert (await crons.get(paused))["runs"] == []
    await crons.update(paused, cron())
    await crons.fire(paused, T0 + timedelta(minutes=5))
    assert len((await crons.get(paused))["runs"]) == 1


async def test_workflow_spec_is_immutable_and_delete_keeps_runs(stack: Stack) -> None:
    crons = stack.engine.cron()
    cron_id = await crons.submit(cron())
    changed = cron()
    changed["spec"]["workflowSpec"]["templates"][0]["task"]["inputs"]["parameters"] = []
    with pytest.raises(ValidationError, match="WorkflowSpec is immutable; delete and re-submit to change it"):
        await crons.update(cron_id, changed)
    await crons.fire(cron_id, T0)
    run_id = (await crons.get(cron_id))["status"]["lastSubmittedRunID"]
    await crons.delete(cron_id)
    assert cron_id not in {view["cronWorkflowID"] for view in await crons.list_all()}
    assert (await stack.engine.wait(run_id, timeout=5))["status"] == "Succeeded"


async def test_history_limits_forget_old_finished_runs(stack: Stack) -> None:
    crons = stack.engine.cron()
    cron_id = await crons.submit(cron(successfulJobsHistoryLimit=2))
    for index in range(4):
        await crons.fire(cron_id, T0 + timedelta(minutes=5 * index))
        await _settle(stack, cron_id)
    view = await crons.get(cron_id)
    assert len(view["runs"]) == 3  # two kept finished runs plus the newest, still counted when it fired


async def test_invalid_cron_and_no_scheduler(nats_server: EmbeddedNatsServer, tmp_path: Path, stack: Stack) -> None:
    with pytest.raises(ValidationError, match="must be a 5-field cron expression"):
        await stack.engine.cron().submit(cron(schedule="every minute"))
    bare = await open_stack(
        StackOptions(nats_url=nats_server.url, state_dir=tmp_path, prefix="bare", cron_scheduler=None)
    )
    try:
        with pytest.raises(NotSupportedError, match="CronScheduler not configured"):
            bare.engine.cron()
    finally:
        await bare.close()


async def test_restart_restores_and_catches_up_once(nats_server: EmbeddedNatsServer, tmp_path: Path) -> None:
    """Downtime spanning several scheduled times fires only the latest missed one, once, on restart."""
    options = StackOptions(
        nats_url=nats_server.url, state_dir=tmp_path, prefix="restore", cron_scheduler=ManualCronScheduler()
    )
    first = await open_stack(options)
    cron_id = await first.engine.cron().submit(cron(schedule="* * * * *"))
    await first.engine.cron().fire(cron_id, datetime.now(UTC) - timedelta(minutes=10))
    await first.close()
    options.cron_scheduler = ManualCronScheduler()
    second = await open_stack(options)
    try:
        view = await second.engine.cron().get(cron_id)
        assert len(view["runs"]) == 2
        latest = datetime.now(UTC).replace(second=0, microsecond=0)
        assert view["status"]["lastScheduleTime"] in {
            (latest - timedelta(minutes=m)).strftime("%Y-%m-%dT%H:%M:%S.000Z") for m in (0, 1)
        }
    finally:
        await second.close()


async def test_two_engine_processes_fire_each_second_exactly_once(
    nats_server: EmbeddedNatsServer, tmp_path: Path
) -> None:
    """This process and a second OS process both run an engine ticking every second for ten seconds."""
    scheduler = EverySecond()
    options = StackOptions(nats_url=nats_server.url, state_dir=tmp_path, prefix="twins", cron_scheduler=scheduler)
    first = await open_stack(options)
    cron_id = await first.engine.cron().submit(cron())
    replica = await asyncio.create_subprocess_exec(
        sys.executable,
        str(HERE / "cron_replica.py"),
        nats_server.url,
        "twins",
        "12",
        cwd=HERE,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert replica.stdout is not None
        assert (await asyncio.wait_for(replica.stdout.readline(), 30)).strip() == b"ready"
        began = datetime.now(UTC)
        await asyncio.sleep(10.2)
        scheduler.remove(cron_id)
        await first.engine.cron().delete(cron_id)  # the replica stops within its refresh; record until then
        await asyncio.wait_for(replica.wait(), 30)
        history = await first.store.load(aggregate_id(cron_id))
        fired = [env.event for stored in history for env in stored.commit.envelopes if env.event.type == "CronFired"]
        scheduled = [datetime.fromisoformat(e.scheduled_at.replace("Z", "+00:00")) for e in fired]  # type: ignore[attr-defined]
        assert len(scheduled) == len(set(scheduled))  # never twice
        in_window = sorted(t for t in scheduled if began < t <= began + timedelta(seconds=10))
        assert len(in_window) >= 9  # one per second, none missed
        assert all(b - a == timedelta(seconds=1) for a, b in itertools.pairwise(in_window))
        for event in fired:  # either engine may have carried a run: read its history, not one engine's memory
            run_id = event.run_id  # type: ignore[attr-defined]
            for _ in range(50):
                if (await first.engine.rebuild(run_id)).phase == "Succeeded":
                    break
                await asyncio.sleep(0.1)
            assert (await first.engine.rebuild(run_id)).phase == "Succeeded"
    finally:
        if replica.returncode is None:
            replica.kill()
            await replica.wait()
        await first.close()
