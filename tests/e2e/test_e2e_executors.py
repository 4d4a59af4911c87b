"""The built-in executors on a real stack: config interpolated from inputs reaching the worker, a cancelled
shell command killed with its process group, sleep cancelled, and every example run to Succeeded."""

from __future__ import annotations

import asyncio
import json
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from support.cli import ROOT, aether, serve

from aether_es.adapters.nats.server import EmbeddedNatsServer
from aether_es.adapters.secrets import EnvSecretProvider
from aether_es.model import phases as ph
from aether_es.runtime.stack import Stack, StackOptions, open_stack

EXAMPLES = ROOT / "examples"


def one_task(name: str, executor_type: str, config: dict[str, Any], inputs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "aether/v1",
        "kind": "Workflow",
        "metadata": {"name": name},
        "spec": {
            "entrypoint": "main",
            "templates": [
                {"dag": {"name": "main", "tasks": [{"name": "work", "template": "work"}]}},
                {
                    "task": {
                        "name": "work",
                        "inputs": {"parameters": inputs},
                        "executor": {"type": executor_type, "config": config},
                    }
                },
            ],
        },
    }


@pytest_asyncio.fixture
async def stack(nats_server: EmbeddedNatsServer, tmp_path: Path) -> AsyncIterator[Stack]:
    opened = await open_stack(
        StackOptions(nats_url=nats_server.url, state_dir=tmp_path, workers=4, allowed_modules=("json",))
    )
    try:
        yield opened
    finally:
        await opened.close()


