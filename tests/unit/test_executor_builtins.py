"""The built-in executors called directly with assignments: success, failure and error paths, caps."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from support.assignments import assignment

from aether_es.ports.wire import TaskResult, WireParameter
from aether_es.worker.executors.await_ import AwaitExecutor
from aether_es.worker.executors.http import HttpExecutor
from aether_es.worker.executors.python import PythonExecutor
from aether_es.worker.executors.shell import ShellExecutor
from aether_es.worker.executors.sleep import SleepExecutor


def outputs(result: TaskResult) -> dict[str, Any]:
    return {p.name: p.value for p in result.parameters}


# --- shell ---------------------------------------------------------------------------------------------


async def test_shell_string_command_runs_in_sh_with_args_env_and_cwd(tmp_path: Path) -> None:
    config = {
        "command": 'echo "$1-$2 $GREETING"; pwd; echo oops >&2',
        "args": ["a", 2],
        "env": {"GREETING": "hi"},
        "cwd": str(tmp_path),
    }
    result = await ShellExecutor().execute(assignment("shell", config))
    assert result.code == 0, result.message
    assert outputs(result) == {
        "stdout": f"a-2 hi\n{tmp_path}",
        "stderr": "oops",
        "exitCode": 0,
        "truncated": [],
    }


async def test_shell_list_command_runs_without_a_shell() -> None:
    result = await ShellExecutor().execute(assignment("shell", {"command": ["echo", "$HOME"], "args": ["*", [1, "a"]]}))
    assert result.code == 0
    assert outputs(result)["stdout"] == '$HOME * [1, "a"]'


async def test_shell_environment_is_minimal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AETHER_TEST_LEAK", "visible")
    result = await ShellExecutor().execute(assignment("shell", {"command": 'echo "[$AETHER_TEST_LEAK]"'}))
    assert outputs(result)["stdout"] == "[]"


async def test_shell_config_placeholders_of_secret_inputs_are_filled_by_the_worker() -> None:
    env = {"TOKEN": "Bearer {{inputs.parameters.token}}", "OTHER": "{{inputs.parameters.token}}"}
    secret = assignment("shell", {"command": 'echo "$TOKEN|$OTHER"', "env": env})
    secret.templates = [["env", "TOKEN"]]  # the engine lists where it left a secret's placeholder
    secret.inputs.append(WireParameter(name="token", value="abc", secret=True))
    result = await ShellExecutor().execute(secret)
    assert outputs(result)["stdout"] == "Bearer abc|{{inputs.parameters.token}}"  # only the listed string


async def test_shell_nonzero_exit_is_failed_with_outputs() -> None:
    result = await ShellExecutor().execute(assignment("shell", {"command": "echo partial; exit 7"}))
    assert result.code == 2
    assert "exited with code 7" in result.message
    assert outputs(result)["exitCode"] == 7 and outputs(result)["stdout"] == "partial"


async def test_shell_command_that_cannot_start_is_error(tmp_path: Path) -> None:
    missing = await ShellExecutor().execute(assignment("shell", {"command": ["/no/such/binary"]}))
    assert missing.code == 3 and "/no/such/binary" in missing.message
    bad_cwd = await ShellExecutor().execute(assignment("shell", {"command": "true", "cwd": str(tmp_path / "nope")}))
    assert bad_cwd.code == 3


@pytest.mark.parametrize(
    ("config", "field"),
    [({}, "config.command"), ({"command": 5}, "config.command"), ({"command": "true", "args": "x"}, "config.args")],
)
async def test_shell_bad_config_is_error_naming_the_field(config: dict[str, Any], field: str) -> None:
    result = await ShellExecutor().execute(assignment("shell", config))
    assert result.code == 3 and field in result.message


async def test_shell_output_is_capped_per_stream_and_noted() -> None:
    config = {"command": "head -c 100000 /dev/zero | tr '\\0' x; echo -n ab >&2", "maxOutputBytes": 10}
    result = await ShellExecutor().execute(assignment("shell", config))
    assert result.code == 0
    got = outputs(result)
    assert got["stdout"] == "x" * 10 and got["stderr"] == "ab"
    assert got["truncated"] == ["stdout"]


async def test_shell_cancel_kills_the_process_group_and_reraises(tmp_path: Path) -> None:
    pid_file = tmp_path / "pids"
    # The shell starts a child (the sleep) and reports both pids; the group kill must reach the child too.
    command = f"sleep 30 & echo $$ $! > {pid_file}; wait"
    task = asyncio.create_task(ShellExecutor().execute(assignment("shell", {"command": command})))
    for _ in range(200):
        if pid_file.exists() and pid_file.read_text().strip():
            break
        await asyncio.sleep(0.01)
    pids = [int(p) for p in pid_file.read_text().split()]
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not [pid for pid in pids if running(pid)]


def running(pid: int) -> bool:
    """Whether the process exists and is not a zombie (an orphan waits for a reaper that may never come)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


