"""Big values on a real nats-server: they travel by reference, hard caps fail the task naming them, and a
result or decision too large to send ends its attempt instead of being tried again for ever."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import pytest_asyncio

from aether_es import Client
from aether_es.adapters.nats.event_store import NatsEventStore
from aether_es.adapters.nats.layout import Layout
from aether_es.adapters.nats.server import EmbeddedNatsServer
from aether_es.api.service import start_api
from aether_es.cli.runs_cmd import describe
from aether_es.events.references import MARKER, reference_of
from aether_es.history.exchange import export_lines
from aether_es.ports.wire import TaskAssignment, TaskResult, WireParameter
from aether_es.runtime.stack import Stack, StackOptions, open_stack
from aether_es.worker.executors.echo import EchoExecutor

MB = 1_000_000


class BigOutput:
    """Outputs `size` bytes of text as its `result` parameter."""

    def __init__(self, size: int) -> None:
        self.size = size

    async def execute(self, assignment: TaskAssignment) -> TaskResult:
        return TaskResult(parameters=[WireParameter(name="result", value="v" * self.size)])


def big(name: str = "big") -> dict[str, Any]:
    return {"task": {"name": name, "executor": {"type": "big"}, "outputs": {"parameters": [{"name": "result"}]}}}


def single() -> dict[str, Any]:
    return {
        "apiVersion": "aether/v1",
        "kind": "Workflow",
        "metadata": {"name": "one-big"},
        "spec": {"entrypoint": "big", "templates": [big()]},
    }


def small() -> dict[str, Any]:
    return {
        "apiVersion": "aether/v1",
        "kind": "Workflow",
        "metadata": {"name": "small"},
        "spec": {"entrypoint": "hi", "templates": [{"task": {"name": "hi", "executor": {"type": "echo"}}}]},
    }


def fan_out(consumers: int = 4) -> dict[str, Any]:
    """One big output passed to `consumers` tasks."""
    take = {"parameters": [{"name": "data", "valueFrom": {"parameter": "tasks.produce.outputs.parameters.result"}}]}
    tasks: list[dict[str, Any]] = [{"name": "produce", "template": "big"}]
    tasks += [
        {"name": f"take{n}", "template": "take", "dependencies": ["produce"], "arguments": take}
        for n in range(consumers)
    ]
    return {
        "apiVersion": "aether/v1",
        "kind": "Workflow",
        "metadata": {"name": "fan-out"},
        "spec": {
            "entrypoint": "main",
            "templates": [
                {"dag": {"name": "main", "tasks": tasks}},
                big(),
                {"task": {"name": "take", "inputs": {"parameters": [{"name": "data"}]}, "executor": {"type": "echo"}}},
            ],
        },
    }


@pytest_asyncio.fixture
async def open_with(nats_server: EmbeddedNatsServer, tmp_path: Path) -> AsyncIterator[Any]:
    stacks: list[Stack] = []

    async def opener(size: int, workers: int = 4) -> Stack:
        executors = {"big": BigOutput(size), "echo": EchoExecutor()}
        options = StackOptions(
            nats_url=nats_server.url, state_dir=tmp_path / "state", workers=workers, executors=executors
        )
        stacks.append(await open_stack(options))
        return stacks[-1]

    yield opener
    for stack in stacks:
        await stack.close()


def task_of(view: dict[str, Any], name: str) -> dict[str, Any]:
    return next(t for t in view["tasks"] if t["taskName"] == name)


async def history_messages(stack: Stack) -> list[bytes]:
    js = stack.connection.js
    stream = Layout().runs_stream
    info = await js.stream_info(stream)
    return [(await js.get_msg(stream, seq)).data or b"" for seq in range(info.state.first_seq, info.state.last_seq + 1)]


async def large_values(stack: Stack) -> list[int]:
    """The sizes of the values over 1 MB in the values bucket."""
    store = await stack.connection.js.object_store(Layout().values_bucket)
    return [info.size for info in await store.list() if (info.size or 0) > MB]


async def test_a_9_mb_output_travels_by_reference_and_does_not_jam_the_worker(open_with: Any) -> None:
    stack = await open_with(9 * MB, workers=1)
    view = await stack.engine.wait(await stack.engine.submit(single()), timeout=60)
    assert view["status"] == "Succeeded", view["status"]
    outputs = task_of(view, "big")["outputs"]["parameters"]
    assert outputs[0]["value"] == "v" * (9 * MB)  # views hold the value itself
    assert all(len(data) < MB for data in await history_messages(stack))
    after = await stack.engine.wait(await stack.engine.submit(small()), timeout=30)
    assert after["status"] == "Succeeded"  # the one slot is free again
    api = await start_api(stack)
    try:
        async with await Client.connect(stack.connection) as client:
            got = await client.get(view["runID"])
    finally:
        await api.stop()
    replied = task_of(got, "big")["outputs"]["parameters"][0]["value"]
    assert any(line.strip().startswith("result: by reference (9,000,002 bytes, sha256:") for line in describe(got))
    ref = reference_of(replied)  # a reply stays under the payload limit: the value comes by reference
    assert ref is not None and ref.size == 9 * MB + 2
    stored = await (await stack.connection.js.object_store(ref.bucket)).get(ref.key)
    assert orjson.loads(stored.data or b"") == "v" * (9 * MB)


async def test_a_3_mb_output_feeding_four_tasks_is_stored_once(open_with: Any) -> None:
    stack = await open_with(3 * MB)
    run_id = await stack.engine.submit(fan_out())
    view = await stack.engine.wait(run_id, timeout=60)
    assert view["status"] == "Succeeded", view["status"]
    assert [task_of(view, f"take{n}")["status"] for n in range(4)] == ["Succeeded"] * 4
    messages = await history_messages(stack)
    assert all(len(data) < MB for data in messages)
    assert any(MARKER.encode() in data for data in messages)  # the history states the value is by reference
    assert await large_values(stack) == [len(b'"' + b"v" * (3 * MB) + b'"')]
    rebuilt = (await stack.engine.rebuild(run_id)).to_dict()
    assert rebuilt == (await stack.engine.state(run_id)).to_dict()  # replay resolves references like live
    store = NatsEventStore(stack.connection.nc, Layout())
    loaded = await store.load(run_id)
    assert [s async for s in store.load_all() if s.commit.run_id == run_id] == loaded  # as replay reads it
    exported = b"".join(export_lines(loaded))
    assert MARKER.encode() not in exported and b"v" * (3 * MB) in exported  # an export stands on its own


async def test_a_value_over_the_hard_cap_fails_its_task_naming_it(
    open_with: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AETHER_LIMIT_VALUE_BYTES", str(2 * MB))
    stack = await open_with(3 * MB)
    view = await stack.engine.wait(await stack.engine.submit(single()), timeout=60)
    assert view["status"] in ("Failed", "Error"), view["status"]
    message = task_of(view, "big")["outputs"]["message"]
    assert "output parameter 'result' is 3,000,002 bytes, over the limit of 2,000,000 bytes" in message
    assert "AETHER_LIMIT_VALUE_BYTES" in message
    after = await stack.engine.wait(await stack.engine.submit(small()), timeout=30)
    assert after["status"] == "Succeeded"


async def test_a_result_too_large_to_report_ends_its_attempt(open_with: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """With everything inline, a 9 MB result cannot be reported: the attempt ends as an error naming the size,
    and the one worker slot takes the next run."""
    monkeypatch.setenv("AETHER_LIMIT_INLINE_VALUE_BYTES", str(32 * MB))
    stack = await open_with(9 * MB, workers=1)
    view = await stack.engine.wait(await stack.engine.submit(single()), timeout=60)
    assert view["status"] in ("Failed", "Error"), view["status"]
    message = task_of(view, "big")["outputs"]["message"]
    assert "the result could not be reported" in message and "above the server's max payload" in message
    after = await stack.engine.wait(await stack.engine.submit(small()), timeout=30)
    assert after["status"] == "Succeeded"


async def test_a_decision_too_large_to_store_fails_the_task_not_the_engine(
    open_with: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With everything inline, handing a 3 MB output to four tasks makes a commit over the payload limit:
    the report that caused it ends its attempt as an error, the run ends, and the engine goes on."""
    monkeypatch.setenv("AETHER_LIMIT_INLINE_VALUE_BYTES", str(32 * MB))
    stack = await open_with(3 * MB)
    view = await stack.engine.wait(await stack.engine.submit(fan_out()), timeout=60)
    assert view["status"] in ("Failed", "Error"), view["status"]
    assert "above the server's max payload" in task_of(view, "produce")["outputs"]["message"]
    after = await stack.engine.wait(await stack.engine.submit(small()), timeout=30)
    assert after["status"] == "Succeeded"


