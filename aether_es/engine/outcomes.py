"""Deriving results: phase aggregation, phaseConditions, output declarations, loop aggregation, metrics."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from aether_es.events.values import Metrics, ResultOutputs
from aether_es.model import phases as ph
from aether_es.model.clock import seconds_between
from aether_es.model.documents import Aggregate, ContinueOn, Outputs, Parameter, PhaseConditions
from aether_es.model.durations import format_go_duration
from aether_es.model.gofmt import is_truthy
from aether_es.ports.evaluator import Evaluator, ExpressionError
from aether_es.projections.run_state import TaskRunView

Warn = Callable[[str, str], None]

_FAILURE_FLAGS: dict[str, str] = {ph.FAILED: "failed", ph.ERROR: "error", ph.TIMEOUT: "timeout"}


def tolerated(phase: str, continue_on: ContinueOn | None) -> bool:
    """Whether continueOn lets a Failed/Error/Timeout child count as satisfied."""
    flag = _FAILURE_FLAGS.get(phase)
    return flag is not None and continue_on is not None and bool(getattr(continue_on, flag))


def aggregate_phase(
    children: Iterable[TaskRunView], continue_on: Callable[[TaskRunView], ContinueOn | None] | None = None
) -> tuple[str, str]:
    """Aether's aggregatePhase (and, with `continue_on`, aggregatePhaseDAG). Skipped counts as success."""
    cancelled = errored = failed = False
    for child in children:
        phase = child.phase
        if phase == ph.CANCELLED:
            cancelled = True
            continue
        if phase in _FAILURE_FLAGS and continue_on is not None and tolerated(phase, continue_on(child)):
            continue
        if phase in (ph.ERROR, ph.TIMEOUT):
            errored = True
        elif phase == ph.FAILED:
            failed = True
    if cancelled:
        return ph.CANCELLED, "one or more tasks were cancelled"
    if errored:
        return ph.ERROR, "one or more tasks errored"
    if failed:
        return ph.FAILED, "one or more tasks failed"
    return ph.SUCCEEDED, ""


def evaluate_phase_conditions(
    conditions: PhaseConditions | None,
    base: str,
    env: Mapping[str, Any],
    evaluator: Evaluator | None,
    warn: Warn,
    operation: str,
) -> str:
    """The first of succeeded/failed/error whose expression is truthy decides; else the base phase."""
    if conditions is None or evaluator is None or not conditions.any():
        return base
    for expression, phase in (
        (conditions.succeeded, ph.SUCCEEDED),
        (conditions.failed, ph.FAILED),
        (conditions.error, ph.ERROR),
    ):
        if not expression:
            continue
        try:
            if is_truthy(evaluator.evaluate(expression, env)):
                return phase
        except ExpressionError as exc:
            warn(operation, str(exc))
    return base


def result_env(outputs: ResultOutputs, phase: str) -> dict[str, Any]:
    """Leaf phaseConditions env: phase, code, msg and the raw output parameters."""
    env: dict[str, Any] = {"phase": phase, "code": outputs.code or 0, "msg": outputs.message or ""}
    for param in outputs.parameters:
        env[f"outputs.parameters.{param.name}"] = param.value
    return env


def merge_with_declaration(outputs: ResultOutputs, declaration: Outputs | None) -> ResultOutputs:
    """Declared output parameters act as a whitelist with static fallbacks; no declaration keeps all."""
    if declaration is None or not declaration.parameters:
        return outputs
    produced = {p.name: p for p in outputs.parameters}
    kept: list[Parameter] = []
    for decl in declaration.parameters:
        got = produced.get(decl.name)
        if got is not None and got.value is not None:
            kept.append(Parameter(name=decl.name, type=decl.type or got.type, value=got.value))
        elif decl.value is not None:
            kept.append(Parameter(name=decl.name, type=decl.type, value=decl.value))
    return outputs.model_copy(update={"parameters": kept})


def empty_aggregate(aggregate: Aggregate | None, declared: Outputs | None) -> ResultOutputs | None:
    """Outputs of a loop with no iterations: `[]` per name for the list strategy, nothing otherwise."""
    if aggregate is None or aggregate.strategy != "list":
        return None
    names = aggregate.parameters or [p.name for p in (declared.parameters if declared else [])]
    if not names:
        return None
    return ResultOutputs(phase=ph.SUCCEEDED, parameters=[Parameter(name=n, value=[]) for n in names])


def aggregate_iterations(
    iterations: list[TaskRunView], aggregate: Aggregate | None, declared: Outputs | None
) -> ResultOutputs | None:
    """Aether's AggregateResults over a loop's iterations in creation order."""
    if not iterations:
        return empty_aggregate(aggregate, declared)
    if any(it.phase not in (ph.SUCCEEDED, ph.SKIPPED) for it in iterations):
        return None
    strategy = (aggregate.strategy if aggregate else "") or "last"
    wanted = set(aggregate.parameters) if aggregate and aggregate.parameters else None
    if strategy in ("first", "last"):
        chosen = iterations[0] if strategy == "first" else iterations[-1]
        params = [
            p for p in (chosen.outputs.parameters if chosen.outputs else []) if wanted is None or p.name in wanted
        ]
        return ResultOutputs(parameters=[p.model_copy() for p in params]) if params else None
    names: list[str] = []
    per_iteration: list[dict[str, Any]] = []
    for it in iterations:
        values: dict[str, Any] = {}
        for param in it.outputs.parameters if it.outputs else []:
            if wanted is not None and param.name not in wanted:
                continue
            if param.name not in values and param.name not in names:
                names.append(param.name)
            values[param.name] = param.value
        per_iteration.append(values)
    if not names:
        return None
    return ResultOutputs(
        phase=ph.SUCCEEDED,
        parameters=[Parameter(name=n, value=[values.get(n) for values in per_iteration]) for n in names],
    )


def finish_metrics(previous: Metrics | None, finished_at: str, retries: int = 0) -> Metrics:
    """finishedAt now; startedAt carried; duration when it started; retries when any were consumed."""
    started = previous.started_at if previous else None
    metrics = Metrics(started_at=started, finished_at=finished_at)
    if started:
        metrics.duration = format_go_duration(max(0.0, seconds_between(started, finished_at)))
    if previous is not None and previous.retries is not None:
        metrics.retries = previous.retries
    if retries > 0:
        metrics.retries = retries
    return metrics
