"""Submits over the document limits are refused before anything is claimed or stored."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from aether_es import Client
from aether_es.adapters.nats.server import EmbeddedNatsServer
from aether_es.api.service import start_api
from aether_es.errors import ApiError, ValidationError
from aether_es.runtime.stack import Stack, StackOptions, open_stack


def workflow(padding: int = 0, depth: int = 0) -> dict[str, Any]:
    nested: Any = "deep"
    for _ in range(depth):
        nested = [nested]
    inputs = [{"name": "greeting", "value": "hi"}]
    if padding:
        inputs.append({"name": "padding", "value": "p" * padding})
    if depth:
        inputs.append({"name": "nested", "value": nested})
    return {
        "apiVersion": "aether/v1",
        "kind": "Workflow",
        "metadata": {"name": "limits"},
        "spec": {
            "entrypoint": "main",
            "templates": [{"task": {"name": "main", "inputs": {"parameters": inputs}, "executor": {"type": "echo"}}}],
        },
    }


async def test_a_7_mb_document_is_refused_and_its_key_stays_free(client: Client, stack: Stack) -> None:
    with pytest.raises(ValidationError) as refused:
        await client.submit(workflow(padding=7_000_000), idempotency_key="big-doc")
    message = str(refused.value)
    assert "the document is 7,000," in message and "over the limit of 4,194,304 bytes" in message
    assert "AETHER_LIMIT_DOCUMENT_BYTES" in message and refused.value.field == "document"
    assert (await client.list()).runs == []
    reply = await client.submit_info(workflow(), idempotency_key="big-doc")
    assert reply.created is True
    view = await stack.engine.wait(reply.run_id, timeout=30)
    assert view["status"] == "Succeeded"
    assert (await stack.engine.state(reply.run_id)).document == workflow()  # the valid one, not the refused


async def test_a_document_nested_too_deeply_is_refused(client: Client) -> None:
    with pytest.raises(ValidationError, match=r"the document's nesting is \d+, over the limit of 64"):
        await client.submit(workflow(depth=80), idempotency_key="deep-doc")
    assert (await client.submit_info(workflow(), idempotency_key="deep-doc")).created is True


async def test_a_7_mb_document_under_a_raised_limit_runs_by_reference(
    client: Client, stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AETHER_LIMIT_DOCUMENT_BYTES", str(16 * 1024 * 1024))
    document = workflow(padding=7_000_000)
    reply = await client.submit_info(document, idempotency_key="raised")
    view = await stack.engine.wait(reply.run_id, timeout=60)
    assert view["status"] == "Succeeded"
    assert (await stack.engine.rebuild(reply.run_id)).document == document


async def test_a_submit_that_fails_for_another_reason_frees_its_key(
    nats_server: EmbeddedNatsServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With every value inline, a 7 MB document makes a first commit over the payload limit: the submit fails
    as internal, and the key it claimed names no run, so it is free for the next submit."""
    monkeypatch.setenv("AETHER_LIMIT_DOCUMENT_BYTES", str(16 * 1024 * 1024))
    monkeypatch.setenv("AETHER_LIMIT_INLINE_VALUE_BYTES", str(32 * 1024 * 1024))
    opened = await open_stack(StackOptions(nats_url=nats_server.url, state_dir=tmp_path, workers=1))
    api = await start_api(opened)
    try:
        async with await Client.connect(opened.connection) as client:
            with pytest.raises(ApiError, match="above the server's max payload"):
                await client.submit(workflow(padding=7_000_000), idempotency_key="failing")
            reply = await client.submit_info(workflow(), idempotency_key="failing")
            assert reply.created is True
            assert (await opened.engine.wait(reply.run_id, timeout=30))["status"] == "Succeeded"
    finally:
        await api.stop()
        await opened.close()
