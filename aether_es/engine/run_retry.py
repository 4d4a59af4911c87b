"""Running a finished run's failed steps again in the same history (`aether-es retry`): the leaves to run
again, the DAG nodes that depend on one retried from, and reopening what contains them."""

from __future__ import annotations

from aether_es.engine import scheduler
from aether_es.engine.decision import Decision
from aether_es.engine.effects import SetDeadline
from aether_es.engine.triggers import RetryRun
from aether_es.errors import InvalidStateError
from aether_es.events import catalogue as ev
from aether_es.model import phases as ph
from aether_es.model.phases import TemplateType
from aether_es.ports.deadlines import Deadline
from aether_es.projections.run_state import TaskRunView

RETRYABLE = frozenset({ph.FAILED, ph.ERROR, ph.TIMEOUT, ph.CANCELLED})


def retry_run(decision: Decision, trigger: RetryRun) -> None:
    """Run a finished run's failed leaves again (all, or the named ones), keeping everything that succeeded.

    Each leaf goes back to Created with one more retry counted (its next attempt is a new attempt), its
    finished ancestors back to Running, the run back to Running with a fresh deadline; scheduling then
    carries on as if those leaves had just become ready, and DAG nodes they held back are created in turn.
    """
    state = decision.state
    if not state.terminal:
        raise InvalidStateError(f'workflow "{state.run_id}" is {state.phase}: only a finished run can be retried')
    superseded: list[TaskRunView] = []
    if trigger.from_task:
        to_retry = [_retry_from(decision, trigger.from_task, superseded)]
    else:
        to_retry = _failed_leaves(decision, trigger.task_ids)
    deadline = decision.deadline_after(decision.workflow.spec.timeout)
    decision.emit(ev.RunReopened(deadline=deadline))
    reopened: set[str] = set()
    for leaf in to_retry:
        parent_id = leaf.parent_id
        while parent_id and parent_id not in reopened:
            reopened.add(parent_id)
            parent_id = state.tasks[parent_id].parent_id
    for container_id in sorted(reopened, key=lambda i: state.tasks[i].order):
        container = state.tasks[container_id]
        if container.phase in ph.TERMINAL:
            decision.emit(ev.TaskReset(task_id=container_id, phase=ph.RUNNING, retry_count=container.retry_count))
    for record in superseded:
        decision.emit(ev.TaskSuperseded(task_id=record.id))
        decision.index.forget_waiting(record.parent_id)
    for leaf in to_retry:
        decision.emit(ev.TaskReset(task_id=leaf.id, phase=ph.CREATED, retry_count=leaf.retry_count + 1))
    if deadline:
        decision.effect(SetDeadline(Deadline(run_id=state.run_id, at=deadline)))
    for parent_id in dict.fromkeys(leaf.parent_id for leaf in reversed(to_retry)):
        if not state.terminal:
            scheduler.advance(decision, parent_id)


def _retry_from(decision: Decision, task_id: str, superseded: list[TaskRunView]) -> TaskRunView:
    """The leaf to run again, adding to `superseded` the records of the DAG nodes that depend on it."""
    state = decision.state
    task = state.tasks.get(task_id)
    if task is None:
        raise InvalidStateError(f'task "{task_id}" does not belong to workflow "{state.run_id}"')
    if task.template_type != TemplateType.TASK or task.phase not in ph.TERMINAL or task.phase == ph.SKIPPED:
        raise InvalidStateError(
            f'task "{task_id}" is a {task.template_type} in phase {task.phase}: a run is retried from a finished task'
        )
    parent = decision.parent(task)
    dag = decision.dag_of(parent) if parent is not None and parent.template_type == TemplateType.DAG else None
    if parent is not None and dag is not None:
        index = decision.dag_index(parent.template_name, dag)
        dependents: set[str] = set()
        frontier = [task.task_name]
        while frontier:
            name = frontier.pop()
            for node in index.nodes.values():
                if name in node.dependencies and node.name not in dependents:
                    dependents.add(node.name)
                    frontier.append(node.name)
        by_name = parent.kids.by_name
        superseded.extend(
            state.tasks[by_name[n]] for n in sorted(dependents, key=index.position.__getitem__) if n in by_name
        )
    return task


def _failed_leaves(decision: Decision, task_ids: tuple[str, ...]) -> list[TaskRunView]:
    state = decision.state
    for task_id in task_ids:
        task = state.tasks.get(task_id)
        if task is None:
            raise InvalidStateError(f'task "{task_id}" does not belong to workflow "{state.run_id}"')
        if task.template_type != TemplateType.TASK or task.phase not in RETRYABLE:
            raise InvalidStateError(
                f'task "{task_id}" is a {task.template_type} in phase {task.phase}: '
                "only a failed, errored, timed-out or cancelled task can be retried"
            )
    wanted = set(task_ids)
    to_retry = [
        state.tasks[i]
        for i in state.order
        if state.tasks[i].template_type == TemplateType.TASK
        and state.tasks[i].phase in RETRYABLE
        and (not wanted or i in wanted)
    ]
    if not to_retry:
        raise InvalidStateError(f'workflow "{state.run_id}" has no failed task to retry')
    return to_retry
