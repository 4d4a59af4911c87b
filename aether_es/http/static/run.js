// A run's page: its graph coloured by phase and updated live, its history with a slider (time travel),
// a task's details, and the actions (each asking for a reason, recorded with who asked).
"use strict";

const runID = decodeURIComponent(location.pathname.split("/").pop());
const page = {
  graph: null, // the graph of the run now, as the live stream keeps it
  events: [], // the run's history (GET /api/runs/<id>/history), read so far
  seq: 0, // the history stream sequence of the last commit read
  tasks: new Map(), // task records by task run id (runs.get)
  selected: null, // the node picked
  at: null, // the event shown by the slider, null when showing now
  stream: null,
  log: null, // the stream of the selected task's log lines
  logTask: "",
};

function node(id) {
  return document.querySelector(`#graph .node[data-id="${CSS.escape(id)}"]`);
}

const SHOWN_CHILDREN = 200; // a loop's iterations listed in the task panel, at most
const ENDED = ["Succeeded", "Failed", "Error", "Timeout", "Skipped", "Cancelled"];

function showRun(run) {
  if (page.at === null && actionsOn()) {
    document.getElementById("cancel").disabled = ENDED.includes(run.status);
    document.getElementById("retry").disabled = !ENDED.includes(run.status) || run.status === "Succeeded";
  }
  document.getElementById("status").innerHTML = phaseBadge(run.status);
  document.getElementById("progress").textContent = run.progress ? `${run.progress} done` : "";
  document.getElementById("message").textContent = run.message || "";
}

function draw(graph) {
  document.getElementById("title").innerHTML = `${esc(graph.name)} <span class="mono muted">${esc(runID)}</span>`;
  document.title = `${graph.name} · aether-es`;
  drawGraph(document.getElementById("graph"), graph, pick);
  if (graph.run) showRun(graph.run);
  if (page.selected) {
    const box = node(page.selected.id);
    if (box) box.classList.add("selected");
  }
}

function problem(text) {
  document.getElementById("problem").textContent = text || "";
}

// --- live ------------------------------------------------------------------------------------------

// While the run moves, its history (and the task records, when a task is shown) are read again at most once
// a second: each read costs the run's size.
const reread = debounce(
  () => Promise.all([page.selected ? readTasks() : null, readHistory()]).catch((f) => problem(f.message)),
  1000,
);

function follow() {
  if (page.stream) page.stream.close();
  page.stream = listen(`/api/runs/${encodeURIComponent(runID)}/live`, {
    graph: (graph) => {
      page.graph = graph;
      if (page.at === null) draw(graph);
      reread();
    },
    status: (change) => {
      for (const graphNode of page.graph ? page.graph.nodes : []) {
        if (graphNode.taskRunID in change.tasks) graphNode.status = change.tasks[graphNode.taskRunID];
      }
      if (page.graph) page.graph.run = change.run;
      if (page.at === null) {
        for (const [task, phase] of Object.entries(change.tasks)) {
          const box = document.querySelector(`#graph [data-task="${CSS.escape(task)}"]`);
          if (box) setPhase(box, phase);
        }
        showRun(change.run);
      }
      reread();
    },
    end: (run, source) => {
      source.close();
      if (page.graph) page.graph.run = run;
      document.getElementById("live").classList.remove("on");
      if (page.at === null) showRun(run);
      reread();
    },
    failure: (failure, source) => {
      source.close();
      problem(failure.message);
    },
  }, document.getElementById("live"));
}

// The task records, for the task panel: read when a task is first shown, then while the run moves.
async function readTasks() {
  const reply = await api("runs.get", { runID });
  page.tasks = new Map(reply.run.tasks.map((task) => [task.runID, task]));
  let token = reply.nextTaskPageToken;
  while (token) {
    const more = await api("runs.tasks", { runID, pageToken: token, limit: 1000 });
    for (const task of more.tasks) page.tasks.set(task.runID, task);
    token = more.nextPageToken;
  }
  if (page.selected) showTask(page.selected);
}

// --- history and time travel -----------------------------------------------------------------------

// Reads the events committed since the last read (one read at a time), so following a run reads each once.
let historyRead = Promise.resolve();
function readHistory() {
  historyRead = historyRead.catch(() => {}).then(readNewEvents);
  return historyRead;
}

async function readNewEvents() {
  const reply = await getJSON(`/api/runs/${encodeURIComponent(runID)}/history?after=${page.seq}`);
  page.seq = reply.seq;
  if (!reply.events.length) return;
  for (const event of reply.events) page.events.push(event);
  const slider = document.getElementById("slider");
  slider.max = String(page.events.length);
  if (page.at === null) slider.value = slider.max;
  document.querySelector("#timeline tbody").insertAdjacentHTML("beforeend", reply.events.map((event) => `
    <tr data-number="${event.number}">
      <td>${event.number}</td><td class="mono">${esc(clock(event.time))}</td><td>${esc(event.actor)}</td>
      <td>${esc(event.what)}${event.reason ? ` <span class="muted">(${esc(event.reason)})</span>` : ""}</td>
    </tr>`).join(""));
  showTimeline();
}

