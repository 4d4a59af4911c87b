"""What a workflow needs from the engine's optional ports, checked before anything is written."""

from __future__ import annotations

from collections.abc import Iterator

from aether_es.engine.binding import single_placeholder
from aether_es.model.documents import Arguments, Inputs, Outputs, PhaseConditions, Workflow
from aether_es.model.gofmt import go_quote


def _value_from_expressions(where: str, section: Arguments | Inputs | Outputs | None) -> Iterator[str]:
    for param in section.parameters if section is not None else ():
        if param.value_from is not None and param.value_from.expression:
            yield f"{where} parameter {go_quote(param.name)}: valueFrom.expression"


def _conditions(where: str, conditions: PhaseConditions | None) -> Iterator[str]:
    if conditions is not None and conditions.any():
        yield f"{where}: phaseConditions"


def expression_uses(workflow: Workflow) -> Iterator[str]:
    """Every place that needs an expression evaluator, in document order."""
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
                    yield f"{where}: when"
                if node.retry is not None and node.retry.expression:
                    yield f"{where}: retry.expression"
                yield from _conditions(where, node.phase_conditions)
                yield from _value_from_expressions(where, node.arguments)
                yield from _value_from_expressions(where, node.inputs)
        if tpl.loop is not None:
            loop = tpl.loop
            if loop.repeat_condition:
                yield f"template {name}: repeatCondition"
            if loop.items_from and single_placeholder(loop.items_from) is None:
                yield f"template {name}: itemsFrom expression"
            yield from _value_from_expressions(f"template {name}", loop.inputs)
    args = workflow.spec.arguments
    yield from _value_from_expressions("spec.arguments", args)
