// Draws the run's graph (aether_es.graph's layout: boxes already placed left to right) as SVG.
"use strict";

const SVG = "http://www.w3.org/2000/svg";

function svgElement(name, attributes = {}) {
  const element = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
  return element;
}

// Replace `holder`'s drawing with `graph`; `onPick(node)` is called with the node clicked.
function drawGraph(holder, graph, onPick) {
  const pad = 12;
  const svg = svgElement("svg", { width: graph.width + 2 * pad, height: graph.height + 2 * pad, role: "img" });
  svg.setAttribute("aria-label", `graph of ${graph.name}`);
  const defs = svgElement("defs");
  const marker = svgElement("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto" });
  marker.append(svgElement("path", { d: "M0,0 L10,5 L0,10 z", fill: "#8a94a6" }));
  defs.append(marker);
  svg.append(defs);
  const root = svgElement("g", { transform: `translate(${pad},${pad})` });
  svg.append(root);
  const nodes = svgElement("g");
  for (const node of graph.nodes) nodes.append(node.group ? groupBox(node) : taskBox(node, onPick));
  const edges = svgElement("g");
  for (const edge of graph.edges) {
    const [[x1, y1], [x2, y2]] = edge.points;
    const bend = Math.max(20, (x2 - x1) / 2);
    edges.append(svgElement("path", {
      class: "edge", d: `M${x1},${y1} C${x1 + bend},${y1} ${x2 - bend},${y2} ${x2},${y2}`, "marker-end": "url(#arrow)",
      "data-source": edge.source, "data-target": edge.target,
    }));
  }
  root.append(nodes, edges);
  holder.replaceChildren(svg);
}

function groupBox(node) {
  const group = svgElement("g", { class: "group", "data-id": node.id, "data-task": node.taskRunID || "" });
  group.dataset.label = node.label;
  group.append(svgElement("rect", { x: node.x, y: node.y, width: node.width, height: node.height, rx: 8 }));
  group.append(svgElement("text", { x: node.x + 10, y: node.y + 18 }));
  setPhase(group, node.status || "");
  return group;
}

function taskBox(node, onPick) {
  const box = svgElement("g", { class: "node", "data-id": node.id, "data-task": node.taskRunID || "", "data-kind": node.kind });
  const title = svgElement("title");
  title.textContent = `${node.id} · ${node.kind}`;
  box.append(title);
  box.append(svgElement("rect", { class: "box", x: node.x, y: node.y, width: node.width, height: node.height, rx: 6 }));
  const label = svgElement("text", { x: node.x + node.width / 2, y: node.y + node.height / 2 + 4, "text-anchor": "middle" });
  label.textContent = node.kind === "loop" ? `↻ ${node.label}` : node.label;
  box.append(label);
  setPhase(box, node.status || "");
  box.addEventListener("click", () => onPick(node));
  return box;
}

// Colour a drawn node for `phase` ("" for a task not created yet); a group says it in its label.
function setPhase(box, phase) {
  box.dataset.phase = phase;
  if (box.classList.contains("group")) {
    box.querySelector("text").textContent = `${box.dataset.label} (${phase || "not started"})`;
    return;
  }
  const rect = box.querySelector("rect.box");
  rect.setAttribute("fill", phase ? phaseColour(phase) : "#ffffff");
  const dark = ["Running", "Failed", "Error", "Succeeded", "Cancelled"].includes(phase);
  box.querySelector("text").setAttribute("fill", dark ? "#ffffff" : "#1d2430");
}

function legend(holder) {
  holder.innerHTML = ["", ...PHASES].map((p) =>
    `<span><i style="background:${p ? `var(--${p})` : "#fff"}; border: 1px solid #4b5565"></i>${p || "not created"}</span>`).join("");
}
