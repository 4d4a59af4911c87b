"""A run followed commit by commit: what each commit changed, and its progress with totals known up front.

A display that rebuilt the whole run view for every change would cost O(tasks x changes). This keeps the
run's fold (`run_state.apply`, the only one) and updates its counters only for the task runs a commit
touches, so following a run costs O(events) however large it grows.
"""

from __future__ import annotations

from dataclasses import dataclass

from aether_es.events.envelope import Commit
from aether_es.model import phases as ph
from aether_es.model.phases import TemplateType
from aether_es.projections.names import display_name
from aether_es.projections.run_state import RunState, TaskRunView, apply, start


@dataclass(frozen=True, slots=True)
class Progress:
    """Terminal task runs out of those the run has or is known to be going to have."""

    done: int
    total: int

    def __str__(self) -> str:
        return f"{self.done}/{self.total}" if self.total else ""


@dataclass(frozen=True, slots=True)
class Transition:
    """A task run reaching a phase (its creation included), with the run's progress right then."""

    task: TaskRunView
    phase: str
    progress: Progress


class RunProgress:
    """The fold of one run's commits, with the progress and the live task runs kept up to date as it goes.

    The total counts the task runs created so far plus those a container is known to be going to create:
    every node of a DAG, every item of a loop over a fixed list (capped by `maxIterations`). A loop over
    computed items or a do-while one adds its iterations as they come. What a container has not created by
    the time it ends is dropped from the total.
    """

    def __init__(self) -> None:
        self.state: RunState | None = None
        self.done = 0
        self.active: dict[str, None] = {}
        """Task runs not yet terminal, in creation order: what a live display shows."""
        self._paths: dict[str, str] = {}
        self._planned: dict[str, int] = {}
        self._outstanding: dict[str, int] = {}
        self._outstanding_total = 0

    @property
    def progress(self) -> Progress:
        created = len(self.state.order) if self.state is not None else 0
        return Progress(self.done, created + self._outstanding_total)

    def path(self, task: TaskRunView) -> str:
        """`parent/child` names from the root."""
        return self._paths[task.id]

    def apply(self, commit: Commit) -> list[Transition]:
        """Fold a commit; the phase changes it made, in order, so a container's end comes after its
        children's and its start before theirs."""
        transitions: list[Transition] = []
        for envelope in commit.envelopes:
            if self.state is None:
                self.state = start(envelope)
                continue
            task_id: str = getattr(envelope.event, "task_id", "")
            before = self.state.tasks.get(task_id)
            old_phase = before.phase if before is not None else ""
            apply(self.state, envelope)
            if not task_id:
                continue
            task = self.state.tasks[task_id]
            if before is None:
                self._created(task)
            if task.phase == old_phase:
                continue
            is_terminal = task.phase in ph.TERMINAL
            if (old_phase in ph.TERMINAL) != is_terminal:
                self.done += 1 if is_terminal else -1
            if is_terminal:
                self.active.pop(task_id, None)
            else:
                self.active[task_id] = None
            self._recount(task)
            if task.parent_id:
                self._recount(self.state.tasks[task.parent_id])
            transitions.append(Transition(task, task.phase, self.progress))
        return transitions

    def _created(self, task: TaskRunView) -> None:
        name = display_name(task.task_name, task.scope)
        parent = self._paths.get(task.parent_id, "")
        self._paths[task.id] = f"{parent}/{name}" if parent else name
        planned = self._children_planned(task)
        if planned is not None:
            self._planned[task.id] = planned

    def _children_planned(self, task: TaskRunView) -> int | None:
        """How many children a container will create, when its template says so up front."""
        if task.template_type == TemplateType.TASK or self.state is None:
            return None
        template = self.state.workflow.spec.template(task.template_name)
        if template is None:
            return None
        if template.dag is not None:
            return len(template.dag.tasks)
        loop = template.loop
        if loop is None or loop.repeat_condition or loop.items is None:
            return None
        return min(len(loop.items), loop.max_iterations) if loop.max_iterations > 0 else len(loop.items)

    def _recount(self, container: TaskRunView) -> None:
        planned = self._planned.get(container.id)
        if planned is None:
            return
        missing = 0 if container.phase in ph.TERMINAL else max(0, planned - len(container.kids.children))
        self._outstanding_total += missing - self._outstanding.get(container.id, 0)
        self._outstanding[container.id] = missing
