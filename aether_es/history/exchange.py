"""Exporting a run's history as JSON lines and importing it into another JetStream, commit by commit.

A line is one event in the public record form of the event feed plus the id of the commit it belongs to
(`commitID`), so tools read it without knowing commits, while import restores each decision as the one
message it was. Import also takes the lines exported before records took the public spelling (`run`,
`commit`, `data` as stored).
Import appends with the same optimistic concurrency as the engine, so it never overwrites or interleaves
with a history that already exists there. Only finished runs get a run summary in the target: an engine
there lists them but, finding nothing left to do, never resumes or re-dispatches an imported run.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from aether_es.events.codec import CodecError, commit_of_records, encode_commit, event_records, record_run
from aether_es.ports.event_store import ConcurrencyConflict, EventStore, StoredCommit
from aether_es.projections.run_state import fold
from aether_es.runtime.repository import summary_of


def export_lines(commits: list[StoredCommit]) -> Iterator[bytes]:
    for stored in commits:
        commit_id, records = event_records(encode_commit(stored.commit), stored.seq)
        for record in records:
            yield orjson.dumps({**record, "commitID": commit_id}) + b"\n"


def _commit_id(record: dict[str, Any]) -> Any:
    """A line's commit id: `commitID`, or `commit` in a line exported before the public spelling."""
    return record["commitID"] if "commitID" in record else record.get("commit")


@dataclass
class Imported:
    runs: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    """Run id -> why it was not imported."""
    events: int = 0


def parse_lines(lines: Iterable[bytes | str]) -> list[dict[str, Any]]:
    """The records of an export; a bad line is a CodecError naming its number."""
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise CodecError(f"line {number} is not JSON: {exc}") from None
        if not isinstance(record, dict) or not isinstance(_commit_id(record), str) or record_run(record) is None:
            raise CodecError(f"line {number} is not an exported event (it needs runID, commitID, id and data)")
        records.append(record)
    return records


async def import_records(store: EventStore, records: list[dict[str, Any]]) -> Imported:
    """Append every run's commits in order; a run whose history already exists there is skipped."""
    by_run: dict[str, list[list[dict[str, Any]]]] = {}
    for record in records:
        grouped = by_run.setdefault(str(record_run(record)), [])
        if not grouped or _commit_id(grouped[-1][0]) != _commit_id(record):
            grouped.append([])
        grouped[-1].append(record)
    result = Imported()
    for run_id, groups in by_run.items():
        commits = [commit_of_records(_commit_id(group[0]), group) for group in groups]
        expected = 0
        try:
            for one in commits:
                expected = await store.append(one, expected)
        except ConcurrencyConflict:
            result.skipped[run_id] = "a history of that run already exists there"
            continue
        result.runs.append(run_id)
        result.events += sum(len(c.envelopes) for c in commits)
        if not run_id.startswith("cron."):
            state = fold([env for commit in commits for env in commit.envelopes])
            if state.terminal:
                await store.put_summary(summary_of(state))
    return result
