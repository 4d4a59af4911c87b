"""One run cannot hold the others back, and what a run may hold is bounded, on a real nats-server.

A small run submitted beside a 20,000-task loop, or beside a DAG of 150 long `when` expressions, finishes
while the big one is still far from done: decisions have a work budget and the runs' decisions interleave.
No timing is asserted: the big run's progress at the moment the small one ends is counted instead.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
import pytest_asyncio

from aether_es.adapters.evaluator_simpleeval import SimpleEvalEvaluator
from aether_es.adapters.nats.server import EmbeddedNatsServer
from aether_es.errors import DocumentError, ValidationError
from aether_es.history.replay import replay_runs, verify
from aether_es.limits import DEFAULT
from aether_es.model import phases as ph
from aether_es.projections.run_state import RunState
from aether_es.runtime.engine import Engine
from aether_es.runtime.stack import Stack, StackOptions, open_stack

LIVENESS = 300.0
"""Seconds a run may take before the test gives up on it (a generous bound, not a timing assert)."""

BIG_LOOP = 20_000
BUSY = 1_000
"""Tasks of the big loop finished before the small run is submitted: it arrives while the loop is busy."""


def _workflow(name: str, templates: list[dict[str, Any]]) -> dict[str, Any]:
    spec = {"entrypoint": "main", "templates": templates}
    return {"apiVersion": "aether/v1", "kind": "Workflow", "metadata": {"name": name}, "spec": spec}


ECHO = {"task": {"name": "echo", "executor": {"type": "echo"}}}


def small_run() -> dict[str, Any]:
    return _workflow("small", [{"dag": {"name": "main", "tasks": [{"name": "one", "template": "echo"}]}}, ECHO])


def suspended_run() -> dict[str, Any]:
    """A run that waits for a resume."""
    return _workflow(
        "suspended",
        [
            {"dag": {"name": "main", "tasks": [{"name": "wait", "template": "gate"}]}},
            {"task": {"name": "gate", "executor": {"type": "await"}}},
        ],
    )


def loop_run(items: int) -> dict[str, Any]:
    return _workflow(
        "big-loop",
        [{"loop": {"name": "main", "items": list(range(items)), "body": "echo"}}, ECHO],
    )


def long_when(chars: int) -> str:
    clause = "tasks.first.phase == Succeeded"
    text = clause
    while len(text) + len(clause) + 4 <= chars:
        text += " && " + clause
    return text


def when_dag(nodes: int, chars: int) -> dict[str, Any]:
    when = long_when(chars)
    tasks: list[dict[str, Any]] = [{"name": "first", "template": "echo"}]
    tasks += [
        {"name": f"w{index}", "template": "echo", "dependencies": ["first"], "when": when} for index in range(nodes)
    ]
    return _workflow("long-whens", [{"dag": {"name": "main", "tasks": tasks}}, ECHO])


@pytest_asyncio.fixture
async def stack(nats_server: EmbeddedNatsServer, tmp_path: Path) -> AsyncIterator[Stack]:
    options = StackOptions(
        nats_url=nats_server.url,
        state_dir=tmp_path,
        evaluator=SimpleEvalEvaluator(),
        workers=8,
        allowed_modules=(__name__,),
    )
    opened = await open_stack(options)
    try:
        yield opened
    finally:
        await opened.close()


async def _until(condition: Callable[[], Awaitable[bool]]) -> None:
    """Wait, within the liveness bound, until `condition` holds."""
    async with asyncio.timeout(LIVENESS):
        while not await condition():
            await asyncio.sleep(0.05)


async def _progress(engine: Engine, run_id: str, finished: int) -> bool:
    return _finished((await engine.state(run_id)).tasks) >= finished


def _finished(state_tasks: dict[str, Any]) -> int:
    return sum(1 for task in state_tasks.values() if task.template_type == "task" and task.phase in ph.TERMINAL)


async def test_a_small_run_finishes_beside_a_20000_task_loop(stack: Stack) -> None:
    engine = stack.engine
    big = await engine.submit(loop_run(BIG_LOOP))
    await _until(lambda: _progress(engine, big, BUSY))
    small = await engine.submit(small_run())
    done = await engine.wait_state(small, LIVENESS)
    assert done.phase == ph.SUCCEEDED
    progress = await engine.state(big)
    assert not progress.terminal
    assert _finished(progress.tasks) < BIG_LOOP // 2, "the small run waited for half the big loop"
    await engine.cancel(big)


async def test_long_whens_just_under_the_limit_do_not_hold_back_a_small_run(stack: Stack) -> None:
    engine = stack.engine
    big = await engine.submit(when_dag(150, DEFAULT.expression_chars - 10))
    small = await engine.submit(small_run())
    assert (await engine.wait_state(small, LIVENESS)).phase == ph.SUCCEEDED
    progress = await engine.state(big)
    assert not progress.terminal, "the small run waited for every long when of the big run"
    assert (await engine.wait_state(big, LIVENESS)).phase == ph.SUCCEEDED
    commits = len(await stack.store.load(big))
    assert commits > 5, "evaluating 150 long whens was one long decision"


async def test_long_whens_over_the_limit_are_refused_at_submit(stack: Stack) -> None:
    with pytest.raises(ValidationError) as info:
        await stack.engine.submit(when_dag(150, 10_000))
    length = len(long_when(10_000))
    assert str(info.value).endswith(
        f'template "main" task "w0": when is {length:,}, over the limit of 4,096 '
        "(raise it with AETHER_LIMIT_EXPRESSION_CHARS)"
    )


async def test_huge_value_from_results_replay_as_they_ran(stack: Stack) -> None:
    """`1e308 * 10` is refused (the input's default is used), `2 ** 100` becomes the float Go would hold:
    what the decision saw is what the log holds, so the rebuilt view equals the live one."""
    expressions = {"inf": "1e308 * 10", "huge": "2 ** 100", "inside": "[1, 1e308 * 10]"}
    probe = {
        "task": {
            "name": "probe",
            "inputs": {"parameters": [{"name": name, "default": "refused"} for name in expressions]},
            "executor": {"type": "echo"},
        }
    }
    arguments = [{"name": name, "valueFrom": {"expression": text}} for name, text in expressions.items()]
    node = {"name": "one", "template": "probe", "arguments": {"parameters": arguments}}
    document = _workflow("huge-numbers", [{"dag": {"name": "main", "tasks": [node]}}, probe])
    run_id = await stack.engine.submit(document)
    state = await stack.engine.wait_state(run_id, LIVENESS)
    assert state.phase == ph.SUCCEEDED
    replayed = await replay_runs(stack.store, [run_id])
    assert await verify(stack.store, replayed, stack.engine.get) == {}
    (one,) = [task for task in state.tasks.values() if task.task_name == "one"]
    assert {p.name: p.value for p in one.inputs} == {"inf": "refused", "huge": float(2**100), "inside": "refused"}


@pytest_asyncio.fixture
async def limited(
    nats_server: EmbeddedNatsServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Stack]:
    """A stack whose limits are set through the environment, as `aether-es serve` reads them."""
    monkeypatch.setenv("AETHER_LIMIT_TASKS_PER_RUN", "10")
    monkeypatch.setenv("AETHER_LIMIT_LOOP_ITEMS", "8")
    opened = await open_stack(StackOptions(nats_url=nats_server.url, state_dir=tmp_path))
    try:
        yield opened
    finally:
        await opened.close()


async def test_limits_set_through_the_environment(limited: Stack) -> None:
    engine = limited.engine
    with pytest.raises(ValidationError, match=r"the number of loop items is 9, over the limit of 8 \(raise it with "):
        await engine.submit(loop_run(9))
    nested = _workflow(
        "nested",
        [
            {"loop": {"name": "main", "items": [0, 1, 2], "body": "inner"}},
            {"loop": {"name": "inner", "items": [0, 1, 2, 3], "body": "echo"}},
            ECHO,
        ],
    )
    state = await engine.wait_state(await engine.submit(nested), LIVENESS)
    assert state.phase == ph.ERROR
    assert state.message == (
        "workflow run stopped: the number of task runs is 11, over the limit of 10 "
        "(raise it with AETHER_LIMIT_TASKS_PER_RUN)"
    )
    replayed = await replay_runs(limited.store, [state.run_id])
    assert await verify(limited.store, replayed, engine.get) == {}


async def test_numbers_json_cannot_carry_are_refused_where_they_enter(stack: Stack) -> None:
    engine = stack.engine
    document = small_run()
    document["spec"]["arguments"] = {"parameters": [{"name": "x", "value": [1, float("inf")]}]}
    with pytest.raises(ValidationError, match=r"document spec\.arguments\.parameters\[0\]\.value\[1\]: inf is not"):
        await engine.submit(document)
    text = orjson.dumps(small_run())[:-1] + b',"extra":1e999}'
    with pytest.raises(DocumentError, match="number is infinity"):
        await engine.submit(text)
    run_id = await engine.submit(suspended_run())
    await _until(lambda: _suspended(engine, run_id))
    task_id = next(t.id for t in (await engine.state(run_id)).tasks.values() if t.task_name == "wait")
    with pytest.raises(ValidationError, match=r"payload\.answer: nan is not a finite number"):
        await engine.resume(run_id, task_id, {"answer": float("nan")})
    await engine.resume(run_id, task_id, {"answer": 42})
    assert (await engine.wait_state(run_id, LIVENESS)).phase == ph.SUCCEEDED


async def _suspended(engine: Engine, run_id: str) -> bool:
    return any(task.phase == ph.SUSPENDED for task in (await engine.state(run_id)).tasks.values())


def infinite() -> dict[str, Any]:
    """A worker's function whose result JSON cannot carry."""
    return {"fine": 1, "bad": [float("inf")]}


async def test_a_result_json_cannot_carry_ends_the_attempt_as_an_error_naming_it(stack: Stack) -> None:
    python = {"task": {"name": "py", "executor": {"type": "python", "config": {"callable": f"{__name__}:infinite"}}}}
    document = _workflow(
        "inf-result", [{"dag": {"name": "main", "tasks": [{"name": "one", "template": "py"}]}}, python]
    )
    state = await stack.engine.wait_state(await stack.engine.submit(document), LIVENESS)
    (one,) = [task for task in state.tasks.values() if task.task_name == "one"]
    assert one.phase == ph.ERROR
    assert one.message == "output parameter 'bad'[0]: inf is not a finite number, and JSON cannot carry it"
    assert await verify(stack.store, await replay_runs(stack.store, [state.run_id]), stack.engine.get) == {}


async def test_a_view_is_built_off_the_loop_and_its_run_waits_for_it(stack: Stack) -> None:
    """While a view of a busy run is built (held here at a gate), another run is submitted and finishes,
    and a cancel of the busy run is not decided until the view is done: the state read never changes."""
    engine = stack.engine
    busy = await engine.submit(suspended_run())
    await _until(lambda: _suspended(engine, busy))
    gate = threading.Event()
    seen: list[int] = []

    def build(state: RunState) -> int:
        seen.append(state.events)
        gate.wait(LIVENESS)
        seen.append(state.events)
        return len(state.order)

    reading = asyncio.create_task(engine.read(busy, build))
    await _until(lambda: _started(seen))
    cancelled = asyncio.create_task(engine.cancel(busy))
    small = await engine.submit(small_run())
    assert (await engine.wait_state(small, LIVENESS)).phase == ph.SUCCEEDED
    assert not cancelled.done()
    gate.set()
    assert await reading >= 1
    await cancelled
    assert seen[0] == seen[1], "a decision changed the state while its view was built"
    assert (await engine.wait_state(busy, LIVENESS)).phase == ph.CANCELLED


async def _started(seen: list[int]) -> bool:
    return bool(seen)
