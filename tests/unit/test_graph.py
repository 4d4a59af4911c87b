"""The graph layout (columns, groups, phases, robustness) and its three renderings."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aether_es.graph.layout import MAX_NODES, GraphError, Node, layout_workflow
from aether_es.graph.render import PHASE_COLORS, render
from aether_es.model.documents import Workflow
from aether_es.model.loading import load_workflow

ROOT = Path(__file__).resolve().parents[2]
SVG = "{http://www.w3.org/2000/svg}"


def _example(name: str) -> Workflow:
    return load_workflow((ROOT / name).read_text())


def _task(name: str, template: str = "leaf", deps: list[str] | None = None) -> dict[str, Any]:
    return {"name": name, "template": template, "dependencies": deps or []}


def _workflow(*templates: dict[str, Any], entrypoint: str = "main") -> Workflow:
    leaf = {"task": {"name": "leaf", "executor": {"type": "echo"}}}
    return load_workflow(
        {"apiVersion": "aether/v1", "kind": "Workflow", "metadata": {"name": "w"},
         "spec": {"entrypoint": entrypoint, "templates": [*templates, leaf]}}
    )  # fmt: skip


def test_a_diamond_goes_left_to_right_in_columns_with_edges_between_facing_sides() -> None:
    graph = layout_workflow(_example("examples/shell-pipeline.json"))
    nodes = {n.id: n for n in graph.nodes}
    assert list(nodes) == ["write", "count", "top", "report"]
    assert nodes["write"].x < nodes["count"].x == nodes["top"].x < nodes["report"].x
    assert nodes["count"].y != nodes["top"].y
    for node in graph.nodes:
        assert node.x >= 0 and node.x + node.width <= graph.width
        assert node.y >= 0 and node.y + node.height <= graph.height
    edge = next(e for e in graph.edges if (e.source, e.target) == ("write", "count"))
    write, count = nodes["write"], nodes["count"]
    assert edge.points == [(write.x + write.width, write.y + write.height // 2), (count.x, count.y + count.height // 2)]
    assert {(e.source, e.target) for e in graph.edges} == {
        ("write", "count"), ("write", "top"), ("count", "report"), ("top", "report")
    }  # fmt: skip


def test_nested_dags_are_groups_holding_their_tasks_and_loops_one_node() -> None:
    graph = layout_workflow(_example("tests/corpus/workflows/15-nested-dag-depths.json"))
    nodes = {n.id: n for n in graph.nodes}
    group, inner, deepest = nodes["mid-call"], nodes["mid-call/inner-call"], nodes["mid-call/inner-call/deepest"]
    assert group.group and group.kind == "dag" and inner.parent == "mid-call" and deepest.parent == inner.id
    for outer, member in ((group, inner), (inner, deepest), (group, nodes["mid-call/mid-leaf"])):
        assert outer.x < member.x and member.x + member.width < outer.x + outer.width
        assert outer.y < member.y and member.y + member.height < outer.y + outer.height
    assert [n.id for n in graph.nodes].index("mid-call") < [n.id for n in graph.nodes].index("mid-call/mid-leaf")
    loop = next(n for n in layout_workflow(_example("examples/http-loop.json")).nodes if n.id == "price-each")
    assert (loop.kind, loop.template, loop.group) == ("loop", "price-each", False)


def test_a_run_paints_each_node_with_its_latest_task_run() -> None:
    records = [
        {"runID": "r-1", "parentRunID": "", "taskName": "pipeline", "status": "Running"},
        {"runID": "r-2", "parentRunID": "r-1", "taskName": "write", "status": "Failed"},
        {"runID": "r-3", "parentRunID": "r-1", "taskName": "write", "status": "Succeeded"},
        {"runID": "r-4", "parentRunID": "r-1", "taskName": "count", "status": "Running"},
        {"runID": "x-1", "parentRunID": "elsewhere", "taskName": "top", "status": "Failed"},
    ]
    graph = layout_workflow(_example("examples/shell-pipeline.json"), records)
    painted = {n.id: (n.phase, n.task_run_id) for n in graph.nodes}
    assert painted == {"write": ("Succeeded", "r-3"), "count": ("Running", "r-4"), "top": ("", ""), "report": ("", "")}
    assert graph.phase == "Running"
    data = graph.to_json()
    assert json.loads(json.dumps(data)) == data
    assert data["nodes"][0] == {
        "id": "write", "label": "write", "x": 0, "y": 30, "width": 96, "height": 40, "kind": "task",
        "template": "write-file", "parent": "", "group": False, "status": "Succeeded", "taskRunID": "r-3",
    }  # fmt: skip


def test_a_task_or_loop_entrypoint_is_one_node_painted_by_the_root_task_run() -> None:
    graph = layout_workflow(_workflow(entrypoint="leaf"), [{"runID": "r-1", "parentRunID": "", "status": "Error"}])
    assert [(n.id, n.kind, n.phase) for n in graph.nodes] == [("leaf", "task", "Error")]
    assert (graph.width, graph.height) == (graph.nodes[0].width, graph.nodes[0].height)


def test_cycles_recursion_and_unknown_dependencies_still_draw() -> None:
    cyclic = {
        "dag": {"name": "main", "tasks": [_task("a", deps=["b"]), _task("b", deps=["a"]), _task("c", deps=["z"])]}
    }
    graph = layout_workflow(_workflow(cyclic))
    assert sorted(n.id for n in graph.nodes) == ["a", "b", "c"]
    assert {(e.source, e.target) for e in graph.edges} == {("a", "b"), ("b", "a")}
    recursive = {"dag": {"name": "main", "tasks": [_task("again", "main"), _task("one")]}}
    assert [(n.id, n.group) for n in layout_workflow(_workflow(recursive)).nodes] == [("again", False), ("one", False)]
    with pytest.raises(GraphError, match=r"spec\.entrypoint 'nowhere' names no template"):
        layout_workflow(_workflow(entrypoint="nowhere"))


def test_the_expanded_size_is_bounded_whatever_the_nesting() -> None:
    wide = {"dag": {"name": "wide", "tasks": [_task(f"t{i}") for i in range(60)]}}
    middle = {"dag": {"name": "middle", "tasks": [_task(f"m{i}", "wide") for i in range(60)]}}
    top = {"dag": {"name": "main", "tasks": [_task(f"top{i}", "middle") for i in range(10)]}}
    graph = layout_workflow(_workflow(top, middle, wide))
    assert len(graph.nodes) <= MAX_NODES
    assert any(n.kind == "dag" and not n.group for n in graph.nodes)


def test_long_names_are_cut_to_fit_their_box() -> None:
    graph = layout_workflow(_workflow({"dag": {"name": "main", "tasks": [_task("x" * 300)]}}))
    node = graph.nodes[0]
    assert node.id == "x" * 300 and node.label.endswith("…") and node.width <= 280


def test_mermaid_has_a_node_per_task_subgraphs_edges_and_phase_classes() -> None:
    records = [{"runID": "r-1", "parentRunID": "", "status": "Running"},
               {"runID": "r-2", "parentRunID": "r-1", "taskName": "prep", "status": "Succeeded"}]  # fmt: skip
    text = render(layout_workflow(_example("tests/corpus/workflows/15-nested-dag-depths.json"), records), "mermaid")
    lines = text.splitlines()
    assert lines[0] == "flowchart LR"
    assert '  n0["prep"]' in lines and '  subgraph n1 ["mid-call"]' in lines and '      n3["deepest"]' in lines
    assert "  n0 --> n1" in lines and "  n1 --> n5" in lines
    assert f"  classDef Succeeded fill:{PHASE_COLORS['Succeeded']},stroke:#374151" in lines
    assert "  class n0 Succeeded" in lines
    assert '  n1{{"price-each"}}' in render(layout_workflow(_example("examples/http-loop.json")), "mermaid")


def test_mermaid_and_dot_escape_labels() -> None:
    graph = layout_workflow(_workflow({"dag": {"name": "main", "tasks": [_task('say "hi" \\ now')]}}))
    assert '  n0["say #quot;hi#quot; \\ now"]' in render(graph, "mermaid").splitlines()
    assert 'n0 [label="say \\"hi\\" \\\\ now", shape=box' in render(graph, "dot")


def test_dot_draws_groups_as_clusters_with_edges_ending_at_their_border() -> None:
    text = render(layout_workflow(_example("tests/corpus/workflows/15-nested-dag-depths.json")), "dot")
    assert text.startswith('digraph "nested-dag-depths" {\n  rankdir=LR; compound=true;')
    assert "  subgraph cluster_n1 {" in text and "    subgraph cluster_n2 {" in text
    assert "  n0 -> n1 [lhead=cluster_n1];" in text and "  n1 -> n5 [ltail=cluster_n1];" in text
    assert text.rstrip().endswith("}")


def test_svg_is_xml_with_a_node_per_task_at_the_layout_positions() -> None:
    records = [{"runID": "r-1", "parentRunID": "", "status": "Running"},
               {"runID": "r-2", "parentRunID": "r-1", "taskName": "count", "status": "Failed"}]  # fmt: skip
    graph = layout_workflow(_example("examples/shell-pipeline.json"), records)
    root = ET.fromstring(render(graph, "svg"))
    assert root.tag == f"{SVG}svg" and root.get("width") == str(graph.width + 32)
    drawn = {g.get("data-id"): g for g in root.iter(f"{SVG}g") if "node" in (g.get("class") or "").split()}
    assert set(drawn) == {"write", "count", "top", "report"}
    count = next(n for n in graph.nodes if n.id == "count")
    rect = drawn["count"].find(f"{SVG}rect")
    assert rect is not None and (rect.get("x"), rect.get("y")) == (str(count.x), str(count.y))
    assert rect.get("fill") == PHASE_COLORS["Failed"] and drawn["count"].get("data-status") == "Failed"
    assert len([p for p in root.iter(f"{SVG}path") if p.get("class") == "edge"]) == 4


def test_svg_escapes_names_and_draws_groups_behind_their_members() -> None:
    graph = layout_workflow(_workflow({"dag": {"name": "main", "tasks": [_task("<b>&</b>", "inner")]}},
                                      {"dag": {"name": "inner", "tasks": [_task("x")]}}))  # fmt: skip
    root = ET.fromstring(render(graph, "svg"))
    groups = [g for g in root.iter(f"{SVG}g") if g.get("class") == "group"]
    assert [g.get("data-id") for g in groups] == ["<b>&</b>"]
    assert "".join(groups[0].itertext()).endswith("<b>&</b>")
    with pytest.raises(ValueError, match="unknown graph format 'png'"):
        render(graph, "png")


@st.composite
def _dags(draw: st.DrawFn) -> Workflow:
    """A DAG of up to 25 tasks, each depending on some earlier ones; some call a small nested DAG."""
    size = draw(st.integers(1, 25))
    tasks = []
    for i in range(size):
        deps = draw(st.lists(st.integers(0, i - 1), max_size=3)) if i else []
        template = draw(st.sampled_from(["leaf", "leaf", "inner"]))
        tasks.append(_task(f"t{i}", template, [f"t{d}" for d in deps]))
    inner = {"dag": {"name": "inner", "tasks": [_task("a"), _task("b", deps=["a"]), _task("c", deps=["a"])]}}
    return _workflow({"dag": {"name": "main", "tasks": tasks}}, inner)


def _overlap(a: Node, b: Node) -> bool:
    return a.x < b.x + b.width and b.x < a.x + a.width and a.y < b.y + b.height and b.y < a.y + a.height


@settings(max_examples=60, deadline=None)
@given(_dags())
def test_any_dag_is_laid_out_inside_its_bounds_without_overlaps_and_edges_going_right(workflow: Workflow) -> None:
    graph = layout_workflow(workflow)
    assert graph.to_json() == layout_workflow(workflow).to_json()
    nodes = {n.id: n for n in graph.nodes}
    for node in graph.nodes:
        outer = nodes.get(node.parent)
        left, top, right, bottom = (outer.x, outer.y, outer.x + outer.width, outer.y + outer.height) if outer else (
            0, 0, graph.width, graph.height
        )  # fmt: skip
        assert left <= node.x and node.x + node.width <= right and top <= node.y and node.y + node.height <= bottom
    siblings: dict[str, list[Node]] = {}
    for node in graph.nodes:
        siblings.setdefault(node.parent, []).append(node)
    for group in siblings.values():
        assert not any(_overlap(a, b) for i, a in enumerate(group) for b in group[i + 1 :])
    for edge in graph.edges:
        (x1, _), (x2, _) = edge.points
        assert x1 < x2
