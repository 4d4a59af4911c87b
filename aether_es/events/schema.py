"""JSON Schemas of the public event feed, generated from the event classes, and the generated part of
docs/events.md.

The schemas describe the public records the codec makes of what it stores (`model_dump(mode="json")`,
defaults left out, each field spelt by `codec.record_names`), so they come from the same pydantic classes and
cannot drift from the wire. `python -m aether_es.events.schema`
rewrites the generated part of docs/events.md and docs/events.schema.json; `--check` fails when they are
out of date.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Annotated, Any, get_args

import orjson
from pydantic import BaseModel, ConfigDict, Field

from aether_es.events.catalogue import SCHEMA_VERSION, AnyEvent, Event
from aether_es.events.codec import record_names
from aether_es.events.cron_catalogue import AnyCronEvent
from aether_es.events.retention_catalogue import RETENTION_EVENTS, RunsPurged

EVENT_CLASSES: tuple[type[Event], ...] = (*get_args(AnyEvent), *get_args(AnyCronEvent), *RETENTION_EVENTS)

BEGIN = "<!-- BEGIN GENERATED SCHEMAS: python -m aether_es.events.schema -->"
END = "<!-- END GENERATED SCHEMAS -->"
DOCS = Path(__file__).resolve().parents[2] / "docs"


class FeedMessage(BaseModel):
    """One event as the feed publishes it, on `<prefix>.events.<run>.<type>` with `Nats-Msg-Id` = `id`."""

    model_config = ConfigDict(title="FeedMessage")

    id: str = Field(description="The event id, `<run>:<n>` with n its number within the run; unique, for dedup.")
    run_id: str = Field(alias="runID", description="The workflow run id (`cron.<id>` for a CronWorkflow's events).")
    type: str = Field(description="The event type, also the last subject token and `data.type`.")
    v: int = Field(description=f"The schema version of `data` (currently {SCHEMA_VERSION}).")
    time: str = Field(description="When the event was decided (RFC 3339, UTC).")
    actor: str = Field(
        description="Who caused it: `user` or `user:<who>`, `worker:<id>`, `watcher`, `engine`, `cron:<id>`."
    )
    cause: str = Field(description="The id of the command or report that caused it.")
    reason: str | None = Field(default=None, description="Why, when whoever issued the command gave a reason.")
    seq: int = Field(description="Sequence, in the history stream, of the commit the event belongs to.")
    data: Annotated[AnyEvent | AnyCronEvent | RunsPurged, Field(discriminator="type")] = Field(
        description="The event itself, spelt as the API spells its fields: fields equal to their defaults are left out."
    )


def without_field_titles(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` without its properties' titles, at any depth: pydantic derives them from the stored name
    ("Task Id" under `taskRunID`), and a property's key is its public name already."""
    stack: list[Any] = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for value in (node.get("properties") or {}).values():
                if isinstance(value, dict):
                    value.pop("title", None)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return schema


def feed_schema() -> dict[str, Any]:
    """One JSON Schema document for a feed message, every event type under `$defs`."""
    schema = without_field_titles(FeedMessage.model_json_schema(by_alias=True, mode="serialization"))
    for cls in EVENT_CLASSES:
        event = schema["$defs"][cls.__name__]
        names = record_names(cls)
        event["properties"] = {names[name]: value for name, value in event["properties"].items()}
        # The codec always writes the type, though it is each class's default.
        event["required"] = ["type", *[names[name] for name in event.get("required", []) if name != "type"]]
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


def schema_json() -> str:
    return orjson.dumps(feed_schema(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode() + "\n"


def _block(value: Any) -> str:
    return "```json\n" + orjson.dumps(value, option=orjson.OPT_INDENT_2).decode() + "\n```\n"


def generated_section() -> str:
    """The Markdown between the markers: the message schema, one schema per event type, shared definitions."""
    schema = feed_schema()
    defs: dict[str, Any] = schema["$defs"]
    envelope = {k: v for k, v in schema.items() if k != "$defs"}
    names = {cls.__name__ for cls in EVENT_CLASSES}
    parts = [
        "### Feed message\n",
        "The whole document, `$defs` included, is [events.schema.json](events.schema.json). "
        "References `#/$defs/...` point into it.\n",
        _block(envelope),
    ]
    for cls in EVENT_CLASSES:
        parts += [f"### {cls.__name__}\n", _block(defs[cls.__name__])]
    parts.append("### Shared definitions\n")
    parts.append(_block({name: value for name, value in sorted(defs.items()) if name not in names}))
    return "\n".join(parts)


def render(markdown: str) -> str:
    """`markdown` with the generated section replaced (the markers must be there)."""
    start, end = markdown.find(BEGIN), markdown.find(END)
    if start < 0 or end < start:
        raise ValueError(f"docs/events.md lacks the markers {BEGIN!r} and {END!r}")
    return markdown[: start + len(BEGIN)] + "\n\n" + generated_section() + "\n" + markdown[end:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Regenerate the event schemas in docs/events.md.")
    parser.add_argument("--docs", type=Path, default=DOCS, help="the docs folder (default: the project's)")
    parser.add_argument("--check", action="store_true", help="only report whether the files are up to date")
    args = parser.parse_args(argv)
    markdown_path, json_path = args.docs / "events.md", args.docs / "events.schema.json"
    wanted = {markdown_path: render(markdown_path.read_text()), json_path: schema_json()}
    stale = [path for path, text in wanted.items() if not path.exists() or path.read_text() != text]
    if args.check:
        for path in stale:
            print(f"{path} is out of date: run python -m aether_es.events.schema", file=sys.stderr)
        return 1 if stale else 0
    for path in stale:
        path.write_text(wanted[path])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
