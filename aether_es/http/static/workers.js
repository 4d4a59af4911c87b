// Live workers from the registry: executor types and how recently each was heard.
"use strict";

async function workersTable() {
  const reply = await api("workers.list", {});
  const now = Date.now();
  const rows = reply.workers.map((worker) => `<tr>
    <td class="mono">${esc(worker.id)}</td>
    <td>${worker.executorTypes.map((type) => `<code>${esc(type)}</code>`).join(" ")}</td>
    <td>${esc(when(worker.registeredAt))}</td>
    <td>${Math.max(0, Math.round((now - new Date(worker.heartbeatAt)) / 1000))} s ago</td>
    <td>${Object.entries(worker.tags || {}).map(([k, v]) => `<code>${esc(k)}=${esc(v)}</code>`).join(" ")}</td>
  </tr>`);
  return `<table><thead><tr><th>worker</th><th>executor types</th>
    <th>registered</th><th>last heartbeat</th><th>tags</th></tr></thead>
    <tbody>${rows.join("") || `<tr><td colspan="5" class="muted">no live worker</td></tr>`}</tbody></table>`;
}

topBar("/workers");
keepShowing(workersTable);
