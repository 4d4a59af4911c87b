"""A pure, in-memory driver for the decider: no NATS, no asyncio, full control of delivery order.

It plays the runtime's part (commit, then effects) with a history list instead of JetStream and the echo
executor run synchronously, so decider behaviour can be checked exhaustively and fast. Delivery modes:
`fifo` and `lifo` queue assignments; `inline` executes an assignment and reports it from inside the
dispatch, the re-entrant case Aether's empty-loop test exercises; `random` delivers pending reports in a
seeded random order with duplicates.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aether_es.adapters.evaluator_simple import SimpleEvaluator
from aether_es.engine.decider import handle
from aether_es.engine.decision import DecideContext, Decision
from aether_es.engine.effects import DispatchTask, Notify, ReportError
from aether_es.engine.triggers import (
    Cancel,
    Completed,
    Continue,
    Resume,
    Started,
    Submit,
    TaskTimeout,
    Trigger,
)
from aether_es.errors import AetherError
from aether_es.events.envelope import Envelope
from aether_es.model import phases as ph
from aether_es.model.clock import format_time
from aether_es.ports.error_sink import ErrorReport
from aether_es.ports.notifier import HookEvent
from aether_es.ports.wire import TaskAssignment
from aether_es.projections.run_state import RunState, fold
from aether_es.worker.executors.echo import run_echo


@dataclass
class Driver:
    mode: str = "fifo"
    seed: int = 0
    duplicate_rate: float = 0.0
    context: DecideContext = field(
        default_factory=lambda: DecideContext(
            evaluator=SimpleEvaluator(),
            vars={
                "system.os": "linux",
                "system.arch": "amd64",
                "deploy.cluster": "prod-cluster",
                "deploy.region": "ap-east-1",
            },
        )
    )
    run_id: str = "run"
    state: RunState | None = None
    history: list[Envelope] = field(default_factory=list)
    dispatched: list[TaskAssignment] = field(default_factory=list)
    hooks: list[HookEvent] = field(default_factory=list)
    queue: list[TaskAssignment] = field(default_factory=list)
    reports: list[Trigger] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    triggers: list[Trigger] = field(default_factory=list)
    """Every trigger delivered, in delivery order (continuations included)."""
    batches: list[int] = field(default_factory=list)
    """Envelopes committed per delivery: one entry per `deliver`, i.e. per commit."""
    errors: list[ErrorReport] = field(default_factory=list)
    """What the decider reported to the error sink (ReportError effects)."""
    on_dispatch: Callable[[TaskAssignment, RunState], None] | None = None
    """Called with each assignment and the committed state it was dispatched from, before it runs."""
    _tick: int = 0

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def now(self) -> str:
        self._tick += 1
        return format_time(datetime(2026, 1, 1, tzinfo=UTC) + timedelta(milliseconds=self._tick))

    # --- commands --------------------------------------------------------------------------------------

    def submit(self, document: dict[str, Any]) -> AetherError | None:
        return self.deliver(Submit(actor="user", cause="submit", at=self.now(), document=document))

    def cancel(self) -> AetherError | None:
        return self.deliver(Cancel(actor="user", cause="cancel", at=self.now()))

    def resume(self, task_id: str, payload: dict[str, Any]) -> AetherError | None:
        return self.deliver(Resume(actor="user", cause="resume", at=self.now(), task_id=task_id, payload=payload))

    def timeout(self, task_id: str) -> AetherError | None:
        task = self.view().tasks[task_id]
        return self.deliver(
            TaskTimeout(actor="watcher", cause="t", at=self.now(), task_id=task_id, attempt=task.attempt)
        )

    def deliver(self, trigger: Trigger) -> AetherError | None:
        self.triggers.append(trigger)
        decision = Decision(self.state, self.context)
        error = handle(decision, trigger, self.run_id)
        self.history.extend(decision.envelopes)
        self.batches.append(len(decision.envelopes))
        if decision.has_state:
            self.state = decision.state
        for effect in decision.effects:
            if isinstance(effect, DispatchTask):
                self._dispatch(effect.assignment)
            elif isinstance(effect, Notify):
                self.hooks.append(effect.event)
            elif isinstance(effect, ReportError):
                self.errors.append(effect.report)
        if decision.resume_points:
            self.deliver(
                Continue(actor="engine", cause="continue", at=self.now(), containers=tuple(decision.resume_points))
            )
        return error

    # --- execution -------------------------------------------------------------------------------------

    def _dispatch(self, assignment: TaskAssignment) -> None:
        state = self.view()
        if state.terminal:
            self.violations.append(f"dispatch of {assignment.task_run_id} after the run was terminal")
        if assignment.task_run_id not in state.tasks:
            self.violations.append(f"dispatch of {assignment.task_run_id} before its record exists")
        self.dispatched.append(assignment)
        if self.on_dispatch is not None:
            self.on_dispatch(assignment, state)
        if self.mode == "inline":
            self._execute(assignment, report_now=True)
        else:
            self.queue.append(assignment)

    def _execute(self, assignment: TaskAssignment, report_now: bool) -> None:
        result = run_echo(assignment)
        started = Started(
            actor="worker:w",
            cause=f"{assignment.task_run_id}.s",
            at=self.now(),
            task_id=assignment.task_run_id,
            attempt=assignment.attempt,
        )
        completed = Completed(
            actor="worker:w",
            cause=f"{assignment.task_run_id}.c",
            at=self.now(),
            task_id=assignment.task_run_id,
            attempt=assignment.attempt,
            result=result,
        )
        if report_now:
            self.deliver(started)
            self.deliver(completed)
        else:
            self.reports.extend([started, completed])

    def complete(self, assignment: TaskAssignment) -> None:
        """Run one assignment now and report its start and completion at once, whatever the mode."""
        self._execute(assignment, report_now=True)

    def run(self, max_steps: int = 100_000) -> RunState:
        """Execute and report until nothing is left to do."""
        for _ in range(max_steps):
            if self.queue:
                assignment = self.queue.pop(0 if self.mode in ("fifo", "random") else -1)
                self._execute(assignment, report_now=self.mode != "random")
                continue
            if self.reports:
                index = self.rng.randrange(len(self.reports))
                report = self.reports[index]
                if self.rng.random() >= self.duplicate_rate:
                    self.reports.pop(index)
                self.deliver(report)
                continue
            break
        return self.view()

    def view(self) -> RunState:
        assert self.state is not None, "nothing submitted"
        return self.state

    def replayed(self) -> RunState:
        return fold(self.history)

    def task(self, name: str) -> Any:
        """The last task run with that name (the conformance index rule)."""
        state = self.view()
        found = None
        for task_id in state.order:
            if state.tasks[task_id].task_name == name:
                found = state.tasks[task_id]
        assert found is not None, f"no task run named {name}"
        return found

    def suspended(self) -> list[str]:
        state = self.view()
        return [t for t in state.order if state.tasks[t].phase == ph.SUSPENDED]


def keyed_view(state: RunState) -> dict[str, Any]:
    """What a run decided, without ids, creation order or timestamps: run phase, message and output
    parameters, and per (scope, taskName) the sorted multiset of its records' phase, message, output
    parameters, inputs, retry count, template type and depth. Equal keyed views mean the same outcome
    however the work was ordered, split or duplicated."""

    def params(block: Any) -> list[dict[str, Any]] | None:
        if block is None:
            return None
        return [p.dump() for p in block.parameters]

    tasks: dict[str, list[str]] = {}
    for task_id in state.order:
        task = state.tasks[task_id]
        record = {
            "phase": task.phase,
            "message": task.message,
            "outputs": params(task.outputs),
            "code": task.outputs.code if task.outputs is not None else None,
            "outputsPhase": task.outputs.phase if task.outputs is not None else None,
            "inputs": None if task.inputs is None else [p.dump() for p in task.inputs],
            "retryCount": task.retry_count,
            "templateType": task.template_type,
            "depth": task.depth,
        }
        key = f"{task.scope}|{task.task_name}"
        tasks.setdefault(key, []).append(json.dumps(record, sort_keys=True, default=str))
    return {
        "phase": state.phase,
        "message": state.message,
        "outputs": params(state.outputs),
        "tasks": {key: sorted(records) for key, records in sorted(tasks.items())},
    }
