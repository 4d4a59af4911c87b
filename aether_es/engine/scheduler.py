"""Scheduling a container's children: Aether's advanceScope on the in-memory run state.

Advancing a container (or the run's root, id "") activates its Created children, discovers DAG nodes that
became ready, refills loops, and finalizes the container when all its children are terminal, then carries on
with the container's parent. Each step reads the state produced by the events emitted before it, so the
loop converges exactly as Aether's store-backed loop does. Leaves and loops return what must be advanced
next; this module, which drives them, advances it.
"""

from __future__ import annotations

from aether_es.engine import leaves, loops
from aether_es.engine.dags import create_eligible
from aether_es.engine.decision import Decision
from aether_es.engine.failures import fail_run
from aether_es.engine.finalization import finalize_container, finalize_workflow
from aether_es.engine.run_env import bind_parameters, binding_env
from aether_es.events import catalogue as ev
from aether_es.model import phases as ph
from aether_es.model.phases import TemplateType


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
