"""A workflow's tasks as boxes laid out left to right, and its dependencies as edges between them.

What becomes a node: each task of the entrypoint DAG (or the entrypoint itself when it is a task or a loop
template). A DAG task whose template is itself a DAG is **expanded as a group**: a box (`group` true, kind
`dag`) holding its own tasks, laid out the same way inside it, each naming the group as `parent`. A loop is
one node (kind `loop`): its iterations exist only at run time. A DAG already being expanded further up (a
recursive template) and any DAG past `MAX_NODES` nodes stay single, unexpanded boxes, so a picture costs at
most `MAX_NODES` nodes whatever the document.

Node ids are the task names from the top, joined by `/` (`build`, `release/publish`): the path a run's task
records follow, so a run's phases land on the nodes drawing its tasks.

Layout: within a DAG a task's column is its longest dependency chain from a task without dependencies
(tasks in a dependency cycle, which validation refuses, share a last column); a column keeps the DAG's
document order for its first column and, after it, orders tasks by the mean row of what they depend on
(one barycentric pass, which removes most crossings at linear cost). Columns are centred vertically.
Coordinates are integers, in pixels, with the origin top left; every position is absolute.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aether_es.model.documents import Dag, Task, Template, Workflow
from aether_es.model.phases import TemplateType
from aether_es.projections.run_state import RunState

NODE_HEIGHT = 40
MIN_WIDTH, MAX_WIDTH = 96, 280
CHAR_WIDTH = 7
"""An average character of a 13 px sans-serif label: widths follow the labels without measuring fonts."""
TEXT_PAD = 32
COLUMN_GAP = 56
ROW_GAP = 20
GROUP_PAD = 16
GROUP_HEADER = 28
MAX_NODES = 2000
MAX_LABEL = (MAX_WIDTH - TEXT_PAD) // CHAR_WIDTH


class GraphError(ValueError):
    """The document cannot be drawn (its entrypoint names no template)."""


@dataclass(slots=True)
class Node:
    id: str
    label: str
    kind: str
    """`task`, `loop` or `dag`."""
    template: str
    parent: str = ""
    """The id of the group drawn around this node; "" at the top."""
    group: bool = False
    """An expanded DAG: its tasks are drawn inside it."""
    x: int = 0
    y: int = 0
    width: int = 0
    height: int = 0
    phase: str = ""
    task_run_id: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "label": self.label,
            "x": self.x,
            "y": self.y,
            "width": self.width,
            "height": self.height,
            "kind": self.kind,
            "template": self.template,
            "parent": self.parent,
            "group": self.group,
        }
        if self.phase:
            out["status"] = self.phase
        if self.task_run_id:
            out["taskRunID"] = self.task_run_id
        return out


@dataclass(slots=True)
class Edge:
    source: str
    target: str
    points: list[tuple[int, int]] = field(default_factory=list)
    """From the middle of the source's right side to the middle of the target's left side."""

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "target": self.target, "points": [list(p) for p in self.points]}


@dataclass(slots=True)
class Graph:
    name: str
    nodes: list[Node]
    """Groups come before their members, so drawing in this order puts members on top."""
    edges: list[Edge]
    width: int
    height: int
    phase: str = ""
    """The run's phase, when laid out with a run's task records."""

    def to_json(self) -> dict[str, Any]:
        """The JSON-ready picture, spelt as the API spells its fields (a phase is a `status`): `{"name", "width",
        "height", "status"?, "nodes": [...], "edges": [...]}`."""
        out: dict[str, Any] = {"name": self.name, "width": self.width, "height": self.height}
        if self.phase:
            out["status"] = self.phase
        out["nodes"] = [n.to_json() for n in self.nodes]
        out["edges"] = [e.to_json() for e in self.edges]
        return out


def layout_workflow(workflow: Workflow, tasks: Iterable[Mapping[str, Any]] | None = None) -> Graph:
    """The workflow's picture; with a run's TaskExecution records (`runID`, `parentRunID`, `taskName`,
    `status`, in creation order), each node carries the phase and id of the latest task run it draws."""
    templates = {t.name: t for t in workflow.spec.templates}
    entry = templates.get(workflow.spec.entrypoint)
    if entry is None:
        raise GraphError(f"spec.entrypoint {workflow.spec.entrypoint!r} names no template")
    builder = _Builder(templates)
    if entry.dag is not None:
        builder.expanding.add(entry.dag.name)
        width, height, _ = builder.dag(entry.dag, "", "")
    else:
        node = builder.node(entry.name, entry.name, entry.type, entry.name, "")
        width, height = node.width, node.height
    nodes = _absolute(builder.nodes)
    edges = [_route(edge, nodes) for edge in builder.edges]
    graph = Graph(workflow.metadata.name, list(nodes.values()), edges, width, height)
    if tasks is not None:
        _paint(graph, nodes, tasks, "" if entry.dag is not None else workflow.spec.entrypoint)
    return graph


def layout_run(state: RunState) -> Graph:
    """A run's picture: its document, each node painted by the latest task run at its path (read from the
    state without building whole task records)."""
    tasks = state.tasks
    painting = (
        {"runID": task.id, "parentRunID": task.parent_id, "taskName": task.task_name, "status": task.phase}
        for task in (tasks[task_id] for task_id in state.order)
    )
    return layout_workflow(state.workflow, painting)


class _Builder:
    """Sizes and relative positions, depth first; `nodes` keeps each group before its members."""

    def __init__(self, templates: Mapping[str, Template]) -> None:
        self.templates = templates
        self.nodes: list[Node] = []
        self.edges: list[Edge] = []
        self.expanding: set[str] = set()

    def node(self, node_id: str, label: str, kind: str, template: str, parent: str) -> Node:
        if len(label) > MAX_LABEL:
            label = label[: MAX_LABEL - 1] + "…"
        width = min(MAX_WIDTH, max(MIN_WIDTH, len(label) * CHAR_WIDTH + TEXT_PAD))
        node = Node(node_id, label, kind, template, parent, width=width, height=NODE_HEIGHT)
        self.nodes.append(node)
        return node

    def member(self, task: Task, prefix: str, parent: str) -> Node:
        node_id = f"{prefix}{task.name}"
        template = self.templates.get(task.template) if task.template else None
        if template is None:
            return self.node(node_id, task.name, TemplateType.TASK, task.template, parent)
        dag = template.dag
        if dag is None or dag.name in self.expanding or len(self.nodes) + len(dag.tasks) > MAX_NODES:
            return self.node(node_id, task.name, template.type, template.name, parent)
        node = self.node(node_id, task.name, TemplateType.DAG, template.name, parent)
        node.group = True
        self.expanding.add(dag.name)
        width, height, inside = self.dag(dag, f"{node_id}/", node_id)
        self.expanding.discard(dag.name)
        node.width = max(node.width, width + 2 * GROUP_PAD)
        node.height = height + 2 * GROUP_PAD + GROUP_HEADER
        offset_x, offset_y = (node.width - width) // 2, GROUP_PAD + GROUP_HEADER
        for inner in inside:
            inner.x += offset_x
            inner.y += offset_y
        return node

    def dag(self, dag: Dag, prefix: str, parent: str) -> tuple[int, int, list[Node]]:
        """Lay out the DAG's tasks with the origin at its top left; its width, height and task nodes."""
        members = {task.name: self.member(task, prefix, parent) for task in dag.tasks}
        depends = {task.name: [d for d in dict.fromkeys(task.dependencies) if d in members] for task in dag.tasks}
        columns = _columns(depends)
        x = 0
        tallest = max((_stack_height(column, members) for column in columns), default=0)
        for column in columns:
            width = max(members[name].width for name in column)
            y = (tallest - _stack_height(column, members)) // 2
            for name in column:
                node = members[name]
                node.x, node.y = x + (width - node.width) // 2, y
                y += node.height + ROW_GAP
            x += width + COLUMN_GAP
        for name, deps in depends.items():
            self.edges.extend(Edge(members[d].id, members[name].id) for d in deps)
        return max(0, x - COLUMN_GAP), tallest, list(members.values())


