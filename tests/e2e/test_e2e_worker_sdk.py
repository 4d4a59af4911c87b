"""SDK executors on a real stack: inputs checked against the registered schema at dispatch, and cancels and
timeouts reaching the running function."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Literal

from aether_es.adapters.nats.server import EmbeddedNatsServer
from aether_es.model import phases as ph
from aether_es.ports.worker_registry import WorkerInfo
from aether_es.runtime.stack import Stack, StackOptions, open_stack
from aether_es.worker import FunctionExecutor, Suspend, run
from aether_es.worker.executors.echo import EchoExecutor
from aether_es.worker.pool import WorkerPool


def workflow(executor_type: str, params: dict[str, Any], **node: Any) -> dict[str, Any]:
    return {
        "apiVersion": "aether/v1",
        "kind": "Workflow",
        "metadata": {"name": f"sdk-{executor_type}"},
        "spec": {
            "entrypoint": "main",
            "templates": [
                {"dag": {"name": "main", "tasks": [{"name": "step", "template": "work", **node}]}},
                {
                    "task": {
                        "name": "work",
                        "inputs": {"parameters": [{"name": k, "value": v} for k, v in params.items()]},
                        "executor": {"type": executor_type},
                    }
                },
            ],
        },
    }


def step(view: dict[str, Any]) -> dict[str, Any]:
    return next(t for t in view["tasks"] if t["taskName"] == "step")


async def open_with(url: str, tmp_path: Path, executors: dict[str, Any]) -> Stack:
    return await open_stack(
        StackOptions(nats_url=url, state_dir=tmp_path, executors={"echo": EchoExecutor(), **executors}, tune_gc=False)
    )


async def test_inputs_that_do_not_fit_the_schema_fail_at_dispatch(
    nats_server: EmbeddedNatsServer, tmp_path: Path
) -> None:
    calls: list[int] = []

    def resize(width: int, image: str, mode: Literal["fit", "fill"] = "fit") -> dict[str, Any]:
        calls.append(width)
        return {"url": f"{image}@{width}/{mode}"}

    stack = await open_with(nats_server.url, tmp_path, {"resize": FunctionExecutor("resize", resize)})
    try:
        good = await stack.engine.wait(
            await stack.engine.submit(workflow("resize", {"width": 200, "image": "cat.png"})), timeout=20
        )
        assert good["status"] == ph.SUCCEEDED, good
        outputs = {p["name"]: p["value"] for p in step(good)["outputs"]["parameters"]}
        assert outputs["url"] == "cat.png@200/fit"

        bad = await stack.engine.wait(
            await stack.engine.submit(workflow("resize", {"width": "wide", "image": "cat.png"})), timeout=20
        )
        assert bad["status"] == ph.FAILED, bad
        assert step(bad)["status"] == ph.FAILED
        assert step(bad)["message"] == (
            "inputs do not fit executor \"resize\": input \"width\": 'wide' is not of type 'integer'"
        )
        missing = await stack.engine.wait(
            await stack.engine.submit(workflow("resize", {"width": 3}, continueOn={"failed": True})), timeout=20
        )
        assert step(missing)["status"] == ph.FAILED
        assert 'input "image": required, but not given' in step(missing)["message"]
        assert missing["status"] == ph.SUCCEEDED, missing  # continueOn applies as to any failure
        assert calls == [200]  # the misfits never reached the worker
    finally:
        await stack.close()


class Held:
    """An async executor that sleeps until cancelled and records how it ended."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.cancelled = asyncio.Event()
        self.finished = False

    async def hold(self, seconds: float = 60.0) -> dict[str, Any]:
        self.started.set()
        try:
            await asyncio.sleep(seconds)
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        self.finished = True
        return {"slept": seconds}


async def test_cancelling_a_run_cancels_the_running_executor(nats_server: EmbeddedNatsServer, tmp_path: Path) -> None:
    held = Held()
    stack = await open_with(nats_server.url, tmp_path, {"hold": FunctionExecutor("hold", held.hold)})
    try:
        run_id = await stack.engine.submit(workflow("hold", {}))
        await asyncio.wait_for(held.started.wait(), 10)
        await stack.engine.cancel(run_id)
        await asyncio.wait_for(held.cancelled.wait(), 5)
        view = await stack.engine.wait(run_id, timeout=10)
        assert view["status"] == ph.CANCELLED, view
        assert step(view)["status"] != ph.SUCCEEDED and not held.finished
    finally:
        await stack.close()


async def test_a_task_timeout_cancels_the_running_executor(nats_server: EmbeddedNatsServer, tmp_path: Path) -> None:
    held = Held()
    stack = await open_with(nats_server.url, tmp_path, {"hold": FunctionExecutor("hold", held.hold)})
    try:
        run_id = await stack.engine.submit(workflow("hold", {}, timeout="1s"))
        await asyncio.wait_for(held.cancelled.wait(), 10)
        view = await stack.engine.wait(run_id, timeout=10)
        assert step(view)["status"] == ph.TIMEOUT, view
        assert view["status"] != ph.SUCCEEDED and not held.finished
    finally:
        await stack.close()


