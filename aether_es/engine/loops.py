"""The loop controller: item expansion, iteration creation, concurrency refill and do-while repetition.

Expanded items are kept per loop in the run's index, so refilling a 100,000-item loop never re-expands the
list; the index is derived from recorded state and rebuilt on demand after a restart. A loop that starts or
refills returns whether its children must be advanced: the scheduler, which drives this module, does it.
A loop with more items than `limits.loop_items` ends as an Error naming the limit.
"""

from __future__ import annotations

from typing import Any

import orjson

from aether_es.engine.binding import interpolate, single_placeholder
from aether_es.engine.decision import Decision
from aether_es.engine.env import Env, TaskVars, as_condition, parameters_map
from aether_es.engine.failures import fail_run, mark_run_error
from aether_es.engine.outcomes import empty_aggregate, finish_metrics
from aether_es.engine.run_env import children_vars, workflow_args
from aether_es.events import catalogue as ev
from aether_es.limits import LimitExceeded, check
from aether_es.model import phases as ph
from aether_es.model.documents import Loop, Parameter, Template
from aether_es.model.gofmt import go_quote
from aether_es.ports.error_sink import Severity
from aether_es.ports.evaluator import ExpressionError
from aether_es.projections.run_state import TaskRunView


class LoopExpansionError(Exception):
    """The loop's items could not be produced; the message says why."""


def _go_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "float64"
    if isinstance(value, dict):
        return "map[string]interface {}"
    return type(value).__name__


def expand(decision: Decision, task: TaskRunView, loop: Loop) -> list[dict[str, Any]]:
    """Each iteration's parameters: object items' own fields or `loop_iter.item`, plus `loop_iter.index`."""
    expanded = decision.index.loop_items
    cached = expanded.get(task.id)
    if cached is not None:
        return cached
    if loop.items:
        raw: list[Any] = loop.items
    else:
        raw = _items_from(decision, task, loop.items_from)
    if loop.max_iterations > 0:
        raw = raw[: loop.max_iterations]
    try:
        check(decision.context.limits, "loop_items", f"loop {go_quote(task.task_name)}'s item count", len(raw))
    except LimitExceeded as exc:
        raise LoopExpansionError(str(exc)) from None
    items: list[dict[str, Any]] = []
    for index, item in enumerate(raw):
        params: dict[str, Any] = dict(item) if isinstance(item, dict) else {"loop_iter.item": item}
        params["loop_iter.index"] = index
        items.append(params)
    expanded[task.id] = items
    return items


def _items_from(decision: Decision, task: TaskRunView, source: str) -> list[Any]:
    env = Env(
        decision.context.vars,
        workflow_args(decision),
        parameters_map("inputs.parameters.", task.inputs),
        children_vars(decision, decision.state.children_of(task.parent_id)),
    )
    key = single_placeholder(source)
    if key is not None and key in env:
        value = env[key]
    else:
        evaluator = decision.context.evaluator
        if evaluator is None:
            raise LoopExpansionError("itemsFrom requires an ExprEvaluator but none is configured")
        try:
            value = evaluator.evaluate(source, env)
        except ExpressionError as exc:
            raise LoopExpansionError(f"eval itemsFrom {go_quote(source)}: {exc}") from exc
    if value is None:
        return []
    if isinstance(value, list):
        return value
    if isinstance(value, str):
        try:
            decoded = orjson.loads(value)
        except orjson.JSONDecodeError:
            decoded = None
        if not isinstance(decoded, list):
            raise LoopExpansionError(f'itemsFrom "{source}" returned non-array string')
        return decoded
    raise LoopExpansionError(f'itemsFrom "{source}" returned non-array type: {_go_type(value)}')


