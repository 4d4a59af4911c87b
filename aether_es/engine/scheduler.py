"""Scope scheduling: Aether's advanceScope on the in-memory run state.

A scope is the set of children of one container (or the run's root). Advancing a scope activates its Created
children, discovers DAG nodes that became ready, refills loops, and finalizes the container when everything
in it is terminal, then carries on with the container's own scope. Each step reads the state produced by the
events emitted before it, so the loop converges exactly as Aether's store-backed loop does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from aether_es.engine import hooks, loops
from aether_es.engine.binding import (
    BindingError,
    SecretRef,
    bind,
    bind_artifacts,
    interpolate,
    placeholder_keys,
    resolve_value_from,
)
from aether_es.engine.dag_index import Waiting
from aether_es.engine.decision import BudgetExhausted, Decision
from aether_es.engine.effects import ClearDeadlines, DispatchTask, SetDeadline
from aether_es.engine.env import Env, TaskVars, param_value, parameters_map
from aether_es.engine.input_schema import input_problem
from aether_es.engine.outcomes import (
    aggregate_iterations,
    aggregate_phase,
    evaluate_phase_conditions,
    finish_metrics,
    tolerated,
)
from aether_es.engine.triggers import Completed
from aether_es.events import catalogue as ev
from aether_es.events.values import ResultOutputs
from aether_es.model import phases as ph
from aether_es.model.clock import add_seconds
from aether_es.model.documents import Artifact, ContinueOn, Dag, Parameter, Task
from aether_es.model.durations import parse_duration
from aether_es.model.gofmt import go_quote
from aether_es.ports.deadlines import Deadline, retry_key
from aether_es.ports.error_sink import Severity
from aether_es.ports.evaluator import ExpressionError
from aether_es.ports.wire import TaskAssignment, TaskResult, WireArtifact, WireParameter
from aether_es.projections.run_state import RunState, ScopeIndex, TaskRunView

# --- envs ----------------------------------------------------------------------------------------------


def workflow_args(decision: Decision) -> dict[str, object]:
    memo = decision.state.memo
    if "workflow_args" not in memo:
        args = decision.workflow.spec.arguments
        memo["workflow_args"] = parameters_map("workflow.parameters.", args.parameters if args else None)
    result: dict[str, object] = memo["workflow_args"]
    return result


def scope_vars(decision: Decision, scope: ScopeIndex) -> TaskVars:
    """`tasks.<name>.*` of a scope's children; the last child with a name wins."""
    tasks = decision.state.tasks

    def find(name: str) -> TaskRunView | None:
        task_id = scope.by_name.get(name)
        return tasks[task_id] if task_id is not None else None

    return TaskVars(find)


def binding_env(decision: Decision, parent_id: str) -> Env:
    """Engine vars, workflow args, the parent container's inputs and the scope's siblings."""
    state = decision.state
    parent = state.tasks.get(parent_id) if parent_id else None
    inputs = parameters_map("inputs.parameters.", parent.inputs) if parent is not None else None
    return Env(decision.context.vars, workflow_args(decision), inputs, scope_vars(decision, state.scope(parent_id)))


def _bind(decision: Decision, decls: list[Parameter], args: list[Parameter], env: Env) -> list[Parameter]:
    return bind(decls, args, env, decision.context.evaluator, decision.context.secrets, decision.warn)


# --- advancing scopes ----------------------------------------------------------------------------------


