"""Workflow validation (spec 1.10): every message verbatim, and the evaluation order (first error wins)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from aether_es.errors import ValidationError
from aether_es.model.defaults import fill_defaults
from aether_es.model.gofmt import go_quote
from aether_es.model.loading import load_workflow
from aether_es.model.validation import has_cycle, validate_workflow

Doc = dict[str, Any]
DNS = "must match DNS-1123 (^[a-z0-9]([-a-z0-9]*[a-z0-9])?$)"
WORK = {"task": {"name": "work", "executor": {"type": "echo"}}}


def base() -> Doc:
    """A valid workflow: DAG `main` (a -> b) calling task template `work`."""
    return {
        "apiVersion": "aether/v1",
        "kind": "Workflow",
        "metadata": {"name": "demo"},
        "spec": {
            "entrypoint": "main",
            "templates": [
                {
                    "dag": {
                        "name": "main",
                        "tasks": [
                            {"name": "a", "template": "work"},
                            {"name": "b", "template": "work", "dependencies": ["a"]},
                        ],
                    }
                },
                copy.deepcopy(WORK),
            ],
        },
    }


def loop_base() -> Doc:
    """A valid workflow whose entry is a loop over task template `work`."""
    doc = base()
    doc["spec"]["templates"][0] = {"loop": {"name": "main", "body": "work", "items": [1, 2]}}
    return doc


def _node(doc: Any, path: str) -> Any:
    for part in path.split(".") if path else []:
        doc = doc[int(part)] if isinstance(doc, list) else doc[part]
    return doc


def put(path: str, value: Any) -> Callable[[Doc], None]:
    """A mutation setting `path` (dots, list indexes as numbers) to `value`."""

    def apply(doc: Doc) -> None:
        parent, _, last = path.rpartition(".")
        container = _node(doc, parent)
        if isinstance(container, list):
            container[int(last)] = copy.deepcopy(value)
        else:
            container[last] = copy.deepcopy(value)

    return apply


def drop(path: str) -> Callable[[Doc], None]:
    def apply(doc: Doc) -> None:
        parent, _, last = path.rpartition(".")
        del _node(doc, parent)[last]

    return apply


def add_template(template: Doc) -> Callable[[Doc], None]:
    def apply(doc: Doc) -> None:
        doc["spec"]["templates"].append(copy.deepcopy(template))

    return apply


def run(doc: Doc) -> None:
    validate_workflow(fill_defaults(load_workflow(doc)))


def assert_invalid(doc: Doc, message: str) -> None:
    with pytest.raises(ValidationError) as info:
        run(doc)
    assert str(info.value) == f"aether: validation error: {message}"
    assert info.value.detail == message


def check(mutations: list[Callable[[Doc], None]], message: str, start: Callable[[], Doc] = base) -> None:
    doc = start()
    for mutate in mutations:
        mutate(doc)
    assert_invalid(doc, message)


def test_bases_are_valid() -> None:
    run(base())
    run(loop_base())


# --- 1-6: document level ------------------------------------------------------------------------------


def test_unsupported_api_version() -> None:
    check([put("apiVersion", "v1")], "unsupported apiVersion: v1")


def test_missing_api_version() -> None:
    check([drop("apiVersion")], "unsupported apiVersion: ")


def test_unsupported_kind() -> None:
    check([put("kind", "Job")], "unsupported kind: Job")


def test_kind_cron_workflow_is_accepted_by_validate() -> None:
    doc = base()
    doc["kind"] = "CronWorkflow"
    run(doc)


def test_metadata_name_required() -> None:
    check([put("metadata.name", "")], "metadata.name is required")


def test_metadata_name_too_long() -> None:
    name = "a" * 64
    check([put("metadata.name", name)], f'metadata.name "{name}" is too long: max 63 characters')


def test_metadata_name_length_counts_utf8_bytes() -> None:
    name = "\u00e9" * 32  # 32 characters, 64 bytes
    check([put("metadata.name", name)], f'metadata.name "{name}" is too long: max 63 characters')


def test_metadata_name_63_is_fine() -> None:
    doc = base()
    doc["metadata"]["name"] = "a" * 63
    run(doc)


@pytest.mark.parametrize("name", ["Demo", "a_b", "a.b", "-a", "a-", "a b", "\u00e9"])
def test_metadata_name_invalid(name: str) -> None:
    check([put("metadata.name", name)], f'metadata.name "{name}" is invalid: {DNS}')


def test_metadata_name_invalid_is_go_quoted() -> None:
    check([put("metadata.name", 'de"mo\n')], f'metadata.name "de\\"mo\\n" is invalid: {DNS}')


def test_spec_entrypoint_required() -> None:
    check([put("spec.entrypoint", "")], "spec.entrypoint is required")


def test_spec_templates_required() -> None:
    check([put("spec.templates", [])], "spec.templates is required")


def test_entrypoint_template_not_found() -> None:
    check([put("spec.entrypoint", "nope")], 'entrypoint template "nope" not found in templates')


# --- 7: templates -----------------------------------------------------------------------------------------


def test_template_name_required_for_empty_union() -> None:
    check([add_template({})], "template[2].name is required")


def test_template_name_required_when_member_has_no_name() -> None:
    check([add_template({"task": {"executor": {"type": "echo"}}})], "template[2].name is required")


def test_template_name_too_long() -> None:
    name = "t" * 64
    check([add_template({"task": {"name": name}})], f'template name "{name}" is too long: max 63 characters')


def test_template_name_invalid() -> None:
    check([add_template({"task": {"name": "Bad_Name"}})], f'template name "Bad_Name" is invalid: {DNS}')


def test_template_must_have_exactly_one_member() -> None:
    template = {"dag": {"name": "x", "tasks": []}, "loop": {"name": "y"}}
    check([add_template(template)], 'template "x" must have exactly one of dag/task/loop')


def test_dag_tasks_must_not_be_empty() -> None:
    check([put("spec.templates.0.dag.tasks", [])], 'template "main": dag.tasks must not be empty')


def test_dag_task_name_required() -> None:
    check([put("spec.templates.0.dag.tasks.1.name", "")], 'template "main": task.name is required')


def test_dag_task_name_too_long() -> None:
    name = "n" * 64
    check(
        [put("spec.templates.0.dag.tasks.1.name", name)],
        f'template "main": task name "{name}" is too long: max 63 characters',
    )


def test_dag_task_name_invalid() -> None:
    check([put("spec.templates.0.dag.tasks.1.name", "B")], f'template "main": task name "B" is invalid: {DNS}')


def test_dag_duplicate_task_name() -> None:
    check([put("spec.templates.0.dag.tasks.1.name", "a")], 'template "main": duplicate task name "a"')


def test_dag_unknown_dependency() -> None:
    check(
        [put("spec.templates.0.dag.tasks.1.dependencies", ["a", "zzz"])],
        'template "main": task "b" depends on unknown task "zzz"',
    )


def test_dag_task_needs_template_or_executor() -> None:
    check(
        [put("spec.templates.0.dag.tasks.1.template", "")],
        'template "main": task "b": either template or executor is required',
    )


def test_dag_inline_executor_node_is_valid() -> None:
    doc = base()
    doc["spec"]["templates"][0]["dag"]["tasks"][1] = {"name": "b", "executor": {"type": "echo"}}
    run(doc)


def test_dag_unknown_template() -> None:
    check(
        [put("spec.templates.0.dag.tasks.1.template", "ghost")],
        'template "main": task "b" references unknown template "ghost"',
    )


def test_dag_entrypoint_unknown_task() -> None:
    check(
        [put("spec.templates.0.dag.entrypoints", ["a", "ghost"])],
        'template "main": entrypoint "ghost" references unknown task',
    )


def test_dag_entrypoint_as_string() -> None:
    check(
        [put("spec.templates.0.dag.entrypoints", "ghost")],
        'template "main": entrypoint "ghost" references unknown task',
    )


def test_dag_valid_entrypoints() -> None:
    doc = base()
    doc["spec"]["templates"][0]["dag"]["entrypoints"] = ["a", 5, None]
    run(doc)


def test_dag_cycle() -> None:
    check([put("spec.templates.0.dag.tasks.0.dependencies", ["b"])], 'template "main": dag contains a cycle')


def test_dag_self_dependency_is_a_cycle() -> None:
    check([put("spec.templates.0.dag.tasks.0.dependencies", ["a"])], 'template "main": dag contains a cycle')


def test_template_input_name_invalid() -> None:
    check(
        [put("spec.templates.1.task.inputs", {"parameters": [{"name": "ok"}, {"name": "loop_iter.index"}]})],
        f'template "work" inputs: parameter name "loop_iter.index" is invalid: {DNS}',
    )


def test_template_input_name_empty() -> None:
    check(
        [put("spec.templates.1.task.inputs", {"parameters": [{"value": 1}]})],
        f'template "work" inputs: parameter name "" is invalid: {DNS}',
    )


def test_template_input_name_too_long() -> None:
    name = "p" * 64
    check(
        [put("spec.templates.0.dag.inputs", {"parameters": [{"name": name}]})],
        f'template "main" inputs: parameter name "{name}" is too long: max 63 characters',
    )


def test_inline_node_inputs_and_argument_names_are_not_checked() -> None:
    doc = base()
    tasks = doc["spec"]["templates"][0]["dag"]["tasks"]
    tasks[0]["arguments"] = {"parameters": [{"name": "Not_DNS"}]}
    tasks[1] = {"name": "b", "executor": {"type": "echo"}, "inputs": {"parameters": [{"name": "__x"}]}}
    run(doc)


def test_executor_type_required() -> None:
    check([put("spec.templates.1.task.executor", {})], 'template "work": executor.type is required')


def test_task_template_without_executor_passes() -> None:
    doc = base()
    del doc["spec"]["templates"][1]["task"]["executor"]
    run(doc)


def test_loop_body_required() -> None:
    check([put("spec.templates.0.loop.body", "")], 'template "main": loop.body is required', loop_base)


def test_loop_body_unknown() -> None:
    check(
        [put("spec.templates.0.loop.body", "ghost")],
        'template "main": loop.body references unknown template "ghost"',
        loop_base,
    )


@pytest.mark.parametrize("items", [None, []])
def test_loop_needs_a_mode(items: Any) -> None:
    check(
        [put("spec.templates.0.loop.items", items)],
        'template "main": loop must specify one of repeatCondition/items/itemsFrom',
        loop_base,
    )


def test_loop_only_one_mode() -> None:
    check(
        [put("spec.templates.0.loop.itemsFrom", "{{inputs.parameters.list}}")],
        'template "main": loop must specify only one of repeatCondition/items/itemsFrom',
        loop_base,
    )


def test_loop_repeat_needs_max_iterations() -> None:
    check(
        [drop("spec.templates.0.loop.items"), put("spec.templates.0.loop.repeatCondition", "true")],
        'template "main": loop.maxIterations is required when using repeatCondition',
        loop_base,
    )


def test_loop_repeat_forbids_concurrency() -> None:
    check(
        [
            drop("spec.templates.0.loop.items"),
            put("spec.templates.0.loop.repeatCondition", "true"),
            put("spec.templates.0.loop.maxIterations", 3),
            put("spec.templates.0.loop.concurrency", 2),
        ],
        'template "main": loop.concurrency is not allowed with repeatCondition (serial only)',
        loop_base,
    )


def test_loop_aggregate_strategy_unsupported() -> None:
    check(
        [put("spec.templates.0.loop.aggregate", {"strategy": "merge"})],
        'template "main": loop.aggregate.strategy "merge" is not supported; valid values: last, first, list',
        loop_base,
    )


@pytest.mark.parametrize("strategy", ["", "last", "first", "list"])
def test_loop_aggregate_strategies_accepted(strategy: str) -> None:
    doc = loop_base()
    doc["spec"]["templates"][0]["loop"]["aggregate"] = {"strategy": strategy, "parameters": ["x"]}
    run(doc)


# --- 8: hooks --------------------------------------------------------------------------------------------


def test_workflow_hook_unknown_template() -> None:
    check(
        [put("spec.hooks", {"onSuccess": {"template": "ghost"}})],
        'spec.hooks: onSuccess references unknown template "ghost"',
    )


def test_workflow_hook_must_be_task_template() -> None:
    check(
        [put("spec.hooks", {"onExit": {"template": "main"}})],
        'spec.hooks: onExit template "main" must be a task template (not dag or loop)',
    )


def test_node_hook_unknown_template() -> None:
    check(
        [put("spec.templates.0.dag.tasks.1.hooks", {"onFailure": {"template": "ghost"}})],
        'template "main" task "b" hooks: onFailure references unknown template "ghost"',
    )


def test_node_hook_must_be_task_template() -> None:
    check(
        [
            add_template({"loop": {"name": "again", "body": "work", "items": [1]}}),
            put("spec.templates.0.dag.tasks.0.hooks", {"onStart": {"template": "again"}}),
        ],
        'template "main" task "a" hooks: onStart template "again" must be a task template (not dag or loop)',
    )


def test_empty_hook_template_is_ignored() -> None:
    doc = base()
    doc["spec"]["hooks"] = {"onSuccess": {"template": ""}, "onExit": {}, "onStart": {"template": "work"}}
    run(doc)


def test_conformance_27_message() -> None:
    check(
        [put("spec.hooks", {"onSuccess": {"template": "main"}})],
        'spec.hooks: onSuccess template "main" must be a task template (not dag or loop)',
    )


# --- 9: nesting depth ---------------------------------------------------------------------------------------


def chain(levels: int, max_depth: int | None = None) -> Doc:
    """Entry DAG d0 -> d1 -> ... -> d<levels-1> -> task `work` (at depth `levels`)."""
    templates: list[Doc] = [
        {
            "dag": {
                "name": f"d{i}",
                "tasks": [{"name": "n", "template": f"d{i + 1}" if i + 1 < levels else "work"}],
            }
        }
        for i in range(levels)
    ]
    doc = base()
    doc["spec"] = {"entrypoint": "d0", "templates": [*templates, copy.deepcopy(WORK)]}
    if max_depth is not None:
        doc["spec"]["maxNestedDepth"] = max_depth
    return doc


def test_nesting_depth_default_three() -> None:
    run(chain(3))
    assert_invalid(chain(4), "template nesting depth exceeds maximum (3)")


def test_nesting_depth_configured() -> None:
    run(chain(1, max_depth=1))
    assert_invalid(chain(2, max_depth=1), "template nesting depth exceeds maximum (1)")


@pytest.mark.parametrize("configured", [-1, 11, 100])
def test_nesting_depth_clamped_to_ten(configured: int) -> None:
    run(chain(10, max_depth=configured))
    assert_invalid(chain(11, max_depth=configured), "template nesting depth exceeds maximum (10)")


def test_inline_nodes_count_as_a_level() -> None:
    doc = chain(1, max_depth=1)
    doc["spec"]["templates"][0]["dag"]["tasks"] = [{"name": "n", "template": "d1"}]
    doc["spec"]["templates"].append({"dag": {"name": "d1", "tasks": [{"name": "m", "executor": {"type": "x"}}]}})
    assert_invalid(doc, "template nesting depth exceeds maximum (1)")


def test_loop_body_counts_as_a_level() -> None:
    doc = loop_base()
    doc["spec"]["maxNestedDepth"] = 1
    run(doc)
    doc["spec"]["templates"].append({"loop": {"name": "outer", "body": "main", "items": [1]}})
    doc["spec"]["entrypoint"] = "outer"
    assert_invalid(doc, "template nesting depth exceeds maximum (1)")


def test_self_recursion_is_bounded_by_depth() -> None:
    check([put("spec.templates.0.loop.body", "main")], "template nesting depth exceeds maximum (3)", loop_base)


def test_wide_nesting_is_fast() -> None:
    """Memoised walk: 60 nodes per level and 10 levels would be 60**10 visits without it."""
    templates: list[Doc] = [
        {"dag": {"name": f"d{i}", "tasks": [{"name": f"n{j}", "template": f"d{i + 1}"} for j in range(60)]}}
        for i in range(10)
    ]
    templates.append({"dag": {"name": "d10", "tasks": [{"name": "n", "template": "work"}]}})
    doc = base()
    doc["spec"] = {"entrypoint": "d0", "maxNestedDepth": 10, "templates": [*templates, copy.deepcopy(WORK)]}
    assert_invalid(doc, "template nesting depth exceeds maximum (10)")


# --- evaluation order: first error wins ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mutations", "message"),
    [
        ([put("apiVersion", "x"), put("kind", "Job")], "unsupported apiVersion: x"),
        ([put("kind", "Job"), put("metadata.name", "")], "unsupported kind: Job"),
        ([put("metadata.name", ""), put("spec.entrypoint", "")], "metadata.name is required"),
        ([put("spec.entrypoint", ""), put("spec.templates", [])], "spec.entrypoint is required"),
        (
            [put("spec.entrypoint", "nope"), add_template({})],
            'entrypoint template "nope" not found in templates',
        ),
        (
            [add_template({"task": {"name": "Bad"}}), add_template({"loop": {"name": "lp"}})],
            f'template name "Bad" is invalid: {DNS}',
        ),
        (
            [add_template({"task": {"name": "Bad"}, "dag": {"name": "x"}})],
            'template "x" must have exactly one of dag/task/loop',
        ),
        (
            [
                put("spec.templates.0.dag.tasks.0.dependencies", ["zzz"]),
                put("spec.templates.0.dag.tasks.1.name", "B"),
            ],
            f'template "main": task name "B" is invalid: {DNS}',
        ),
        (
            [
                put("spec.templates.0.dag.tasks.0.template", ""),
                put("spec.templates.0.dag.tasks.1.dependencies", ["zzz"]),
            ],
            'template "main": task "a": either template or executor is required',
        ),
        (
            [
                put("spec.templates.0.dag.tasks.0.dependencies", ["zzz"]),
                put("spec.templates.0.dag.tasks.0.template", ""),
            ],
            'template "main": task "a" depends on unknown task "zzz"',
        ),
        (
            [
                put("spec.templates.0.dag.entrypoints", "ghost"),
                put("spec.templates.0.dag.tasks.1.template", "x"),
            ],
            'template "main": task "b" references unknown template "x"',
        ),
        (
            [
                put("spec.templates.0.dag.entrypoints", "ghost"),
                put("spec.templates.0.dag.tasks.0.dependencies", ["b"]),
            ],
            'template "main": entrypoint "ghost" references unknown task',
        ),
        (
            [
                put("spec.templates.0.dag.tasks.0.dependencies", ["b"]),
                put("spec.templates.0.dag.inputs", {"parameters": [{"name": "X"}]}),
            ],
            'template "main": dag contains a cycle',
        ),
        (
            [
                put("spec.templates.1.task.executor", {}),
                put("spec.templates.1.task.inputs", {"parameters": [{"name": "X"}]}),
            ],
            f'template "work" inputs: parameter name "X" is invalid: {DNS}',
        ),
        (
            [put("spec.templates.1.task.executor", {}), put("spec.hooks", {"onExit": {"template": "ghost"}})],
            'template "work": executor.type is required',
        ),
        (
            [
                put("spec.templates.0.dag.tasks.0.hooks", {"onExit": {"template": "main"}}),
                put("spec.hooks", {"onExit": {"template": "ghost"}}),
            ],
            'spec.hooks: onExit references unknown template "ghost"',
        ),
        (
            [put("spec.hooks", {"onSuccess": {"template": "ghost"}, "onStart": {"template": "main"}})],
            'spec.hooks: onStart template "main" must be a task template (not dag or loop)',
        ),
        (
            [
                put("spec.templates.0.dag.tasks.1.hooks", {"onExit": {"template": "main"}}),
                put("spec.templates.0.dag.tasks.0.hooks", {"onExit": {"template": "ghost"}}),
            ],
            'template "main" task "a" hooks: onExit references unknown template "ghost"',
        ),
        (
            [put("spec.maxNestedDepth", 1), put("spec.hooks", {"onExit": {"template": "ghost"}})],
            'spec.hooks: onExit references unknown template "ghost"',
        ),
    ],
)
def test_first_error_wins(mutations: list[Callable[[Doc], None]], message: str) -> None:
    check(mutations, message)


def test_loop_checks_in_order() -> None:
    check(
        [put("spec.templates.0.loop.body", "ghost"), put("spec.templates.0.loop.items", [])],
        'template "main": loop.body references unknown template "ghost"',
        loop_base,
    )
    check(
        [
            put("spec.templates.0.loop.repeatCondition", "x"),
            put("spec.templates.0.loop.aggregate", {"strategy": "merge"}),
        ],
        'template "main": loop must specify only one of repeatCondition/items/itemsFrom',
        loop_base,
    )


def test_earlier_template_wins() -> None:
    check(
        [
            put("spec.templates.1.task.executor", {}),
            add_template({"task": {"name": "Late"}}),
        ],
        'template "work": executor.type is required',
    )


def test_first_template_of_a_name_wins_lookups() -> None:
    """Duplicate template names are not rejected; lookups (here: a hook) see the first one."""
    check(
        [
            put("spec.templates.1", {"dag": {"name": "work", "tasks": [{"name": "x", "template": "real"}]}}),
            put("spec.templates.0.dag.tasks", [{"name": "a", "template": "real"}]),
            add_template({"task": {"name": "real", "executor": {"type": "echo"}}}),
            add_template({"task": {"name": "work", "executor": {"type": "echo"}}}),
            put("spec.hooks", {"onSuccess": {"template": "work"}}),
        ],
        'spec.hooks: onSuccess template "work" must be a task template (not dag or loop)',
    )


# --- helpers ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "quoted"),
    [
        ("", '""'),
        ("plain", '"plain"'),
        ('a"b\\c', '"a\\"b\\\\c"'),
        ("\a\b\f\n\r\t\v", '"\\a\\b\\f\\n\\r\\t\\v"'),
        ("\x00\x1f\x7f", '"\\x00\\x1f\\x7f"'),
        ("\u00e9\u4e16\U0001f600", '"\u00e9\u4e16\U0001f600"'),
        ("\u00a0\u200b\u2028\ufeff", '"\\u00a0\\u200b\\u2028\\ufeff"'),
        ("\U000e0001", '"\\U000e0001"'),
        ("\ud800", '"\ufffd"'),
    ],
)
def test_go_quote(text: str, quoted: str) -> None:
    assert go_quote(text) == quoted


def test_has_cycle_on_long_chain_without_recursion() -> None:
    tasks = [{"name": f"t{i}", "dependencies": [f"t{i - 1}"] if i else []} for i in range(5000)]
    doc = base()
    doc["spec"]["templates"][0]["dag"]["tasks"] = tasks
    dag = load_workflow(doc).spec.templates[0].dag
    assert dag is not None and not has_cycle(dag)
    tasks[0]["dependencies"] = ["t4999"]
    dag = load_workflow(doc).spec.templates[0].dag
    assert dag is not None and has_cycle(dag)
