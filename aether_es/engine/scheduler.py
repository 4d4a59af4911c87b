"""Scheduling a container's children: Aether's advanceScope on the in-memory run state.

Advancing a container (or the run's root, id "") activates its Created children, discovers DAG nodes that
became ready, refills loops, and finalizes the container when all its children are terminal, then carries on
with the container's parent. Each step reads the state produced by the events emitted before it, so the
loop converges exactly as Aether's store-backed loop does. Leaves and loops return what must be advanced
next; this module, which drives them, advances it.
"""

from __future__ import annotations

from aether_es.engine import hooks, leaves, loops
from aether_es.engine.binding import BindingError, SecretRef, resolve_value_from
from aether_es.engine.dag_index import Waiting
from aether_es.engine.decision import BudgetExhausted, Decision
from aether_es.engine.effects import ClearDeadlines
from aether_es.engine.env import Env, as_condition
from aether_es.engine.failures import fail_run
from aether_es.engine.outcomes import (
    aggregate_iterations,
    aggregate_phase,
    evaluate_phase_conditions,
    finish_metrics,
    tolerated,
)
from aether_es.engine.run_env import bind_parameters, binding_env, children_vars, workflow_args
from aether_es.events import catalogue as ev
from aether_es.events.values import ResultOutputs
from aether_es.model import phases as ph
from aether_es.model.documents import ContinueOn, Dag, Parameter, Task
from aether_es.model.gofmt import go_quote
from aether_es.model.phases import TemplateType
from aether_es.ports.deadlines import run_key
from aether_es.ports.evaluator import ExpressionError
from aether_es.projections.run_state import Children, TaskRunView

# --- advancing containers ------------------------------------------------------------------------------


def advance(decision: Decision, parent_id: str, stop: str | None = None) -> None:
    """Advance `parent_id`'s children and, as containers finish, their parents, up to (not into) `stop`."""
    state = decision.state
    parent = parent_id
    while True:
        if stop is not None and parent == stop:
            return
        if state.terminal:
            return
        children = state.children_of(parent)
        for task_id in list(children.created):
            decision.check_budget(parent)
            activate(decision, task_id)
            if state.terminal:
                return
        container = state.tasks[parent] if parent else None
        if container is None:
            if children.all_terminal:
                finalize_workflow(decision)
            return
        if container.phase in ph.TERMINAL:
            parent = container.parent_id
            continue
        if container.template_type == TemplateType.DAG:
            if create_eligible(decision, container):
                continue
            if not children.all_terminal:
                return
        else:
            if loops.spawn_next(decision, container):
                continue
            if not children.all_terminal:
                return
            if loops.advance_repeat(decision, container):
                continue
            if state.terminal:
                return
        if not finalize_container(decision, container):
            return
        parent = container.parent_id


def activate(decision: Decision, task_id: str) -> None:
    task = decision.state.tasks[task_id]
    if task.phase != ph.CREATED or task.retry_at:
        return  # a retry waiting for its backoff is dispatched by its retry deadline, not by its container
    kind = task.template_type
    if kind == TemplateType.TASK:
        container = leaves.dispatch_leaf(decision, task)
        if container is not None:
            advance(decision, container)
    elif kind == TemplateType.DAG:
        dag = decision.dag_of(task)
        if dag is not None and dag.inputs is not None and dag.inputs.parameters:
            node = decision.node(decision.parent(task), task.task_name)
            args = node.arguments.parameters if node is not None and node.arguments is not None else []
            inputs = bind_parameters(decision, dag.inputs.parameters, args, binding_env(decision, task.parent_id))
            decision.emit(ev.TaskInputsBound(task_id=task.id, inputs=inputs))
        advance(decision, task.id, stop=task.parent_id)
    elif kind == TemplateType.LOOP:
        loop = decision.loop_of(task)
        node = decision.node(decision.parent(task), task.task_name)
        decls = loop.inputs.parameters if loop is not None and loop.inputs is not None else []
        args = node.arguments.parameters if node is not None and node.arguments is not None else []
        inputs = bind_parameters(decision, decls, args, binding_env(decision, task.parent_id))
        decision.emit(ev.TaskInputsBound(task_id=task.id, inputs=inputs))
        if loops.start(decision, task):
            advance(decision, task.id, stop=task.parent_id)
    else:
        fail_run(decision, task, f'unknown template type "{kind}" for task "{task.task_name}"')


# --- DAG discovery -------------------------------------------------------------------------------------


def effective_continue_on(node: Task | None, dag: Dag) -> ContinueOn | None:
    """A node's own continueOn replaces the DAG's default as a whole."""
    if node is not None and node.continue_on is not None:
        return node.continue_on
    return dag.continue_on


