"""What a workflow needs from the engine (optional ports, limits), checked before anything is written."""

from __future__ import annotations

from collections.abc import Iterator

from aether_es.engine.binding import single_placeholder
from aether_es.limits import Limits, check
from aether_es.model.documents import Arguments, Inputs, Outputs, PhaseConditions, Workflow
from aether_es.model.gofmt import go_quote


def _value_from_expressions(where: str, section: Arguments | Inputs | Outputs | None) -> Iterator[tuple[str, str]]:
    for param in section.parameters if section is not None else ():
        if param.value_from is not None and param.value_from.expression:
            yield f"{where} parameter {go_quote(param.name)}: valueFrom.expression", param.value_from.expression


def _conditions(where: str, conditions: PhaseConditions | None) -> Iterator[tuple[str, str]]:
    for text in (conditions.succeeded, conditions.failed, conditions.error) if conditions is not None else ():
        if text:
            yield f"{where}: phaseConditions", text


def expressions(workflow: Workflow) -> Iterator[tuple[str, str]]:
    """Every expression of the workflow and where it is, in document order (an itemsFrom even when it is a
    lone `{{key}}` placeholder)."""
    for tpl in workflow.spec.templates:
        name = go_quote(tpl.name)
        if tpl.task is not None:
            task = tpl.task
            yield from _conditions(f"template {name}", task.phase_conditions)
            yield from _value_from_expressions(f"template {name}", task.inputs)
        if tpl.dag is not None:
            dag = tpl.dag
            yield from _conditions(f"template {name}", dag.phase_conditions)
            yield from _value_from_expressions(f"template {name} outputs", dag.outputs)
            yield from _value_from_expressions(f"template {name} inputs", dag.inputs)
            for node in dag.tasks:
                where = f"template {name} task {go_quote(node.name)}"
                if node.when:
                    yield f"{where}: when", node.when
                if node.retry is not None and node.retry.expression:
                    yield f"{where}: retry.expression", node.retry.expression
                yield from _conditions(where, node.phase_conditions)
                yield from _value_from_expressions(where, node.arguments)
                yield from _value_from_expressions(where, node.inputs)
        if tpl.loop is not None:
            loop = tpl.loop
            if loop.repeat_condition:
                yield f"template {name}: repeatCondition", loop.repeat_condition
            if loop.items_from:
                yield f"template {name}: itemsFrom", loop.items_from
            yield from _value_from_expressions(f"template {name}", loop.inputs)
    yield from _value_from_expressions("spec.arguments", workflow.spec.arguments)


def expression_uses(workflow: Workflow) -> Iterator[str]:
    """Every place that needs an expression evaluator, in document order."""
    last = ""
    for where, text in expressions(workflow):
        if where.endswith(": itemsFrom"):
            if single_placeholder(text) is not None:
                continue
            where += " expression"
        if where != last:
            yield where
        last = where


def check_limits(workflow: Workflow, limits: Limits) -> None:
    """Refuse, with `LimitExceeded`, what is over a limit before the run starts: a long expression, a DAG
    with more nodes than a run may have task runs, a literal loop with more items than a loop may have."""
    for where, text in expressions(workflow):
        check(limits, "expression_chars", where, len(text))
    for tpl in workflow.spec.templates:
        name = go_quote(tpl.name)
        if tpl.dag is not None:
            check(limits, "tasks_per_run", f"template {name}: the number of DAG tasks", len(tpl.dag.tasks))
        if tpl.loop is not None and tpl.loop.items:
            check(limits, "loop_items", f"template {name}: the number of loop items", len(tpl.loop.items))
