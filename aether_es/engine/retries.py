"""When a leaf's result is tried again: the DAG node's retry policy, its expression, and the backoff."""

from __future__ import annotations

from aether_es.engine.decision import Decision
from aether_es.engine.env import Env, TaskVars, as_condition
from aether_es.model import phases as ph
from aether_es.model.documents import Backoff, Retry
from aether_es.model.durations import parse_duration
from aether_es.ports.deadlines import RETRY, Deadline
from aether_es.ports.evaluator import ExpressionError
from aether_es.projections.run_state import TaskRunView

MAX_BACKOFF_SECONDS = 365 * 24 * 3600.0
"""A backoff without `maxDuration` still stops growing here, so a large factor cannot overflow the clock."""


def backoff_seconds(backoff: Backoff, retry_count: int) -> float:
    """The wait before the `retry_count`-th retry: duration * factor^(n-1), at most maxDuration."""
    first = parse_duration(backoff.duration) or 0.0
    longest = parse_duration(backoff.max_duration) if backoff.max_duration else None
    ceiling = min(longest, MAX_BACKOFF_SECONDS) if longest else MAX_BACKOFF_SECONDS
    try:
        wait = first * backoff.factor ** (retry_count - 1)
    except OverflowError:
        return ceiling
    return min(wait, ceiling)


def retry_deadline(task: TaskRunView) -> Deadline:
    return Deadline(
        run_id=task.workflow_run_id, at=task.retry_at, task_run_id=task.id, attempt=task.attempt, kind=RETRY
    )


def retry_policy(decision: Decision, task: TaskRunView, phase: str) -> Retry | None:
    """The node's retry policy if this result is retried. Only DAG nodes carry one; without an expression
    only Error and Timeout are retried."""
    node = decision.node(decision.parent(task), task.task_name)
    policy = node.retry if node is not None else None
    if policy is None or policy.limit <= 0 or phase in (ph.SUCCEEDED, ph.SKIPPED):
        return None
    if task.retry_count >= policy.limit:
        return None
    if not policy.expression:
        return policy if phase in (ph.ERROR, ph.TIMEOUT) else None
    return policy if _expression_retries(decision, task, policy.expression, phase) else None


def _expression_retries(decision: Decision, task: TaskRunView, expression: str, phase: str) -> bool:
    evaluator = decision.context.evaluator
    if evaluator is None:
        return False
    env = Env(TaskVars(lambda name: task if name == task.task_name else None, (task.task_name, phase)))
    try:
        result = evaluator.evaluate(expression, env)
    except ExpressionError as exc:
        decision.warn("onTaskCompleted.retryExpression", str(exc))
        return False
    condition = as_condition(result)
    if condition is None:
        decision.warn("onTaskCompleted.retryExpression", f"returned {type(result).__name__}, not a boolean")
        return False
    return condition