def _stack_height(column: list[str], members: Mapping[str, Node]) -> int:
    return sum(members[name].height for name in column) + ROW_GAP * (len(column) - 1)


def _columns(depends: Mapping[str, list[str]]) -> list[list[str]]:
    """Tasks by column (longest chain of dependencies before them), each column ordered as the module says."""
    dependents: dict[str, list[str]] = {name: [] for name in depends}
    waiting = {name: len(deps) for name, deps in depends.items()}
    for name, deps in depends.items():
        for dep in deps:
            dependents[dep].append(name)
    level = {name: 0 for name in depends}
    ready = [name for name, count in waiting.items() if count == 0]
    for name in ready:  # grows while it is walked: Kahn's order
        for after in dependents[name]:
            level[after] = max(level[after], level[name] + 1)
            waiting[after] -= 1
            if waiting[after] == 0:
                ready.append(after)
    placed = set(ready)
    last = max(level.values(), default=0) + 1
    columns: list[list[str]] = [[] for _ in range(last + 1)]
    for name in depends:
        columns[level[name] if name in placed else last].append(name)
    row: dict[str, int] = {}
    for index, column in enumerate(c for c in columns if c):
        if index:
            position = {name: i for i, name in enumerate(column)}
            column.sort(key=lambda n: (_mean(row[d] for d in depends[n] if d in row), position[n]))
        row.update((name, i) for i, name in enumerate(column))
    return [c for c in columns if c]


def _mean(values: Iterable[int]) -> float:
    items = list(values)
    return sum(items) / len(items) if items else 0.0


def _absolute(nodes: list[Node]) -> dict[str, Node]:
    """Member positions were relative to their group: add each group's absolute position, groups first."""
    by_id: dict[str, Node] = {}
    for node in nodes:
        if node.parent:
            holder = by_id[node.parent]
            node.x += holder.x
            node.y += holder.y
        by_id[node.id] = node
    return by_id


def _route(edge: Edge, nodes: Mapping[str, Node]) -> Edge:
    source, target = nodes[edge.source], nodes[edge.target]
    edge.points = [
        (source.x + source.width, source.y + source.height // 2),
        (target.x, target.y + target.height // 2),
    ]
    return edge


def _paint(graph: Graph, nodes: Mapping[str, Node], tasks: Iterable[Mapping[str, Any]], root: str) -> None:
    """Set each node's phase and task run id from the latest task run at its path; the run's phase from the
    root task run. Records come parents first (creation order), so one pass finds every path."""
    paths: dict[str, str] = {}
    for record in tasks:
        run_id, parent = str(record.get("runID", "")), str(record.get("parentRunID", ""))
        if not parent:
            path = root
            graph.phase = str(record.get("status", ""))
        elif parent in paths:
            above = paths[parent]
            path = f"{above}/{record.get('taskName', '')}" if above else str(record.get("taskName", ""))
        else:
            continue
        paths[run_id] = path
        node = nodes.get(path)
        if node is not None:
            node.phase = str(record.get("status", ""))
            node.task_run_id = run_id
