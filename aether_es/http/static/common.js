// Shared by every page: the API over HTTP, the token, and small rendering helpers. Plain JavaScript.
"use strict";

const PHASES = ["Created", "Ready", "Running", "Suspended", "Succeeded", "Failed", "Error", "Timeout", "Skipped", "Cancelled"];
const TOKEN_KEY = "aether-token";
const ACTOR_KEY = "aether-actor";

class ApiFailure extends Error {
  constructor(status, error) {
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.code = error.code;
    this.field = error.field;
  }
}

// One operation of the request/reply API (docs/api.md): the request's JSON in, the reply's out.
async function api(operation, body = {}) {
  const headers = { "Content-Type": "application/json" };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(`/api/v1/${operation}`, { method: "POST", headers, body: JSON.stringify(body) });
  return answer(response);
}

async function getJSON(path) {
  return answer(await fetch(path));
}

async function answer(response) {
  const data = await response.json().catch(() => ({ error: { message: `HTTP ${response.status}` } }));
  if (!response.ok) throw new ApiFailure(response.status, data.error || {});
  return data;
}

let serverConfig = null;
async function config() {
  if (serverConfig === null) serverConfig = await getJSON("/api/config");
  return serverConfig;
}

// Text to put in HTML.
function esc(value) {
  return String(value ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

function phaseBadge(phase) {
  return `<span class="phase ${esc(phase)}" style="background: var(--${esc(phase)})">${esc(phase)}</span>`;
}

function phaseColour(phase) {
  return getComputedStyle(document.documentElement).getPropertyValue(`--${phase}`).trim() || "#c9ced6";
}

function when(time) {
  if (!time) return "";
  const date = new Date(time);
  return isNaN(date) ? time : date.toLocaleString();
}

// The time of day to the millisecond: what tells a run's events apart.
function clock(time) {
  const date = new Date(time);
  if (!time || isNaN(date)) return time || "";
  return `${date.toLocaleTimeString([], { hour12: false })}.${String(date.getMilliseconds()).padStart(3, "0")}`;
}

function seconds(from, to) {
  if (!from || !to) return "";
  const ms = new Date(to) - new Date(from);
  return isNaN(ms) ? "" : `${(ms / 1000).toFixed(ms < 10000 ? 2 : 0)} s`;
}

function json(value) {
  return `<pre>${esc(JSON.stringify(value, null, 2))}</pre>`;
}

// The top bar: the pages, and where the token for actions is typed (kept for this tab only).
function topBar(here) {
  const links = [["/", "Runs"], ["/workers", "Workers"], ["/crons", "Crons"]]
    .map(([href, text]) => `<a href="${href}" class="${href === here ? "here" : ""}">${text}</a>`).join("");
  const bar = document.createElement("header");
  bar.className = "top";
  bar.innerHTML = `<span class="brand">aether-es</span>${links}<span class="grow"></span>
    <label>token <input id="token" type="password" autocomplete="off" placeholder="for actions"></label>`;
  document.body.prepend(bar);
  const input = bar.querySelector("#token");
  input.value = sessionStorage.getItem(TOKEN_KEY) || "";
  input.addEventListener("change", () => sessionStorage.setItem(TOKEN_KEY, input.value.trim()));
}

// A stream of Server-Sent Events that says on `indicator` whether it is live.
function listen(path, handlers, indicator) {
  const source = new EventSource(path);
  source.onopen = () => indicator && indicator.classList.add("on");
  source.onerror = () => indicator && indicator.classList.remove("on");
  for (const [name, handler] of Object.entries(handlers)) {
    source.addEventListener(name, (event) => handler(JSON.parse(event.data), source));
  }
  return source;
}

// Run `fn` at most once per `ms`, the last call winning.
function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

// Put the HTML `read` returns in #content, now and every `ms` after, or say in #problem why it cannot.
function keepShowing(read, ms = 5000) {
  const show = async () => {
    try {
      document.getElementById("content").innerHTML = await read();
      document.getElementById("problem").textContent = "";
    } catch (failure) {
      document.getElementById("problem").textContent = failure.message;
    }
  };
  show();
  setInterval(show, ms);
}
