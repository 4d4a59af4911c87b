"""DAG discovery without scans: waiting nodes are parked by what holds them back and released in order."""

from __future__ import annotations

from typing import Any

from support.driver import Driver

from aether_es.engine.dag_index import DagIndex, Waiting
from aether_es.model import phases as ph
from aether_es.model.documents import Dag

ROOM = 1_000_000
"""Room for every ready node (the container's limit on unfinished children does not bind)."""


def _dag(nodes: list[dict[str, Any]], entrypoints: list[str] | None = None) -> Dag:
    return Dag.model_validate({"name": "main", "tasks": nodes, "entrypoints": entrypoints or []})


def _chain(n: int) -> Dag:
    return _dag([{"name": f"t{i}", **({"dependencies": [f"t{i - 1}"]} if i else {})} for i in range(n)])


def test_a_chain_examines_each_node_a_bounded_number_of_times() -> None:
    dag = _chain(300)
    index = DagIndex.of(dag)
    recorded: dict[str, str] = {}
    done: set[str] = set()
    checks = 0

    def satisfied(dep: str) -> bool:
        nonlocal checks
        checks += 1
        return dep in done

    waiting = Waiting.of(dag, index, recorded)
    for i in range(300):
        ready = waiting.ready(index, recorded, satisfied, ROOM)
        assert [node.name for node in ready] == [f"t{i}"]
        recorded[f"t{i}"] = f"id{i}"
        waiting.recorded(f"t{i}")
        assert waiting.ready(index, recorded, satisfied, ROOM) == []  # nothing new while t{i} runs
        done.add(f"t{i}")
    assert checks <= 4 * 300


def test_released_nodes_come_in_document_order() -> None:
    dag = _dag(
        [
            {"name": "a"},
            {"name": "b"},
            {"name": "x", "dependencies": ["b"]},
            {"name": "y", "dependencies": ["a"]},
            {"name": "z", "dependencies": ["b"]},
        ]
    )
    index = DagIndex.of(dag)
    recorded: dict[str, str] = {}
    waiting = Waiting.of(dag, index, recorded)
    assert [n.name for n in waiting.ready(index, recorded, lambda dep: False, ROOM)] == ["a", "b"]
    for name in ("a", "b"):
        recorded[name] = name
        waiting.recorded(name)
    assert [n.name for n in waiting.ready(index, recorded, lambda dep: True, ROOM)] == ["x", "y", "z"]


def test_unreachable_nodes_never_wait() -> None:
    dag = _dag([{"name": "a"}, {"name": "b", "dependencies": ["a"]}, {"name": "c"}], entrypoints=["a"])
    index = DagIndex.of(dag)
    assert index.allowed == frozenset({"a", "b"})
    assert [n.name for n in Waiting.of(dag, index, {}).fresh] == ["a", "b"]


def test_requeued_nodes_come_first() -> None:
    dag = _dag([{"name": "a"}, {"name": "b"}])
    index = DagIndex.of(dag)
    waiting = Waiting.of(dag, index, {})
    ready = waiting.ready(index, {}, lambda dep: True, ROOM)
    waiting.requeue(ready[1:])
    assert [n.name for n in waiting.ready(index, {"a": "a"}, lambda dep: True, ROOM)] == ["b"]


def test_nodes_over_the_room_are_held_and_taken_first_without_examining_them_again() -> None:
    dag = _dag([{"name": f"n{i}"} for i in range(10)] + [{"name": "late", "dependencies": ["n0"]}])
    index = DagIndex.of(dag)
    waiting = Waiting.of(dag, index, {})
    examined = 0

    def satisfied(dep: str) -> bool:
        nonlocal examined
        examined += 1
        return dep in recorded

    recorded: dict[str, str] = {}
    assert [n.name for n in waiting.ready(index, recorded, satisfied, 3)] == ["n0", "n1", "n2"]
    for name in ("n0", "n1", "n2"):
        recorded[name] = name
        waiting.recorded(name)
    before = examined
    assert [n.name for n in waiting.ready(index, recorded, satisfied, 4)] == ["n3", "n4", "n5", "n6"]
    assert examined - before <= 2, "held nodes were examined again"
    assert [n.name for n in waiting.ready(index, recorded, satisfied, ROOM)] == ["n7", "n8", "n9", "late"]


def test_a_long_chain_under_a_small_budget_runs_every_node_in_order() -> None:
    tasks = [{"name": f"t{i}", "template": "echo", **({"dependencies": [f"t{i - 1}"]} if i else {})} for i in range(40)]
    tasks += [{"name": f"w{i}", "template": "echo"} for i in range(30)]
    document = {
        "apiVersion": "aether/v1",
        "kind": "Workflow",
        "metadata": {"name": "chain"},
        "spec": {
            "entrypoint": "main",
            "templates": [
                {"dag": {"name": "main", "tasks": tasks}},
                {"task": {"name": "echo", "executor": {"type": "echo"}}},
            ],
        },
    }
    driver = Driver(mode="fifo")
    driver.context = type(driver.context)(evaluator=driver.context.evaluator, vars=driver.context.vars, budget=7)
    assert driver.submit(document) is None
    state = driver.run()
    assert state.phase == ph.SUCCEEDED
    names = [state.tasks[t].task_name for t in state.order[1:]]
    assert sorted(names) == sorted(t["name"] for t in tasks)
    chain = [name for name in names if name.startswith("t")]
    assert chain == [f"t{i}" for i in range(40)]
