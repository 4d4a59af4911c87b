"""Several engines on one system: each decides the runs of its partitions only, commands for the others'
runs reach their owner, and the partitions of an engine that dies (kill -9) or stops move to the survivors.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from pathlib import Path
from typing import Any

import pytest
from support.attempts import count_attempts
from support.cli import SUSPENDING
from support.processes import Child

from aether_es.adapters.nats.membership import list_engines
from aether_es.adapters.nats.server import EmbeddedNatsServer
from aether_es.cluster.partitions import partition_of
from aether_es.errors import InvalidStateError, NotFoundError
from aether_es.model import phases as ph
from aether_es.ports.wire import Report
from aether_es.runtime.stack import Stack, StackOptions, open_stack

PARTITIONS = 4
TTL = 3.0


def paced_loop(items: int) -> dict[str, Any]:
    """A loop of `items` short sleeps, one at a time: a run that lasts while engines come and go."""
    return {
        "apiVersion": "aether/v1",
        "kind": "Workflow",
        "metadata": {"name": "paced"},
        "spec": {
            "entrypoint": "steps",
            "templates": [
                {"loop": {"name": "steps", "items": list(range(items)), "concurrency": 1, "body": "nap"}},
                {"task": {"name": "nap", "executor": {"type": "sleep", "config": {"duration": "50ms"}}}},
            ],
        },
    }


async def _stack(url: str, state: Path, workers: int = 2) -> Stack:
    options = StackOptions(
        nats_url=url, state_dir=state, workers=workers, partitions=PARTITIONS, lease_ttl=TTL, worker_poll=0.2
    )
    return await open_stack(options)


async def _eventually(condition: Any, timeout: float, what: str) -> float:
    """Seconds until `condition()` holds; fails naming `what` after `timeout`."""
    began = time.monotonic()
    while not condition():
        assert time.monotonic() - began < timeout, f"not within {timeout}s: {what}"
        await asyncio.sleep(0.05)
    return time.monotonic() - began


async def _owned_by(stack: Stack, other: Stack, document: dict[str, Any]) -> str:
    """Submit `document` through `stack` until a run lands in a partition `other` owns (half of them do)."""
    for _ in range(40):
        run_id = await stack.engine.submit(document)
        if other.engine.owns(run_id):
            return run_id
        await stack.engine.cancel(run_id)
    raise AssertionError("no run landed in the other engine's partitions")


async def test_two_engines_split_the_partitions_and_forward_commands_to_the_owner(
    nats_server: EmbeddedNatsServer, tmp_path: Path
) -> None:
    a = await _stack(nats_server.url, tmp_path / "a")
    b = await _stack(nats_server.url, tmp_path / "b")
    try:
        await _eventually(
            lambda: len(a.engine.owned) == len(b.engine.owned) == PARTITIONS // 2, 3 * TTL, "an even split"
        )
        assert a.engine.owned | b.engine.owned == set(range(PARTITIONS))
        await asyncio.sleep(TTL / 3 + 0.5)  # each engine's record says what it held at the end of its last round
        engines = await list_engines(a.connection.js, a.layout)
        assert sorted(len(engine.partitions) for engine in engines) == [2, 2]
        assert sorted(name for engine in engines for name in engine.singletons) == ["crons", "watcher"]
        runs = [await a.engine.submit(paced_loop(3)) for _ in range(12)]
        assert {a.engine.owns(run_id) for run_id in runs} == {True, False}
        for run_id in runs:
            assert (await a.engine.wait_state(run_id, timeout=30)).phase == ph.SUCCEEDED
            assert (await b.engine.state(run_id)).phase == ph.SUCCEEDED  # any engine reads any run
        assert not [run_id for run_id in runs if run_id in a.engine._runs and not a.engine.owns(run_id)]
        theirs = next(run_id for run_id in runs if b.engine.owns(run_id))
        await b.engine.state(theirs)  # in its owner's memory
        await a.engine.purge([theirs])  # through the other engine: the owner forgets it too
        with pytest.raises(NotFoundError):
            await b.engine.state(theirs)

        waiting = await _owned_by(a, b, SUSPENDING)
        state = await _until_suspended(a, waiting)
        (task_id,) = [task.id for task in state.tasks.values() if task.phase == ph.SUSPENDED]
        await a.engine.resume(waiting, task_id, {"__resumed": True}, actor="tester", reason="through a")
        assert (await a.engine.wait_state(waiting, timeout=20)).phase == ph.SUCCEEDED
        with pytest.raises(InvalidStateError, match="already in terminal state Succeeded"):  # the owner's refusal
            await a.engine.resume(waiting, task_id, {})

        await b.close()  # a stopping engine hands its partitions over: no TTL to wait
        handed = await _eventually(lambda: a.engine.owned == set(range(PARTITIONS)), 2 * TTL, "a takes over")
        assert handed < TTL
    finally:
        await a.close()
        await b.close()


async def _until_suspended(stack: Stack, run_id: str) -> Any:
    for _ in range(200):
        state = await stack.engine.state(run_id)
        if state.suspended:
            return state
        await asyncio.sleep(0.05)
    raise AssertionError(f"run {run_id} never suspended")


async def test_a_killed_engines_partitions_move_to_the_survivor_and_its_runs_finish_once(
    nats_server: EmbeddedNatsServer, tmp_path: Path
) -> None:
    a = await _stack(nats_server.url, tmp_path / "a", workers=4)
    doomed = Child(
        "serve",
        ["serve", "--nats", nats_server.url, "--state-dir", str(tmp_path / "b"), "--lease-ttl", str(TTL)],
        tmp_path / "logs",
    )
    try:
        await doomed.start("serving on")
        await _eventually(lambda: len(a.engine.owned) == PARTITIONS // 2, 30, "the served engine joins")
        theirs = set(range(PARTITIONS)) - a.engine.owned
        runs = [await a.engine.submit(paced_loop(30)) for _ in range(8)]
        assert any(not a.engine.owns(run_id) for run_id in runs)
        await asyncio.sleep(0.8)  # the runs are under way in both engines
        doomed.kill()
        killed = time.monotonic()
        await _eventually(lambda: a.engine.owned == set(range(PARTITIONS)), 10 * TTL, "failover")
        failover = time.monotonic() - killed
        print(f"\nfailover of partitions {sorted(theirs)} after kill -9: {failover:.2f}s (lease TTL {TTL:g}s)")
        assert failover >= TTL * 0.5  # the leases lapsed; nothing handed them over
        for run_id in runs:
            assert (await a.engine.wait_state(run_id, timeout=60)).phase == ph.SUCCEEDED
            dispatched, finished = await count_attempts(a.store, run_id)
            assert len(dispatched) == 30 and set(dispatched.values()) == {1}, f"{run_id}: dispatched twice"
            assert set(finished.values()) == {1} and set(dispatched) <= set(finished), f"{run_id}: finished twice"
    finally:
        doomed.stop()
        await a.close()


async def test_a_run_nobody_has_is_not_found_through_any_engine(
    nats_server: EmbeddedNatsServer, tmp_path: Path
) -> None:
    a = await _stack(nats_server.url, tmp_path / "a", workers=0)
    try:
        for run_id in [f"nosuch-{n}" for n in range(8)]:  # in this engine's partitions and in none
            try:
                await a.engine.state(run_id)
            except NotFoundError:
                continue
            raise AssertionError(run_id)
        assert not a.engine._runs
    finally:
        await a.close()


class _RefusingRouter:
    """A router whose subscriptions fail once, as a connection that drops at that moment would."""

    def __init__(self, router: Any) -> None:
        self.router = router
        self.refused = 0

    async def forward(self, partition: int, command: Any) -> None:
        await self.router.forward(partition, command)

    async def serve(self, partition: int, handler: Any) -> Any:
        if not self.refused:
            self.refused += 1
            raise ConnectionError("connection lost")
        return await self.router.serve(partition, handler)


async def test_a_partition_that_could_not_be_taken_whole_is_taken_at_the_next_try(
    nats_server: EmbeddedNatsServer, tmp_path: Path
) -> None:
    options = StackOptions(nats_url=nats_server.url, state_dir=tmp_path, workers=1, partitions=PARTITIONS, lease_ttl=30)
    a = await open_stack(options)  # its rounds are 10 s apart: the test starts them
    try:
        assert a.engine.contested is not None
        refusing = _RefusingRouter(a.engine.router)
        a.engine.router = refusing
        await a.engine.lose(0)
        a.engine.contested()  # a round at once: it takes partition 0 again, and the subscription fails
        await _eventually(lambda: refusing.refused == 1, 5, "a failed try")
        await asyncio.sleep(0.2)
        assert 0 not in a.engine.owned  # not half taken: its reports would have no consumer
        a.engine.contested()
        await _eventually(lambda: 0 in a.engine.owned, 5, "the next try")
        for _ in range(40):
            run_id = await a.engine.submit(paced_loop(1))
            if partition_of(run_id, PARTITIONS) == 0:
                break
        assert (await a.engine.wait_state(run_id, timeout=20)).phase == ph.SUCCEEDED
    finally:
        await a.close()


async def test_an_engine_cut_off_from_nats_stops_deciding_and_takes_its_share_again_when_it_is_back(
    nats_server: EmbeddedNatsServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    a = await _stack(nats_server.url, tmp_path / "a", workers=1)
    try:
        nats_server.kill()
        with caplog.at_level(logging.WARNING, logger="aether_es.ownership"):
            await _eventually(lambda: not a.engine.owned, 3 * TTL, "it gives up what it can no longer renew")
        assert any("stopping what it held" in r.getMessage() for r in caplog.records)
        nats_server.start()
        await _eventually(lambda: len(a.engine.owned) == PARTITIONS, 10 * TTL, "it takes its share again")
        run_id = await a.engine.submit(paced_loop(2))
        assert (await a.engine.wait_state(run_id, timeout=20)).phase == ph.SUCCEEDED
    finally:
        await a.close()


async def test_a_partition_handed_over_leaves_no_pull_behind_to_take_its_next_reports(
    nats_server: EmbeddedNatsServer, tmp_path: Path
) -> None:
    """A pull still waiting when its owner lets go would take the next report to a subscription nobody reads,
    where it would wait out the ack wait: the report loop ends its fetch before it goes."""
    options = StackOptions(nats_url=nats_server.url, state_dir=tmp_path, workers=0, partitions=PARTITIONS, lease_ttl=30)
    a = await open_stack(options)
    try:
        runs = [f"r{n}" for n in range(400) if partition_of(f"r{n}", PARTITIONS) == 1]

        async def keep_reporting() -> None:
            for attempt in itertools.count(1):  # each report new, none dropped as a repeat
                fields = {"kind": "task-timeout", "taskRunID": "t", "attempt": attempt}
                await a.broker.report([Report.model_validate({**fields, "runID": run_id}) for run_id in runs])

        reporting = asyncio.create_task(keep_reporting())
        await asyncio.sleep(0.5)  # the partition's loop is fetching and deciding them
        await a.engine.lose(1)
        reporting.cancel()
        await asyncio.gather(reporting, return_exceptions=True)
        consumer = a.layout.partition_consumer(1)
        info = await a.connection.js.consumer_info(a.layout.reports_stream, consumer)
        left = info.num_pending + info.num_ack_pending
        sub = await a.connection.js.pull_subscribe_bind(consumer=consumer, stream=a.layout.reports_stream)
        taken = 0
        for _ in range(3):  # well within the ack wait: what was handed back comes at once
            with contextlib.suppress(TimeoutError):
                taken += len(await sub.fetch(left, timeout=0.5))
        await sub.unsubscribe()
        assert left > 0 and taken >= left  # a report still on its way when they were counted comes too
    finally:
        await a.close()
