"""Submits over the document limits are refused before anything is claimed or stored."""

from __future__ import annotations

from typing import Any

import pytest

from aether_es import Client
from aether_es.errors import ValidationError
from aether_es.runtime.stack import Stack


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
