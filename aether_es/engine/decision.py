"""A decision in progress: the run state it changes, the events it emits and the effects it asks for.

Every event is folded into the state the moment it is emitted, with the same `apply` replay uses, so the
scheduling code always reads the state its own earlier steps produced. The decision does no I/O: the
runtime commits `envelopes` as one message and only then carries out `effects`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aether_es.engine.dag_index import DagIndex
from aether_es.engine.effects import Effect, ReportError
from aether_es.engine.run_index import RunIndex, run_index
from aether_es.engine.triggers import Trigger
from aether_es.events.catalogue import Event, TaskCreated
from aether_es.events.envelope import Envelope, make_envelopes
from aether_es.limits import DEFAULT, Limits, check
from aether_es.model.clock import add_seconds
from aether_es.model.documents import Dag, Loop, Parameter, Task, Template, Workflow
from aether_es.model.durations import parse_duration
from aether_es.model.phases import Phase, TemplateType
from aether_es.ports.error_sink import ErrorReport, Severity
from aether_es.ports.evaluator import Evaluator
from aether_es.projections.run_state import RunState, TaskRunView, apply, start


@dataclass(frozen=True, slots=True)
class DecideContext:
    """What a decision may consult besides the run: pure functions and data, never I/O."""

    evaluator: Evaluator | None = None
    vars: Mapping[str, Any] = field(default_factory=dict)
    secrets: bool = False
    budget: int = 1000
    """Work one decision may do before it stops and leaves the rest to a continuation: each event emitted
    costs 1, each expression evaluated `expression_cost` of its length."""
    schemas: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """The input JSON Schema registered for each executor type that has one; tasks are checked at dispatch."""
    limits: Limits = DEFAULT
    """The engine's limits (`tasks_per_run`, `loop_items`, `active_per_scope`): input to the decision, never
    read from the environment here, so the same events always yield the same decisions."""


EXPRESSION_CHARS_PER_UNIT = 64
"""An expression costs one budget unit per this many characters (plus one): a decision evaluating many long
expressions ends early, so other runs' decisions come in between."""


def expression_cost(expression: str) -> int:
    return 1 + len(expression) // EXPRESSION_CHARS_PER_UNIT


@dataclass(frozen=True, slots=True)
class _Metered:
    """The context's evaluator, charging each evaluation to the decision's budget."""

    inner: Evaluator
    decision: Decision

    def evaluate(self, expression: str, env: Mapping[str, Any]) -> Any:
        self.decision.spent += expression_cost(expression)
        return self.inner.evaluate(expression, env)


class BudgetExhausted(Exception):
    """The decision has emitted its share; `container` is the id of the container (or "" for the run's root)
    whose scheduling should carry on."""

    def __init__(self, container: str) -> None:
        super().__init__(container)
        self.container = container


class Decision:
    def __init__(self, state: RunState | None, context: DecideContext) -> None:
        self._state = state
        if context.evaluator is not None:
            context = dataclasses.replace(context, evaluator=_Metered(context.evaluator, self))
        self.context = context
        self.spent = 0
        """Budget units spent besides events (expression evaluations)."""
        self.envelopes: list[Envelope] = []
        self.effects: list[Effect] = []
        self.resume_points: list[str] = []
        self.trigger: Trigger | None = None
        self.now = ""
        self._run_id = state.run_id if state is not None else ""

    @property
    def state(self) -> RunState:
        assert self._state is not None, "the run has not been submitted"
        return self._state

    @property
    def has_state(self) -> bool:
        return self._state is not None

    @property
    def index(self) -> RunIndex:
        return run_index(self.state)

    @property
    def workflow(self) -> Workflow:
        return self.state.workflow

    def begin(self, trigger: Trigger, run_id: str) -> None:
        self.trigger = trigger
        self.now = trigger.at
        self._run_id = run_id

    def emit(self, event: Event) -> None:
        assert self.trigger is not None
        number = (self._state.events if self._state is not None else 0) + 1
        trigger = self.trigger
        (envelope,) = make_envelopes(
            self._run_id, number, [event], self.now, trigger.actor, trigger.cause, trigger.reason
        )
        if self._state is None:
            self._state = start(envelope)
        else:
            apply(self._state, envelope)
        self.envelopes.append(envelope)

    def deadline_after(self, timeout: str) -> str:
        """When a timeout (a duration) starting now passes; "" when there is none."""
        seconds = parse_duration(timeout)
        return add_seconds(self.now, seconds) if seconds is not None and seconds > 0 else ""

    def effect(self, effect: Effect) -> None:
        self.effects.append(effect)

    def over_budget(self, planned: int = 0) -> bool:
        """Whether the decision has done its share, counting `planned` events it is about to emit."""
        return len(self.envelopes) + self.spent + planned >= self.context.budget

    def check_budget(self, container: str) -> None:
        if self.over_budget():
            raise BudgetExhausted(container)

    def report(self, operation: str, message: str, severity: Severity = Severity.WARNING, task_id: str = "") -> None:
        self.effect(
            ReportError(
                ErrorReport(
                    operation=operation,
                    message=message,
                    severity=severity,
                    workflow_run_id=self._run_id,
                    task_run_id=task_id,
                )
            )
        )

    def warn(self, operation: str, message: str) -> None:
        self.report(operation, message)

    # --- document lookups ----------------------------------------------------------------------------

    def template(self, name: str) -> Template | None:
        return self.workflow.spec.template(name) if name else None

    def dag_of(self, container: TaskRunView) -> Dag | None:
        tpl = self.template(container.template_name)
        return tpl.dag if tpl is not None else None

    def dag_index(self, template_name: str, dag: Dag) -> DagIndex:
        """The index of the run's DAG template `template_name`, made once per run."""
        indexes = self.index.dags
        index = indexes.get(template_name)
        if index is None:
            index = indexes[template_name] = DagIndex.of(dag)
        return index

    def loop_of(self, container: TaskRunView) -> Loop | None:
        tpl = self.template(container.template_name)
        return tpl.loop if tpl is not None else None

    def node(self, parent: TaskRunView | None, name: str) -> Task | None:
        """The DAG node called `name` in the parent container's DAG, if the parent is a DAG."""
        if parent is None or parent.template_type != TemplateType.DAG:
            return None
        dag = self.dag_of(parent)
        if dag is None:
            return None
        return self.dag_index(parent.template_name, dag).nodes.get(name)

    def parent(self, task: TaskRunView) -> TaskRunView | None:
        return self.state.tasks.get(task.parent_id) if task.parent_id else None

    def create_task(
        self,
        parent: TaskRunView | None,
        scope: str,
        task_name: str,
        template_name: str,
        template_type: str,
        phase: str = Phase.CREATED,
        message: str = "",
        inputs: list[Parameter] | None = None,
    ) -> None:
        """Record a new task run under `parent` (None: the run's root); its id counts task runs in order.

        Raises `LimitExceeded` past `limits.tasks_per_run`; the decider fails the run with its message."""
        number = len(self.state.order) + 1 if self.has_state else 1
        check(self.context.limits, "tasks_per_run", "the number of task runs", number)
        self.emit(
            TaskCreated(
                task_id=f"{self._run_id}-{number}",
                parent_id=parent.id if parent is not None else "",
                depth=parent.depth + 1 if parent is not None else 0,
                scope=scope,
                task_name=task_name,
                template_name=template_name,
                template_type=template_type,
                phase=phase,
                message=message,
                created_at=self.now,
                inputs=inputs,
            )
        )
