"""A run whose view is bigger than the server's max payload, read through the API in pages of task records.

The nats-server here takes messages of at most 64 KiB, so a run of a few hundred tasks is several replies'
worth: big enough to need paging, small enough to run in seconds.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from nats.aio.client import Client as Nats
from support.cli import aether

from aether_es import Client
from aether_es.adapters.idgen import CounterIdGenerator
from aether_es.adapters.memory import MemoryBroker, MemoryEventStore
from aether_es.adapters.nats.connection import connect
from aether_es.adapters.nats.layout import Layout, ensure
from aether_es.adapters.nats.server import EmbeddedNatsServer
from aether_es.api import messages as m
from aether_es.api.service import ApiService
from aether_es.errors import NotFoundError, NotSupportedError, ValidationError
from aether_es.model import phases as ph
from aether_es.projections.run_state import TaskRunView
from aether_es.runtime.engine import Engine
from aether_es.runtime.stack import Stack
from aether_es.worker.executors.echo import ECHO_TYPE, EchoExecutor
from aether_es.worker.pool import WorkerPool

MAX_PAYLOAD = 64 * 1024
ITEMS = 150
"""Loop iterations of the big run: ~1.7 KB of view each, so the view is over three max payloads."""


def echo(name: str, **inputs: Any) -> dict[str, Any]:
    parameters = [{"name": key} if value is None else {"name": key, "value": value} for key, value in inputs.items()]
    return {"task": {"name": name, "inputs": {"parameters": parameters}, "executor": {"type": ECHO_TYPE}}}


def big_run(gated: bool = False) -> dict[str, Any]:
    """A loop of ITEMS echo tasks, each echoing an 800-byte pad; `gated`: after a task that suspends."""
    body = echo("one", item=None, pad=None)
    arguments = [{"name": "item", "value": "{{iterator.item}}"}, {"name": "pad", "value": "x" * 800}]
    loop = {
        "loop": {
            "name": "fan",
            "items": list(range(ITEMS)),
            "concurrency": 10,
            "body": "one",
            "arguments": {"parameters": arguments},
        }
    }
    templates = [loop, body]
    entrypoint = "fan"
    if gated:
        nodes = [{"name": "gate", "template": "hold"}, {"name": "fan", "template": "fan", "dependencies": ["gate"]}]
        templates += [{"dag": {"name": "main", "tasks": nodes}}, echo("hold", suspend=True)]
        entrypoint = "main"
    return {
        "apiVersion": "aether/v1",
        "kind": "Workflow",
        "metadata": {"name": "big"},
        "spec": {"entrypoint": entrypoint, "templates": templates},
    }


@pytest.fixture
def api_server(tmp_path: Path) -> Iterator[EmbeddedNatsServer]:
    config = tmp_path / "small.conf"
    config.write_text(f"max_payload: {MAX_PAYLOAD}\n")
    server = EmbeddedNatsServer(tmp_path / "jetstream", config_file=config)
    server.start()
    try:
        yield server
    finally:
        server.close()


async def finished_run(stack: Stack, document: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Submit and wait; returns the run id and its whole view as the engine builds it (no API involved)."""
    run_id = await stack.engine.submit(document)
    view = await stack.engine.wait(run_id, timeout=60)
    assert view["status"] == ph.SUCCEEDED
    return run_id, view


async def raw(nc: Nats, operation: str, body: dict[str, Any]) -> tuple[bytes, dict[str, Any]]:
    reply = await nc.request(f"aether.api.v1.{operation}", orjson.dumps(body), timeout=10)
    return reply.data, json.loads(reply.data)


def one_task() -> dict[str, Any]:
    return {
        "apiVersion": "aether/v1",
        "kind": "Workflow",
        "metadata": {"name": "one"},
        "spec": {"entrypoint": "main", "templates": [echo("main")]},
    }


def token_of(*parts: Any) -> str:
    """A token made by hand (this API's tokens are opaque to callers; these test how it checks them)."""
    return base64.urlsafe_b64encode(orjson.dumps(parts)).decode().rstrip("=")


def size(record: dict[str, Any]) -> int:
    return len(orjson.dumps(record))


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> Callable[[], int]:
    """How many task records have been built since the last call: the work of serving a page."""
    count = 0
    to_dict = TaskRunView.to_dict

    def counting(view: TaskRunView) -> dict[str, Any]:
        nonlocal count
        count += 1
        return to_dict(view)

    monkeypatch.setattr(TaskRunView, "to_dict", counting)

    def since() -> int:
        nonlocal count
        taken, count = count, 0
        return taken

    return since


# --- a view bigger than a reply --------------------------------------------------------------------------


