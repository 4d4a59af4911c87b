"""The raw floor: the least durable JetStream work one task needs, done with nats-py directly.

One task = publish an assignment to a work-queue stream, a worker fetches and acks it and publishes a result
to a second work-queue stream, a consumer fetches and acks that and appends one event to a history stream.
`pipelined` does this for many tasks as fast as nats-py allows (asyncio.gather over js.publish, batched fetch);
`sequential` does one task at a time and times each round trip (the per-task latency floor).
For replay, the floor is an ordered push consumer reading the same stream the engine replays.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, RetentionPolicy, StorageType, StreamConfig

from bench.metrics import percentile

PAYLOAD = b'{"task":"t","executor":"echo","inputs":[{"name":"item","value":1}],"attempt":1}' * 2
GATHER = 1000
FETCH = 256


@dataclass
class TaskFloor:
    tasks: int
    seconds: float
    tasks_per_s: float
    sequential_tasks: int
    cycle_p50_ms: float
    cycle_p99_ms: float
    start_p50_ms: float
    start_p99_ms: float


@dataclass
class ReplayFloor:
    messages: int
    events: int
    seconds: float
    msgs_per_s: float
    events_per_s: float


async def _setup(js: JetStreamContext, prefix: str) -> tuple[object, object]:
    upper = prefix.upper()
    for name, retention in (("T", RetentionPolicy.WORK_QUEUE), ("R", RetentionPolicy.WORK_QUEUE)):
        await js.add_stream(
            StreamConfig(
                name=f"{upper}_{name}",
                subjects=[f"{prefix}.{name.lower()}.>"],
                retention=retention,
                storage=StorageType.FILE,
            )
        )
    await js.add_stream(StreamConfig(name=f"{upper}_E", subjects=[f"{prefix}.e.>"], storage=StorageType.FILE))
    config = ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, max_ack_pending=20_000, ack_wait=30)
    wsub = await js.pull_subscribe(f"{prefix}.t.>", durable="worker", stream=f"{upper}_T", config=config)
    rsub = await js.pull_subscribe(f"{prefix}.r.>", durable="engine", stream=f"{upper}_R", config=config)
    return wsub, rsub


async def _fetch(sub: object, batch: int, timeout: float = 1.0) -> list[Msg]:
    try:
        msgs: list[Msg] = await sub.fetch(batch, timeout=timeout)  # type: ignore[attr-defined]
        return msgs
    except TimeoutError:
        return []


async def pipelined(js: JetStreamContext, tasks: int, prefix: str = "floorp") -> tuple[int, float]:
    """`tasks` tasks through assignment -> worker -> result -> consumer -> event, all stages overlapping."""
    wsub, rsub = await _setup(js, prefix)

    async def produce() -> None:
        for start in range(0, tasks, GATHER):
            await asyncio.gather(
                *(js.publish(f"{prefix}.t.{i % 100}", PAYLOAD) for i in range(start, min(tasks, start + GATHER)))
            )

    async def work() -> None:
        done = 0
        while done < tasks:
            msgs = await _fetch(wsub, FETCH)
            if not msgs:
                continue
            await asyncio.gather(*(js.publish(f"{prefix}.r.{m.subject.rsplit('.', 1)[1]}", m.data) for m in msgs))
            for m in msgs:
                await m.ack()
            done += len(msgs)

    async def consume() -> None:
        done = 0
        while done < tasks:
            msgs = await _fetch(rsub, FETCH)
            if not msgs:
                continue
            await asyncio.gather(*(js.publish(f"{prefix}.e.{m.subject.rsplit('.', 1)[1]}", m.data) for m in msgs))
            for m in msgs:
                await m.ack()
            done += len(msgs)

    began = time.perf_counter()
    await asyncio.gather(produce(), work(), consume())
    await js._nc.flush()
    return tasks, time.perf_counter() - began


async def sequential(js: JetStreamContext, tasks: int, prefix: str = "floors") -> tuple[list[float], list[float]]:
    """One task at a time: (full round-trip ms, assignment-published -> worker-has-it ms) per task."""
    wsub, rsub = await _setup(js, prefix)
    cycles: list[float] = []
    starts: list[float] = []
    for i in range(tasks):
        began = time.perf_counter()
        await js.publish(f"{prefix}.t.{i % 100}", PAYLOAD)
        msgs: list[Msg] = []
        while not msgs:
            msgs = await _fetch(wsub, 1)
        starts.append((time.perf_counter() - began) * 1000.0)
        await msgs[0].ack()
        await js.publish(f"{prefix}.r.{i % 100}", msgs[0].data)
        results: list[Msg] = []
        while not results:
            results = await _fetch(rsub, 1)
        await results[0].ack()
        await js.publish(f"{prefix}.e.{i % 100}", results[0].data)
        cycles.append((time.perf_counter() - began) * 1000.0)
    return cycles, starts


async def task_floor(js: JetStreamContext, tasks: int, sequential_tasks: int) -> TaskFloor:
    done, seconds = await pipelined(js, tasks)
    cycles, starts = await sequential(js, sequential_tasks)
    return TaskFloor(
        tasks=done,
        seconds=seconds,
        tasks_per_s=done / seconds,
        sequential_tasks=sequential_tasks,
        cycle_p50_ms=percentile(cycles, 50) or 0.0,
        cycle_p99_ms=percentile(cycles, 99) or 0.0,
        start_p50_ms=percentile(starts, 50) or 0.0,
        start_p99_ms=percentile(starts, 99) or 0.0,
    )


async def replay_floor(js: JetStreamContext, stream: str, subjects: str, events: int) -> ReplayFloor:
    """Read every message of `stream` with an ordered push consumer (no decoding): the replay floor."""
    info = await js.stream_info(stream)
    total = info.state.messages
    count = 0
    done = asyncio.get_running_loop().create_future()

    async def on_msg(msg: Msg) -> None:
        nonlocal count
        count += 1
        if count >= total and not done.done():
            done.set_result(None)

    began = time.perf_counter()
    sub = await js.subscribe(
        subjects, stream=stream, cb=on_msg, ordered_consumer=True, pending_msgs_limit=-1, pending_bytes_limit=-1
    )
    try:
        await asyncio.wait_for(done, 600)
    finally:
        seconds = time.perf_counter() - began
        with contextlib.suppress(Exception):
            await sub.unsubscribe()
    return ReplayFloor(
        messages=total, events=events, seconds=seconds, msgs_per_s=total / seconds, events_per_s=events / seconds
    )
