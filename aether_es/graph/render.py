"""A laid-out graph as mermaid, Graphviz dot or svg text.

Mermaid and dot keep the structure (nodes, groups as subgraphs, edges, phase colours) and let their own
tools place it; svg draws the layout's own positions, the ones the web UI uses. Labels are escaped for each
format, so a task name is never read as markup.
"""

from __future__ import annotations

from collections.abc import Iterator
from xml.sax.saxutils import escape, quoteattr

from aether_es.graph.layout import Graph, Node
from aether_es.model.phases import Phase, TemplateType

PHASE_COLORS: dict[str, str] = {
    Phase.CREATED: "#e5e7eb",
    Phase.READY: "#dbeafe",
    Phase.RUNNING: "#93c5fd",
    Phase.SUSPENDED: "#fde68a",
    Phase.SUCCEEDED: "#86efac",
    Phase.FAILED: "#fca5a5",
    Phase.ERROR: "#f87171",
    Phase.TIMEOUT: "#fdba74",
    Phase.SKIPPED: "#d1d5db",
    Phase.CANCELLED: "#c4b5fd",
}
"""Fill colour of a node by its phase; a node without a phase is white."""
NO_PHASE = "#ffffff"
MARGIN = 16
FORMATS = ("mermaid", "dot", "svg")


def render(graph: Graph, fmt: str) -> str:
    """The graph in `fmt` (one of `FORMATS`)."""
    if fmt == "mermaid":
        return to_mermaid(graph)
    if fmt == "dot":
        return to_dot(graph)
    if fmt == "svg":
        return to_svg(graph)
    raise ValueError(f"unknown graph format {fmt!r}: use one of {', '.join(FORMATS)}")


def _short_ids(graph: Graph) -> dict[str, str]:
    """`n0`, `n1`, ... by node: task names may hold what neither mermaid nor dot takes as an id."""
    return {node.id: f"n{index}" for index, node in enumerate(graph.nodes)}


def _members(graph: Graph) -> dict[str, list[Node]]:
    """Each group's direct members by its id, "" for the top."""
    members: dict[str, list[Node]] = {}
    for node in graph.nodes:
        members.setdefault(node.parent, []).append(node)
    return members


def to_mermaid(graph: Graph) -> str:
    ids, members = _short_ids(graph), _members(graph)

    def label(node: Node) -> str:
        return '"' + node.label.replace('"', "#quot;") + '"'

    def lines(parent: str, indent: str) -> Iterator[str]:
        for node in members.get(parent, []):
            if node.group:
                yield f"{indent}subgraph {ids[node.id]} [{label(node)}]"
                yield from lines(node.id, indent + "  ")
                yield f"{indent}end"
            elif node.kind == TemplateType.LOOP:
                yield f"{indent}{ids[node.id]}{{{{{label(node)}}}}}"
            elif node.kind == TemplateType.DAG:
                yield f"{indent}{ids[node.id]}[[{label(node)}]]"
            else:
                yield f"{indent}{ids[node.id]}[{label(node)}]"

    out = ["flowchart LR", *lines("", "  ")]
    out += [f"  {ids[edge.source]} --> {ids[edge.target]}" for edge in graph.edges]
    phases = sorted({node.phase for node in graph.nodes if node.phase in PHASE_COLORS})
    out += [f"  classDef {phase} fill:{PHASE_COLORS[phase]},stroke:#374151" for phase in phases]
    out += [f"  class {ids[node.id]} {node.phase}" for node in graph.nodes if node.phase in PHASE_COLORS]
    return "\n".join(out) + "\n"


