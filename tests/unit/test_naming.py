"""Every field of the API's requests and replies, of every event type's public record, of the graph JSON and of the
web UI's run views follows one naming convention (`support/naming.py`)."""

from __future__ import annotations

import json
from typing import Any

from support.cli import EXAMPLE
from support.driver import Driver
from support.naming import keys_of, schema_keys, spelling_problems

from aether_es.api.messages import OPERATIONS, wire_name
from aether_es.api.schema import schemas
from aether_es.events.schema import EVENT_CLASSES, feed_schema
from aether_es.history.timeline import Entry
from aether_es.http.run_views import graph_of, timeline_of


def test_the_api_spells_each_concept_one_way() -> None:
    keys = list(schema_keys(schemas()))
    assert {"runID", "taskRunID", "taskRunIDs", "cronWorkflowID", "status", "idempotencyKey"} <= set(keys)
    assert spelling_problems(keys) == []


def event_record_keys() -> list[str]:
    """Every key of every event type's public record (the feed's, `events --json`'s, `history --json`'s)."""
    schema = feed_schema()
    del schema["$defs"]["ResultOutputs"]["properties"]["phase"]  # Aether's Outputs say so (naming.AETHER_NAMES)
    return list(schema_keys(schema))


def test_the_event_records_spell_each_concept_as_the_api_does() -> None:
    keys = event_record_keys()
    assert {"runID", "taskRunID", "cronWorkflowID", "runIDs", "status", "startedAt", "executorType"} <= set(keys)
    assert spelling_problems([*keys, *schema_keys(schemas())]) == []
    stored = [name for cls in EVENT_CLASSES for name in cls.model_fields]  # how the history spells them
    assert "task_id: not camelCase with ID" in spelling_problems([*keys, *stored])


def test_the_graph_and_the_run_page_spell_each_concept_as_the_api_does() -> None:
    """`graph --format json` (the layout), the run page's graph, live `status` and history."""
    driver = Driver()
    driver.submit(json.loads(EXAMPLE.read_text()))
    state = driver.run()
    graph = graph_of(state)
    timeline = timeline_of([Entry(n, "c", envelope) for n, envelope in enumerate(driver.history, 1)], {})
    keys = list(keys_of([graph, timeline]))
    assert {"status", "taskRunID", "startedAt", "run", "nodes"} <= set(keys)
    assert spelling_problems([*keys, *event_record_keys(), *schema_keys(schemas())]) == []


def titles(schema: Any) -> list[str]:
    """Every title a JSON Schema gives a property, at any depth."""
    found, stack = [], [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            found += [value["title"] for value in (node.get("properties") or {}).values() if "title" in value]
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def test_no_schema_titles_a_field_by_its_stored_name() -> None:
    """Pydantic titles a property after the field ("Task Id" under `taskRunID`): the schemas leave titles out."""
    assert titles(schemas()) == titles(feed_schema()) == []
    assert schemas()["operations"]["runs.submit"]["request"]["title"] == "SubmitRunRequest"


def test_a_request_takes_the_fields_a_reply_gives() -> None:
    """A run's, task's or cron's id read from a reply is sent back under the same key."""
    reply_keys = {
        key for _, reply in OPERATIONS.values() for key in schema_keys(reply.model_json_schema(by_alias=True))
    }
    request_ids = {
        key
        for request, _ in OPERATIONS.values()
        for key in schema_keys(request.model_json_schema(by_alias=True))
        if key.endswith("ID")
    }
    assert request_ids <= reply_keys | {"fromTaskRunID", "taskRunID"}  # a task run's id is `runID` in its record


def test_the_wire_name_of_a_field() -> None:
    assert [wire_name(f) for f in ("run_id", "task_run_ids", "idempotency_key", "id", "created_at")] == [
        "runID",
        "taskRunIDs",
        "idempotencyKey",
        "id",
        "createdAt",
    ]


def test_the_check_finds_two_spellings() -> None:
    assert spelling_problems(["runID", "runId", "started_at", "phase", "status"]) == [
        "runId: not camelCase with ID",
        "started_at: not camelCase with ID",
        "one concept, spelt ['runID', 'runId']",
        "one concept, spelt ['phase', 'status']",
    ]