// Mark the event shown and those after it, and say what it was.
function showTimeline() {
  const shown = page.at ?? page.events.length;
  for (const row of document.querySelectorAll("#timeline tbody tr")) {
    const number = Number(row.dataset.number);
    row.className = number === shown ? "current" : number > shown ? "after" : "";
  }
  const event = page.events[shown - 1];
  document.getElementById("moment").textContent = event
    ? `${page.at === null ? "now" : "as it was"} after event ${event.number} of ${page.events.length}: ${event.what} (${when(event.time)})`
    : "";
}

// `number` null is now, however many events have been read by the time the wait is over.
const travel = debounce(async (number) => {
  try {
    if (number === null || number >= page.events.length) {
      page.at = null;
      if (page.graph) draw(page.graph);
    } else {
      page.at = number;
      draw(await getJSON(`/api/runs/${encodeURIComponent(runID)}/graph?at=${number}`));
    }
    showTimeline();
    if (page.selected) showTask(page.selected);
  } catch (failure) {
    problem(failure.message);
  }
}, 120);

function goTo(number) {
  document.getElementById("slider").value = String(number ?? page.events.length);
  travel(number);
}

// --- a task ----------------------------------------------------------------------------------------

function pick(graphNode) {
  if (!page.selected) readTasks().catch((f) => problem(f.message)); // not kept up to date while none was shown
  page.selected = graphNode;
  document.querySelectorAll("#graph .node.selected").forEach((box) => box.classList.remove("selected"));
  const box = node(graphNode.id);
  if (box) box.classList.add("selected");
  showTask(graphNode);
}

function attempts(events) {
  const byAttempt = new Map();
  for (const event of events) {
    if (!event.attempt) continue;
    const attempt = byAttempt.get(event.attempt) || { attempt: event.attempt };
    if (event.type === "TaskDispatched" || event.type === "TaskResumed") attempt.dispatched = event.time;
    if (event.type === "TaskStarted" || event.type === "TaskStartRecorded") attempt.started = event.startedAt || event.time;
    if (["TaskFinished", "TaskRetried", "TaskSuspended"].includes(event.type)) {
      attempt.ended = event.time;
      attempt.how = event.type === "TaskSuspended" ? "Suspended" : event.status;
      attempt.retried = event.type === "TaskRetried";
    }
    byAttempt.set(event.attempt, attempt);
  }
  return [...byAttempt.values()];
}

function showTask(graphNode) {
  const box = node(graphNode.id);
  const taskRunID = (box && box.dataset.task) || graphNode.taskRunID || "";
  const phase = box ? box.dataset.phase : graphNode.status;
  const task = page.tasks.get(taskRunID);
  document.getElementById("retry-from").disabled = !taskRunID || !actionsOn();
  document.getElementById("resume").disabled = phase !== "Suspended" || !actionsOn();
  const panel = document.getElementById("task");
  followLog(graphNode.group || graphNode.kind !== "task" ? "" : taskRunID);
  if (!taskRunID) {
    document.getElementById("task-more").replaceChildren();
    panel.innerHTML = `<h2>${esc(graphNode.id)}</h2><p class="muted">not created ${page.at === null ? "" : "at that point"}</p>`;
    return;
  }
  const events = page.events.filter((event) => event.taskRunID === taskRunID);
  const children = [...page.tasks.values()].filter((child) => child.parentRunID === taskRunID);
  const tries = attempts(events);
  panel.innerHTML = `
    <h2>${esc(graphNode.id)} ${phaseBadge(phase)}</h2>
    <dl class="kv">
      <dt>task run</dt><dd class="mono">${esc(taskRunID)}</dd>
      <dt>kind</dt><dd>${esc(graphNode.kind)} · template ${esc(graphNode.template)}</dd>
      <dt>retries</dt><dd>${esc(task ? task.retryCount : "")}</dd>
      <dt>message</dt><dd>${esc(task ? task.message : "")}</dd>
    </dl>
    ${tries.length ? `<h2>attempts</h2>
    <table><thead><tr><th>#</th><th>waited</th><th>ran</th><th>how it ended</th></tr></thead><tbody>
      ${tries.map((a) => `<tr><td>${a.attempt}</td><td>${seconds(a.dispatched, a.started)}</td>
        <td>${seconds(a.started, a.ended)}</td><td>${a.how ? phaseBadge(a.how) : ""}${a.retried ? " retried" : ""}</td></tr>`).join("")}
    </tbody></table>` : ""}
    ${children.length ? `<h2>${graphNode.kind === "loop" ? "iterations" : "steps"}</h2>
      <table><tbody>${children.slice(0, SHOWN_CHILDREN).map((c) => `<tr><td>${esc(c.taskName)} <span class="mono muted">${esc(c.runID)}</span></td><td>${phaseBadge(c.status)}</td>
        <td>${esc(c.message)}</td></tr>`).join("")}</tbody></table>
      ${children.length > SHOWN_CHILDREN ? `<p class="muted">and ${children.length - SHOWN_CHILDREN} more</p>` : ""}` : ""}`;
  document.getElementById("task-more").innerHTML = `
    <h2>inputs</h2>${json(task ? task.inputs : null)}
    <h2>outputs</h2>${json(task ? task.outputs : null)}
    <h2>events</h2>
    <table><tbody>${events.map((e) => `<tr><td>${e.number}</td><td class="mono">${esc(clock(e.time))}</td><td>${esc(e.what)}</td></tr>`).join("")}</tbody></table>`;
}