# --- http ----------------------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return

    def _reply(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Seen-Auth", self.headers.get("Authorization", ""))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path == "/items":
            self._reply(200, json.dumps({"items": [1, 2, 3]}).encode(), "application/json; charset=utf-8")
        elif self.path == "/text":
            self._reply(200, b"plain words", "text/plain")
        elif self.path == "/slow":
            threading.Event().wait(2)
            self._reply(200, b"late", "text/plain")
        else:
            self._reply(404, b'{"error": "missing"}', "application/json")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        echoed = {"body": self.rfile.read(length).decode(), "type": self.headers.get("Content-Type")}
        self._reply(201, json.dumps(echoed).encode(), "application/json")


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


async def test_http_get_json_decodes_the_body(server: str) -> None:
    config = {"url": f"{server}/items", "headers": {"Authorization": "Bearer t"}}
    result = await HttpExecutor().execute(assignment("http", config))
    assert result.code == 0, result.message
    got = outputs(result)
    assert got["status"] == 200 and got["body"] == {"items": [1, 2, 3]} and got["truncated"] is False
    assert got["headers"]["X-Seen-Auth"] == "Bearer t"


async def test_http_text_body_and_cap(server: str) -> None:
    result = await HttpExecutor().execute(assignment("http", {"url": f"{server}/text", "maxBodyBytes": 5}))
    assert outputs(result)["body"] == "plain" and outputs(result)["truncated"] is True


async def test_http_post_sends_a_json_value_as_json(server: str) -> None:
    config = {"method": "post", "url": f"{server}/echo", "body": {"n": 1}, "acceptedStatuses": [201]}
    result = await HttpExecutor().execute(assignment("http", config))
    assert result.code == 0, result.message
    assert outputs(result)["body"] == {"body": '{"n": 1}', "type": "application/json"}


async def test_http_unaccepted_status_is_failed_with_the_status(server: str) -> None:
    result = await HttpExecutor().execute(assignment("http", {"url": f"{server}/missing"}))
    assert result.code == 2 and "returned status 404, not one of 2xx" in result.message
    assert outputs(result)["body"] == {"error": "missing"}
    accepted = await HttpExecutor().execute(assignment("http", {"url": f"{server}/x", "acceptedStatuses": ["4xx"]}))
    assert accepted.code == 0


async def test_http_network_error_is_error() -> None:
    result = await HttpExecutor().execute(assignment("http", {"url": "http://127.0.0.1:1/", "timeout": "2s"}))
    assert result.code == 3 and "127.0.0.1:1" in result.message


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"url": "ftp://x"}, "config.url"),
        ({"url": "http://x", "acceptedStatuses": ["ok"]}, "acceptedStatuses"),
        ({"url": "http://x", "timeout": "soon"}, "config.timeout"),
    ],
)
async def test_http_bad_config_is_error_naming_the_field(config: dict[str, Any], field: str) -> None:
    result = await HttpExecutor().execute(assignment("http", config))
    assert result.code == 3 and field in result.message