@pytest.mark.parametrize(
    ("bucket", "cause"),
    [("aether_snapshots", "is not the values bucket"), ("aether_values", "not found in bucket")],
)
async def test_a_report_naming_a_value_that_cannot_be_read_ends_its_attempt(
    open_with: Any, bucket: str, cause: str
) -> None:
    """A forged or dangling reference is never followed outside the values bucket nor retried: the attempt
    it reports on ends as an Error naming it."""
    stack = await open_with(0, workers=0)
    run_id = await stack.engine.submit(small())
    (task,) = (await stack.engine.get(run_id))["tasks"]
    digest = "0" * 64
    ref = {MARKER: {"bucket": bucket, "key": digest, "size": 10, "digest": f"sha256:{digest}"}}
    forged = {
        "kind": "completed",
        "runID": run_id,
        "taskRunID": task["runID"],
        "attempt": 1,
        "workerID": "w1",
        "result": {"code": 0, "parameters": [{"name": "result", "value": ref}]},
    }
    await stack.connection.js.publish(stack.layout.report_subject(run_id), orjson.dumps(forged))
    view = await stack.engine.wait(run_id, timeout=10)
    (task,) = view["tasks"]
    assert task["status"] == "Error"
    assert task["message"].startswith("report refused: a value it names cannot be read: value 0000")
    assert cause in task["message"]


