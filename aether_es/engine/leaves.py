"""A leaf task run's attempts: binding and dispatching its assignment, recording its start and its result
(suspended, retried or finished), and promoting its ancestors as it starts.

A leaf that finishes returns the container whose scheduling must carry on (`ToAdvance`); the scheduler,
which drives this module, advances it.
"""

from __future__ import annotations

from collections.abc import Callable

from aether_es.engine import assignments, hooks
from aether_es.engine.binding import bind_artifacts, merge_parameters
from aether_es.engine.decision import Decision
from aether_es.engine.effects import ClearDeadlines, SetDeadline
from aether_es.engine.failures import fail_run
from aether_es.engine.input_schema import input_problem
from aether_es.engine.outcomes import evaluate_phase_conditions, finish_metrics, merge_with_declaration, result_env
from aether_es.engine.retries import backoff_seconds, retry_deadline, retry_policy
from aether_es.engine.run_env import bind_parameters, binding_env
from aether_es.events import catalogue as ev
from aether_es.events.values import ResultOutputs
from aether_es.model import phases as ph
from aether_es.model.clock import add_seconds
from aether_es.model.documents import Artifact, ArtifactArchive, Outputs, Parameter, PhaseConditions, Retry
from aether_es.model.phases import ResultCode, TemplateType
from aether_es.ports.deadlines import Deadline, task_key
from aether_es.ports.wire import TaskResult
from aether_es.projections.run_state import TaskRunView

ToAdvance = str | None
"""The id of the container whose children changed so that its scheduling must carry on ("" is the run's
root), or None when nothing finished."""


def dispatch_leaf(decision: Decision, task: TaskRunView) -> ToAdvance:
    """Claim a leaf (Ready), bind its inputs, and hand its assignment to the broker; inputs its executor
    refuses end the attempt at once."""
    decl = assignments.definition(decision, task)
    if decl is None:
        fail_run(decision, task, f'template "{task.template_name}" not found for task "{task.task_name}"')
        return None
    if decl.executor is None or not decl.executor.type:
        fail_run(
            decision,
            task,
            f'task definition "{decl.name}" has no executor: cannot build assignment for task "{task.task_name}"',
        )
        return None
    parent = decision.parent(task)
    call = decision.node(parent, task.task_name)
    timeout = call.timeout if call is not None and call.timeout else decl.timeout
    inputs: list[Parameter] | None = None
    env = binding_env(decision, task.parent_id)
    if parent is None or parent.template_type != TemplateType.LOOP:
        decls = decl.inputs.parameters if decl.inputs is not None else []
        args = call.arguments.parameters if call is not None and call.arguments is not None else []
        bound = bind_parameters(decision, decls, args, env)
        inputs = bound or None
    artifacts = bind_artifacts(
        decl.inputs.artifacts if decl.inputs is not None else [],
        call.arguments.artifacts if call is not None and call.arguments is not None else [],
        env,
        decision.warn,
    )
    deadline = decision.deadline_after(timeout)
    previous_deadline = task.deadline
    schema = decision.context.schemas.get(decl.executor.type)
    problem = input_problem(schema, inputs if inputs is not None else task.inputs or ()) if schema else ""
    if problem:
        deadline = ""
    decision.emit(
        ev.TaskDispatched(
            task_id=task.id,
            attempt=task.attempt + 1,
            executor_type=decl.executor.type,
            inputs=inputs,
            artifacts=artifacts or None,
            timeout=timeout,
            deadline=deadline,
        )
    )
    mark_ancestors_ready(decision, task)
    if problem:
        to_advance = _reject_inputs(decision, task, f'inputs do not fit executor "{decl.executor.type}": {problem}')
        if previous_deadline:
            decision.effect(ClearDeadlines((task_key(task.id),)))
        return to_advance
    decision.effect(assignments.dispatch_effect(decision, task))
    if deadline:
        decision.effect(SetDeadline(timeout_deadline(task, deadline)))
    elif previous_deadline:
        decision.effect(ClearDeadlines((task_key(task.id),)))
    return None


def timeout_deadline(task: TaskRunView, at: str) -> Deadline:
    """The deadline of the leaf's current attempt: past `at`, the watcher reports its timeout."""
    return Deadline(run_id=task.workflow_run_id, at=at, task_run_id=task.id, attempt=task.attempt)


def _reject_inputs(decision: Decision, task: TaskRunView, message: str) -> ToAdvance:
    """End the attempt, recorded but never sent, as a worker's Failed result would: retries, continueOn and
    hooks apply as to any failure."""
    return complete_leaf(decision, task, TaskResult(code=ResultCode.FAILED, message=message), decision.now)


def _promote_ancestors(decision: Decision, task: TaskRunView, phase: str, event: Callable[[str], ev.Event]) -> None:
    """Emit `event(ancestor id)` for each ancestor in `phase`, from the parent up to the first that is not."""
    parent_id = task.parent_id
    while parent_id:
        ancestor = decision.state.tasks[parent_id]
        if ancestor.phase != phase:
            break
        decision.emit(event(parent_id))
        parent_id = ancestor.parent_id


