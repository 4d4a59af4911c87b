// The runs list: filters (kept in the address), pages, and live updates from the event feed.
"use strict";

const PAGE_SIZE = 25;
let tokens = [""]; // the page token of each page shown so far: the last is the current page

function filters() {
  const form = new FormData(document.getElementById("filters"));
  const request = { limit: PAGE_SIZE };
  if (form.get("status")) request.status = form.get("status");
  if (form.get("name")) request.name = form.get("name").trim();
  const labels = {};
  for (const pair of String(form.get("label") || "").split(",")) {
    const [key, ...value] = pair.split("=");
    if (key.trim()) labels[key.trim()] = value.join("=").trim();
  }
  if (Object.keys(labels).length) request.labels = labels;
  if (form.get("since")) request.createdAfter = new Date(form.get("since")).toISOString();
  if (form.get("until")) request.createdBefore = new Date(form.get("until")).toISOString();
  return request;
}

async function show() {
  const problem = document.getElementById("problem");
  try {
    const page = await api("runs.list", { ...filters(), pageToken: tokens[tokens.length - 1] || null });
    problem.textContent = "";
    const rows = page.runs.map((run) => `<tr data-run="${esc(run.runID)}">
      <td><a class="mono" href="/runs/${encodeURIComponent(run.runID)}">${esc(run.runID)}</a></td>
      <td>${esc(run.name)}</td>
      <td>${phaseBadge(run.status)}${run.suspendedTasks ? ` <span class="muted">${run.suspendedTasks} waiting</span>` : ""}</td>
      <td>${esc(when(run.createdAt))}</td>
      <td>${esc(when(run.finishedAt))}</td>
      <td>${Object.entries(run.labels || {}).map(([k, v]) => `<code>${esc(k)}=${esc(v)}</code>`).join(" ")}</td>
    </tr>`);
    document.querySelector("#runs tbody").innerHTML = rows.join("") || `<tr><td colspan="6" class="muted">no runs</td></tr>`;
    document.getElementById("next").disabled = !page.nextPageToken;
    document.getElementById("next").dataset.token = page.nextPageToken;
    document.getElementById("previous").disabled = tokens.length < 2;
    document.getElementById("count").textContent = `page ${tokens.length}`;
  } catch (failure) {
    problem.textContent = failure.message;
  }
}

function remember() {
  const form = new FormData(document.getElementById("filters"));
  const query = new URLSearchParams();
  for (const [key, value] of form.entries()) if (value) query.set(key, value);
  history.replaceState(null, "", query.toString() ? `/?${query}` : "/");
}

function start() {
  topBar("/");
  const form = document.getElementById("filters");
  form.status.innerHTML += PHASES.map((p) => `<option>${p}</option>`).join("");
  const query = new URLSearchParams(location.search);
  for (const name of ["status", "name", "label", "since", "until"]) if (query.get(name)) form[name].value = query.get(name);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    tokens = [""];
    remember();
    show();
  });
  document.getElementById("next").addEventListener("click", (event) => {
    tokens.push(event.target.dataset.token);
    show();
  });
  document.getElementById("previous").addEventListener("click", () => {
    tokens.pop();
    show();
  });
  const refresh = debounce(show, 300);
  listen("/api/runs/live", { changed: refresh }, document.getElementById("live"));
  show();
}

start();