def _dot_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(graph: Graph) -> str:
    """Groups are clusters; an edge to or from a group ends at the cluster's border (`compound`)."""
    ids, members = _short_ids(graph), _members(graph)

    def fill(node: Node) -> str:
        return _dot_string(PHASE_COLORS.get(node.phase, "#f9fafb" if node.group else NO_PHASE))

    def lines(parent: str, indent: str) -> Iterator[str]:
        for node in members.get(parent, []):
            if node.group:
                yield f"{indent}subgraph cluster_{ids[node.id]} {{"
                yield f'{indent}  label={_dot_string(node.label)}; style="rounded,filled"; fillcolor={fill(node)};'
                yield f"{indent}  {ids[node.id]} [shape=point, style=invis, width=0];"
                yield from lines(node.id, indent + "  ")
                yield f"{indent}}}"
            else:
                style = '"rounded,filled"' if node.kind == TemplateType.LOOP else "filled"
                yield (
                    f"{indent}{ids[node.id]} [label={_dot_string(node.label)}, shape=box, style={style}, "
                    f"fillcolor={fill(node)}];"
                )

    groups = {node.id for node in graph.nodes if node.group}
    out = [f"digraph {_dot_string(graph.name or 'workflow')} {{", "  rankdir=LR; compound=true;"]
    out.append('  node [fontname="sans-serif", fontsize=11]; graph [fontname="sans-serif", fontsize=11];')
    out += lines("", "  ")
    for edge in graph.edges:
        ends = []
        if edge.source in groups:
            ends.append(f"ltail=cluster_{ids[edge.source]}")
        if edge.target in groups:
            ends.append(f"lhead=cluster_{ids[edge.target]}")
        attributes = f" [{', '.join(ends)}]" if ends else ""
        out.append(f"  {ids[edge.source]} -> {ids[edge.target]}{attributes};")
    out.append("}")
    return "\n".join(out) + "\n"


def to_svg(graph: Graph) -> str:
    """A standalone svg of the layout: one `<g class="node">` per task (groups are `class="group"`), with
    `data-id` (the node's path) and `data-status` (its phase, as the JSON spells it), edges as curves with
    arrow heads."""
    width, height = graph.width + 2 * MARGIN, graph.height + 2 * MARGIN
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="13">',
        f"<title>{escape(graph.name)}</title>",
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" '
        'orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#4b5563"/></marker></defs>',
        f'<g transform="translate({MARGIN},{MARGIN})">',
    ]
    for node in graph.nodes:
        if node.group:
            out.append(_svg_group(node))
    for edge in graph.edges:
        (x1, y1), (x2, y2) = edge.points
        middle = (x1 + x2) // 2
        out.append(
            f'<path class="edge" d="M{x1},{y1} C{middle},{y1} {middle},{y2} {x2},{y2}" fill="none" '
            'stroke="#4b5563" stroke-width="1.5" marker-end="url(#arrow)"/>'
        )
    for node in graph.nodes:
        if not node.group:
            out.append(_svg_node(node))
    out += ["</g>", "</svg>"]
    return "\n".join(out) + "\n"


def _svg_title(node: Node) -> str:
    return f"<title>{escape(node.id + (f' ({node.phase})' if node.phase else ''))}</title>"


def _svg_group(node: Node) -> str:
    fill = PHASE_COLORS.get(node.phase, "#f9fafb")
    return (
        f'<g class="group" data-id={quoteattr(node.id)} data-status={quoteattr(node.phase)}>{_svg_title(node)}'
        f'<rect x="{node.x}" y="{node.y}" width="{node.width}" height="{node.height}" rx="8" fill="{fill}" '
        'fill-opacity="0.35" stroke="#6b7280" stroke-dasharray="4 3"/>'
        f'<text x="{node.x + 10}" y="{node.y + 19}" font-weight="bold">{escape(node.label)}</text></g>'
    )


def _svg_node(node: Node) -> str:
    fill = PHASE_COLORS.get(node.phase, NO_PHASE)
    radius = node.height // 2 if node.kind == TemplateType.LOOP else 6
    border = ' stroke-dasharray="6 2"' if node.kind == TemplateType.DAG else ""
    return (
        f'<g class="node {node.kind}" data-id={quoteattr(node.id)} data-status={quoteattr(node.phase)}>'
        f"{_svg_title(node)}"
        f'<rect x="{node.x}" y="{node.y}" width="{node.width}" height="{node.height}" rx="{radius}" '
        f'fill="{fill}" stroke="#374151"{border}/>'
        f'<text x="{node.x + node.width // 2}" y="{node.y + node.height // 2}" text-anchor="middle" '
        f'dominant-baseline="central">{escape(node.label)}</text></g>'
    )