async def test_a_run_bigger_than_the_max_payload_is_read_whole(
    stack: Stack, client: Client, plain: Nats, api_server: EmbeddedNatsServer
) -> None:
    run_id, whole = await finished_run(stack, big_run())
    assert len(whole["tasks"]) == ITEMS + 1
    assert len(orjson.dumps(whole)) > 3 * MAX_PAYLOAD

    data, first = await raw(plain, "runs.get", {"runID": run_id})
    assert len(data) <= MAX_PAYLOAD
    page = first["run"]["tasks"]
    assert first["nextTaskPageToken"] and 0 < len(page) < len(whole["tasks"])
    assert {**first["run"], "tasks": whole["tasks"]} == whole
    assert page == whole["tasks"][: len(page)]
    # Cut only where the next record would not fit: the page is as full as a reply allows.
    assert len(data) + size(whole["tasks"][len(page)]) + 1 > MAX_PAYLOAD - len(first["nextTaskPageToken"])

    assert await client.get(run_id) == whole

    cli = await asyncio.to_thread(aether, "get", run_id, "--json", "--nats", api_server.url)
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout) == whole


async def test_task_pages_follow_creation_order_within_count_and_bytes(stack: Stack, client: Client) -> None:
    run_id, whole = await finished_run(stack, big_run())
    tasks = whole["tasks"]

    seen: list[dict[str, Any]] = []
    token = ""
    while True:
        page = await client.task_page(run_id, limit=7, page_token=token)
        assert 1 <= len(page.tasks) <= 7
        seen += page.tasks
        token = page.next_page_token
        if not token:
            break
    assert seen == tasks
    assert len(seen) == len({task["runID"] for task in seen})

    assert [task async for task in client.tasks(run_id, page_size=13)] == tasks

    # A page as big as the count allows is cut by bytes instead, and the next page starts where it stopped.
    full = await client.task_page(run_id, limit=m.MAX_TASK_LIMIT)
    assert 0 < len(full.tasks) < len(tasks) and len(full.to_json()) <= MAX_PAYLOAD
    rest = await client.task_page(run_id, limit=m.MAX_TASK_LIMIT, page_token=full.next_page_token)
    assert rest.tasks[0] == tasks[len(full.tasks)]
    default = await client.task_page(run_id)
    assert default.tasks == full.tasks  # the default count is above what fits here


async def test_the_tokens_of_a_live_run_give_no_gaps_or_repeats(stack: Stack, client: Client) -> None:
    run_id = await stack.engine.submit(big_run(gated=True))
    for _ in range(600):
        tasks = (await client.get(run_id))["tasks"]
        if len(tasks) == 2 and tasks[1]["status"] == ph.SUSPENDED:
            break
        await asyncio.sleep(0.05)
    else:
        pytest.fail("the gate never suspended")
    first = await client.task_page(run_id, limit=1)
    assert [t["taskName"] for t in first.tasks] == ["main"] and first.next_page_token
    at_gate = await client.task_page(run_id, limit=5, page_token=first.next_page_token)
    assert [t["taskName"] for t in at_gate.tasks] == ["gate"]
    assert at_gate.next_page_token == ""  # complete for now: the fan-out waits on the gate

    await client.resume(run_id, at_gate.tasks[0]["runID"], {"suspend": False})
    whole = await stack.engine.wait(run_id, timeout=60)
    assert whole["status"] == ph.SUCCEEDED
    later: list[dict[str, Any]] = []
    token = first.next_page_token  # taken while the run had two task runs
    while token:
        page = await client.task_page(run_id, limit=50, page_token=token)
        later += page.tasks
        token = page.next_page_token
    assert [t["runID"] for t in first.tasks + later] == [t["runID"] for t in whole["tasks"]]
    assert later == whole["tasks"][1:]  # read after the run finished, as it finished
    assert len(whole["tasks"]) == ITEMS + 3


# --- O(page) ---------------------------------------------------------------------------------------------


async def test_serving_a_page_builds_only_its_records(stack: Stack, client: Client, built: Callable[[], int]) -> None:
    run_id, whole = await finished_run(stack, big_run())
    total = len(whole["tasks"])
    built()

    before = await client.task_page(run_id, limit=6)
    built()
    page = await client.task_page(run_id, limit=5, page_token=before.next_page_token)
    assert len(page.tasks) == 5 and built() == 5

    reply: m.GetRunReply = await client.call("runs.get", m.GetRunRequest(run_id=run_id))
    on_first = len(reply.run["tasks"])
    assert on_first < total and built() == on_first + 1  # and the one that did not fit

    byte_cut = await client.task_page(run_id, limit=m.MAX_TASK_LIMIT, page_token=page.next_page_token)
    assert built() == len(byte_cut.tasks) + 1 < total

    await client.get(run_id)
    assert built() >= total  # what is counted is what the pages cost


