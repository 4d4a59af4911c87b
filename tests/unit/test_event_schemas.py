"""The published event schemas: generated from the event classes, matching the public records, and in
docs/events.md as generated (regenerate with `python -m aether_es.events.schema`)."""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson

from aether_es.events.catalogue import Metrics, ResultOutputs, TaskDispatched, TaskFinished
from aether_es.events.codec import encode_commit, event_records
from aether_es.events.envelope import Commit, Envelope
from aether_es.events.schema import BEGIN, DOCS, END, EVENT_CLASSES, feed_schema, main
from aether_es.model.documents import Artifact, Parameter


def test_docs_events_md_and_schema_json_are_up_to_date() -> None:
    assert main(["--check"]) == 0, "docs are stale: run python -m aether_es.events.schema"


def test_check_fails_on_stale_docs_and_regeneration_fixes_them(tmp_path: Path) -> None:
    shutil.copy(DOCS / "events.md", tmp_path / "events.md")
    text = (tmp_path / "events.md").read_text()
    head, _, rest = text.partition(BEGIN)
    (tmp_path / "events.md").write_text(head + BEGIN + "\nold\n" + END + rest.partition(END)[2])
    assert main(["--docs", str(tmp_path), "--check"]) == 1
    assert main(["--docs", str(tmp_path)]) == 0
    assert main(["--docs", str(tmp_path), "--check"]) == 0
    assert (tmp_path / "events.md").read_text() == text
    assert (tmp_path / "events.schema.json").read_text() == (DOCS / "events.schema.json").read_text()


def test_every_event_type_has_a_schema_keyed_by_its_type() -> None:
    schema = feed_schema()
    mapping = schema["properties"]["data"]["discriminator"]["mapping"]
    assert set(mapping) == {cls.__name__ for cls in EVENT_CLASSES}
    for cls in EVENT_CLASSES:
        event = schema["$defs"][cls.__name__]
        assert event["properties"]["type"]["const"] == cls.__name__
        assert event["required"][0] == "type"
        assert f"### {cls.__name__}\n" in (DOCS / "events.md").read_text()


def test_schemas_name_the_fields_of_the_public_records() -> None:
    events = [
        TaskDispatched(
            task_id="r-1",
            attempt=1,
            executor_type="echo",
            inputs=[Parameter.model_validate({"name": "n", "valueFrom": {"parameter": "m"}})],
            artifacts=[Artifact.model_validate({"name": "a", "from": "x"})],
        ),
        TaskFinished(
            task_id="r-1",
            attempt=1,
            phase="Succeeded",
            outputs=ResultOutputs(phase="Succeeded", parameters=[Parameter(name="n", value=1)]),
            metrics=Metrics(started_at="t0", finished_at="t1", duration="1s"),
        ),
    ]
    envelopes = tuple(Envelope(f"r:{n}", "r", "t", "engine", "c", event) for n, event in enumerate(events, 1))
    schema = feed_schema()
    defs = schema["$defs"]
    _, records = event_records(encode_commit(Commit("c", "r", envelopes)), 1)
    for record in records:
        assert set(schema["required"]) <= set(record) <= set(schema["properties"])
        data = record["data"]
        event = defs[data["type"]]
        assert set(event["required"]) <= set(data) <= set(event["properties"])
        for name in ("inputs", "artifacts", "outputs", "metrics"):
            if name in data:
                ref = _ref(event["properties"][name])
                nested = data[name][0] if isinstance(data[name], list) else data[name]
                assert set(nested) <= set(defs[ref]["properties"]), (name, nested)


def _ref(prop: dict[str, object]) -> str:
    """The `$defs` name a property refers to, through `anyOf`/`items`."""
    text = orjson.dumps(prop).decode()
    return text.split("#/$defs/", 1)[1].split('"', 1)[0]
