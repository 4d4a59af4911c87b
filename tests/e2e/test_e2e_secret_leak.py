"""A secret used by a workflow appears nowhere but in the assignment its task receives.

The run binds a secret into a task's input, passes that task's (echoed) outputs downstream, tries to
export the secret as a DAG output, fires hooks, and has a second task whose secret is missing (it fails,
naming the secret). Then the whole run-history stream, every view, every hook event, every error report and
every log line are searched.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import orjson
import pytest

from aether_es.adapters.nats.server import EmbeddedNatsServer
from aether_es.adapters.recording import RecordingErrorSink, RecordingNotifier
from aether_es.adapters.secrets import EnvSecretProvider
from aether_es.runtime.stack import StackOptions, open_stack

SECRET = "hunter2-very-secret-token"

SECRET_REF = {"secretKeyRef": {"name": "vault", "key": "api"}}
MISSING_REF = {"secretKeyRef": {"name": "vault", "key": "absent"}}

WORKFLOW: dict[str, Any] = {
    "apiVersion": "aether/v1",
    "kind": "Workflow",
    "metadata": {"name": "secret-probe"},
    "spec": {
        "entrypoint": "main",
        "hooks": {"onStart": {"template": "use"}, "onExit": {"template": "use"}},
        "templates": [
            {
                "dag": {
                    "name": "main",
                    "outputs": {"parameters": [{"name": "leak", "valueFrom": SECRET_REF}]},
                    "tasks": [
                        {"name": "use", "template": "use", "hooks": {"onSuccess": {"template": "use"}}},
                        {
                            "name": "after",
                            "template": "after",
                            "dependencies": ["use"],
                            "arguments": {
                                "parameters": [
                                    {"name": "copied", "valueFrom": {"parameter": "tasks.use.outputs.parameters.token"}}
                                ]
                            },
                        },
                        {"name": "missing", "template": "missing"},
                    ],
                }
            },
            {
                "task": {
                    "name": "use",
                    "inputs": {"parameters": [{"name": "token", "valueFrom": SECRET_REF}]},
                    "executor": {"type": "echo"},
                }
            },
            {"task": {"name": "after", "inputs": {"parameters": [{"name": "copied"}]}, "executor": {"type": "echo"}}},
            {
                "task": {
                    "name": "missing",
                    "inputs": {"parameters": [{"name": "nothing", "valueFrom": MISSING_REF}]},
                    "executor": {"type": "echo"},
                }
            },
        ],
    },
}


async def test_no_secret_anywhere(
    nats_server: EmbeddedNatsServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    notifier, errors = RecordingNotifier(), RecordingErrorSink()
    stack = await open_stack(
        StackOptions(
            nats_url=nats_server.url,
            state_dir=tmp_path,
            notifier=notifier,
            error_sink=errors,
            secrets=EnvSecretProvider(environ={"AETHER_SECRET_VAULT_API": SECRET}),
        )
    )
    try:
        run_id = await stack.engine.submit(WORKFLOW)
        view = await stack.engine.wait(run_id, timeout=20)
        history = b"".join([orjson.dumps(stored.commit.commit_id) async for stored in stack.store.load_all()])
        raw = b""
        async for stored in stack.store.load_all():
            for envelope in stored.commit.envelopes:
                raw += envelope.event.model_dump_json().encode()
        rebuilt = (await stack.engine.rebuild(run_id)).to_dict()
    finally:
        await stack.close()

    assert view["status"] == "Error", view  # the task whose secret is missing cannot run
    tasks = {t["taskName"]: t for t in view["tasks"]}
    assert tasks["missing"]["status"] == "Error"
    assert tasks["missing"]["message"].startswith('input "nothing": secret "vault" key "absent" not found')
    assert tasks["after"]["status"] == "Succeeded"
    echoed = {p["name"]: p.get("value") for p in tasks["use"]["outputs"]["parameters"]}
    assert echoed["token"] == "[redacted]"  # the executor had the value, and the worker scrubbed it
    assert "leak" not in {p["name"] for p in (view["outputs"] or {}).get("parameters", [])}

    places = {
        "event log": raw + history,
        "live view": orjson.dumps(view),
        "rebuilt view": orjson.dumps(rebuilt),
        "hook events": repr(notifier.events).encode(),
        "error reports": repr(errors.reports).encode(),
        "log lines": caplog.text.encode(),
    }
    for place, content in places.items():
        assert SECRET.encode() not in content, f"the secret leaked into the {place}"
