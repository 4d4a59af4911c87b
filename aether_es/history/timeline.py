"""A run's history as a timeline: its events in order, the state at any point, and what each event says.

Time travel is a fold of a prefix of the history: the state after event N (or at a time) is exactly the
state the engine had once that event was committed, because the fold is the only code that changes state.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from aether_es.events import catalogue as ev
from aether_es.events.envelope import Envelope
from aether_es.model.clock import parse_time
from aether_es.ports.event_store import StoredCommit
from aether_es.projections.run_state import RunState, fold


@dataclass(frozen=True, slots=True)
class Entry:
    """One event with where it was stored: the stream sequence and id of its commit."""

    seq: int
    commit_id: str
    envelope: Envelope

    @property
    def number(self) -> int:
        """The event's number within its run (1 for RunSubmitted), the `N` of its id `<run>:N`."""
        return int(self.envelope.event_id.rsplit(":", 1)[-1])


def entries(commits: list[StoredCommit]) -> list[Entry]:
    return [Entry(stored.seq, stored.commit.commit_id, env) for stored in commits for env in stored.commit.envelopes]


def state_at(timeline: list[Entry], *, event: int | None = None, time: str | None = None) -> RunState:
    """The run as it was right after event `event`, or after the last event at or before `time`.

    Raises ValueError naming the point when the run did not exist yet then, or an event past its last or a time
    still to come.
    """
    if event is not None:
        last = timeline[-1].number if timeline else 0
        if event > last:
            raise ValueError(f"the run has {last} events: event {event} is beyond its history (use 1 to {last})")
        chosen = [e for e in timeline if e.number <= event]
        point = f"event {event}"
    elif time is not None:
        when = parse_time(time)
        if when > datetime.now(UTC):
            raise ValueError(f"{time} is in the future: a history goes up to now")
        chosen = [e for e in timeline if e.envelope.time and parse_time(e.envelope.time) <= when]
        point = time
    else:
        chosen, point = timeline, "now"
    if not chosen:
        raise ValueError(f"the run has no events at or before {point}")
    state = fold([e.envelope for e in chosen])
    state.seq = chosen[-1].seq
    return state


def describe(envelope: Envelope, names: dict[str, str]) -> str:
    """A readable sentence for one event. `names` maps task run ids to names; TaskCreated events add to it."""
    event = envelope.event
    task_id = getattr(event, "task_id", "")
    if isinstance(event, ev.TaskCreated):
        names[event.task_id] = event.task_name
    name = names.get(task_id, task_id)
    message = getattr(event, "message", "")
    suffix = f": {message}" if message else ""
    match event:
        case ev.RunSubmitted():
            cron = f" by cron {event.cron_id}" if event.cron_id else ""
            workflow = event.workflow.get("metadata", {}).get("name", "") if isinstance(event.workflow, dict) else ""
            return f"workflow {workflow!r} submitted{cron}"
        case ev.RunReady():
            return "run ready"
        case ev.RunStarted():
            return f"run started at {event.started_at}"
        case ev.RunFinished():
            return f"run {event.phase}{suffix}"
        case ev.RunCancelled() | ev.RunTimedOut() | ev.RunErrored():
            return f"run {type(event).__name__.removeprefix('Run').lower()}{suffix}"
        case ev.TaskCreated():
            parent = names.get(event.parent_id, event.parent_id)
            under = f" under {parent}" if parent else ""
            return f"{event.template_type} {name!r} created {event.phase}{under}{suffix}"
        case ev.TaskDispatched():
            return f"{name!r} attempt {event.attempt} dispatched to {event.executor_type}"
        case ev.TaskStarted():
            attempt = f" attempt {event.attempt}" if event.attempt else ""
            return f"{name!r}{attempt} started"
        case ev.TaskFinished():
            return f"{name!r} {event.phase}{suffix}"
        case ev.TaskRetried():
            return f"{name!r} attempt {event.attempt} {event.phase}, retry {event.retry_count}"
        case ev.TaskSuspended():
            return f"{name!r} suspended{suffix}"
        case ev.TaskResumed():
            keys = ", ".join(event.payload_keys) or "no payload"
            return f"{name!r} resumed with {keys}"
        case _:
            return f"{name!r} {type(event).__name__.removeprefix('Task').lower()}{suffix}" if task_id else event.type
