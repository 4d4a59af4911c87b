"""Focused decider semantics (spec §2-§4) on small inline workflows, run on the pure driver.

Each test pins exact phases, messages and parameters for one rule: input binding, interpolation,
`when`, phaseConditions, continueOn, timeouts, resume, cancel, engine errors, loop expansion errors,
the default retry policy and task/workflow hooks.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from support.driver import Driver

from aether_es.engine.decider import handle
from aether_es.engine.decision import DecideContext, Decision
from aether_es.engine.triggers import Completed, Started, Submit, WorkflowTimeout
from aether_es.events import catalogue as ev
from aether_es.model import phases as ph
from aether_es.model.defaults import fill_defaults
from aether_es.model.loading import load_workflow
from aether_es.ports.wire import TaskResult

ECHO = {"type": "echo"}
ECHO_TASK = {"task": {"name": "echo", "executor": ECHO}}


def wf(
    templates: list[dict[str, Any]],
    entry: str = "main",
    arguments: list[dict[str, Any]] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {"entrypoint": entry, "templates": templates, **spec}
    if arguments is not None:
        body["arguments"] = {"parameters": arguments}
    return {"apiVersion": "aether/v1", "kind": "Workflow", "metadata": {"name": "sem"}, "spec": body}


def dag(name: str, tasks: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"dag": {"name": name, "tasks": tasks, **extra}}


def node(name: str, template: str = "echo", *args: dict[str, Any], **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "template": template, **extra}
    if args:
        out["arguments"] = {"parameters": list(args)}
    return out


def arg(name: str, value: Any = None, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, **extra}
    if value is not None:
        out["value"] = value
    return out


def run(document: dict[str, Any], mode: str = "fifo", **kwargs: Any) -> Driver:
    driver = Driver(mode=mode, **kwargs)
    assert driver.submit(document) is None
    driver.run()
    assert driver.violations == []
    assert driver.replayed().to_dict() == driver.view().to_dict()
    return driver


def values(params: Any) -> list[tuple[str, Any]]:
    return [(p.name, p.value) for p in params or ()]


def outputs(driver: Driver, name: str) -> dict[str, Any]:
    task = driver.task(name)
    return {p.name: p.value for p in (task.outputs.parameters if task.outputs else ())}


def phases(driver: Driver) -> dict[str, str]:
    state = driver.view()
    return {state.tasks[t].task_name: state.tasks[t].phase for t in state.order}


def hook_log(driver: Driver, scope: str | None = None) -> list[tuple[str, str, str]]:
    return [(h.scope, h.task_name, h.hook_type) for h in driver.hooks if scope is None or h.scope == scope]


# --- binding -------------------------------------------------------------------------------------------


def _binding_workflow(extra_args: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    wf_x = {"valueFrom": {"parameter": "workflow.parameters.x"}}
    missing = {"valueFrom": {"parameter": "tasks.nope.outputs.parameters.p"}}
    callee = {
        "task": {
            "name": "callee",
            "executor": ECHO,
            "inputs": {
                "parameters": [
                    # 1. argument value beats everything, and is never interpolated
                    {"name": "a", "value": "decl-a", "default": "def-a", **wf_x},
                    # 2. argument valueFrom beats the declared value
                    {"name": "b", "value": "decl-b", "default": "def-b"},
                    # 3. declared value beats declared valueFrom and default
                    {"name": "c", "value": "decl-c", "default": "def-c", **wf_x},
                    # 4. declared valueFrom beats default
                    {"name": "d", "default": "def-d", **wf_x},
                    # 5. default last
                    {"name": "e", "default": "def-e"},
                    # argument valueFrom fails -> declared default, with a warning
                    {"name": "f", "default": "fallback-f"},
                    # declared valueFrom fails, no default -> no value
                    {"name": "g", **missing},
                    # legacy prefix rewrite
                    {"name": "h", "valueFrom": {"parameter": "workflow.arguments.parameters.x"}},
                    # declared, no value anywhere
                    {"name": "i"},
                ]
            },
        }
    }
    args = [
        arg("z-first", "pass-1"),
        arg("a", "{{workflow.parameters.x}}", valueFrom={"parameter": "workflow.parameters.y"}),
        arg("b", valueFrom={"parameter": "workflow.parameters.y"}),
        arg("f", **missing),
        arg("z-second", valueFrom={"parameter": "workflow.parameters.y"}),
        *(extra_args or []),
    ]
    return wf(
        [dag("main", [node("n", "callee", *args)]), callee],
        arguments=[{"name": "x", "value": "X"}, {"name": "y", "value": {"deep": [1, 2]}}],
    )


def test_binding_priority_and_pass_through() -> None:
    driver = run(_binding_workflow())
    assert driver.view().phase == ph.SUCCEEDED
    assert values(driver.task("n").inputs) == [
        ("a", "{{workflow.parameters.x}}"),
        ("b", {"deep": [1, 2]}),
        ("c", "decl-c"),
        ("d", "X"),
        ("e", "def-e"),
        ("f", "fallback-f"),
        ("g", None),
        ("h", "X"),
        ("i", None),
        ("z-first", "pass-1"),
        ("z-second", {"deep": [1, 2]}),
    ]
    warned = {e.operation: e.message for e in driver.errors}
    assert warned == {
        "bind.resolveValueFrom.f": 'key "tasks.nope.outputs.parameters.p" not found in eval env',
        "bind.resolveValueFrom.g": 'key "tasks.nope.outputs.parameters.p" not found in eval env',
    }


def test_binding_sees_siblings_parent_inputs_and_engine_vars() -> None:
    inner = dag(
        "inner",
        [
            node("first", "echo", arg("v", 1)),
            node(
                "second",
                "echo",
                arg("from-sibling", valueFrom={"parameter": "tasks.first.outputs.parameters.v"}),
                arg("from-parent", valueFrom={"parameter": "inputs.parameters.p"}),
                arg("os", valueFrom={"parameter": "system.os"}),
                arg("region", valueFrom={"path": "deploy.region"}),
                dependencies=["first"],
            ),
        ],
        inputs={"parameters": [{"name": "p"}]},
    )
    driver = run(wf([dag("main", [node("call", "inner", arg("p", [3]))]), inner, ECHO_TASK]))
    assert values(driver.task("call").inputs) == [("p", [3])]
    assert values(driver.task("second").inputs) == [
        ("from-sibling", 1),
        ("from-parent", [3]),
        ("os", "linux"),
        ("region", "ap-east-1"),
    ]


# --- interpolation -------------------------------------------------------------------------------------


def test_loop_argument_interpolation() -> None:
    loop = {
        "loop": {
            "name": "each",
            "items": [[1, 2], 2.5, True],
            "body": "echo",
            "concurrency": 1,
            "arguments": {
                "parameters": [
                    {"name": "typed", "value": "{{iterator.item}}"},
                    {"name": "spaced", "value": "{{ iterator.index }}"},
                    {"name": "mixed", "value": "i={{iterator.index}} v={{ loop_iter.item }}"},
                    {"name": "unknown", "value": "{{nope}}"},
                    {"name": "half", "value": "{{iterator.index}}-{{nope}}-{{unclosed"},
                    {"name": "plain", "value": "no placeholders"},
                    {"name": "number", "value": 7},
                ]
            },
        }
    }
    driver = run(wf([loop, ECHO_TASK], entry="each"))
    state = driver.view()
    iterations = [state.tasks[t] for t in state.order if state.tasks[t].task_name == "echo"]
    assert [t.scope for t in iterations] == ["each.loop[0]/", "each.loop[1]/", "each.loop[2]/"]
    got = [{k: v for k, v in values(t.inputs) if not k.startswith("loop_iter.")} for t in iterations]
    assert got == [
        {
            "typed": [1, 2],
            "spaced": 0,
            "mixed": "i=0 v=[1 2]",
            "unknown": "{{nope}}",
            "half": "0-{{nope}}-{{unclosed",
            "plain": "no placeholders",
            "number": 7,
        },
        {
            "typed": 2.5,
            "spaced": 1,
            "mixed": "i=1 v=2.5",
            "unknown": "{{nope}}",
            "half": "1-{{nope}}-{{unclosed",
            "plain": "no placeholders",
            "number": 7,
        },
        {
            "typed": True,
            "spaced": 2,
            "mixed": "i=2 v=true",
            "unknown": "{{nope}}",
            "half": "2-{{nope}}-{{unclosed",
            "plain": "no placeholders",
            "number": 7,
        },
    ]


def test_value_from_expression_is_interpolated_then_evaluated() -> None:
    driver = run(
        wf(
            [
                dag(
                    "main",
                    [
                        node(
                            "n",
                            "echo",
                            arg("same", valueFrom={"expression": "{{workflow.parameters.x}} == X"}),
                            arg("differ", valueFrom={"expression": "'{{workflow.parameters.x}}' != X"}),
                        )
                    ],
                ),
                ECHO_TASK,
            ],
            arguments=[{"name": "x", "value": "X"}],
        )
    )
    assert values(driver.task("n").inputs) == [("same", True), ("differ", False)]


def test_items_from_single_placeholder_keeps_the_array() -> None:
    loop = {
        "loop": {
            "name": "each",
            "itemsFrom": "{{inputs.parameters.list}}",
            "inputs": {"parameters": [{"name": "list", "value": [{"k": "a"}, {"k": "b"}]}]},
            "body": "echo",
            "aggregate": {"strategy": "list"},
        }
    }
    driver = run(wf([loop, ECHO_TASK], entry="each"))
    assert outputs(driver, "each") == {"k": ["a", "b"], "loop_iter.index": [0, 1]}


# --- when ----------------------------------------------------------------------------------------------


def test_when_false_and_when_error_both_skip_with_the_same_message() -> None:
    driver = run(
        wf(
            [
                dag(
                    "main",
                    [
                        node("check", "echo", arg("status", "ok")),
                        node(
                            "no",
                            dependencies=["check"],
                            when="tasks.check.outputs.parameters.status == bad",
                        ),
                        node("broken", dependencies=["check"], when="tasks.check.phase"),
                        node("yes", dependencies=["check"], when="tasks.check.outputs.parameters.status == ok"),
                        node("after-skip", dependencies=["broken"]),
                    ],
                ),
                ECHO_TASK,
            ]
        )
    )
    assert phases(driver) == {
        "main": ph.SUCCEEDED,
        "check": ph.SUCCEEDED,
        "no": ph.SKIPPED,
        "broken": ph.SKIPPED,
        "yes": ph.SUCCEEDED,
        "after-skip": ph.SUCCEEDED,
    }
    assert (
        driver.task("no").message == 'when condition "tasks.check.outputs.parameters.status == bad" evaluated to false'
    )
    assert driver.task("broken").message == 'when condition "tasks.check.phase" evaluated to false'
    assert driver.task("broken").template_type == "task"
    assert [e.operation for e in driver.errors] == ["createEligibleTasks.whenCondition"]
    # Skipped records are created before the runnable ones discovered in the same pass.
    order = [driver.view().tasks[t].task_name for t in driver.view().order]
    assert order.index("no") < order.index("broken") < order.index("yes")


def test_when_skip_message_go_quotes_the_expression() -> None:
    driver = run(
        wf(
            [
                dag(
                    "main",
                    [
                        node("check", "echo", arg("status", "ok")),
                        node(
                            "no",
                            dependencies=["check"],
                            when='tasks.check.outputs.parameters.status == "bad"',
                        ),
                    ],
                ),
                ECHO_TASK,
            ]
        )
    )
    assert driver.task("no").phase == ph.SKIPPED
    assert (
        driver.task("no").message
        == 'when condition "tasks.check.outputs.parameters.status == \\"bad\\"" evaluated to false'
    )


# --- phaseConditions -----------------------------------------------------------------------------------


def _conditions_workflow(value: Any, fail_count: int = 0) -> dict[str, Any]:
    judged = {
        "task": {
            "name": "judged",
            "executor": ECHO,
            "phaseConditions": {
                "succeeded": "outputs.parameters.v == 1",
                "failed": "outputs.parameters.v == 2",
                "error": "outputs.parameters.v != 0",
            },
        }
    }
    args = [arg("v", value)]
    if fail_count:
        args = [arg("fail-count", fail_count)]
    return wf([dag("main", [node("n", "judged", *args)], continueOn={"failed": True, "error": True}), judged])


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1, ph.SUCCEEDED), (2, ph.FAILED), (3, ph.ERROR), (0, ph.SUCCEEDED)],
)
def test_leaf_phase_conditions_priority(value: int, expected: str) -> None:
    driver = run(_conditions_workflow(value))
    assert driver.task("n").phase == expected
    assert driver.task("n").outputs.phase == expected


def test_leaf_phase_conditions_can_rewrite_a_failure() -> None:
    judged = {
        "task": {
            "name": "judged",
            "executor": ECHO,
            "phaseConditions": {"succeeded": "code == 2", "error": "true"},
        }
    }
    driver = run(wf([dag("main", [node("n", "judged", arg("fail-count", 1))]), judged]))
    task = driver.task("n")
    assert (task.phase, task.message, task.outputs.code) == (
        ph.SUCCEEDED,
        "simulated failure on attempt 1 (failCount=1)",
        2,
    )
    assert driver.view().phase == ph.SUCCEEDED


def test_node_phase_conditions_ignored_for_a_named_template() -> None:
    driver = run(
        wf(
            [
                dag(
                    "main",
                    [
                        node("named", "echo", phaseConditions={"failed": "true"}),
                        {"name": "inline", "executor": ECHO, "phaseConditions": {"failed": "true"}},
                    ],
                ),
                ECHO_TASK,
            ]
        )
    )
    assert phases(driver) == {"main": ph.FAILED, "named": ph.SUCCEEDED, "inline": ph.FAILED}
    assert driver.task("main").message == "one or more tasks failed"


def test_dag_phase_conditions_override_the_aggregate() -> None:
    inner = dag(
        "inner",
        [node("bad", "echo", arg("fail-count", 1)), node("good", "echo", arg("out", "x"))],
        phaseConditions={
            "succeeded": "tasks.bad.phase == Failed",
            "error": "true",
        },
        outputs={"parameters": [{"name": "o", "valueFrom": {"parameter": "tasks.good.outputs.parameters.out"}}]},
    )
    erroring = dag(
        "erroring",
        [node("fine", "echo")],
        phaseConditions={
            "succeeded": "phase == Failed",
            "failed": "outputs.parameters.o != x",
            "error": "msg == ''",
        },
        outputs={"parameters": [{"name": "o", "value": "x"}]},
    )
    driver = run(
        wf(
            [
                dag("main", [node("a", "inner"), node("b", "erroring")], continueOn={"error": True}),
                inner,
                erroring,
                ECHO_TASK,
            ]
        )
    )
    assert driver.task("bad").phase == ph.FAILED
    a, b = driver.task("a"), driver.task("b")
    assert (a.phase, a.message, a.outputs.phase) == (ph.SUCCEEDED, "one or more tasks failed", ph.SUCCEEDED)
    assert outputs(driver, "a") == {"o": "x"}
    assert (b.phase, b.message) == (ph.ERROR, "")
    assert driver.view().phase == ph.SUCCEEDED


# --- continueOn and aggregation ------------------------------------------------------------------------


def test_node_continue_on_replaces_the_dag_default_as_a_whole() -> None:
    document = wf(
        [
            dag(
                "main",
                [
                    node("own", "echo", arg("fail-count", 1), continueOn={"timeout": True}),
                    node("inherits", "echo", arg("fail-count", 1)),
                    node("after-own", dependencies=["own"]),
                    node("after-inherits", dependencies=["inherits"]),
                ],
                continueOn={"failed": True, "error": True},
            ),
            ECHO_TASK,
        ]
    )
    driver = run(document)
    assert phases(driver) == {
        "main": ph.FAILED,
        "own": ph.FAILED,
        "inherits": ph.FAILED,
        "after-inherits": ph.SUCCEEDED,
    }
    assert driver.task("main").message == "one or more tasks failed"
    assert driver.view().message == "one or more tasks failed"


def test_timeout_child_makes_the_dag_error() -> None:
    document = wf(
        [dag("main", [node("wait", "echo", arg("suspend", True), timeout="1s")]), ECHO_TASK],
    )
    driver = run(document)
    wait = driver.task("wait")
    assert wait.phase == ph.SUSPENDED
    assert wait.deadline
    assert driver.timeout(wait.id) is None
    assert (wait.phase, wait.message, wait.outputs.code) == (
        ph.TIMEOUT,
        "task deadline exceeded (watchdog)",
        4,
    )
    main = driver.task("main")
    assert (main.phase, main.message) == (ph.ERROR, "one or more tasks errored")
    assert (driver.view().phase, driver.view().message) == (ph.ERROR, "one or more tasks errored")


def test_tolerated_timeout_lets_dependents_run() -> None:
    document = wf(
        [
            dag(
                "main",
                [
                    node("wait", "echo", arg("suspend", True), timeout="1s", continueOn={"timeout": True}),
                    node("finalize", dependencies=["wait"]),
                ],
            ),
            ECHO_TASK,
        ]
    )
    driver = run(document)
    assert driver.timeout(driver.task("wait").id) is None
    driver.run()
    assert phases(driver) == {"main": ph.SUCCEEDED, "wait": ph.TIMEOUT, "finalize": ph.SUCCEEDED}
    assert outputs(driver, "wait") == {}
    assert driver.task("wait").outputs.code == 4


# --- suspend, resume, cancel, timeouts -----------------------------------------------------------------


def _suspending(**node_extra: Any) -> dict[str, Any]:
    return wf(
        [
            dag(
                "main",
                [node("ask", "echo", arg("suspend", True), arg("a", 1), arg("keep", "k"), **node_extra)],
            ),
            ECHO_TASK,
        ]
    )


def test_resume_merges_the_payload_into_the_inputs() -> None:
    driver = run(_suspending())
    ask = driver.task("ask")
    assert ask.phase == ph.SUSPENDED
    assert driver.resume(ask.id, {"a": 2, "__resumed": True, "new": "x"}) is None
    assert values(ask.inputs) == [
        ("suspend", True),
        ("a", 2),
        ("keep", "k"),
        ("__resumed", True),
        ("new", "x"),
    ]
    driver.run()
    assert ask.phase == ph.SUCCEEDED
    assert outputs(driver, "ask") == {"a": 2, "keep": "k", "new": "x"}
    assert driver.view().phase == ph.SUCCEEDED
    assert driver.replayed().to_dict() == driver.view().to_dict()


def test_resume_of_a_task_that_is_not_suspended_is_refused_and_changes_nothing() -> None:
    """Aether ignores it; refusing it tells the caller that nothing resumed (docs/compatibility.md)."""
    driver = run(_suspending())
    main = driver.task("main")
    history = len(driver.history)
    error = driver.resume(main.id, {"__resumed": True})
    assert (
        str(error)
        == f'aether: invalid state: task "{main.id}" is {main.phase}, not Suspended: only a suspended task resumes'
    )
    assert len(driver.history) == history
    assert len(driver.dispatched) == 1


def test_resume_of_a_foreign_task_is_an_error() -> None:
    driver = run(_suspending())
    error = driver.resume("elsewhere-7", {"__resumed": True})
    assert error is not None
    assert str(error) == 'aether: invalid state: task "elsewhere-7" does not belong to workflow "run"'


def test_cancel_of_a_terminal_run_is_an_error() -> None:
    driver = run(wf([dag("main", [node("n")]), ECHO_TASK]))
    assert driver.view().phase == ph.SUCCEEDED
    error = driver.cancel()
    assert error is not None
    assert str(error) == 'aether: invalid state: workflow "run" already in terminal state Succeeded'


def test_workflow_timeout_times_out_every_open_record() -> None:
    document = wf(
        [
            dag(
                "main",
                [
                    node("done"),
                    node("wait", "echo", arg("suspend", True)),
                    node("blocked", dependencies=["wait"]),
                ],
            ),
            ECHO_TASK,
        ],
        hooks={"onError": {"template": "echo"}, "onExit": {"template": "echo"}},
    )
    driver = run(document)
    assert driver.deliver(WorkflowTimeout(actor="watcher", cause="wt", at=driver.now())) is None
    state = driver.view()
    assert (state.phase, state.message) == (ph.TIMEOUT, "workflow deadline exceeded")
    records = {state.tasks[t].task_name: (state.tasks[t].phase, state.tasks[t].message) for t in state.order}
    assert records == {
        "main": (ph.TIMEOUT, "workflow deadline exceeded (watchdog)"),
        "done": (ph.SUCCEEDED, ""),
        "wait": (ph.TIMEOUT, "workflow deadline exceeded (watchdog)"),
    }
    assert hook_log(driver) == [("workflow", "", "onError"), ("workflow", "", "onExit")]
    history = len(driver.history)
    assert driver.deliver(WorkflowTimeout(actor="watcher", cause="wt2", at=driver.now())) is None
    assert len(driver.history) == history


def test_task_without_executor_is_an_engine_error() -> None:
    driver = run(wf([dag("main", [node("n", "bare")]), {"task": {"name": "bare"}}]))
    cause = 'task definition "bare" has no executor: cannot build assignment for task "n"'
    assert (driver.view().phase, driver.view().message) == (ph.ERROR, f"engine internal error: {cause}")
    assert driver.dispatched == []


@pytest.mark.parametrize(
    ("items", "detail"),
    [
        ("not json", 'itemsFrom "{{inputs.parameters.src}}" returned non-array string'),
        ({"a": 1}, 'itemsFrom "{{inputs.parameters.src}}" returned non-array type: map[string]interface {}'),
        (5, 'itemsFrom "{{inputs.parameters.src}}" returned non-array type: float64'),
    ],
)
def test_loop_expansion_error(items: Any, detail: str) -> None:
    loop = {
        "loop": {
            "name": "each",
            "itemsFrom": "{{inputs.parameters.src}}",
            "inputs": {"parameters": [{"name": "src"}]},
            "body": "echo",
        }
    }
    document = wf(
        [dag("main", [node("fan", "each", arg("src", items)), node("sibling")]), loop, ECHO_TASK],
    )
    driver = run(document)
    fan = driver.task("fan")
    assert (fan.phase, fan.message) == (ph.ERROR, f'expand loop "each": {detail}')
    assert phases(driver) == {"main": ph.ERROR, "fan": ph.ERROR, "sibling": ph.SUCCEEDED}
    assert driver.view().phase == ph.ERROR
    assert "startLoopController.expandLoop" in [e.operation for e in driver.errors]


def test_loop_expansion_error_from_the_evaluator() -> None:
    loop = {"loop": {"name": "each", "itemsFrom": "tasks.nothing", "body": "echo"}}
    driver = run(wf([dag("main", [node("fan", "each")]), loop, ECHO_TASK]))
    fan = driver.task("fan")
    assert fan.phase == ph.ERROR
    assert fan.message.startswith('expand loop "each": eval itemsFrom "tasks.nothing": ')


def test_repeat_condition_error_stops_the_run() -> None:
    loop = {"loop": {"name": "rep", "repeatCondition": "loop_iter.index", "maxIterations": 3, "body": "echo"}}
    driver = run(wf([dag("main", [node("fan", "rep")]), loop, ECHO_TASK]))
    state = driver.view()
    assert state.phase == ph.ERROR
    assert state.message.startswith("engine internal error: ")
    assert "unsupported expression: loop_iter.index" in state.message
    assert [state.tasks[t].task_name for t in state.order] == ["main", "fan", "echo"]


def test_repeat_condition_error_message_names_the_loop_task() -> None:
    loop = {"loop": {"name": "rep", "repeatCondition": "loop_iter.index", "maxIterations": 3, "body": "echo"}}
    driver = run(wf([dag("main", [node("fan", "rep")]), loop, ECHO_TASK]))
    assert driver.view().message.startswith('engine internal error: repeatCondition loop "fan": ')


# --- retries -------------------------------------------------------------------------------------------


def test_default_retry_policy_does_not_retry_failed() -> None:
    driver = run(wf([dag("main", [node("n", "echo", arg("fail-count", 1), retry={"limit": 2})]), ECHO_TASK]))
    task = driver.task("n")
    assert (task.phase, task.retry_count, len(driver.dispatched)) == (ph.FAILED, 0, 1)


def test_default_retry_policy_retries_error() -> None:
    erroring = {"task": {"name": "erroring", "executor": ECHO, "phaseConditions": {"error": "code == 2"}}}
    driver = run(wf([dag("main", [node("n", "erroring", arg("fail-count", 2), retry={"limit": 3})]), erroring]))
    task = driver.task("n")
    assert (task.phase, task.retry_count) == (ph.SUCCEEDED, 2)
    assert [a.retry_count for a in driver.dispatched] == [0, 1, 2]
    assert task.metrics.retries == 2


def test_default_retry_policy_retries_timeout_until_the_limit() -> None:
    driver = run(_suspending(retry={"limit": 1}, timeout="1s"))
    ask = driver.task("ask")
    assert driver.timeout(ask.id) is None
    driver.run()
    assert (ask.phase, ask.retry_count) == (ph.SUSPENDED, 1)
    assert driver.timeout(ask.id) is None
    assert (ask.phase, ask.retry_count, ask.message) == (ph.TIMEOUT, 1, "task deadline exceeded (watchdog)")
    assert [a.retry_count for a in driver.dispatched] == [0, 1]
    assert driver.view().phase == ph.ERROR


# --- hooks ---------------------------------------------------------------------------------------------

ALL_HOOKS = {
    key: {"template": "echo"}
    for key in ("onStart", "onSuccess", "onFailure", "onError", "onSuspend", "onResume", "onCancel", "onExit")
}


def test_task_on_start_fires_once_per_attempt_not_per_duplicate_report() -> None:
    document = wf([dag("main", [node("n", "echo", hooks=ALL_HOOKS)]), ECHO_TASK], hooks=ALL_HOOKS)
    driver = Driver(mode="fifo")
    assert driver.submit(document) is None
    assignment = driver.queue.pop()
    started = Started(actor="w", cause="s", at=driver.now(), task_id=assignment.task_run_id, attempt=1)
    for _ in range(3):
        assert driver.deliver(started) is None
    completed = Completed(
        actor="w", cause="c", at=driver.now(), task_id=assignment.task_run_id, attempt=1, result=TaskResult()
    )
    for _ in range(2):
        assert driver.deliver(completed) is None
    assert driver.deliver(started) is None
    assert hook_log(driver) == [
        ("workflow", "", "onStart"),
        ("task", "n", "onStart"),
        ("task", "n", "onSuccess"),
        ("task", "n", "onExit"),
        ("workflow", "", "onSuccess"),
        ("workflow", "", "onExit"),
    ]


def test_task_on_start_fires_for_every_retry_attempt() -> None:
    erroring = {"task": {"name": "erroring", "executor": ECHO, "phaseConditions": {"error": "code == 2"}}}
    document = wf(
        [
            dag("main", [node("n", "erroring", arg("fail-count", 2), retry={"limit": 3}, hooks=ALL_HOOKS)]),
            erroring,
            ECHO_TASK,
        ]
    )
    driver = run(document)
    assert hook_log(driver) == [
        ("task", "n", "onStart"),
        ("task", "n", "onStart"),
        ("task", "n", "onStart"),
        ("task", "n", "onSuccess"),
        ("task", "n", "onExit"),
    ]


def test_suspend_then_resume_hooks() -> None:
    driver = run(_suspending(hooks=ALL_HOOKS))
    assert hook_log(driver) == [("task", "ask", "onStart"), ("task", "ask", "onSuspend")]
    assert driver.resume(driver.task("ask").id, {"__resumed": True}) is None
    assert hook_log(driver)[-1] == ("task", "ask", "onResume")
    driver.run()
    assert hook_log(driver) == [
        ("task", "ask", "onStart"),
        ("task", "ask", "onSuspend"),
        ("task", "ask", "onResume"),
        ("task", "ask", "onStart"),
        ("task", "ask", "onSuccess"),
        ("task", "ask", "onExit"),
    ]
    assert driver.task("ask").phase == ph.SUCCEEDED


def test_cancel_fires_hooks_for_tasks_open_at_cancel() -> None:
    inner = dag("inner", [node("deep", "echo", arg("suspend", True), hooks=ALL_HOOKS)])
    document = wf(
        [
            dag(
                "main",
                [
                    node("done", hooks=ALL_HOOKS),
                    node("wait", "echo", arg("suspend", True), hooks=ALL_HOOKS),
                    node("box", "inner", hooks=ALL_HOOKS),
                    node("later", dependencies=["wait"], hooks=ALL_HOOKS),
                ],
            ),
            inner,
            ECHO_TASK,
        ],
        hooks=ALL_HOOKS,
    )
    driver = run(document)
    before = len(driver.hooks)
    assert driver.cancel() is None
    cancel_hooks = [(h.scope, h.task_name, h.hook_type) for h in driver.hooks[before:]]
    assert Counter(cancel_hooks) == Counter(
        [
            ("task", "wait", "onCancel"),
            ("task", "wait", "onExit"),
            ("task", "box", "onCancel"),
            ("task", "box", "onExit"),
            ("task", "deep", "onCancel"),
            ("task", "deep", "onExit"),
            ("workflow", "", "onCancel"),
            ("workflow", "", "onExit"),
        ]
    )
    assert cancel_hooks[-2:] == [("workflow", "", "onCancel"), ("workflow", "", "onExit")]
    assert phases(driver) == {
        "main": ph.CANCELLED,
        "done": ph.SUCCEEDED,
        "wait": ph.CANCELLED,
        "box": ph.CANCELLED,
        "deep": ph.CANCELLED,
    }
    assert {driver.task(n).message for n in ("main", "wait", "box", "deep")} == {"cancelled by user"}
    assert driver.view().message == "cancelled by user"


def test_no_task_hooks_for_skipped_tasks_loop_iterations_containers_or_root_tasks() -> None:
    loop = {"loop": {"name": "each", "items": [1, 2], "body": "echo"}}
    document = wf(
        [
            dag(
                "main",
                [
                    node("skip", when="false", hooks=ALL_HOOKS),
                    node("fan", "each", hooks=ALL_HOOKS),
                ],
            ),
            loop,
            ECHO_TASK,
        ]
    )
    driver = run(document)
    assert phases(driver)["skip"] == ph.SKIPPED
    assert driver.view().phase == ph.SUCCEEDED
    assert hook_log(driver) == []

    root = run(wf([ECHO_TASK], entry="echo", hooks=ALL_HOOKS))
    assert root.view().phase == ph.SUCCEEDED
    assert hook_log(root) == [
        ("workflow", "", "onStart"),
        ("workflow", "", "onSuccess"),
        ("workflow", "", "onExit"),
    ]


def test_late_start_after_cancel_changes_nothing_and_fires_no_hook() -> None:
    """Aether still fires the task onStart for a start reported after Cancel; we treat every report for a
    terminal run as stale (docs/compatibility.md), so nothing is recorded and no hook fires."""
    driver = Driver(mode="fifo")
    assert driver.submit(wf([dag("main", [node("n", hooks=ALL_HOOKS)]), ECHO_TASK])) is None
    assert driver.cancel() is None
    before, history = len(driver.hooks), len(driver.history)
    driver.complete(driver.dispatched[0])
    assert hook_log(driver)[before:] == []
    assert len(driver.history) == history
    assert driver.task("n").phase == ph.CANCELLED


def test_a_completion_without_a_start_report_records_the_start_it_carries() -> None:
    document = wf([dag("main", [node("n", "echo", hooks=ALL_HOOKS)]), ECHO_TASK])
    driver = Driver(mode="fifo")
    assert driver.submit(document) is None
    assignment = driver.queue.pop()
    started_at = driver.now()
    completed = Completed(
        actor="w",
        cause="c",
        at=driver.now(),
        task_id=assignment.task_run_id,
        attempt=1,
        result=TaskResult(),
        started_at=started_at,
    )
    assert driver.deliver(completed) is None
    events = [env.event for env in driver.history]
    (start,) = [e for e in events if isinstance(e, ev.TaskStarted) and e.task_id == assignment.task_run_id]
    assert start.started_at == started_at
    task = driver.view().tasks[assignment.task_run_id]
    assert task.phase == ph.SUCCEEDED and task.metrics is not None and task.metrics.started_at == started_at
    assert ("task", "n", "onStart") in hook_log(driver)


def test_a_submitted_run_keeps_the_model_it_was_validated_with() -> None:
    document = wf([dag("main", [node("n", "echo")]), ECHO_TASK])
    workflow = fill_defaults(load_workflow(document))
    decision = Decision(None, DecideContext())
    submit = Submit(actor="user", cause="submit", at="2026-01-01T00:00:00.000Z", document=document, workflow=workflow)
    assert handle(decision, submit, "run") is None
    assert decision.state.parsed is workflow