def advance(decision: Decision, parent_id: str, stop: str | None = None) -> None:
    """Advance `parent_id`'s scope and, as containers finish, their parents, up to (not into) `stop`."""
    state = decision.state
    parent = parent_id
    while True:
        if stop is not None and parent == stop:
            return
        if state.terminal:
            return
        scope = state.scope(parent)
        for task_id in list(scope.created):
            decision.check_budget(parent)
            activate(decision, task_id)
            if state.terminal:
                return
        container = state.tasks[parent] if parent else None
        if container is None:
            if scope.all_terminal:
                finalize_workflow(decision)
            return
        if container.phase in ph.TERMINAL:
            parent = container.parent_id
            continue
        if container.template_type == "dag":
            if create_eligible(decision, container):
                continue
            if not scope.all_terminal:
                return
        else:
            if loops.spawn_next(decision, container):
                continue
            if not scope.all_terminal:
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
        return  # a retry waiting for its backoff is dispatched by its retry deadline, not by its scope
    kind = task.template_type
    if kind == "task":
        dispatch_leaf(decision, task)
    elif kind == "dag":
        dag = decision.dag_of(task)
        if dag is not None and dag.inputs is not None and dag.inputs.parameters:
            node = decision.node(decision.parent(task), task.task_name)
            args = node.arguments.parameters if node is not None and node.arguments is not None else []
            inputs = _bind(decision, dag.inputs.parameters, args, binding_env(decision, task.parent_id))
            decision.emit(ev.TaskInputsBound(task_id=task.id, inputs=inputs))
        advance(decision, task.id, stop=task.parent_id)
    elif kind == "loop":
        loop = decision.loop_of(task)
        node = decision.node(decision.parent(task), task.task_name)
        decls = loop.inputs.parameters if loop is not None and loop.inputs is not None else []
        args = node.arguments.parameters if node is not None and node.arguments is not None else []
        inputs = _bind(decision, decls, args, binding_env(decision, task.parent_id))
        decision.emit(ev.TaskInputsBound(task_id=task.id, inputs=inputs))
        loops.start(decision, task)
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
    scope = container.kids
    index = decision.dag_index(container.template_name, dag)
    all_waiting: dict[str, Waiting] = decision.state.memo.setdefault("dag_waiting", {})
    waiting = all_waiting.get(container.id)
    if waiting is None:
        waiting = all_waiting[container.id] = Waiting.of(dag, index, scope.by_name)

    def satisfied(dep: str) -> bool:
        task_id = scope.by_name.get(dep)
        if task_id is None:
            return False
        phase = tasks[task_id].phase
        if phase in (ph.SUCCEEDED, ph.SKIPPED):
            return True
        return tolerated(phase, effective_continue_on(index.nodes.get(dep), dag))

    room = decision.context.limits.active_per_scope - scope.active
    if room <= 0:
        return False  # the nodes ready wait for running ones to finish
    ready = waiting.ready(index, scope.by_name, satisfied, room)
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
        (runnable if _when_allows(decision, node, scope) else skipped).append(node)
    for node in skipped:
        message = f"when condition {go_quote(node.when)} evaluated to false"
        _create_node(decision, container, dag, node, ph.SKIPPED, message)
        waiting.recorded(node.name)
    for node in runnable:
        _create_node(decision, container, dag, node, ph.CREATED, "")
        waiting.recorded(node.name)
    return True


def _when_allows(decision: Decision, node: Task, scope: ScopeIndex) -> bool:
    evaluator = decision.context.evaluator
    if not node.when or evaluator is None:
        return True
    try:
        result = evaluator.evaluate(node.when, Env(scope_vars(decision, scope)))
    except ExpressionError as exc:
        decision.warn("createEligibleTasks.whenCondition", f"task {node.name!r}: {exc}")
        return False
    if isinstance(result, bool):
        return result
    if isinstance(result, str):
        return result == "true"
    decision.warn(
        "createEligibleTasks.whenCondition",
        f"task {node.name!r}: when condition returned {type(result).__name__}, not a boolean",
    )
    return False


def _create_node(decision: Decision, container: TaskRunView, dag: Dag, node: Task, phase: str, message: str) -> None:
    if node.template:
        tpl = decision.template(node.template)
        kind = tpl.type if tpl is not None else "task"
    else:
        kind = "task"
    decision.create_task(container, f"{container.task_name}/", node.name, node.template, kind, phase, message)


# --- leaves --------------------------------------------------------------------------------------------


def definition(decision: Decision, task: TaskRunView) -> Task | None:
    """The task template named by the record, else the inline-executor DAG node it came from."""
    tpl = decision.template(task.template_name)
    if tpl is not None and tpl.task is not None:
        return tpl.task
    node = decision.node(decision.parent(task), task.task_name)
    if node is not None and node.executor is not None:
        return node
    return None