async def test_a_workflow_timeout_cancels_the_running_executor(nats_server: EmbeddedNatsServer, tmp_path: Path) -> None:
    held = Held()
    stack = await open_with(nats_server.url, tmp_path, {"hold": FunctionExecutor("hold", held.hold)})
    try:
        document = workflow("hold", {})
        document["spec"]["timeout"] = "1s"
        run_id = await stack.engine.submit(document)
        await asyncio.wait_for(held.cancelled.wait(), 10)
        view = await stack.engine.wait(run_id, timeout=10)
        assert (view["status"], step(view)["status"]) == (ph.TIMEOUT, ph.TIMEOUT), view
        assert not held.finished
    finally:
        await stack.close()


async def test_the_newest_registration_of_a_type_gives_its_schema(
    nats_server: EmbeddedNatsServer, tmp_path: Path
) -> None:
    def resize(width: int, image: str) -> dict[str, Any]:
        return {"url": f"{image}@{width}"}

    stack = await open_with(nats_server.url, tmp_path, {"resize": FunctionExecutor("resize", resize)})
    try:
        assert stack.registry is not None
        stricter = {"type": "object", "properties": {"width": {"type": "integer", "maximum": 100}}}
        await stack.registry.register(
            WorkerInfo(id="newer", executor_types=("resize",), schemas={"resize": stricter}, registered_at="9999")
        )
        await stack.registry.register(
            WorkerInfo(id="broken", executor_types=("echo",), schemas={"echo": {"type": 12}}, registered_at="9999")
        )
        view = await stack.engine.wait(
            await stack.engine.submit(workflow("resize", {"width": 200, "image": "cat.png"})), timeout=20
        )
        assert step(view)["message"] == (
            'inputs do not fit executor "resize": input "width": 200 is greater than the maximum of 100'
        )
        echoed = await stack.engine.wait(await stack.engine.submit(workflow("echo", {"width": 1})), timeout=20)
        assert echoed["status"] == ph.SUCCEEDED, echoed  # an invalid schema is ignored, not applied
    finally:
        await stack.close()


async def test_run_serves_registered_executors_until_stopped(nats_server: EmbeddedNatsServer, tmp_path: Path) -> None:
    stack = await open_stack(StackOptions(nats_url=nats_server.url, state_dir=tmp_path, workers=0, tune_gc=False))
    stop = asyncio.Event()
    serving: asyncio.Queue[str] = asyncio.Queue()

    async def started(pool: WorkerPool) -> None:
        await serving.put(pool.worker_id)

    held = Held()
    worker = asyncio.create_task(
        run({"hold": FunctionExecutor("hold", held.hold)}, nats=stack.connection, stop=stop, on_started=started)
    )
    try:
        worker_id = await asyncio.wait_for(serving.get(), 10)
        assert stack.registry is not None
        [info] = await stack.registry.list_all()
        assert info.id == worker_id and info.schemas["hold"]["properties"]["seconds"]["type"] == "number"
        view = await stack.engine.wait(await stack.engine.submit(workflow("hold", {"seconds": 0.1})), timeout=20)
        assert view["status"] == ph.SUCCEEDED and held.finished, view
        stop.set()
        await asyncio.wait_for(worker, 10)
        assert await stack.registry.list_all() == []
        assert not stack.connection.nc.is_closed  # a connection passed in stays open
    finally:
        stop.set()
        await asyncio.gather(worker, return_exceptions=True)
        await stack.close()


async def test_suspend_waits_for_a_resume_whose_payload_reaches_the_function(
    nats_server: EmbeddedNatsServer, tmp_path: Path
) -> None:
    def approve(release: str, approved: bool | None = None) -> dict[str, Any]:
        if approved is None:
            raise Suspend(f"approve {release}: resume with approved=true or false")
        return {"approved": approved}

    stack = await open_with(nats_server.url, tmp_path, {"approve": FunctionExecutor("approve", approve)})
    try:
        run_id = await stack.engine.submit(workflow("approve", {"release": "1.4.0"}))
        for _ in range(200):
            task = next((t for t in (await stack.engine.state(run_id)).tasks.values() if t.task_name == "step"), None)
            if task is not None and task.phase == ph.SUSPENDED:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the task never suspended")
        assert task.message == "approve 1.4.0: resume with approved=true or false"
        await stack.engine.resume(run_id, task.id, {"approved": True})
        view = await stack.engine.wait(run_id, timeout=20)
        assert view["status"] == ph.SUCCEEDED, view
        assert {p["name"]: p["value"] for p in step(view)["outputs"]["parameters"]}["approved"] is True
    finally:
        await stack.close()
