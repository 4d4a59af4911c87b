"""Carrying out a decision's effects once its commit is durable.

Effects are grouped by kind so one decision costs one pipelined round of broker and KV calls, not one
round trip per task. Failures of notifications and error reports never reach the scheduler. Every effect is
safe to repeat, so when a call fails the engine runs the whole group again.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from aether_es.engine.effects import (
    CancelTasks,
    ClearDeadlines,
    DispatchTask,
    Effect,
    Notify,
    ReportError,
    SetDeadline,
)
from aether_es.observability.tracing import traced
from aether_es.ports.broker import TaskBroker
from aether_es.ports.deadlines import Deadline, DeadlineStore
from aether_es.ports.error_sink import ErrorReport, ErrorSink, Severity
from aether_es.ports.notifier import HookNotifier
from aether_es.ports.secrets import SecretNotFound, SecretProvider
from aether_es.ports.wire import TaskAssignment
from aether_es.runtime.outbox import OutboxDelivery

log = logging.getLogger("aether_es.engine")


@dataclass(frozen=True, slots=True)
class Undispatched:
    """An attempt that was not sent because its secrets could not be resolved: it must end as an Error."""

    task_run_id: str
    attempt: int
    message: str


class EffectRunner:
    def __init__(
        self,
        broker: TaskBroker,
        deadlines: DeadlineStore | None = None,
        notifier: HookNotifier | None = None,
        error_sink: ErrorSink | None = None,
        secrets: SecretProvider | None = None,
    ) -> None:
        self.broker = broker
        self.deadlines = deadlines
        self.error_sink = error_sink
        self.secrets = secrets
        self._announce = OutboxDelivery(notifier, self.report)
        """Notifications and reports sent at once, as the outbox relay sends them (an engine without one)."""

    async def run(self, effects: Sequence[Effect]) -> list[Undispatched]:
        """Carry the effects out; returns the attempts left unsent (a broker or KV failure raises)."""
        undispatched: list[Undispatched] = []
        dispatches: list[TaskAssignment] = []
        cancels: list[str] = []
        set_deadlines: dict[str, Deadline] = {}
        clear_keys: list[str] = []
        for effect in effects:
            if isinstance(effect, DispatchTask):
                assignment = await self._with_secrets(effect)
                if isinstance(assignment, Undispatched):
                    undispatched.append(assignment)
                else:
                    dispatches.append(traced(assignment))
            elif isinstance(effect, CancelTasks):
                cancels.extend(effect.task_run_ids)
            elif isinstance(effect, SetDeadline):
                set_deadlines[effect.deadline.key] = effect.deadline
                if effect.deadline.key in clear_keys:
                    clear_keys.remove(effect.deadline.key)
            elif isinstance(effect, ClearDeadlines):
                for key in effect.keys:
                    set_deadlines.pop(key, None)
                    clear_keys.append(key)
            elif isinstance(effect, Notify | ReportError):
                await self._announce.deliver([effect])
        if cancels:
            await self.broker.cancel(cancels)
        if self.deadlines is not None:
            if clear_keys:
                await self.deadlines.clear(clear_keys)
            if set_deadlines:
                await self.deadlines.set(list(set_deadlines.values()))
        if dispatches:
            await self.broker.dispatch(dispatches)
        return undispatched

    async def _with_secrets(self, effect: DispatchTask) -> TaskAssignment | Undispatched:
        """Resolve secret parameters into this assignment only; the log keeps just the reference. A secret
        that cannot be resolved leaves the attempt unsent, named (never its value) for its failure message."""
        assignment = effect.assignment
        if not effect.secret_refs:
            return assignment
        assert self.secrets is not None, "the decider leaves secret references only when a provider is configured"
        values: dict[str, str] = {}
        for param_name, secret_name, secret_key in effect.secret_refs:
            try:
                values[param_name] = await self.secrets.get(secret_name, secret_key)
                continue
            except SecretNotFound as exc:  # its detail says where it was looked for, never a value
                why = f"not found ({exc.detail})" if exc.detail else "not found"
            except Exception as exc:
                why = f"cannot be read ({type(exc).__name__})"
            message = f'input "{param_name}": secret "{secret_name}" key "{secret_key}" {why}'
            return Undispatched(assignment.task_run_id, assignment.attempt, message)
        inputs = [
            p.model_copy(update={"value": values[p.name], "secret": True}) if p.name in values else p
            for p in assignment.inputs
        ]
        return assignment.model_copy(update={"inputs": inputs})

    async def report(self, report: ErrorReport) -> None:
        if self.error_sink is None:
            log.log(
                _LEVELS[report.severity],
                "%s: %s (run %s)",
                report.operation,
                report.message,
                report.workflow_run_id,
            )
            return
        try:
            await self.error_sink.on_error(report)
        except Exception:
            log.exception("error sink failed for %s", report.operation)


_LEVELS = {
    Severity.INFO: logging.INFO,
    Severity.WARNING: logging.WARNING,
    Severity.ERROR: logging.ERROR,
    Severity.CRITICAL: logging.CRITICAL,
}