def mark_ancestors_ready(decision: Decision, task: TaskRunView) -> None:
    _promote_ancestors(decision, task, ph.CREATED, lambda task_id: ev.TaskReady(task_id=task_id))
    if decision.state.phase == ph.CREATED:
        decision.emit(ev.RunReady())


def mark_ancestors_running(decision: Decision, task: TaskRunView, at: str) -> bool:
    """Ready ancestors become Running; returns whether the run itself just started."""
    _promote_ancestors(decision, task, ph.READY, lambda task_id: ev.TaskStarted(task_id=task_id, started_at=at))
    state = decision.state
    if state.phase == ph.READY:
        decision.emit(ev.RunStarted(started_at=at))
        return True
    return False


def start_leaf(decision: Decision, task: TaskRunView, at: str) -> None:
    if task.phase == ph.READY:
        decision.emit(ev.TaskStarted(task_id=task.id, attempt=task.attempt, started_at=at))
    elif task.phase == ph.SUSPENDED:
        decision.emit(ev.TaskStartRecorded(task_id=task.id, attempt=task.attempt))
    else:
        return
    if mark_ancestors_running(decision, task, at):
        hooks.workflow_hooks(decision, ph.RUNNING)
    hooks.task_hooks(decision, task, key="onStart")


def complete_leaf(
    decision: Decision, task: TaskRunView, result: TaskResult, at: str, started_at: str = ""
) -> ToAdvance:
    """A result for the leaf's current attempt: its start is recorded first if no report of it came."""
    if task.phase == ph.READY:
        start_leaf(decision, task, started_at or at)
    if task.phase not in (ph.RUNNING, ph.SUSPENDED):
        return None
    return finish_leaf(decision, task, result, at)


def _phase_conditions(decision: Decision, task: TaskRunView) -> PhaseConditions | None:
    tpl = decision.template(task.template_name)
    if tpl is not None and tpl.task is not None:
        return tpl.task.phase_conditions
    node = decision.node(decision.parent(task), task.task_name)
    return node.phase_conditions if node is not None else None


def _declared_outputs(decision: Decision, task: TaskRunView) -> Outputs | None:
    declared = assignments.definition(decision, task)
    return declared.outputs if declared is not None else None


def finish_leaf(decision: Decision, task: TaskRunView, result: TaskResult, at: str) -> ToAdvance:
    """Record a leaf attempt's result: suspended, retried, or finished (its container then carries on)."""
    raw = ResultOutputs(
        code=result.code,
        message=result.message,
        parameters=[Parameter(name=p.name, type=p.type, value=p.value) for p in result.parameters],
        artifacts=[
            Artifact(
                name=a.name,
                source=a.source,
                size=a.size,
                digest=a.digest,
                archive=ArtifactArchive(type=a.archive) if a.archive else None,
            )
            for a in result.artifacts
        ],
    )
    base = ph.code_to_phase(result.code)
    phase = evaluate_phase_conditions(
        _phase_conditions(decision, task),
        base,
        result_env(raw, base),
        decision.context.evaluator,
        decision.warn,
        "evalPhaseConditions",
    )
    if phase == ph.SUSPENDED:
        accumulated = merge_parameters(task.outputs.parameters if task.outputs else None, raw.parameters)
        decision.emit(
            ev.TaskSuspended(
                task_id=task.id,
                attempt=task.attempt,
                message=result.message,
                outputs=ResultOutputs(phase=ph.SUSPENDED, parameters=accumulated),
            )
        )
        hooks.task_hooks(decision, task, ph.SUSPENDED)
        return None
    policy = retry_policy(decision, task, phase)
    if policy is not None:
        return _retry(decision, task, policy, phase, result.message, at or decision.now)
    metrics = finish_metrics(task.metrics, at or decision.now, task.retry_count)
    outputs = merge_with_declaration(
        raw.model_copy(update={"phase": phase, "metrics": metrics}), _declared_outputs(decision, task)
    )
    decision.emit(
        ev.TaskFinished(
            task_id=task.id,
            attempt=task.attempt,
            phase=phase,
            message=result.message,
            outputs=outputs,
            metrics=metrics,
        )
    )
    if task.deadline:
        decision.effect(ClearDeadlines((task_key(task.id),)))
    hooks.task_hooks(decision, task, phase)
    return task.parent_id


def _retry(decision: Decision, task: TaskRunView, policy: Retry, phase: str, message: str, failed_at: str) -> ToAdvance:
    """Retry at once (Aether), or with a backoff: record when the retry is due and leave it to the watcher."""
    retry_count = task.retry_count + 1
    wait = backoff_seconds(policy.backoff, retry_count) if policy.backoff is not None else 0.0
    not_before = add_seconds(failed_at, wait) if wait > 0 else ""
    decision.emit(
        ev.TaskRetried(
            task_id=task.id,
            attempt=task.attempt,
            retry_count=retry_count,
            phase=phase,
            message=message,
            not_before=not_before,
            retry_limit=policy.limit if not_before else 0,
        )
    )
    if not not_before:
        return dispatch_leaf(decision, task)
    if task.deadline:
        decision.effect(ClearDeadlines((task_key(task.id),)))  # the failed attempt's timeout is spent
    decision.effect(SetDeadline(retry_deadline(task)))
    return None
