"""The envs a run's scheduling binds parameters in: engine vars, workflow arguments, a container's inputs and
the `tasks.*` of its children."""

from __future__ import annotations

from aether_es.engine.binding import bind
from aether_es.engine.decision import Decision
from aether_es.engine.env import Env, TaskVars, parameters_map
from aether_es.model.documents import Parameter
from aether_es.projections.run_state import Children, TaskRunView


def workflow_args(decision: Decision) -> dict[str, object]:
    index = decision.index
    if index.workflow_args is None:
        args = decision.workflow.spec.arguments
        index.workflow_args = parameters_map("workflow.parameters.", args.parameters if args else None)
    return index.workflow_args


def children_vars(decision: Decision, children: Children) -> TaskVars:
    """`tasks.<name>.*` of a container's children; the last child with a name wins."""
    tasks = decision.state.tasks

    def find(name: str) -> TaskRunView | None:
        task_id = children.by_name.get(name)
        return tasks[task_id] if task_id is not None else None

    return TaskVars(find)


def binding_env(decision: Decision, parent_id: str) -> Env:
    """Engine vars, workflow args, the parent container's inputs and its children."""
    state = decision.state
    parent = state.tasks.get(parent_id) if parent_id else None
    inputs = parameters_map("inputs.parameters.", parent.inputs) if parent is not None else None
    return Env(
        decision.context.vars, workflow_args(decision), inputs, children_vars(decision, state.children_of(parent_id))
    )


def bind_parameters(decision: Decision, decls: list[Parameter], args: list[Parameter], env: Env) -> list[Parameter]:
    return bind(decls, args, env, decision.context.evaluator, decision.context.secrets, decision.warn)
