// CronWorkflows: schedule, whether suspended, the next and last fires, and the runs each started.
"use strict";

async function cronsTable() {
  const [reply, fires] = await Promise.all([api("crons.list", {}), getJSON("/api/crons/next")]);
  const rows = reply.crons.map((cron) => `<tr>
    <td class="mono">${esc(cron.cronWorkflowID)}</td>
    <td>${esc(cron.name)}</td>
    <td><code>${esc(cron.schedule)}</code> ${esc(cron.timezone || "")}</td>
    <td>${cron.suspend ? "suspended" : "scheduled"}</td>
    <td>${esc(when(fires.next[cron.cronWorkflowID]))}</td>
    <td>${esc(when(cron.status.lastScheduleTime))}</td>
    <td>${cron.status.skipped || 0}</td>
    <td>${(cron.runIDs || []).slice(-10).reverse()
      .map((id) => `<a class="mono" href="/runs/${encodeURIComponent(id)}">${esc(id)}</a>`).join("<br>")}</td>
  </tr>`);
  return `<table><thead><tr><th>cron</th><th>name</th><th>schedule</th>
    <th>state</th><th>next fire</th><th>last fire</th><th>skipped</th><th>latest runs</th></tr></thead>
    <tbody>${rows.join("") || `<tr><td colspan="8" class="muted">no cron workflows</td></tr>`}</tbody></table>`;
}

topBar("/crons");
keepShowing(cronsTable);
