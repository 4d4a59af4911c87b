"""`aether-es events [--run RUN] [--type T ...] [--since SEQ|TIME] [--follow]`: read the public event feed.

Reads the feed stream through an ephemeral consumer filtered by subjects (`<prefix>.events.<run>.<type>`, one
per type), so nothing is parsed to filter. Without `--follow` it stops at the last event present; with it, it
waits for more until interrupted. One line per event, or with `--json` the feed's own JSON (the public
records of `events.codec.event_records`), one object per line. An event type the catalogue does not know is
refused (exit 2), and so is a run the feed has no event of without `--follow` (exit 3): either would otherwise
print nothing, as a run without such events does.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import orjson
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError as JsNotFoundError

from aether_es.adapters.nats.layout import Layout, check_id, check_token
from aether_es.cli import exits
from aether_es.cli.commands import summary
from aether_es.cli.moments import moment
from aether_es.cli.remote import RemoteError, add_remote_options, fail, remote
from aether_es.cli.terminal import json_text, say

FETCH = 256


def register(commands: Any) -> None:
    parser = commands.add_parser("events", help=summary("events"))
    parser.add_argument("--run", help="only this run's events")
    parser.add_argument(
        "--type", action="append", help="only events of this type, e.g. TaskFinished (repeatable: any of them)"
    )
    parser.add_argument(
        "--since", help="start at this feed sequence number, RFC3339 time or duration ago (1h, 2d; default: the first)"
    )
    parser.add_argument("--follow", action="store_true", help="keep waiting for new events")
    add_remote_options(parser)
    parser.add_argument("--json", action="store_true", help="print each event's JSON, one per line")
    parser.set_defaults(handler=handle)


def feed_filters(layout: Layout, run: str | None, event_types: list[str] | None) -> list[str]:
    """The subject filters for a run and/or event types (`*` for a run matches single-token run ids); a
    ValueError naming an event type the catalogue does not know."""
    if not event_types:
        return [layout.run_event_subjects(run) if run else layout.event_subjects]
    from aether_es.events.schema import EVENT_CLASSES

    known = [str(cls.model_fields["type"].default) for cls in EVENT_CLASSES]
    run_part = check_id("run id", run) if run else "*"
    for event_type in event_types:
        if event_type not in known:
            raise ValueError(f"--type {event_type!r} is no event type; the types are {', '.join(known)}")
    return [f"{layout.prefix}.events.{run_part}.{check_token('event type', t)}" for t in dict.fromkeys(event_types)]


def start_config(since: str | None) -> ConsumerConfig:
    config = ConsumerConfig(ack_policy=AckPolicy.NONE, inactive_threshold=30.0)
    if not since:
        config.deliver_policy = DeliverPolicy.ALL
    elif since.isdigit():
        config.deliver_policy, config.opt_start_seq = DeliverPolicy.BY_START_SEQUENCE, int(since)
    else:
        config.deliver_policy, config.opt_start_time = DeliverPolicy.BY_START_TIME, moment("--since", since)
    return config


async def handle(args: argparse.Namespace) -> int:
    try:
        async with remote("events", args.nats, args.prefix, args) as (connection, layout):
            try:
                subjects = feed_filters(layout, args.run, args.type)
                config = start_config(args.since)
            except ValueError as exc:
                say(f"aether: events: {exc}", file=sys.stderr)
                return exits.INVALID
            js = connection.js
            if len(subjects) > 1:
                config.filter_subjects = subjects
            try:
                if args.run and not args.follow and not await _has_events(js, layout, args.run):
                    say(f'aether: not found: the feed has no event of run "{args.run}"', file=sys.stderr)
                    return exits.NOT_FOUND
                sub = await js.pull_subscribe(subjects[0], stream=layout.feed_stream, config=config)
            except JsNotFoundError:
                say(
                    f"aether: events: no event feed (stream {layout.feed_stream}); is `aether-es serve` running there?",
                    file=sys.stderr,
                )
                return exits.FAILED
            try:
                await _read(sub, args)
            finally:
                await sub.unsubscribe()
    except RemoteError as error:
        return fail(error)
    return exits.OK


async def _has_events(js: Any, layout: Layout, run: str) -> bool:
    info = await js.stream_info(layout.feed_stream, subjects_filter=layout.run_event_subjects(run))
    return bool(info.state.subjects)


async def _read(sub: Any, args: argparse.Namespace) -> None:
    while True:
        try:
            msgs = await sub.fetch(FETCH, timeout=1.0)
        except TimeoutError:
            msgs = []
        for msg in msgs:
            _show(orjson.loads(msg.data), args.json)
        sys.stdout.flush()
        if args.follow:
            continue
        if msgs and msgs[-1].metadata.num_pending == 0:
            return
        if not msgs and (await sub.consumer_info()).num_pending == 0:
            return


def _show(event: dict[str, Any], as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json_text(orjson.dumps(event).decode()) + "\n")
        return
    data = event.get("data") or {}
    detail = " ".join(str(data[key]) for key in ("taskRunID", "status", "message") if data.get(key))
    when, run, kind, actor = (event.get(key, "") for key in ("time", "runID", "type", "actor"))
    say(f"{when}  {run}  {kind:<18} {actor}  {detail}")
