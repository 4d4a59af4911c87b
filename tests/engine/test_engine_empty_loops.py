"""Aether's empty-loop test (conformance README §8, "Extra checks for 31-39") on the pure driver.

Each workflow runs in two delivery modes: `lifo` (assignments queued, executed and reported
last-in-first-out) and `inline` (executed and reported synchronously inside the dispatch, the re-entrant
case). The corpus files are used when ../shared/conformance (beside the repository) is present; equivalent
documents written here as dicts cover the same behaviour without it.
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from support.driver import Driver

from aether_es.engine.triggers import Completed, Started
from aether_es.model import phases as ph
from aether_es.ports.wire import TaskAssignment, TaskResult
from aether_es.projections.run_state import RunState

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "conformance" / "aether-v1"
MODES = ("lifo", "inline")

# --- equivalent documents, written out here ------------------------------------------------------------

HOOKS = {
    "onStart": {"template": "score-item"},
    "onSuccess": {"template": "score-item"},
    "onExit": {"template": "score-item"},
}


def _score_loop(aggregate_parameters: bool = True) -> dict[str, Any]:
    aggregate: dict[str, Any] = {"strategy": "list"}
    if aggregate_parameters:
        aggregate["parameters"] = ["score"]
    return {
        "loop": {
            "name": "score-loop",
            "concurrency": 3,
            "body": "score-item",
            "arguments": {
                "parameters": [
                    {"name": "item", "value": "{{iterator.item}}"},
                    {"name": "outputs", "value": [{"name": "score", "type": "int", "value": 95}]},
                ]
            },
            "aggregate": aggregate,
            "outputs": {"parameters": [{"name": "score", "type": "array"}]},
            "itemsFrom": "{{inputs.parameters.items}}",
            "inputs": {"parameters": [{"name": "items", "type": "array", "value": []}]},
        }
    }


SCORE_ITEM = {
    "task": {
        "name": "score-item",
        "inputs": {"parameters": [{"name": "item", "type": "string"}, {"name": "outputs", "type": "array"}]},
        "executor": {"type": "echo"},
        "outputs": {"parameters": [{"name": "score", "type": "int"}]},
    }
}

_COLLECT_OUTPUTS = {
    "name": "outputs",
    "value": [
        {"name": "avg", "type": "int", "value": 95},
        {"name": "total", "type": "int", "value": 3},
        {"name": "ok", "type": "bool", "value": True},
    ],
}


def _collect(with_scores: bool) -> dict[str, Any]:
    params: list[dict[str, Any]] = [{"name": "scores", "type": "array"}] if with_scores else []
    return {
        "task": {
            "name": "collect",
            "inputs": {"parameters": [*params, _COLLECT_OUTPUTS]},
            "executor": {"type": "echo"},
            "outputs": {
                "parameters": [
                    {"name": "avg", "type": "int"},
                    {"name": "total", "type": "int"},
                    {"name": "ok", "type": "bool"},
                ]
            },
        }
    }


def _dag(name: str, tasks: list[dict[str, Any]]) -> dict[str, Any]:
    return {"dag": {"name": name, "tasks": tasks}}


def _workflow(name: str, entry: str, templates: list[dict[str, Any]], max_nested: int | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"entrypoint": entry, "templates": templates, "hooks": HOOKS}
    if max_nested is not None:
        spec["maxNestedDepth"] = max_nested
    return {"apiVersion": "aether/v1", "kind": "Workflow", "metadata": {"name": name}, "spec": spec}


BATCH = {"name": "batch", "template": "score-loop"}
SUMMARIZE_BOUND = {
    "name": "summarize",
    "template": "collect",
    "dependencies": ["batch"],
    "arguments": {
        "parameters": [{"name": "scores", "valueFrom": {"parameter": "tasks.batch.outputs.parameters.score"}}]
    },
}


def _siblings(container: str) -> list[dict[str, Any]]:
    """produce, then loop-a and loop-b (both calling `container`) in parallel, then the join."""
    return [
        {"name": "produce", "template": "collect"},
        {"name": "loop-a", "template": container, "dependencies": ["produce"]},
        {"name": "loop-b", "template": container, "dependencies": ["produce"]},
        {"name": "summarize", "template": "collect", "dependencies": ["loop-a", "loop-b"]},
    ]


WRAPPER = _dag("wrapper", [{"name": "inner", "template": "score-loop"}])

OWN: dict[str, dict[str, Any]] = {
    "31-empty-loop-minimal": _workflow(
        "empty-loop-minimal",
        "pipeline",
        [_dag("pipeline", [BATCH]), _score_loop(), SCORE_ITEM, _collect(True)],
    ),
    "32-empty-loop-binding": _workflow(
        "empty-loop-binding",
        "pipeline",
        [_dag("pipeline", [BATCH, SUMMARIZE_BOUND]), _score_loop(), SCORE_ITEM, _collect(True)],
    ),
    "33-empty-loop-siblings": _workflow(
        "empty-loop-siblings",
        "pipeline",
        [_dag("pipeline", _siblings("score-loop")), _score_loop(), SCORE_ITEM, _collect(False)],
    ),
    "34-empty-loop-root": _workflow(
        "empty-loop-root",
        "score-loop",
        [_dag("pipeline", [BATCH]), _score_loop(), SCORE_ITEM, _collect(True)],
    ),
    "35-empty-loop-nested-siblings": _workflow(
        "empty-loop-nested-siblings",
        "pipeline",
        [_dag("pipeline", _siblings("wrapper")), _score_loop(), SCORE_ITEM, _collect(False), WRAPPER],
    ),
    "36-empty-loop-refill": _workflow(
        "empty-loop-refill",
        "pipeline",
        [
            _dag("pipeline", _siblings("outer")),
            _score_loop(),
            SCORE_ITEM,
            _collect(False),
            WRAPPER,
            {"loop": {"name": "outer", "body": "wrapper", "items": [1, 2, 3], "concurrency": 2}},
        ],
        max_nested=10,
    ),
    "37-empty-loop-repeat": _workflow(
        "empty-loop-repeat",
        "pipeline",
        [
            _dag("pipeline", _siblings("outer")),
            _score_loop(),
            SCORE_ITEM,
            _collect(False),
            WRAPPER,
            {"loop": {"name": "outer", "body": "wrapper", "repeatCondition": "true", "maxIterations": 3}},
        ],
        max_nested=10,
    ),
    "38-empty-loop-deep": _workflow(
        "empty-loop-deep",
        "pipeline",
        [
            _dag("pipeline", _siblings("wrapper")),
            _score_loop(),
            SCORE_ITEM,
            _collect(False),
            _dag("wrapper", [{"name": "inner", "template": "middle"}]),
            _dag("middle", [{"name": "inner", "template": "score-loop"}]),
        ],
        max_nested=10,
    ),
    "39-empty-loop-declared-outputs": _workflow(
        "empty-loop-declared-outputs",
        "pipeline",
        [
            _dag("pipeline", [BATCH, SUMMARIZE_BOUND]),
            _score_loop(aggregate_parameters=False),
            SCORE_ITEM,
            _collect(True),
        ],
        max_nested=10,
    ),
}

CASES = sorted(OWN)

# What each case must end with: record count, the last record per name (phase, template type), the names
# whose outputs must hold `score: []`, and whether anything is dispatched at all.
EXPECTED: dict[str, dict[str, Any]] = {
    "31-empty-loop-minimal": {"count": 2, "empty_score": ["batch"], "dispatches": 0},
    "32-empty-loop-binding": {"count": 3, "empty_score": ["batch"], "dispatches": 1},
    "33-empty-loop-siblings": {"count": 5, "empty_score": ["loop-a", "loop-b"], "dispatches": 2},
    "34-empty-loop-root": {"count": 1, "empty_score": ["score-loop"], "dispatches": 0},
    "35-empty-loop-nested-siblings": {"count": 7, "empty_score": ["inner"], "dispatches": 2},
    "36-empty-loop-refill": {"count": 17, "empty_score": ["inner"], "dispatches": 2},
    "37-empty-loop-repeat": {"count": 17, "empty_score": ["inner"], "dispatches": 2},
    "38-empty-loop-deep": {"count": 9, "empty_score": ["inner"], "dispatches": 2},
    "39-empty-loop-declared-outputs": {"count": 3, "empty_score": ["batch"], "dispatches": 1},
}
NO_DISPATCH = {"31-empty-loop-minimal", "34-empty-loop-root"}
BOUND_SCORES = {"32-empty-loop-binding", "39-empty-loop-declared-outputs"}


def _corpus_document(case: str) -> dict[str, Any]:
    path = CORPUS / "workflows" / f"{case}.json"
    if not path.is_file():
        pytest.skip(f"conformance corpus not available: {path} does not exist")
    document: dict[str, Any] = json.loads(path.read_text())
    return document


def _corpus_assertion(case: str) -> dict[str, Any] | None:
    for folder in ("assertions", "assertions-derived"):
        path = CORPUS / folder / f"{case}.json"
        if path.is_file():
            assertion: dict[str, Any] = json.loads(path.read_text())
            return assertion
    return None


# --- the checks ----------------------------------------------------------------------------------------


class DispatchLog:
    """Checks every dispatch against the committed state it came from, as it happens."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.inputs: dict[str, list[tuple[str, Any]]] = {}

    def __call__(self, assignment: TaskAssignment, state: RunState) -> None:
        task = state.tasks.get(assignment.task_run_id)
        if task is None:
            self.problems.append(f"{assignment.task_run_id} dispatched without a record")
            return
        if task.phase != ph.READY:
            self.problems.append(f"{task.task_name} dispatched while {task.phase}")
        self.inputs[task.task_name] = [(p.name, copy.deepcopy(p.value)) for p in assignment.inputs]
        parent = state.tasks.get(task.parent_id) if task.parent_id else None
        if parent is None or parent.template_type != "dag":
            return
        document_dag = next(
            t["dag"]
            for t in state.document["spec"]["templates"]
            if t.get("dag", {}).get("name") == parent.template_name
        )
        node = next(n for n in document_dag["tasks"] if n["name"] == task.task_name)
        for dep in node.get("dependencies", []):
            dep_id = parent.kids.by_name.get(dep)
            dep_phase = state.tasks[dep_id].phase if dep_id else "<no record>"
            if dep_phase != ph.SUCCEEDED:
                self.problems.append(f"{task.task_name} dispatched while dependency {dep} is {dep_phase}")