def create_eligible(decision: Decision, container: TaskRunView) -> bool:
    """Create a record for every DAG node that became ready; `when`-false nodes are created Skipped."""
    dag = decision.dag_of(container)
    if dag is None:
        return False
    tasks = decision.state.tasks
    children = container.kids
    index = decision.dag_index(container.template_name, dag)
    all_waiting = decision.index.waiting
    waiting = all_waiting.get(container.id)
    if waiting is None:
        waiting = all_waiting[container.id] = Waiting.of(dag, index, children.by_name)

    def satisfied(dep: str) -> bool:
        task_id = children.by_name.get(dep)
        if task_id is None:
            return False
        phase = tasks[task_id].phase
        if phase in (ph.SUCCEEDED, ph.SKIPPED):
            return True
        return tolerated(phase, effective_continue_on(index.nodes.get(dep), dag))

    room = decision.context.limits.active_per_scope - children.active
    if room <= 0:
        return False  # the nodes ready wait for running ones to finish
    ready = waiting.ready(index, children.by_name, satisfied, room)
    if not ready:
        return False
    if decision.over_budget():
        waiting.requeue(ready)
        raise BudgetExhausted(container.id)
    # The nodes this decision can pay for (each `when` evaluated and each record count), at least one; the
    # rest wait for the next pass, which a decision over its budget leaves to a continuation.
    skipped: list[Task] = []
    runnable: list[Task] = []
    for position, node in enumerate(ready):
        if position and decision.over_budget(planned=position):
            waiting.requeue(ready[position:])
            break
        (runnable if _when_allows(decision, node, children) else skipped).append(node)
    for node in skipped:
        message = f"when condition {go_quote(node.when)} evaluated to false"
        _create_node(decision, container, dag, node, ph.SKIPPED, message)
        waiting.recorded(node.name)
    for node in runnable:
        _create_node(decision, container, dag, node, ph.CREATED, "")
        waiting.recorded(node.name)
    return True


def _when_allows(decision: Decision, node: Task, children: Children) -> bool:
    evaluator = decision.context.evaluator
    if not node.when or evaluator is None:
        return True
    try:
        result = evaluator.evaluate(node.when, Env(children_vars(decision, children)))
    except ExpressionError as exc:
        decision.warn("createEligibleTasks.whenCondition", f"task {node.name!r}: {exc}")
        return False
    condition = as_condition(result)
    if condition is None:
        decision.warn(
            "createEligibleTasks.whenCondition",
            f"task {node.name!r}: when condition returned {type(result).__name__}, not a boolean",
        )
        return False
    return condition


def _create_node(decision: Decision, container: TaskRunView, dag: Dag, node: Task, phase: str, message: str) -> None:
    if node.template:
        tpl = decision.template(node.template)
        kind = tpl.type if tpl is not None else TemplateType.TASK
    else:
        kind = TemplateType.TASK
    decision.create_task(container, f"{container.task_name}/", node.name, node.template, kind, phase, message)


# --- finalization --------------------------------------------------------------------------------------


def finalize_container(decision: Decision, container: TaskRunView) -> bool:
    """Derive a finished container's phase, message and outputs; False when it is not finalizable."""
    if container.phase not in (ph.CREATED, ph.READY, ph.RUNNING):
        return False
    tasks = decision.state.tasks
    children = [tasks[i] for i in container.kids.children]
    outputs: ResultOutputs | None
    if container.template_type == TemplateType.DAG:
        dag = decision.dag_of(container)
        if dag is None:
            return False
        nodes = {node.name: node for node in dag.tasks}
        phase, message = aggregate_phase(children, lambda c: effective_continue_on(nodes.get(c.task_name), dag))
        outputs = _collect_dag_outputs(decision, container, dag)
        if phase != ph.CANCELLED and dag.phase_conditions is not None:
            env = Env(
                {"phase": phase, "msg": message, **_outputs_map(outputs)},
                children_vars(decision, container.kids),
            )
            phase = evaluate_phase_conditions(
                dag.phase_conditions,
                phase,
                env,
                decision.context.evaluator,
                decision.warn,
                "evalContainerPhaseConditions",
            )
    else:
        loop = decision.loop_of(container)
        phase, message = aggregate_phase(children)
        outputs = aggregate_iterations(children, loop.aggregate if loop else None, loop.outputs if loop else None)
    if outputs is not None:
        outputs = outputs.model_copy(update={"phase": phase})
    decision.emit(
        ev.TaskFinished(
            task_id=container.id,
            phase=phase,
            message=message,
            outputs=outputs,
            metrics=finish_metrics(container.metrics, decision.now),
        )
    )
    return True


def _outputs_map(outputs: ResultOutputs | None) -> dict[str, object]:
    return {f"outputs.parameters.{p.name}": p.value for p in (outputs.parameters if outputs else ())}


def _collect_dag_outputs(decision: Decision, container: TaskRunView, dag: Dag) -> ResultOutputs | None:
    decls = dag.outputs.parameters if dag.outputs is not None else []
    if not decls:
        return None
    env = Env(decision.context.vars, workflow_args(decision), children_vars(decision, container.kids))
    params: list[Parameter] = []
    for decl in decls:
        if decl.value_from is not None and decl.value_from.is_set():
            try:
                value = resolve_value_from(decl.value_from, env, decision.context.evaluator, secrets=True)
            except SecretRef:
                decision.warn(f"collectDAGOutputs.{decl.name}", "secret values are never written to outputs")
                continue
            except BindingError as exc:
                decision.warn(f"collectDAGOutputs.{decl.name}", str(exc))
                continue
            params.append(Parameter(name=decl.name, type=decl.type, value=value))
        else:
            params.append(Parameter(name=decl.name, type=decl.type, value=decl.value))
    return ResultOutputs(parameters=params) if params else None


def finalize_workflow(decision: Decision) -> None:
    state = decision.state
    if state.phase not in (ph.CREATED, ph.READY, ph.RUNNING):
        return
    tops = [state.tasks[i] for i in state.root.children]
    phase, message = aggregate_phase(tops)
    outputs = next((t.outputs for t in tops if t.outputs is not None and t.outputs.parameters), None)
    decision.emit(
        ev.RunFinished(
            phase=phase, message=message, outputs=outputs, metrics=finish_metrics(state.metrics, decision.now)
        )
    )
    hooks.workflow_hooks(decision, phase)
    if state.deadline:
        decision.effect(ClearDeadlines((run_key(state.run_id),)))