def start(decision: Decision, task: TaskRunView) -> bool:
    """Begin a loop whose inputs are bound: its first iteration(s), or an immediate finish when it has none.
    True when it has iterations, which the scheduler then advances."""
    loop = decision.loop_of(task)
    body = decision.template(loop.body) if loop is not None else None
    if loop is None or body is None:
        fail_run(decision, task, f'loop "{task.template_name}" has no body template')
        return False
    if loop.repeat_condition:
        _create_iteration(decision, task, loop, body, 0, None)
        return True
    try:
        items = expand(decision, task, loop)
    except LoopExpansionError as exc:
        message = f'expand loop "{loop.name}": {exc}'
        decision.report("startLoopController.expandLoop", message, Severity.ERROR, task.id)
        decision.emit(
            ev.TaskFinished(
                task_id=task.id, phase=ph.ERROR, message=message, metrics=finish_metrics(None, decision.now)
            )
        )
        return False
    if not items:
        decision.emit(
            ev.TaskFinished(
                task_id=task.id,
                phase=ph.SUCCEEDED,
                message="loop had no iterations",
                outputs=empty_aggregate(loop.aggregate, loop.outputs),
                metrics=finish_metrics(None, decision.now),
            )
        )
        return False
    return True


def spawn_next(decision: Decision, task: TaskRunView) -> bool:
    """Create the next iterations an items loop has room for; True when any were created."""
    loop = decision.loop_of(task)
    if loop is None or loop.repeat_condition:
        return False
    body = decision.template(loop.body)
    if body is None:
        return False
    try:
        items = expand(decision, task, loop)
    except LoopExpansionError as exc:
        decision.report("trySpawnNextIterations", str(exc), Severity.ERROR, task.id)
        return False
    created = len(task.kids.children)
    total = len(items)
    if created >= total:
        return False
    limit = min(loop.concurrency if loop.concurrency > 0 else total, decision.context.limits.active_per_scope)
    room = min(limit - task.kids.active, total - created)
    for index in range(created, created + max(0, room)):
        decision.check_budget(task.id)
        _create_iteration(decision, task, loop, body, index, items[index])
    return room > 0


def advance_repeat(decision: Decision, task: TaskRunView) -> bool:
    """Do-while: after the last iteration finished, run another while `repeatCondition` holds."""
    loop = decision.loop_of(task)
    evaluator = decision.context.evaluator
    if loop is None or not loop.repeat_condition or evaluator is None:
        return False
    following = len(task.kids.children)
    if loop.max_iterations > 0 and following >= loop.max_iterations:
        return False
    body = decision.template(loop.body)
    if body is None or not task.kids.children:
        return False
    last = decision.state.tasks[task.kids.children[-1]]
    env = Env({"loop_iter.index": following - 1}, TaskVars(lambda name: last if name == last.task_name else None))
    try:
        result = evaluator.evaluate(loop.repeat_condition, env)
    except ExpressionError as exc:
        mark_run_error(decision, f"repeatCondition loop {go_quote(task.task_name)}: {exc}")
        return False
    condition = as_condition(result)
    if condition is None:
        problem = f"returned {type(result).__name__}, not a boolean"
        mark_run_error(decision, f"repeatCondition loop {go_quote(task.task_name)}: {problem}")
        return False
    if not condition:
        return False
    _create_iteration(decision, task, loop, body, following, None)
    return True


def _create_iteration(
    decision: Decision,
    task: TaskRunView,
    loop: Loop,
    body: Template,
    index: int,
    params: dict[str, Any] | None,
) -> None:
    inputs: list[Parameter] | None = None
    if params is not None:
        iteration_env = dict(params)
        if "loop_iter.item" in params:
            iteration_env["iterator.item"] = params["loop_iter.item"]
        iteration_env["iterator.index"] = params["loop_iter.index"]
        inputs = [Parameter(name=name, value=value) for name, value in params.items()]
        for arg in loop.arguments.parameters if loop.arguments is not None else ():
            value = interpolate(arg.value, iteration_env) if isinstance(arg.value, str) else arg.value
            inputs.append(Parameter(name=arg.name, type=arg.type, value=value))
    decision.create_task(task, f"{task.task_name}.loop[{index}]/", body.name, body.name, body.type, inputs=inputs)
