"""The event store in memory, behaving as the JetStream one does, for engine tests that need no server.

Commits are kept encoded, as the stream keeps them, so what a test loads went through the codec like a real
history. One global sequence numbers commits across runs, as the stream sequence does.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import ClassVar

from aether_es.adapters.memory.faults import Faults
from aether_es.adapters.nats.layout import check_id
from aether_es.events.codec import decode_commit, encode_commit
from aether_es.events.envelope import Commit
from aether_es.ports.event_store import ConcurrencyConflict, RunSummary, StoredCommit


@dataclasses.dataclass(frozen=True, slots=True)
class _Stored:
    run_id: str
    commit_id: str
    data: bytes


class MemoryEventStore(Faults):
    """`EventStore` in dicts: optimistic concurrency per run, commit ids deduplicated, one global sequence.

    As on JetStream, a retried append of a commit that is still its run's last returns that commit's
    sequence, and a commit id seen before returns its first landing's sequence (JetStream forgets ids after
    its duplicate window; this store remembers them for its lifetime). `fail_next` makes any method below
    fail, e.g. `fail_next("append", landed=True)` for an append that lands but whose caller hears an error.
    """

    FAULTABLE: ClassVar[frozenset[str]] = frozenset(
        {"append", "load", "load_all", "aggregate_ids", "purge", "put_summary", "delete_summary", "summaries"}
    )

    def __init__(self) -> None:
        super().__init__()
        self._log: dict[int, _Stored] = {}  # by sequence, in sequence order
        self._runs: dict[str, list[int]] = {}
        self._landed: dict[str, int] = {}
        self._last_seq = 0
        self._summaries: dict[str, RunSummary] = {}

    async def append(self, commit: Commit, expected_seq: int) -> int:
        check_id("run id", commit.run_id)
        data = encode_commit(commit)
        lost_ack = self._fault("append", commit)
        seqs = self._runs.get(commit.run_id, [])
        last = seqs[-1] if seqs else 0
        if last != expected_seq:
            if not last or self._log[last].commit_id != commit.commit_id:
                raise ConcurrencyConflict(
                    f"run {commit.run_id}: expected last sequence {expected_seq}, the run's last is {last}"
                )
            seq = last
        elif commit.commit_id in self._landed:
            seq = self._landed[commit.commit_id]
        else:
            self._last_seq = seq = self._last_seq + 1
            self._log[seq] = _Stored(commit.run_id, commit.commit_id, data)
            self._runs.setdefault(commit.run_id, []).append(seq)
            self._landed[commit.commit_id] = seq
        if lost_ack is not None:
            raise lost_ack
        return seq

    async def load(self, run_id: str, after_seq: int = 0) -> list[StoredCommit]:
        check_id("run id", run_id)
        self._fault("load", run_id)
        return [self._stored(seq) for seq in self._runs.get(run_id, []) if seq > after_seq]

    async def load_all(self, after_seq: int = 0) -> AsyncIterator[StoredCommit]:
        self._fault("load_all", after_seq)
        last_seq = self._last_seq
        for seq in [s for s in self._log if after_seq < s <= last_seq]:
            if seq in self._log:  # not purged while the caller was reading
                yield self._stored(seq)

    async def aggregate_ids(self, prefix: str) -> list[str]:
        start = check_id("aggregate prefix", prefix) + "."
        self._fault("aggregate_ids", prefix)
        return sorted(run_id for run_id in self._runs if run_id.startswith(start) and "." not in run_id[len(start) :])

    async def purge(self, aggregate_id: str) -> None:
        check_id("run id", aggregate_id)
        self._fault("purge", aggregate_id)
        for seq in self._runs.pop(aggregate_id, []):
            del self._log[seq]

    async def put_summary(self, summary: RunSummary) -> None:
        check_id("run id", summary.run_id)
        self._fault("put_summary", summary)
        self._summaries.pop(summary.run_id, None)  # a newer revision sorts last, as in a KV bucket
        self._summaries[summary.run_id] = _copy(summary)

    async def delete_summary(self, run_id: str) -> None:
        check_id("run id", run_id)
        self._fault("delete_summary", run_id)
        self._summaries.pop(run_id, None)

    async def summaries(self) -> list[RunSummary]:
        self._fault("summaries", None)
        return [_copy(summary) for summary in self._summaries.values()]

    def _stored(self, seq: int) -> StoredCommit:
        return StoredCommit(seq=seq, commit=decode_commit(self._log[seq].data))


def _copy(summary: RunSummary) -> RunSummary:
    """A summary that shares no mutable labels with the caller's, as one read back from a bucket would."""
    return dataclasses.replace(summary, labels=dict(summary.labels))