def dispatch_leaf(decision: Decision, task: TaskRunView) -> None:
    """Claim a leaf (Ready), bind its inputs, and hand its assignment to the broker."""
    decl = definition(decision, task)
    if decl is None:
        fail_run(decision, task, f'template "{task.template_name}" not found for task "{task.task_name}"')
        return
    if decl.executor is None or not decl.executor.type:
        fail_run(
            decision,
            task,
            f'task definition "{decl.name}" has no executor: cannot build assignment for task "{task.task_name}"',
        )
        return
    parent = decision.parent(task)
    call = decision.node(parent, task.task_name)
    timeout = call.timeout if call is not None and call.timeout else decl.timeout
    inputs: list[Parameter] | None = None
    env = binding_env(decision, task.parent_id)
    if parent is None or parent.template_type != "loop":
        decls = decl.inputs.parameters if decl.inputs is not None else []
        args = call.arguments.parameters if call is not None and call.arguments is not None else []
        bound = _bind(decision, decls, args, env)
        inputs = bound or None
    artifacts = bind_artifacts(
        decl.inputs.artifacts if decl.inputs is not None else [],
        call.arguments.artifacts if call is not None and call.arguments is not None else [],
        env,
        decision.warn,
    )
    seconds = parse_duration(timeout)
    deadline = add_seconds(decision.now, seconds) if seconds is not None and seconds > 0 else ""
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
        _reject_inputs(decision, task, f'inputs do not fit executor "{decl.executor.type}": {problem}')
        if previous_deadline:
            decision.effect(ClearDeadlines((f"task.{task.id}",)))
        return
    decision.effect(dispatch_effect(decision, task))
    if deadline:
        decision.effect(
            SetDeadline(Deadline(run_id=task.workflow_run_id, at=deadline, task_run_id=task.id, attempt=task.attempt))
        )
    elif previous_deadline:
        decision.effect(ClearDeadlines((f"task.{task.id}",)))


def _reject_inputs(decision: Decision, task: TaskRunView, message: str) -> None:
    """End the attempt, recorded but never sent, as a worker's Failed result would: retries, continueOn and
    hooks apply as to any failure."""
    from aether_es.engine import decider  # the decider drives this module, so it is imported late

    result = TaskResult(code=2, message=message)  # 2: Failed, as Aether's executors return it
    cause = f"{task.id}.{task.attempt}.inputs"
    completed = Completed(
        actor="engine", cause=cause, at=decision.now, task_id=task.id, attempt=task.attempt, result=result
    )
    decider._completed(decision, completed)


def dispatch_effect(decision: Decision, task: TaskRunView) -> DispatchTask:
    """The fat assignment for the task's current attempt, built from recorded state only."""
    decl = definition(decision, task)
    resources = decl.resources.dump() if decl is not None and decl.resources is not None else None
    params: list[WireParameter] = []
    secret_refs: list[tuple[str, str, str]] = []
    for param in task.inputs or ():
        ref = param.value_from.secret_key_ref if param.value_from is not None else None
        if ref is not None and param.value is None:
            secret_refs.append((param.name, ref.name, ref.key))
        params.append(WireParameter(name=param.name, type=param.type, value=param_value(param)))
    config, templates = _executor_config(decl, task)
    assignment = TaskAssignment(
        task_run_id=task.id,
        workflow_run_id=task.workflow_run_id,
        task_name=task.task_name,
        template_name=task.template_name,
        executor_type=task.executor_type,
        attempt=task.attempt,
        inputs=params,
        timeout=task.timeout,
        resources=resources,
        priority=decision.workflow.spec.priority,
        retry_count=task.retry_count,
        artifacts=[_wire_artifact(a) for a in task.input_artifacts or ()],
        output_artifacts=[
            _wire_artifact(a) for a in (decl.outputs.artifacts if decl is not None and decl.outputs is not None else ())
        ],
        config=config,
        templates=templates,
        resumed_with=list(task.resumed_with) if task.resumed_with is not None else None,
    )
    return DispatchTask(assignment=assignment, secret_refs=tuple(secret_refs))


AS_WRITTEN: dict[str, str] = {"python": "callable", "shell": "command"}
"""Per executor type, the config key that chooses the code that runs: never interpolated by the engine, so a
value cannot choose it; the executor reads it as written (docs/security.md)."""

ConfigPath = list[str | int]


