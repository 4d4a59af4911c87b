"""What a valid document says that Aether will not do: warnings, each with its JSON path and the fix.

Aether's decoder ignores unknown keys, a task template ignores the fields only a DAG node uses, an argument
`value` is never interpolated, and a loop whose DAG body declares inputs drops each iteration's values
(spec 1.3, 3.10, 3.16). Such a document runs, as it would on Aether, but not as its author meant: these
warnings say so (`validate`, submit), and `--strict` refuses the document instead.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, NamedTuple, get_args, get_origin

from pydantic import BaseModel

from aether_es.model.documents import CronWorkflow, Task, Workflow
from aether_es.model.loading import JsonInput, is_model, json_field, json_fields, member, parse_object, unoptional
from aether_es.spelling import nearest


class DocumentWarning(NamedTuple):
    path: str
    """Where, as a JSON path (`spec.templates[1].dag.tasks[0].dependancies`)."""
    message: str
    """What Aether does with it, and what to write instead."""

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


FOREIGN_NAMES = {
    "retryStrategy": '"retry" (Argo\'s retryStrategy)',
    "depends": '"dependencies" (a list of task names)',
    "activeDeadlineSeconds": '"timeout" (a duration such as "30s")',
    "withItems": 'a loop template\'s "items"',
    "withParam": 'a loop template\'s "itemsFrom"',
    "parallelism": 'a loop template\'s "concurrency"',
    "onExit": '"hooks": {"onExit": {"template": ...}}',
    "container": '"executor": {"type": ..., "config": ...}',
    "script": '"executor": {"type": "shell", "config": {"command": ...}}',
    "steps": 'a "dag" template',
}
"""Names from other workflow engines (Argo's mostly) and what Aether calls them."""

TEMPLATE_ONLY_ON_NODES = ("template", "arguments", "dependencies", "when", "continueOn", "retry", "hooks")
"""Task fields a task template ignores: only a DAG node calling it uses them (spec 1.3)."""

INLINE_ONLY = ("inputs", "executor", "resources", "phaseConditions", "outputs")
"""Task fields a DAG node that calls a template ignores: they are the template's (spec 1.3)."""

_PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")


def document_warnings(data: JsonInput) -> list[DocumentWarning]:
    """The warnings of a document that loads (a Workflow, or a CronWorkflow by its `kind`): unknown fields first."""
    obj = parse_object(data)
    cron = member(obj, "kind") == "CronWorkflow"
    found = list(_unknown_fields(CronWorkflow if cron else Workflow, obj, ""))
    spec, path = _object(member(obj, "spec")), "spec"
    if cron:
        spec, path = _object(member(spec, "workflowSpec")), "spec.workflowSpec"
    found.extend(_argument_placeholders(member(spec, "arguments"), f"{path}.arguments"))
    found.extend(_template_traps(_list(member(spec, "templates")), f"{path}.templates"))
    return found


# --- unknown fields -----------------------------------------------------------------------------------


def _unknown_fields(cls: type[BaseModel], obj: dict[str, Any], path: str) -> Iterator[DocumentWarning]:
    """Every key Go's decoder would drop, at any depth of the model (raw JSON values are not looked into).
    Recursion follows the models, which do not nest in themselves, so its depth is bounded."""
    for key, value in obj.items():
        here = f"{path}.{key}" if path else key
        field = json_field(cls, key)
        if field is None:
            yield DocumentWarning(here, f"unknown field, ignored{_nearest(cls, key)}")
        elif not field.raw:
            for model, node, where in _children(field.annotation, value, here):
                yield from _unknown_fields(model, node, where)


def _children(annotation: Any, value: Any, path: str) -> Iterator[tuple[type[BaseModel], dict[str, Any], str]]:
    """The objects of a field's value that are models: the value itself, or the members of a list."""
    annotation = unoptional(annotation)
    if is_model(annotation):
        if isinstance(value, dict):
            yield annotation, value, path
        return
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is list and args and is_model(unoptional(args[0])) and isinstance(value, list):
        item_model = unoptional(args[0])
        yield from ((item_model, item, f"{path}[{i}]") for i, item in enumerate(value) if isinstance(item, dict))


def _nearest(model: type[BaseModel], key: str) -> str:
    """The hint after an unknown key: what Aether calls a foreign name, else the closest field name."""
    foreign = FOREIGN_NAMES.get(key)
    if foreign is not None:
        return f"; Aether's name for it is {foreign}"
    close = nearest(key, json_fields(model)[0])
    return f'; did you mean "{close}"?' if close else ""


# --- where fields are ignored, values stay literal, iterations lose their values ---------------------------


def _template_traps(templates: list[Any], path: str) -> Iterator[DocumentWarning]:
    dags_with_inputs = {
        member(dag, "name")
        for dag in (_object(member(_object(t), "dag")) for t in templates)
        if _list(member(_object(member(dag, "inputs")), "parameters"))
    }
    for i, template in enumerate(templates):
        template = _object(template)
        task = _object(member(template, "task"))
        yield from _ignored(task, f"{path}[{i}].task", TEMPLATE_ONLY_ON_NODES, _ON_TEMPLATE)
        dag = _object(member(template, "dag"))
        for k, node in enumerate(_list(member(dag, "tasks"))):
            node, where = _object(node), f"{path}[{i}].dag.tasks[{k}]"
            called = member(node, "template")
            if isinstance(called, str) and called:
                yield from _ignored(node, where, INLINE_ONLY, _ON_CALLING_NODE.format(template=called))
            yield from _argument_placeholders(member(node, "arguments"), f"{where}.arguments")
        loop = _object(member(template, "loop"))
        body = member(loop, "body")
        iterates = member(loop, "items") is not None or bool(member(loop, "itemsFrom"))
        if iterates and isinstance(body, str) and body in dags_with_inputs:
            yield DocumentWarning(
                f"{path}[{i}].loop.body",
                f'the DAG "{body}" declares inputs, so each iteration binds those instead of its own values '
                "(the item, loop_iter.index, the loop's arguments), which are lost (spec 3.10); declare no "
                f'inputs on "{body}": its tasks then read each iteration\'s values as inputs.parameters.<name>',
            )


_ON_TEMPLATE = (
    'ignored on a task template: Aether uses "{field}" only on the DAG node that calls the template '
    "(dag.tasks[]); move it there"
)
_ON_CALLING_NODE = (
    'ignored on a DAG node that calls the template "{template}": that template\'s own "{{field}}" applies; '
    'declare it there (or drop "template" to make the node its own task)'
)


def _ignored(node: dict[str, Any], path: str, fields: tuple[str, ...], why: str) -> Iterator[DocumentWarning]:
    for key, value in node.items():
        field = json_field(Task, key)
        if value is not None and field is not None and field.alias in fields:
            yield DocumentWarning(f"{path}.{key}", why.format(field=field.alias))


def _argument_placeholders(arguments: Any, path: str) -> Iterator[DocumentWarning]:
    """`{{...}}` in an argument's `value`: Aether binds it verbatim, braces and all (spec 3.16)."""
    for j, parameter in enumerate(_list(member(_object(arguments), "parameters"))):
        value = member(_object(parameter), "value")
        found = _PLACEHOLDER.search(value) if isinstance(value, str) else None
        if found is None:
            continue
        whole = _PLACEHOLDER.fullmatch(value) is not None
        key = found.group(1)
        fix = (
            f'write "valueFrom": {{"parameter": "{key}"}} instead of "value"'
            if whole
            else f'build it with "valueFrom": {{"expression": ...}} (which fills {{{{{key}}}}}), or pass '
            f'"valueFrom": {{"parameter": "{key}"}} and add the text where it is used'
        )
        yield DocumentWarning(
            f"{path}.parameters[{j}].value", f"Aether passes {{{{{key}}}}} here as literal text, not its value; {fix}"
        )


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
