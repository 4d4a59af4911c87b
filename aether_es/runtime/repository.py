"""Loading and saving runs: the run's state folded from its log (or a snapshot plus its tail), its commits,
its summary and its snapshot. The engine's mailboxes decide; this is the only place that reads and writes runs.
"""

from __future__ import annotations

import logging
from typing import Any

from aether_es.events.envelope import Commit
from aether_es.model import clock
from aether_es.model import phases as ph
from aether_es.model.documents import Workflow
from aether_es.ports.artifacts import ArtifactRemover
from aether_es.ports.event_store import EventStore, RunSummary
from aether_es.ports.snapshots import SnapshotStore
from aether_es.projections.run_state import RunState, apply, fold
from aether_es.projections.snapshot import decode_snapshot, encode_snapshot

log = logging.getLogger("aether_es.engine")


class RunRepository:
    def __init__(
        self,
        store: EventStore,
        snapshots: SnapshotStore | None = None,
        snapshot_min_events: int = 1000,
        artifacts: ArtifactRemover | None = None,
    ):
        self.store = store
        self.snapshots = snapshots
        self.snapshot_min_events = snapshot_min_events
        self.artifacts = artifacts

    async def load(self, run_id: str) -> RunState | None:
        """The run from its snapshot plus the events after it, or folded from its whole history."""
        state = await self.from_snapshot(run_id)
        return state if state is not None else await self.fold_history(run_id)

    async def fold_history(self, run_id: str) -> RunState | None:
        """The run folded afresh from its whole history, ignoring snapshots (None: no such run)."""
        commits = await self.store.load(run_id)
        if not commits:
            return None
        state = fold([env for stored in commits for env in stored.commit.envelopes])
        state.seq = commits[-1].seq
        return state

    async def from_snapshot(self, run_id: str) -> RunState | None:
        if self.snapshots is None:
            return None
        try:
            data = await self.snapshots.get(run_id)
            state = decode_snapshot(data) if data else None
            if state is None or state.run_id != run_id:
                return None
            for stored in await self.store.load(run_id, after_seq=state.seq):
                for env in stored.commit.envelopes:
                    apply(state, env)
                state.seq = stored.seq
        except Exception as exc:  # a snapshot is only a cache: the history is always there
            log.warning("run %s: snapshot not used (%r); folding its history", run_id, exc)
            return None
        return state

    async def append(self, commit: Commit, expected_seq: int) -> int:
        """Append a decision's commit, fenced by the run's last sequence (`ConcurrencyConflict` otherwise)."""
        return await self.store.append(commit, expected_seq)

    async def snapshot(self, state: RunState) -> bool:
        """Store the run's committed state as its snapshot if it is long enough to be worth one."""
        if self.snapshots is None or state.events < self.snapshot_min_events:
            return False
        await self.snapshots.put(state.run_id, encode_snapshot(state))
        return True

    async def unfinished(self) -> list[RunSummary]:
        """The summaries that say their run is not finished (what a starting engine recovers)."""
        return [s for s in await self.store.summaries() if s.phase not in ph.TERMINAL]

    async def announce(self, run_id: str, workflow: Workflow, cron_id: str) -> None:
        """Write a new run's summary before its first commit, so recovery finds the run however soon after
        that commit its engine dies (a summary whose run never landed is removed by recovery)."""
        metadata = workflow.metadata
        await self.store.put_summary(
            RunSummary(
                run_id=run_id,
                name=metadata.name,
                namespace=metadata.namespace,
                phase=ph.CREATED,
                created_at=clock.now(),
                cron_id=cron_id,
                labels=dict(metadata.labels),
            )
        )

    async def summarise(self, state: RunState) -> None:
        await self.store.put_summary(summary_of(state))

    async def forget(self, run_id: str) -> None:
        """Remove the summary of a run that never landed."""
        await self.store.delete_summary(run_id)

    async def forget_unless_landed(self, run_id: str) -> None:
        """After a submission failed: remove its summary if nothing of the run reached the log (an append can
        land and still fail, and then the run exists)."""
        if not await self.store.load(run_id):
            await self.forget(run_id)

    async def remove(self, state: RunState) -> None:
        """Remove a finished run's artifacts, history, summary and snapshot (retention; the caller records
        that it did). Of the artifacts, those the run's workers stored under its own keys (`<run>/...`) go;
        one stored where the document named is kept, as another run may have written it since."""
        run_id = state.run_id
        if self.artifacts is not None:
            for config in owned_artifacts(state):
                try:
                    await self.artifacts.delete(config)
                except Exception as exc:
                    log.warning("run %s: artifact %s not removed: %r", run_id, config.get("key"), exc)
        await self.store.purge(run_id)
        await self.store.delete_summary(run_id)
        if self.snapshots is not None:
            await self.snapshots.delete(run_id)


def owned_artifacts(state: RunState) -> list[dict[str, Any]]:
    """The configs of the `nats` artifacts the run's tasks stored under the run's own keys (`<run>/...`)."""
    owned = []
    for task in state.tasks.values():
        outputs = task.outputs
        for artifact in outputs.artifacts if outputs is not None else ():
            source = artifact.source
            config = source.config if source is not None and source.type == "nats" else None
            if isinstance(config, dict) and str(config.get("key", "")).startswith(f"{state.run_id}/"):
                owned.append(config)
    return owned


def summary_of(state: RunState) -> RunSummary:
    """The run-summary record of a run's state (what listing and recovery read)."""
    return RunSummary(
        run_id=state.run_id,
        name=state.workflow.metadata.name,
        namespace=state.workflow.metadata.namespace,
        phase=state.phase,
        created_at=state.created_at,
        finished_at=(state.metrics.finished_at or "") if state.metrics and state.terminal else "",
        cron_id=state.cron_id,
        labels=dict(state.workflow.metadata.labels),
        suspended=state.suspended if not state.terminal else 0,
    )