def _executor_config(decl: Task | None, task: TaskRunView) -> tuple[dict[str, Any] | None, list[ConfigPath]]:
    """`executor.config` with its strings interpolated from the task's recorded inputs, and the paths of the
    strings left as written for the worker.

    A string naming a secret input is left whole (a secret has no recorded value) and its path listed: the
    worker fills exactly those strings, in one pass, so a value's text is never interpolated a second time.
    The key that chooses the code (`AS_WRITTEN`) is left as written and not listed. Unknown keys stay, as in
    any other interpolation.
    """
    config = decl.executor.config if decl is not None and decl.executor is not None else None
    if not isinstance(config, dict):
        return None, []
    secret = {
        f"inputs.parameters.{p.name}"
        for p in task.inputs or ()
        if p.value_from is not None and p.value_from.secret_key_ref is not None
    }
    env = parameters_map(
        "inputs.parameters.", [p for p in task.inputs or () if f"inputs.parameters.{p.name}" not in secret]
    )
    templates: list[ConfigPath] = []

    def fill(value: Any, path: ConfigPath) -> Any:
        if isinstance(value, str):
            if secret.intersection(placeholder_keys(value)):
                templates.append(path)
                return value
            return interpolate(value, env)
        if isinstance(value, list):
            return [fill(item, [*path, index]) for index, item in enumerate(value)]
        if isinstance(value, dict):
            return {key: fill(item, [*path, key]) for key, item in value.items()}
        return value

    code_key = AS_WRITTEN.get(decl.executor.type) if decl is not None and decl.executor is not None else None
    filled = {key: item if key == code_key else fill(item, [key]) for key, item in config.items()}
    return filled, templates


def _promote_ancestors(decision: Decision, task: TaskRunView, phase: str, event: Callable[[str], ev.Event]) -> None:
    """Emit `event(ancestor id)` for each ancestor in `phase`, from the parent up to the first that is not."""
    parent_id = task.parent_id
    while parent_id:
        ancestor = decision.state.tasks[parent_id]
        if ancestor.phase != phase:
            break
        decision.emit(event(parent_id))
        parent_id = ancestor.parent_id


def _wire_artifact(artifact: Artifact) -> WireArtifact:
    source = artifact.source.dump() if artifact.source is not None else None
    return WireArtifact(
        name=artifact.name,
        source=source,
        path=artifact.path,
        archive=artifact.archive.type if artifact.archive is not None else "",
        optional=artifact.optional,
        digest=artifact.digest,
    )


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


def fail_run(decision: Decision, task: TaskRunView, cause: str) -> None:
    """A task that cannot run stops the run with an engine error (Aether's tryMarkWorkflowError)."""
    decision.report("dispatchLeafTask", cause, Severity.CRITICAL, task.id)
    if task.phase not in ph.TERMINAL:
        decision.emit(ev.TaskErrored(task_id=task.id, message=cause))
    mark_run_error(decision, cause)


def mark_run_error(decision: Decision, cause: str) -> None:
    if decision.state.terminal:
        return
    decision.report("tryMarkWorkflowError", cause, Severity.CRITICAL)
    decision.emit(ev.RunErrored(message=f"engine internal error: {cause}", finished_at=decision.now))
    decision.effect(ClearDeadlines(deadline_keys(decision.state, decision.state.tasks.values())))


def deadline_keys(state: RunState, tasks: Iterable[TaskRunView]) -> tuple[str, ...]:
    """The deadline keys of these tasks (those that have one, retry backoffs included) and of the run."""
    keys: list[str] = []
    for task in tasks:
        if task.deadline:
            keys.append(f"task.{task.id}")
        if task.retry_at:
            keys.append(retry_key(task.id, task.attempt))
    if state.deadline:
        keys.append(f"run.{state.run_id}")
    return tuple(keys)


# --- finalization --------------------------------------------------------------------------------------


def finalize_container(decision: Decision, container: TaskRunView) -> bool:
    """Derive a finished container's phase, message and outputs; False when it is not finalizable."""
    if container.phase not in (ph.CREATED, ph.READY, ph.RUNNING):
        return False
    tasks = decision.state.tasks
    children = [tasks[i] for i in container.kids.children]
    outputs: ResultOutputs | None
    if container.template_type == "dag":
        dag = decision.dag_of(container)
        if dag is None:
            return False
        nodes = {node.name: node for node in dag.tasks}
        phase, message = aggregate_phase(children, lambda c: effective_continue_on(nodes.get(c.task_name), dag))
        outputs = _collect_dag_outputs(decision, container, dag)
        if phase != ph.CANCELLED and dag.phase_conditions is not None:
            env = Env(
                {"phase": phase, "msg": message, **_outputs_map(outputs)},
                scope_vars(decision, container.kids),
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
    env = Env(decision.context.vars, workflow_args(decision), scope_vars(decision, container.kids))
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
        decision.effect(ClearDeadlines((f"run.{state.run_id}",)))