async def test_http_cancel_stops_waiting(server: str) -> None:
    task = asyncio.create_task(HttpExecutor().execute(assignment("http", {"url": f"{server}/slow"})))
    await asyncio.sleep(0.1)
    task.cancel()
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert loop.time() - started < 0.5


# --- python --------------------------------------------------------------------------------------------


def add(a: int, b: int) -> dict[str, int]:
    return {"sum": a + b}


async def double(x: int) -> int:
    await asyncio.sleep(0)
    return 2 * x


def explode(reason: str) -> None:
    raise RuntimeError(reason)


MODULE = __name__


async def test_python_sync_function_dict_becomes_outputs() -> None:
    result = await PythonExecutor((MODULE,)).execute(assignment("python", {"callable": f"{MODULE}:add"}, a=2, b=3))
    assert result.code == 0 and outputs(result) == {"sum": 5}


def scale(base_value: int, by: int) -> int:
    return base_value * by


async def test_python_dashed_input_names_become_underscored_keywords() -> None:
    inputs = assignment("python", {"callable": f"{MODULE}:scale"}, by=3)
    inputs.inputs.append(WireParameter(name="base-value", value=5))
    result = await PythonExecutor((MODULE,)).execute(inputs)
    assert result.code == 0 and outputs(result) == {"result": 15}


async def test_python_async_function_other_value_is_result() -> None:
    result = await PythonExecutor((MODULE,)).execute(assignment("python", {"callable": f"{MODULE}:double"}, x=21))
    assert result.code == 0 and outputs(result) == {"result": 42}


async def test_python_raising_is_failed_with_the_message() -> None:
    result = await PythonExecutor((MODULE,)).execute(
        assignment("python", {"callable": f"{MODULE}:explode"}, reason="no")
    )
    assert result.code == 2 and result.message == "RuntimeError: no"


@pytest.mark.parametrize("path", ["no_such_module_xyz:f", f"{MODULE}:missing", "nocolon"])
async def test_python_bad_import_path_is_error_naming_it(path: str) -> None:
    result = await PythonExecutor((MODULE, "no_such_module_xyz")).execute(assignment("python", {"callable": path}))
    assert result.code == 3 and path in result.message


async def test_python_inputs_that_do_not_fit_are_error() -> None:
    result = await PythonExecutor((MODULE,)).execute(assignment("python", {"callable": f"{MODULE}:add"}, a=1))
    assert result.code == 3 and "'b'" in result.message


# --- await and sleep -----------------------------------------------------------------------------------


async def test_await_suspends_with_its_message_then_succeeds_with_the_payload() -> None:
    first = await AwaitExecutor().execute(assignment("await", {"message": "approve the deploy"}, env="prod"))
    assert first.code == 1 and first.message == "approve the deploy"
    resumed = assignment("await", {"message": "approve the deploy"}, env="prod", approved=True)
    resumed.resumed_with = ["approved"]
    second = await AwaitExecutor().execute(resumed)
    assert second.code == 0 and outputs(second) == {"approved": True}


async def test_sleep_waits_then_succeeds_and_config_wins_over_input() -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    result = await SleepExecutor().execute(assignment("sleep", {"duration": "50ms"}, duration="10s"))
    assert result.code == 0 and 0.04 <= loop.time() - started < 1
    from_input = await SleepExecutor().execute(assignment("sleep", None, duration="10ms"))
    assert from_input.code == 0


async def test_sleep_bad_duration_is_error() -> None:
    result = await SleepExecutor().execute(assignment("sleep", {"duration": "forever"}))
    assert result.code == 3 and "config.duration" in result.message
    missing = await SleepExecutor().execute(assignment("sleep"))
    assert missing.code == 3 and "duration" in missing.message


async def test_sleep_cancel_ends_the_wait() -> None:
    task = asyncio.create_task(SleepExecutor().execute(assignment("sleep", {"duration": "30s"})))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 1)