def _json_same(a: Any, b: Any) -> bool:
    """Semantic JSON equality that keeps booleans apart from numbers."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return float(a) == float(b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def _params(record: dict[str, Any] | None, section: str) -> dict[str, Any]:
    block = (record or {}).get(section) or {}
    return {p["name"]: p.get("value") for p in block.get("parameters") or []}


def _check_assertion(assertion: dict[str, Any], execution: dict[str, Any]) -> list[str]:
    """The assertion-file checks of README §2.1/§2.2 (last record with a name wins)."""
    failures: list[str] = []
    if assertion.get("expectPhase") and execution["status"] != assertion["expectPhase"]:
        failures.append(f"phase {execution['status']}")
    if "expectTaskCount" in assertion and len(execution["tasks"]) != assertion["expectTaskCount"]:
        failures.append(f"task count {len(execution['tasks'])}")
    for name, value in (assertion.get("expectOutputs") or {}).items():
        if not _json_same(_params(execution, "outputs").get(name, "<missing>"), value):
            failures.append(f"workflow output {name}")
    index = {t["taskName"]: t for t in execution["tasks"]}
    for want in assertion.get("expectTasks") or []:
        task = index.get(want["taskName"])
        if task is None:
            failures.append(f"{want['taskName']}: not found")
            continue
        for key, field in (("expectPhase", "status"), ("expectTemplateType", "templateType")):
            if want.get(key) and task[field] != want[key]:
                failures.append(f"{want['taskName']}: {field} {task[field]}")
        for key, section in (("expectOutputs", "outputs"), ("expectInputs", "inputs")):
            for name, value in (want.get(key) or {}).items():
                if not _json_same(_params(task, section).get(name, "<missing>"), value):
                    failures.append(f"{want['taskName']}: {section} {name}")
    return failures


def _run_and_check(case: str, document: dict[str, Any], mode: str) -> Driver:
    log = DispatchLog()
    driver = Driver(mode=mode, on_dispatch=log)
    assert driver.submit(document) is None
    state = driver.run()
    execution = state.to_dict()
    expected = EXPECTED[case]

    assert driver.violations == [], "dispatch after the run was terminal or before its record existed"
    assert log.problems == []
    assert state.phase == ph.SUCCEEDED
    assert len(execution["tasks"]) == expected["count"]
    assert [t["status"] for t in execution["tasks"]] == [ph.SUCCEEDED] * expected["count"]

    ids = Counter(a.task_run_id for a in driver.dispatched)
    assert all(n == 1 for n in ids.values()), f"task runs dispatched more than once: {ids}"
    assert len(driver.dispatched) == expected["dispatches"]
    leaves = {t["runID"] for t in execution["tasks"] if t["templateType"] == "task"}
    assert set(ids) == leaves, "every task-type record is executed exactly once, nothing else is"

    keys = Counter((t["parentRunID"], t["scope"], t["taskName"]) for t in execution["tasks"])
    assert all(n == 1 for n in keys.values()), f"duplicate (parentRunID, scope, taskName): {keys}"

    index = {t["taskName"]: t for t in execution["tasks"]}
    for name in expected["empty_score"]:
        assert index[name]["templateType"] == "loop"
        assert _params(index[name], "outputs") == {"score": []}
    if case == "34-empty-loop-root":
        assert _params(execution, "outputs") == {"score": []}

    if case in BOUND_SCORES:
        scores = dict(log.inputs["summarize"])["scores"]
        assert isinstance(scores, list)
        assert scores == []
        assert _params(index["summarize"], "inputs")["scores"] == []

    workflow_hooks = Counter(h.hook_type for h in driver.hooks if h.scope == "workflow")
    assert workflow_hooks["onSuccess"] == 1
    assert workflow_hooks["onExit"] == 1
    assert not [h for h in driver.hooks if h.scope == "task"]
    if case in NO_DISPATCH:
        assert workflow_hooks["onStart"] == 0
        assert execution["metrics"] is not None
        assert not execution["metrics"].get("startedAt")
        assert execution["metrics"].get("finishedAt")
    else:
        assert workflow_hooks["onStart"] == 1
        assert execution["metrics"]["startedAt"]

    assert driver.replayed().to_dict() == execution
    _redeliver_last_result(driver)
    return driver


def _redeliver_last_result(driver: Driver) -> None:
    """A repeated completion (and start) for the last result, after the run finished, changes nothing."""
    before = driver.view().to_dict()
    history, hooks, dispatched = len(driver.history), len(driver.hooks), len(driver.dispatched)
    completions = [t for t in driver.triggers if isinstance(t, Completed)]
    if completions:
        last = completions[-1]
        started = Started(
            actor=last.actor,
            cause=last.cause + "x",
            at=driver.now(),
            task_id=last.task_id,
            attempt=last.attempt,
        )
        again = [last, started, last]
    else:
        # Nothing ran: a stray completion for the entry record must be ignored as well.
        entry = driver.view().order[0]
        again = [
            Completed(
                actor="worker:w",
                cause="stray",
                at=driver.now(),
                task_id=entry,
                attempt=1,
                result=TaskResult(),
            )
        ]
    for trigger in again:
        assert driver.deliver(trigger) is None
    assert driver.view().to_dict() == before
    assert (len(driver.history), len(driver.hooks), len(driver.dispatched)) == (history, hooks, dispatched)
    assert driver.violations == []


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", CASES)
def test_own_empty_loop_documents(case: str, mode: str) -> None:
    _run_and_check(case, OWN[case], mode)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", CASES)
def test_corpus_empty_loop_workflows(case: str, mode: str) -> None:
    document = _corpus_document(case)
    driver = _run_and_check(case, document, mode)
    assertion = _corpus_assertion(case)
    if assertion is not None:
        assert _check_assertion(assertion, driver.view().to_dict()) == []


@pytest.mark.parametrize("case", CASES)
def test_own_documents_match_the_corpus(case: str) -> None:
    """The dicts above are the corpus documents, so the own-document runs stand in for the corpus."""
    assert OWN[case] == _corpus_document(case)


def _cancel_while_summarize_is_queued(document: dict[str, Any]) -> None:
    driver = Driver(mode="fifo")  # queue only: nothing runs until told to
    assert driver.submit(document) is None
    assert [a.task_name for a in driver.dispatched] == ["summarize"]
    assert driver.cancel() is None
    assert driver.view().phase == ph.CANCELLED
    history = len(driver.history)

    driver.complete(driver.dispatched[0])  # late "started" then "completed" (succeeded)

    state = driver.view()
    assert len(driver.history) == history, "late reports after cancel must not be recorded"
    assert state.phase == ph.CANCELLED
    phases = {state.tasks[t].task_name: state.tasks[t].phase for t in state.order}
    assert phases == {"pipeline": ph.CANCELLED, "batch": ph.SUCCEEDED, "summarize": ph.CANCELLED}
    assert len(driver.dispatched) == 1
    assert driver.violations == []
    workflow_hooks = Counter(h.hook_type for h in driver.hooks if h.scope == "workflow")
    assert workflow_hooks == Counter({"onExit": 1}), "32 declares onStart/onSuccess/onExit; only onExit fits"
    error = driver.cancel()
    assert error is not None
    assert str(error) == 'aether: invalid state: workflow "run" already in terminal state Cancelled'
    assert driver.replayed().to_dict() == state.to_dict()


def test_cancel_variant_own_32() -> None:
    _cancel_while_summarize_is_queued(OWN["32-empty-loop-binding"])


def test_cancel_variant_corpus_32() -> None:
    _cancel_while_summarize_is_queued(_corpus_document("32-empty-loop-binding"))
