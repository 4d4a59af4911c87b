"""Through the whole system: what a workflow's values hold never runs as code on a worker.

A hostile argument reaches a shell command as text, a `python` callable outside the worker's allowed
modules is refused, an argument whose text names a secret input stays that text, and a secret a command
prints encoded is scrubbed from what the run records.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from aether_es.adapters.nats.server import EmbeddedNatsServer
from aether_es.adapters.secrets import EnvSecretProvider
from aether_es.model import phases as ph
from aether_es.runtime.stack import Stack, StackOptions, open_stack
from aether_es.worker.redaction import REDACTED

SECRET = "hunter2-injection-probe"
TOKEN_REF = {"secretKeyRef": {"name": "vault", "key": "api"}}


def workflow(executor: dict[str, Any], argument: str, *, token: bool = False) -> dict[str, Any]:
    inputs: list[dict[str, Any]] = [{"name": "p", "type": "string"}]
    if token:
        inputs.append({"name": "token", "valueFrom": TOKEN_REF})
    return {
        "apiVersion": "aether/v1",
        "kind": "Workflow",
        "metadata": {"name": "probe"},
        "spec": {
            "entrypoint": "main",
            "arguments": {"parameters": [{"name": "p", "value": argument}]},
            "templates": [
                {
                    "dag": {
                        "name": "main",
                        "tasks": [
                            {
                                "name": "work",
                                "template": "work",
                                "arguments": {
                                    "parameters": [{"name": "p", "valueFrom": {"parameter": "workflow.parameters.p"}}]
                                },
                            }
                        ],
                    }
                },
                {"task": {"name": "work", "inputs": {"parameters": inputs}, "executor": executor}},
            ],
        },
    }


def shout(p: str) -> str:
    """A function of an allowed module."""
    return p.upper()


@pytest_asyncio.fixture
async def stack(nats_server: EmbeddedNatsServer, tmp_path: Path) -> AsyncIterator[Stack]:
    opened = await open_stack(
        StackOptions(
            nats_url=nats_server.url,
            state_dir=tmp_path / "state",
            workers=2,
            allowed_modules=(__name__,),
            secrets=EnvSecretProvider(environ={"AETHER_SECRET_VAULT_API": SECRET}),
        )
    )
    try:
        yield opened
    finally:
        await opened.close()


async def work(stack: Stack, document: dict[str, Any]) -> dict[str, Any]:
    run_id = await stack.engine.submit(document)
    view = await stack.engine.wait(run_id, timeout=20)
    record: dict[str, Any] = next(t for t in view["tasks"] if t["taskName"] == "work")
    return record


def outputs(record: dict[str, Any]) -> dict[str, Any]:
    return {p["name"]: p.get("value") for p in (record.get("outputs") or {}).get("parameters") or []}


@pytest.mark.parametrize(
    "value", ["'; touch {target}; '", "$(touch {target})", '"; touch {target}; "', "a\ntouch {target}"]
)
async def test_a_hostile_argument_reaches_the_shell_as_text(stack: Stack, tmp_path: Path, value: str) -> None:
    target = tmp_path / "pwned"
    argument = value.format(target=target)
    command = "echo '{{inputs.parameters.p}}'; echo {{inputs.parameters.p}}; echo \"{{inputs.parameters.p}}\""
    record = await work(stack, workflow({"type": "shell", "config": {"command": command}}, argument))
    assert record["status"] == ph.SUCCEEDED, record["message"]
    assert outputs(record)["stdout"] == "\n".join([argument] * 3)
    assert not target.exists()


async def test_a_command_that_is_only_a_value_is_refused(stack: Stack) -> None:
    record = await work(stack, workflow({"type": "shell", "config": {"command": "{{inputs.parameters.p}}"}}, "id"))
    assert record["status"] == ph.ERROR
    assert "config.command must not be only a placeholder" in record["message"]


async def test_python_runs_allowed_modules_only(stack: Stack) -> None:
    refused = await work(stack, workflow({"type": "python", "config": {"callable": "os:system"}}, "id"))
    assert refused["status"] == ph.ERROR
    assert "module 'os'" in refused["message"] and "--allow-module os" in refused["message"]
    allowed = await work(stack, workflow({"type": "python", "config": {"callable": f"{__name__}:shout"}}, "x"))
    assert allowed["status"] == ph.SUCCEEDED and outputs(allowed) == {"result": "X"}


async def test_an_argument_naming_a_secret_input_is_never_filled_with_the_secret(stack: Stack) -> None:
    config = {
        "command": 'echo "{{inputs.parameters.p}}|$1|$FROM_ENV|$AUTH"',
        "args": ["{{inputs.parameters.p}}"],
        "env": {"FROM_ENV": "{{inputs.parameters.p}}", "AUTH": "Bearer {{inputs.parameters.token}}"},
    }
    placeholder = "{{inputs.parameters.token}}"
    record = await work(stack, workflow({"type": "shell", "config": config}, placeholder, token=True))
    assert record["status"] == ph.SUCCEEDED, record["message"]
    # The author's own placeholder of the secret is filled (and scrubbed); the argument's text stays text.
    assert outputs(record)["stdout"] == f"{placeholder}|{placeholder}|{placeholder}|Bearer {REDACTED}"


async def test_a_secret_printed_encoded_is_scrubbed(stack: Stack) -> None:
    command = (
        'printf "%s" "$T" | base64; printf "%s" "$T" | tr a-z A-Z; echo; printf "%s" "$T" | od -An -tx1 | tr -d " \\n"'
    )
    config = {"command": command, "env": {"T": "{{inputs.parameters.token}}"}}
    record = await work(stack, workflow({"type": "shell", "config": config}, "x", token=True))
    assert record["status"] == ph.SUCCEEDED, record["message"]
    assert outputs(record)["stdout"] == "\n".join([REDACTED] * 3)
    assert base64.b64encode(SECRET.encode()).decode() not in str(record)
