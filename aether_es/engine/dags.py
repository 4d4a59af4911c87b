"""DAG discovery: which nodes of a DAG container became ready, created in document order (a node whose
`when` is false is created Skipped), within the room the container has and the decision's budget."""

from __future__ import annotations

from aether_es.engine.dag_index import Waiting
from aether_es.engine.decision import BudgetExhausted, Decision
from aether_es.engine.env import Env, as_condition
from aether_es.engine.outcomes import tolerated
from aether_es.engine.run_env import children_vars
from aether_es.model import phases as ph
from aether_es.model.documents import ContinueOn, Dag, Task
from aether_es.model.gofmt import go_quote
from aether_es.model.phases import TemplateType
from aether_es.ports.evaluator import ExpressionError
from aether_es.projections.run_state import Children, TaskRunView


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
