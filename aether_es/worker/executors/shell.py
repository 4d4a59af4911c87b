"""The `shell` executor: runs a command and reports what it printed and how it exited.

Config (`executor.config`; use `{{inputs.parameters.NAME}}` in any string to take a value from the inputs):

* `command` (required): a string, run with `/bin/sh -c` (then `args` are `$1`, `$2`, ...), or a list of
  strings, run directly without a shell (then `args` are appended). Values reach it as data only: in a
  string, each placeholder becomes a quoted reference to an environment variable holding the value
  (`shell_quoting`); in a list, a word's placeholders are filled, except in the first word, which names
  the program and may hold none. A command that is only a placeholder is refused.
* `args`: a list of strings; other values (numbers, lists, objects) are passed as their JSON text.
* `env`: an object of variables (non-string values as JSON text) added to a minimal environment: the
  worker's `PATH`, `HOME` and `LANG`, nothing else.
* `cwd`: the working directory; by default the attempt's work directory when it has one, else the worker's.
* `maxOutputBytes`: how much of each stream is kept (default 1 MiB); the rest is read and dropped.

Outputs: `stdout` and `stderr` (UTF-8 text, trailing newlines removed), `exitCode` (an int), `truncated`
(the names of the streams that were cut, usually `[]`). Where the worker keeps task logs, each line is also
sent there as it is printed (`aether-es logs`).

Exit 0 is Succeeded; any other exit, or a death by signal, is Failed (code 2) with the outputs kept; a
command that cannot start (not found, not executable, bad `cwd`) is Error (code 3).

The command runs in its own process group. When the attempt is cancelled (run cancel, timeout, worker
stop) the whole group gets SIGTERM, then SIGKILL after `KILL_GRACE` seconds, and the cancellation is
raised again: a killed command never reports a result.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Mapping
from typing import Any, ClassVar

from aether_es.engine.binding import interpolate
from aether_es.model.phases import ResultCode
from aether_es.ports.wire import TaskAssignment, TaskResult
from aether_es.worker.executors.common import (
    ConfigError,
    as_text,
    config_of,
    error,
    inputs_env,
    int_setting,
    object_setting,
    parameters,
    refuse_placeholders,
    refused,
    string_setting,
)
from aether_es.worker.executors.shell_quoting import bind_values
from aether_es.worker.task_log import current_log

SHELL_TYPE = "shell"
DEFAULT_MAX_OUTPUT = 1024 * 1024
KILL_GRACE = 2.0
_CHUNK = 64 * 1024
_INHERITED = ("PATH", "HOME", "LANG")
_DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"


def _words(value: Any, field: str) -> list[str]:
    if not isinstance(value, list):
        raise ConfigError(f"shell: config.{field} must be a list, got {value!r}")
    return [as_text(v) for v in value]


def command_line(config: dict[str, Any], values: Mapping[str, Any]) -> tuple[list[str], dict[str, str]]:
    """The argv to execute and the variables that carry values into it: a string command through /bin/sh, a
    list as it is, `args` after either."""
    command = config.get("command")
    args = _words(config.get("args") or [], "args")
    if isinstance(command, str) and command:
        script, variables = bind_values(command, values)
        return ["/bin/sh", "-c", script, "sh", *args], variables
    if isinstance(command, list) and command and all(isinstance(word, str) for word in command):
        program, *rest = command
        refuse_placeholders(program, "command[0]", SHELL_TYPE)
        return [program, *(as_text(interpolate(word, values)) for word in rest), *args], {}
    raise ConfigError("shell: config.command is required: a string for /bin/sh -c, or a list of strings")


def environment(config: dict[str, Any]) -> dict[str, str]:
    env = {name: os.environ[name] for name in _INHERITED if name in os.environ}
    env.setdefault("PATH", _DEFAULT_PATH)
    env.update(object_setting(config, "env", SHELL_TYPE))
    return env


async def _read_capped(stream: asyncio.StreamReader, limit: int, name: str) -> tuple[bytes, bool]:
    """Up to `limit` bytes of the stream and whether more came; reads to the end so the child never blocks.
    Each chunk also goes to the attempt's task log as it is read, so its lines can be followed live."""
    kept = bytearray()
    cut = False
    task_log = current_log.get()
    while chunk := await stream.read(_CHUNK):
        if task_log is not None:
            await task_log.write(name, chunk)
        room = limit - len(kept)
        if len(chunk) > room:
            cut = True
            chunk = chunk[: max(room, 0)]
        kept += chunk
    return bytes(kept), cut


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


async def _kill_group(process: asyncio.subprocess.Process) -> None:
    """SIGTERM to the group, SIGKILL after the grace (also for members outliving the leader), then reap."""
    _signal_group(process.pid, signal.SIGTERM)
    with contextlib.suppress(TimeoutError, asyncio.CancelledError):
        await asyncio.wait_for(asyncio.shield(process.wait()), KILL_GRACE)
    _signal_group(process.pid, signal.SIGKILL)
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.shield(process.wait())


class ShellExecutor:
    executor_type: ClassVar[str] = SHELL_TYPE

    async def execute(self, assignment: TaskAssignment) -> TaskResult:
        config = config_of(assignment)
        try:
            argv, variables = command_line(config, inputs_env(assignment))
            env = {**environment(config), **variables}
            cwd = string_setting(config, "cwd", SHELL_TYPE) or assignment.workdir or None
            limit = int_setting(config, "maxOutputBytes", SHELL_TYPE, DEFAULT_MAX_OUTPUT)
        except ConfigError as exc:
            return refused(exc, assignment)
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=env,
                cwd=cwd,
                start_new_session=True,
            )
        except OSError as exc:
            return error(f"shell: cannot start {argv[0]!r}: {exc.strerror or exc}")
        assert process.stdout is not None and process.stderr is not None
        try:
            (out, out_cut), (err, err_cut), code = await asyncio.gather(
                _read_capped(process.stdout, limit, "stdout"),
                _read_capped(process.stderr, limit, "stderr"),
                process.wait(),
            )
        except asyncio.CancelledError:
            await _kill_group(process)
            raise
        outputs = {
            "stdout": out.decode("utf-8", "replace").rstrip("\n"),
            "stderr": err.decode("utf-8", "replace").rstrip("\n"),
            "exitCode": code,
            "truncated": [name for name, cut in (("stdout", out_cut), ("stderr", err_cut)) if cut],
        }
        if code == 0:
            return TaskResult(code=ResultCode.SUCCEEDED, parameters=parameters(outputs))
        reason = f"killed by signal {-code}" if code < 0 else f"exited with code {code}"
        return TaskResult(code=ResultCode.FAILED, message=f"shell: command {reason}", parameters=parameters(outputs))