const LOG_LINES = 2000; // lines of a task's log kept on the page, the latest

// Show the lines the task run prints, those stored so far then live ("" shows none).
function followLog(taskRunID) {
  if (page.logTask === taskRunID) return;
  if (page.log) page.log.close();
  page.log = null;
  page.logTask = taskRunID;
  const holder = document.getElementById("task-log");
  const lines = document.getElementById("log-lines");
  lines.replaceChildren();
  holder.hidden = !taskRunID;
  if (!taskRunID) return;
  const path = `/api/runs/${encodeURIComponent(runID)}/tasks/${encodeURIComponent(taskRunID)}/logs`;
  page.log = listen(path, {
    line: (record) => {
      const line = document.createElement("span");
      line.className = record.stream;
      line.textContent = `${record.attempt > 1 ? `[${record.attempt}] ` : ""}${record.line}\n`;
      lines.append(line);
      if (lines.childElementCount > LOG_LINES) lines.firstElementChild.remove();
      lines.scrollTop = lines.scrollHeight;
    },
    failure: (failure, source) => {
      source.close();
      lines.append(`(${failure.message})`);
    },
  }, document.getElementById("log-live"));
}

// --- actions ---------------------------------------------------------------------------------------

let actionsAllowed = false;
function actionsOn() {
  return actionsAllowed;
}

function ask(title, withPayload) {
  const dialog = document.getElementById("ask");
  const form = document.getElementById("ask-form");
  document.getElementById("ask-title").textContent = title;
  document.getElementById("payload-field").style.display = withPayload ? "" : "none";
  document.getElementById("ask-problem").textContent = "";
  form.actor.value = localStorage.getItem(ACTOR_KEY) || "";
  form.reason.value = "";
  return new Promise((resolve) => {
    dialog.onclose = () => {
      if (dialog.returnValue !== "ok") return resolve(null);
      localStorage.setItem(ACTOR_KEY, form.actor.value.trim());
      resolve({ actor: form.actor.value.trim(), reason: form.reason.value.trim(), payload: form.payload.value });
    };
    dialog.returnValue = "";
    dialog.showModal();
  });
}

async function act(title, operation, request, withPayload = false) {
  const answer = await ask(title, withPayload);
  if (answer === null) return;
  const body = { runID, actor: answer.actor, reason: answer.reason, ...request };
  const notice = document.getElementById("notice");
  try {
    if (withPayload) {
      try {
        body.payload = JSON.parse(answer.payload || "{}");
      } catch (error) {
        throw new Error(`payload: not JSON (${error.message})`);
      }
    }
    await api(operation, body);
    notice.innerHTML = `<div class="notice">${esc(title)}: done (${esc(answer.reason)})</div>`;
    follow();
  } catch (failure) {
    notice.innerHTML = `<div class="notice error">${esc(title)}: ${esc(failure.message)}</div>`;
  }
}

function selectedTask() {
  const box = page.selected ? node(page.selected.id) : null;
  return box ? box.dataset.task : "";
}

async function start() {
  topBar("");
  legend(document.getElementById("legend"));
  const settings = await config();
  actionsAllowed = settings.actions;
  if (!actionsAllowed) {
    for (const id of ["cancel", "retry", "retry-from", "resume"]) document.getElementById(id).disabled = true;
    document.getElementById("actions-off").textContent = "actions are off: serve was started without --http-token";
  }
  document.getElementById("cancel").addEventListener("click", () => act("Cancel run", "runs.cancel", {}));
  document.getElementById("retry").addEventListener("click", () => act("Retry failed steps", "runs.retry", {}));
  document.getElementById("retry-from").addEventListener("click", () =>
    act("Retry from selected step", "runs.retry", { fromTaskRunID: selectedTask() }));
  document.getElementById("resume").addEventListener("click", () =>
    act("Resume selected task", "runs.resume", { taskRunID: selectedTask() }, true));
  document.getElementById("slider").addEventListener("input", (event) => travel(Number(event.target.value)));
  document.getElementById("now").addEventListener("click", () => goTo(null));
  document.querySelector("#timeline tbody").addEventListener("click", (event) => {
    const row = event.target.closest("tr");
    if (row) goTo(Number(row.dataset.number));
  });
  follow();
  readHistory().catch((failure) => problem(failure.message));
}

start();
