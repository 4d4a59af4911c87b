"""Finishing a container whose children are all terminal, and the run once its top-level tasks are: the
phase (continueOn and phaseConditions applied), the message, the outputs and the hooks."""

from __future__ import annotations

from aether_es.engine import hooks
from aether_es.engine.binding import BindingError, SecretRef, resolve_value_from
from aether_es.engine.dags import effective_continue_on
from aether_es.engine.decision import Decision
from aether_es.engine.effects import ClearDeadlines
from aether_es.engine.env import Env
from aether_es.engine.outcomes import (
    aggregate_iterations,
    aggregate_phase,
    evaluate_phase_conditions,
    finish_metrics,
)
from aether_es.engine.run_env import children_vars, workflow_args
from aether_es.events import catalogue as ev
from aether_es.events.values import ResultOutputs
from aether_es.model import phases as ph
from aether_es.model.documents import Dag, Parameter
from aether_es.model.phases import TemplateType
from aether_es.ports.deadlines import run_key
from aether_es.projections.run_state import TaskRunView


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
