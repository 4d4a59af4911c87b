"""docs/api.md publishes the JSON Schemas generated from the API's models, and must keep up with them."""

from __future__ import annotations

from aether_es.api import schema
from aether_es.api.messages import OPERATIONS


def test_docs_api_md_is_up_to_date() -> None:
    current = schema.DOC.read_text()
    assert schema.render(current) == current, "docs/api.md is out of date: run python -m aether_es.api.schema"
    assert schema.main(["--check"]) == 0


def test_every_operation_has_request_and_reply_schemas_in_the_docs() -> None:
    spec = schema.schemas()
    assert set(spec["operations"]) == set(OPERATIONS)
    submit = spec["operations"]["runs.submit"]
    assert submit["subject"] == "aether.api.v1.runs.submit"
    assert set(submit["request"]["properties"]) == {"document", "idempotencyKey", "actor", "reason", "strict"}
    assert submit["request"]["required"] == ["document"]
    assert set(spec["error"]["$defs"]["ErrorDetail"]["properties"]) == {"code", "message", "field"}
    current = schema.DOC.read_text()
    for operation in OPERATIONS:
        assert f"### `{operation}`" in current


def test_a_changed_model_makes_the_docs_stale() -> None:
    current = schema.DOC.read_text()
    start = current.index(schema.BEGIN)
    stale = current[:start] + current[start:].replace('"idempotencyKey"', '"idempotency_key"', 1)
    assert schema.render(stale) == current != stale
