"""The hostile-input suite: a real `aether-es serve` takes what an attacker or a careless user sends.

Generated API requests to every operation, mangled documents, arbitrary `when` expressions, shell values
built to escape their quotes, and values that try to reach a secret. Each answer must be a clear outcome
(a run, or an error other than `internal`), no value may run code or reveal the secret, and at the end the
service must still be up and a small run beside all of it must finish. The last test prints how many
inputs were tried.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import nats
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nats.aio.client import Client as Nats
from support.cli import ROOT

from aether_es import Client
from aether_es.model import phases as ph
from aether_es.worker.redaction import REDACTED

T = TypeVar("T")

SECRET = "S3cr3t-h0stile-t0ken"
TRIED: Counter[str] = Counter()
"""How many inputs of each kind the suite sent, printed by the last test."""

OPERATIONS = (
    "runs.submit",
    "runs.get",
    "runs.tasks",
    "runs.list",
    "runs.resume",
    "runs.cancel",
    "runs.retry",
    "crons.submit",
    "crons.get",
    "crons.update",
    "crons.delete",
    "crons.list",
    "workers.list",
    "engines.list",
)
"""Every API operation but `runs.purge`, which would remove the runs the other tests follow."""

ERROR_CODES = {"invalid_argument", "not_found", "invalid_state", "not_supported"}
"""What a bad request may be answered with: never `internal`, never `unavailable` on a healthy server."""

TERMINAL = {ph.SUCCEEDED, ph.FAILED, ph.ERROR}
SETTINGS = settings(deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


def _task(name: str, executor: dict[str, Any], inputs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"task": {"name": name, "inputs": {"parameters": inputs or []}, "executor": executor}}


def _workflow(name: str, *templates: dict[str, Any]) -> dict[str, Any]:
    entry = next(iter(templates[0].values()))["name"]
    return {
        "apiVersion": "aether/v1",
        "kind": "Workflow",
        "metadata": {"name": name},
        "spec": {"entrypoint": entry, "templates": list(templates)},
    }


SMALL = _workflow("small", _task("main", {"type": "echo"}, [{"name": "x", "value": 1}]))


class Remote:
    """A client of the served system on an event loop of its own, so hypothesis can drive it synchronously."""

    def __init__(self, url: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.nc: Nats = self.call(nats.connect(url))
        self.client: Client = self.call(Client.connect(url))

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def request(self, operation: str, body: bytes) -> dict[str, Any]:
        """The API's JSON answer to `body`, which must be a JSON object."""
        msg = self.call(self.nc.request(f"aether.api.v1.{operation}", body, timeout=30))
        answer = orjson.loads(msg.data)
        assert isinstance(answer, dict), answer
        return answer

    def finished(self, run_id: str, timeout: float = 60) -> dict[str, Any]:
        """The run's view once it is terminal."""
        view = self.call(self.client.wait(run_id, timeout), timeout + 5)
        assert view["status"] in TERMINAL, (view["status"], view["message"])
        return view

    def close(self) -> None:
        self.call(self.client.close())
        self.call(self.nc.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[subprocess.Popen[str], Remote]]:
    """`aether-es serve --workers 4` with one secret in its environment, and a client of it."""
    state = tmp_path_factory.mktemp("hostile") / ".aether"
    env = {**os.environ, "AETHER_SECRET_VAULT_TOKEN": SECRET}
    process = subprocess.Popen(
        [sys.executable, "-m", "aether_es.cli.main", "serve", "--state-dir", str(state), "--workers", "4"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    assert "serving on" in line, line
    remote = Remote(line.split("serving on ", 1)[1].split(" ", 1)[0])
    try:
        yield process, remote
    finally:
        remote.close()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def _dumps(value: Any) -> bytes:
    """JSON as any client may write it: integers of any size included, which orjson would not write."""
    return json.dumps(value).encode()


def _clear(answer: dict[str, Any]) -> None:
    """A success, or an error a client can act on, with a message."""
    error = answer.get("error")
    if error is not None:
        assert error["code"] in ERROR_CODES, error
        assert error["message"], error


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
FIELDS = st.sampled_from(
    [
        *("runID", "taskRunID", "document", "payload", "limit", "pageToken"),
        *("status", "labels", "cronWorkflowID", "runIDs", "actor"),
    ]
)


@given(
    operation=st.sampled_from(OPERATIONS),
    body=st.one_of(
        st.binary(max_size=64),
        JSON.map(_dumps),
        st.dictionaries(FIELDS, JSON, max_size=4).map(_dumps),
    ),
)
@SETTINGS
def test_any_request_gets_a_clear_answer(
    system: tuple[subprocess.Popen[str], Remote], operation: str, body: bytes
) -> None:
    TRIED["API requests"] += 1
    _clear(system[1].request(operation, body))


def _mutations(document: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """The document with one value somewhere inside replaced by arbitrary JSON."""

    def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        found = [prefix]
        if isinstance(value, dict):
            for key, item in value.items():
                found += paths(item, (*prefix, key))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                found += paths(item, (*prefix, index))
        return found

    def replaced(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
        mutated = copy.deepcopy(document)
        if not path:
            return {"document": value}
        target: Any = mutated
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value
        return mutated

    return st.builds(replaced, st.sampled_from(paths(document)[1:]), JSON)


@given(document=_mutations(SMALL))
@SETTINGS
def test_mangled_documents_are_refused_or_run(system: tuple[subprocess.Popen[str], Remote], document: Any) -> None:
    TRIED["documents"] += 1
    remote = system[1]
    answer = remote.request("runs.submit", _dumps({"document": document}))
    _clear(answer)
    if "runID" in answer:
        for operation in ("runs.get", "runs.cancel"):
            _clear(remote.request(operation, orjson.dumps({"runID": answer["runID"]})))


EXPRESSION_ATOMS = st.sampled_from(
    ["1", "0", "1e308", "10", "'a'", "true", "false", "inputs.parameters.x", "==", "!=", "*", "+", "**", "(", ")",
     "and", "or", "not", "<", ">", "[", "]", ",", "len", "__class__", ".", "'" , "{{", "}}", " "]
)  # fmt: skip


@given(expression=st.one_of(st.lists(EXPRESSION_ATOMS, max_size=12).map(" ".join), st.text(max_size=60)))
@settings(SETTINGS, max_examples=40)
def test_any_when_expression_ends_its_run(system: tuple[subprocess.Popen[str], Remote], expression: str) -> None:
    TRIED["expressions"] += 1
    remote = system[1]
    document = _workflow(
        "when",
        {"dag": {"name": "main", "tasks": [{"name": "gated", "template": "one", "when": expression}]}},
        _task("one", {"type": "echo"}, [{"name": "x", "value": 1}]),
    )
    answer = remote.request("runs.submit", orjson.dumps({"document": document}))
    _clear(answer)
    if "runID" in answer:
        remote.finished(answer["runID"])


HOSTILE_TEXT = st.lists(
    st.sampled_from(["'", '"', "\\", "$(", ")", "`", ";", "&&", "|", "\n", "$HOME", "${PATH}", "*", "?", "~", "#",
                     " ", "-n", "%s", "touch ", "{{inputs.parameters.q}}"])
    | st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=8),
    max_size=10,
).map("".join)  # fmt: skip
"""Text made of shell syntax: every quote, substitution, separator and glob, and placeholders."""

SHELL_COMMANDS = (
    "printf '%s' '{{inputs.parameters.p}}'",
    'printf "%s" "{{inputs.parameters.p}}"',
    "printf %s {{inputs.parameters.p}}",
)
"""The author's three ways of quoting a placeholder; each must print the value as it is."""


@given(values=st.lists(HOSTILE_TEXT, min_size=1, max_size=8), command=st.sampled_from(SHELL_COMMANDS))
@settings(SETTINGS, max_examples=25)
def test_shell_values_are_data(
    system: tuple[subprocess.Popen[str], Remote], tmp_path_factory: pytest.TempPathFactory, values: list[str],
    command: str,
) -> None:  # fmt: skip
    TRIED["shell values"] += len(values)
    remote = system[1]
    marker = tmp_path_factory.mktemp("marker") / "touched"
    values = [value.replace("touch ", f"touch {marker} ") for value in values]
    document = _workflow(
        "shell-values",
        {
            "loop": {
                "name": "main",
                "items": values,
                "body": "say",
                "arguments": {"parameters": [{"name": "p", "value": "{{iterator.item}}"}]},
            }
        },
        _task("say", {"type": "shell", "config": {"command": command}}, [{"name": "p"}, {"name": "q", "value": "Q"}]),
    )
    answer = remote.request("runs.submit", orjson.dumps({"document": document}))
    assert "runID" in answer, answer
    view = remote.finished(answer["runID"])
    assert view["status"] == ph.SUCCEEDED, view["message"]
    printed = {_input(task, "p"): _output(task, "stdout") for task in view["tasks"] if task["templateName"] == "say"}
    assert printed == {value: value.rstrip("\n") for value in values}
    assert not marker.exists()


def _output(task: dict[str, Any], name: str) -> Any:
    return next(p["value"] for p in task["outputs"]["parameters"] if p["name"] == name)


def _input(task: dict[str, Any], name: str) -> Any:
    return next(p["value"] for p in task["inputs"]["parameters"] if p["name"] == name)


PRINT_BOTH = ["printf", "%s|%s", "{{inputs.parameters.p}}", "{{inputs.parameters.token}}"]
"""A command without a shell: the value, then the secret the document itself places."""


@given(argument=HOSTILE_TEXT.map(lambda text: text + "{{inputs.parameters.token}}"))
@settings(SETTINGS, max_examples=15)
def test_values_never_reach_a_secret(system: tuple[subprocess.Popen[str], Remote], argument: str) -> None:
    """A value that names the secret's placeholder stays text: only the document's own placeholders are
    filled, and the secret is in no view, whatever the command prints."""
    TRIED["secret probes"] += 1
    remote = system[1]
    secret_ref = {"secretKeyRef": {"name": "vault", "key": "token"}}
    document = _workflow(
        "secret-probe",
        {
            "dag": {
                "name": "main",
                "tasks": [
                    {"name": "use", "template": "use", "arguments": {"parameters": [{"name": "p", "value": argument}]}}
                ],
            }
        },
        _task(
            "use",
            {"type": "shell", "config": {"command": PRINT_BOTH}},
            [{"name": "p"}, {"name": "token", "valueFrom": secret_ref}],
        ),
    )
    answer = remote.request("runs.submit", orjson.dumps({"document": document}))
    assert "runID" in answer, answer
    view = remote.finished(answer["runID"])
    assert view["status"] == ph.SUCCEEDED, view["message"]
    assert SECRET not in orjson.dumps(view).decode()
    task = next(task for task in view["tasks"] if task["templateName"] == "use")
    assert _output(task, "stdout") == f"{argument}|{REDACTED}"


def test_the_service_stayed_up(
    system: tuple[subprocess.Popen[str], Remote], capsys: pytest.CaptureFixture[str]
) -> None:
    process, remote = system
    assert process.poll() is None, "serve exited"
    started = time.monotonic()
    answer = remote.request("runs.submit", orjson.dumps({"document": SMALL}))
    view = remote.finished(answer["runID"], timeout=30)
    seconds = time.monotonic() - started
    assert view["status"] == ph.SUCCEEDED
    with capsys.disabled():
        tried = ", ".join(f"{count} {kind}" for kind, count in sorted(TRIED.items()))
        print(f"\nhostile input: tried {tried}; serve stayed up; a small run then took {seconds:.2f} s")