async def until(
    stack: Stack, run_id: str, check: Callable[[dict[str, Any]], bool], timeout: float = 15
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        view = await stack.engine.get(run_id)
        if check(view):
            return view
        assert time.monotonic() < deadline, f"condition not reached: {json.dumps(view)[:2000]}"
        await asyncio.sleep(0.05)


def task(view: dict[str, Any], name: str) -> dict[str, Any]:
    return next(t for t in view["tasks"] if t["taskName"] == name)


def outputs(record: dict[str, Any]) -> dict[str, Any]:
    return {p["name"]: p.get("value") for p in (record.get("outputs") or {}).get("parameters") or []}


def running(pid: int) -> bool:
    """Whether the process exists and is not a zombie (an orphan waits for a reaper that may never come)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


async def test_config_interpolated_from_inputs_reaches_the_shell(stack: Stack) -> None:
    config = {
        "command": 'echo "$1 $GREETING" && exit {{inputs.parameters.code}}',
        "args": ["{{inputs.parameters.who}}"],
        "env": {"GREETING": "hello {{inputs.parameters.who}}"},
    }
    inputs = [{"name": "who", "value": "world"}, {"name": "code", "type": "int", "value": 0}]
    run_id = await stack.engine.submit(one_task("interpolated", "shell", config, inputs))
    view = await stack.engine.wait(run_id, timeout=15)
    assert view["status"] == ph.SUCCEEDED, view["message"]
    assert outputs(task(view, "work")) == {"stdout": "world hello world", "stderr": "", "exitCode": 0, "truncated": []}


async def test_a_secret_input_fills_its_config_placeholder_on_the_worker_only(
    nats_server: EmbeddedNatsServer, tmp_path: Path
) -> None:
    secret = "s3cret-token-value"
    options = StackOptions(
        nats_url=nats_server.url,
        state_dir=tmp_path,
        secrets=EnvSecretProvider(environ={"AETHER_SECRET_VAULT_API": secret}),
    )
    secret_stack = await open_stack(options)
    try:
        config = {"command": 'echo "${#TOKEN} $TOKEN"', "env": {"TOKEN": "{{inputs.parameters.token}}"}}
        inputs = [{"name": "token", "valueFrom": {"secretKeyRef": {"name": "vault", "key": "api"}}}]
        run_id = await secret_stack.engine.submit(one_task("secret", "shell", config, inputs))
        view = await secret_stack.engine.wait(run_id, timeout=15)
        log = b""
        async for stored in secret_stack.store.load_all():
            for envelope in stored.commit.envelopes:
                log += envelope.event.model_dump_json().encode()
    finally:
        await secret_stack.close()
    assert view["status"] == ph.SUCCEEDED, view["message"]
    # The command saw the resolved value (its length), and the report was scrubbed of it.
    assert outputs(task(view, "work"))["stdout"] == f"{len(secret)} [redacted]"
    assert secret.encode() not in log


async def test_a_failing_command_fails_the_run_naming_the_exit_code(stack: Stack) -> None:
    run_id = await stack.engine.submit(one_task("failing", "shell", {"command": "exit 3"}, []))
    view = await stack.engine.wait(run_id, timeout=15)
    assert view["status"] == ph.FAILED
    assert "exited with code 3" in task(view, "work")["message"]


async def test_cancel_kills_the_running_command_and_the_run_ends_cancelled(stack: Stack, tmp_path: Path) -> None:
    pid_file = tmp_path / "pids"
    config = {"command": f"sleep 30 & echo $$ $! > {pid_file}; wait; echo finished"}
    run_id = await stack.engine.submit(one_task("cancelled", "shell", config, []))
    deadline = time.monotonic() + 15
    while not (pid_file.exists() and len(pid_file.read_text().split()) == 2):
        assert time.monotonic() < deadline, "the command never started"
        await asyncio.sleep(0.05)
    pids = [int(p) for p in pid_file.read_text().split()]
    await stack.engine.cancel(run_id)
    view = await stack.engine.wait(run_id, timeout=15)
    assert view["status"] == ph.CANCELLED and task(view, "work")["status"] == ph.CANCELLED
    deadline = time.monotonic() + 10
    while [pid for pid in pids if running(pid)]:
        assert time.monotonic() < deadline, f"still running after cancel: {[p for p in pids if running(p)]}"
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)  # a late report of the killed command would land now
    after = await stack.engine.get(run_id)
    assert task(after, "work")["status"] == ph.CANCELLED and not outputs(task(after, "work"))


async def test_a_task_timeout_kills_the_running_command(stack: Stack, tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    document = one_task("timed-out", "shell", {"command": f"echo $$ > {pid_file}; exec sleep 30"}, [])
    document["spec"]["templates"][1]["task"]["timeout"] = "1s"
    run_id = await stack.engine.submit(document)
    view = await stack.engine.wait(run_id, timeout=15)
    assert task(view, "work")["status"] == ph.TIMEOUT
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while running(pid):
        assert time.monotonic() < deadline, "the command outlived its task's timeout"
        await asyncio.sleep(0.05)


async def test_cancel_ends_a_sleep_at_once(stack: Stack) -> None:
    run_id = await stack.engine.submit(one_task("sleeping", "sleep", {"duration": "30s"}, []))
    await until(stack, run_id, lambda v: any(t["status"] == ph.RUNNING for t in v["tasks"] if t["taskName"] == "work"))
    started = time.monotonic()
    await stack.engine.cancel(run_id)
    view = await stack.engine.wait(run_id, timeout=5)
    assert view["status"] == ph.CANCELLED and time.monotonic() - started < 5
    assert stack.pool is not None
    deadline = time.monotonic() + 5
    while stack.pool.active:  # the worker let go of the sleeping task
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)


async def test_a_python_callable_gets_the_inputs(stack: Stack) -> None:
    config = {"callable": "json:dumps"}
    inputs = [{"name": "obj", "value": {"a": 1}}, {"name": "sort-keys", "value": True}]
    run_id = await stack.engine.submit(one_task("python", "python", config, inputs))
    view = await stack.engine.wait(run_id, timeout=15)
    assert view["status"] == ph.SUCCEEDED, view["message"]
    assert outputs(task(view, "work")) == {"result": '{"a": 1}'}


@pytest.mark.parametrize(("approved", "published"), [(True, "published app-1.4.0.tar.gz"), (False, None)])
async def test_approval_example_waits_for_its_resume(stack: Stack, approved: bool, published: str | None) -> None:
    run_id = await stack.engine.submit((EXAMPLES / "approval.json").read_text())
    view = await until(stack, run_id, lambda v: any(t["status"] == ph.SUSPENDED for t in v["tasks"]))
    waiting = task(view, "approve")
    assert waiting["message"].startswith("approve release 1.4.0: aether-es resume RUN TASK")
    await asyncio.sleep(0.2)
    assert (await stack.engine.get(run_id))["status"] == ph.RUNNING  # nothing moves until someone decides
    await stack.engine.resume(run_id, waiting["runID"], {"approved": approved})
    view = await stack.engine.wait(run_id, timeout=15)
    assert view["status"] == ph.SUCCEEDED, view["message"]
    assert outputs(task(view, "approve")) == {"approved": approved}
    publish = task(view, "publish")
    assert publish["status"] == (ph.SUCCEEDED if approved else ph.SKIPPED)
    assert outputs(publish).get("stdout") == published


def run_example(path: Path, state: Path) -> dict[str, Any]:
    done = aether("run", str(path), "--state-dir", str(state), "--timeout", "30", "--json", timeout=60)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    view: dict[str, Any] = json.loads(done.stdout)
    return view


def test_shell_pipeline_example_runs_from_the_command_line(tmp_path: Path) -> None:
    view = run_example(EXAMPLES / "shell-pipeline.json", tmp_path / "state")
    assert outputs(view) == {"summary": "13 words, most common: the"}


@pytest.fixture
def inventory_server() -> Iterator[int]:
    handler = partial(SimpleHTTPRequestHandler, directory=str(EXAMPLES / "data"))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd.server_address[1]
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_http_loop_example_runs_from_the_command_line(tmp_path: Path, inventory_server: int) -> None:
    document = json.loads((EXAMPLES / "http-loop.json").read_text())
    [url] = document["spec"]["arguments"]["parameters"]
    assert url["value"] == "http://127.0.0.1:8765/inventory.json"  # what the README's http.server serves
    url["value"] = f"http://127.0.0.1:{inventory_server}/inventory.json"
    path = tmp_path / "http-loop.json"
    path.write_text(json.dumps(document))
    view = run_example(path, tmp_path / "state")
    assert outputs(view) == {"lines": ["apples: 6", "pears: 15", "plums: 10"], "total": "31"}


def test_approval_example_is_resumed_from_the_command_line(tmp_path: Path) -> None:
    process, url = serve(tmp_path / "state", "--workers", "2")
    try:
        submitted = aether("submit", str(EXAMPLES / "approval.json"), "--nats", url)
        assert submitted.returncode == 0, submitted.stderr
        run_id = submitted.stdout.strip()
        deadline = time.monotonic() + 20
        while True:
            got = aether("get", run_id, "--nats", url, "--json")
            view = json.loads(got.stdout)
            if task_or_none(view, "approve", ph.SUSPENDED):
                break
            assert time.monotonic() < deadline, got.stdout
            time.sleep(0.2)
        resumed = aether("resume", run_id, f"{run_id}-3", "--payload", '{"approved": true}', "--nats", url)
        assert resumed.returncode == 0, resumed.stderr
        while view["status"] not in ph.TERMINAL:
            assert time.monotonic() < deadline, view
            time.sleep(0.2)
            view = json.loads(aether("get", run_id, "--nats", url, "--json").stdout)
        assert view["status"] == ph.SUCCEEDED
        assert outputs(view) == {"approved": True, "published": "published app-1.4.0.tar.gz"}
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def task_or_none(view: dict[str, Any], name: str, phase: str) -> bool:
    return any(t["taskName"] == name and t["status"] == phase for t in view.get("tasks", []))