# --- errors ----------------------------------------------------------------------------------------------


async def test_bad_limits_and_tokens_are_refused_naming_the_field(stack: Stack, client: Client, plain: Nats) -> None:
    run_id, _ = await finished_run(stack, one_task())
    other, _ = await finished_run(stack, one_task())
    _, whole = await raw(plain, "runs.get", {"runID": run_id})
    assert whole["nextTaskPageToken"] == "" and len(whole["run"]["tasks"]) == 1  # a small run comes whole
    for limit in (0, -1, m.MAX_TASK_LIMIT + 1):
        with pytest.raises(ValidationError) as bad_limit:
            await client.task_page(run_id, limit=limit)
        assert bad_limit.value.field == "limit", limit
    _, body = await raw(plain, "runs.tasks", {"runID": run_id, "limit": "many"})
    assert body["error"]["code"] == "invalid_argument" and body["error"]["field"] == "limit"
    assert str(m.MAX_TASK_LIMIT) in str(
        (await raw(plain, "runs.tasks", {"runID": run_id, "limit": m.MAX_TASK_LIMIT + 1}))[1]
    )

    runs_token = (await client.list(limit=1)).next_page_token
    for token in ("not-a-token", runs_token, token_of("x", 1, 2), token_of(run_id, -1), token_of(run_id, "1")):
        with pytest.raises(ValidationError, match="pageToken: not a token this API returned") as bad_token:
            await client.task_page(run_id, page_token=token)
        assert bad_token.value.field == "pageToken"

    assert (await client.task_page(run_id, page_token=token_of(run_id, 1))).tasks == []
    with pytest.raises(ValidationError, match=f"pageToken: a token of run '{other}', not of runID") as foreign:
        await client.task_page(run_id, page_token=token_of(other, 0))
    assert foreign.value.field == "pageToken"
    with pytest.raises(ValidationError, match="past the 1 task runs") as past:
        await client.task_page(run_id, page_token=token_of(run_id, 2))
    assert past.value.field == "pageToken"

    with pytest.raises(NotFoundError):
        await client.task_page("no-such-run")
    with pytest.raises(ValidationError) as bad_id:
        await client.task_page("a b")
    assert bad_id.value.field == "runID"


async def test_a_task_record_too_large_for_any_reply_is_refused_naming_it(
    api_server: EmbeddedNatsServer,
) -> None:
    """The memory event store keeps records of any size; the API still answers within the server's limit."""
    store, broker = MemoryEventStore(), MemoryBroker()
    engine = Engine(store=store, broker=broker, ids=CounterIdGenerator())
    pool = WorkerPool(broker.channel(), {ECHO_TYPE: EchoExecutor()}, concurrency=2, fetch_timeout=0.2)
    connection = await connect(api_server.url)
    layout = Layout(prefix="aether")
    await ensure(connection.js, layout)
    api = ApiService(engine, connection.nc, layout, connection.js)
    await engine.start()
    await pool.start()
    await api.start()
    try:
        blob = {"name": "blob", "value": "y" * (MAX_PAYLOAD // 2 + 1000)}  # in its inputs and its outputs
        nodes = [
            {"name": "small", "template": "echo"},
            {"name": "huge", "template": "echo", "dependencies": ["small"], "arguments": {"parameters": [blob]}},
        ]
        document = {
            "apiVersion": "aether/v1",
            "kind": "Workflow",
            "metadata": {"name": "huge"},
            "spec": {"entrypoint": "main", "templates": [{"dag": {"name": "main", "tasks": nodes}}, echo("echo")]},
        }
        run_id = await engine.submit(document)
        whole = await engine.wait(run_id, timeout=30)
        assert whole["status"] == ph.SUCCEEDED
        huge = whole["tasks"][2]
        assert huge["taskName"] == "huge" and size(huge) > MAX_PAYLOAD
        async with await Client.connect(api_server.url) as client:
            first: m.GetRunReply = await client.call("runs.get", m.GetRunRequest(run_id=run_id))
            assert [t["taskName"] for t in first.run["tasks"]] == ["main", "small"]
            with pytest.raises(NotSupportedError) as too_big:
                await client.get(run_id)
            assert f'task run "{huge["runID"]}" of run "{run_id}"' in str(too_big.value)
            assert f"max payload of {MAX_PAYLOAD} bytes" in str(too_big.value)
            assert too_big.value.field is None
            with pytest.raises(NotSupportedError, match=huge["runID"]):
                await client.task_page(run_id, limit=1, page_token=first.next_task_page_token)
    finally:
        await api.stop()
        await pool.stop(timeout=5)
        await engine.stop()
        await connection.close()