async def test_only_the_report_naming_an_unreadable_value_ends_as_an_error(open_with: Any) -> None:
    stack = await open_with(0, workers=0)
    pair = {
        "apiVersion": "aether/v1",
        "kind": "Workflow",
        "metadata": {"name": "pair"},
        "spec": {
            "entrypoint": "main",
            "templates": [
                {"dag": {"name": "main", "tasks": [{"name": "a", "template": "hi"}, {"name": "b", "template": "hi"}]}},
                {"task": {"name": "hi", "executor": {"type": "echo"}}},
            ],
        },
    }
    run_id = await stack.engine.submit(pair)
    view = await stack.engine.get(run_id)
    digest = "0" * 64
    missing = {MARKER: {"bucket": "aether_values", "key": digest, "size": 10, "digest": f"sha256:{digest}"}}

    def completed(name: str, value: Any) -> dict[str, Any]:
        return {
            "kind": "completed",
            "runID": run_id,
            "taskRunID": task_of(view, name)["runID"],
            "attempt": 1,
            "workerID": "w1",
            "result": {"code": 0, "parameters": [{"name": "result", "value": value}]},
        }

    both = orjson.dumps([completed("a", missing), completed("b", "fine")])
    await stack.connection.js.publish(stack.layout.report_subject(run_id), both)
    view = await stack.engine.wait(run_id, timeout=10)
    assert task_of(view, "a")["status"] == "Error" and "not found in bucket" in task_of(view, "a")["message"]
    assert task_of(view, "b")["status"] == "Succeeded"
