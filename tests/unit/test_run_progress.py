"""Following a run commit by commit: phase changes in order, totals known up front, the same end as the fold."""

from __future__ import annotations

from typing import Any

from support.driver import Driver

from aether_es.events.envelope import Commit, Envelope
from aether_es.model import phases as ph
from aether_es.projections.names import display_name
from aether_es.projections.run_progress import Progress, RunProgress, Transition


def _echo(name: str = "one") -> dict[str, Any]:
    return {"task": {"name": name, "executor": {"type": "echo", "config": {}}}}


def _workflow(*templates: dict[str, Any], entrypoint: str = "main") -> dict[str, Any]:
    return {
        "apiVersion": "aether/v1",
        "kind": "Workflow",
        "metadata": {"name": "progress"},
        "spec": {"entrypoint": entrypoint, "templates": list(templates)},
    }


def _followed(document: dict[str, Any]) -> tuple[Driver, RunProgress, list[Transition]]:
    driver = Driver()
    assert driver.submit(document) is None
    driver.run()
    progress = RunProgress()
    transitions: list[Transition] = []
    for number, envelope in enumerate(driver.history):
        transitions += progress.apply(_commit(number, envelope))
    return driver, progress, transitions


def _commit(number: int, envelope: Envelope) -> Commit:
    return Commit(commit_id=f"c{number}", run_id=envelope.run_id, envelopes=(envelope,))


def _lines(progress: RunProgress, transitions: list[Transition]) -> list[str]:
    return [f"{t.phase} {progress.path(t.task)} {t.progress}" for t in transitions]


def test_a_loop_over_a_fixed_list_counts_every_iteration_from_the_start() -> None:
    loop = {"loop": {"name": "main", "items": [1, 2, 3, 4, 5, 6], "concurrency": 2, "body": "one"}}
    driver, progress, transitions = _followed(_workflow(loop, _echo()))
    first = transitions[0]
    assert progress.path(first.task) == "main" and first.progress == Progress(0, 7)
    assert {t.progress.total for t in transitions} == {7}
    assert progress.progress == Progress(7, 7) == _as_progress(driver.view().progress())
    assert not progress.active


def test_a_loop_capped_by_max_iterations_counts_only_those() -> None:
    loop = {"loop": {"name": "main", "items": list(range(10)), "maxIterations": 3, "concurrency": 1, "body": "one"}}
    _, progress, transitions = _followed(_workflow(loop, _echo()))
    assert {t.progress.total for t in transitions} == {4}
    assert progress.progress == Progress(4, 4)


def test_dag_nodes_are_counted_before_they_are_created_and_children_end_before_their_parent() -> None:
    dag = {
        "dag": {
            "name": "main",
            "tasks": [
                {"name": "a", "template": "one"},
                {"name": "b", "template": "one", "dependencies": ["a"]},
                {"name": "c", "template": "one", "dependencies": ["b"]},
            ],
        }
    }
    driver, progress, transitions = _followed(_workflow(dag, _echo()))
    assert transitions[0].progress == Progress(0, 4)
    lines = _lines(progress, transitions)
    ends = [line for line in lines if line.startswith(ph.SUCCEEDED)]
    assert ends == ["Succeeded main/a 1/4", "Succeeded main/b 2/4", "Succeeded main/c 3/4", "Succeeded main 4/4"]
    starts = [progress.path(t.task) for t in transitions if t.phase == ph.CREATED]
    assert starts[0] == "main" and starts[1:] == ["main/a", "main/b", "main/c"]
    assert driver.view().to_dict() == progress.state.to_dict()  # type: ignore[union-attr]


def test_what_a_failed_container_never_created_leaves_the_total() -> None:
    failing = {
        "task": {
            "name": "bad",
            "executor": {"type": "echo", "config": {}},
            "inputs": {"parameters": [{"name": "fail-count", "value": 1}]},
        }
    }
    dag = {
        "dag": {
            "name": "main",
            "tasks": [
                {"name": "a", "template": "bad"},
                {"name": "b", "template": "one", "dependencies": ["a"]},
                {"name": "c", "template": "one", "dependencies": ["b"]},
            ],
        }
    }
    driver, progress, _ = _followed(_workflow(dag, _echo(), failing))
    view = driver.view()
    assert view.phase == ph.FAILED and len(view.order) < 4
    assert progress.progress == _as_progress(view.progress())


def test_a_do_while_loop_grows_its_total_as_iterations_come() -> None:
    loop = {"loop": {"name": "main", "repeatCondition": "loop_iter.index != 2", "maxIterations": 5, "body": "one"}}
    _, progress, transitions = _followed(_workflow(loop, _echo()))
    totals = [t.progress.total for t in transitions]
    assert totals == sorted(totals) and totals[0] < totals[-1]
    assert progress.progress.done == progress.progress.total


def test_loop_iterations_show_their_index() -> None:
    assert display_name("one", "main.loop[12]/") == "one[12]"
    assert display_name("one", "main") == "one"


def _as_progress(text: str) -> Progress:
    done, _, total = text.partition("/")
    return Progress(int(done), int(total))
