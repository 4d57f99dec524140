// The wsflow operators' console: plain JavaScript, no build step, served by
// `wsflow serve` from the binary. It speaks the same HTTP API as the CLI with
// an operator key that lives in this tab's sessionStorage only. Everything
// from the API is put on the page as text (never as HTML).
"use strict";

const KEY = "wsflow.operator_key";
const view = document.getElementById("view");
let refreshTimer = null;

// --- plumbing -----------------------------------------------------------------

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

class ApiError extends Error {
  constructor(status, body) {
    const e = (body && body.error) || {};
    super(e.message || "HTTP " + status);
    this.status = status;
    this.code = e.code;
    this.details = e;
  }
}

async function api(method, path, body) {
  const response = await fetch(path, {
    method,
    headers: { Authorization: "Bearer " + sessionStorage.getItem(KEY), "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.json().catch(() => null);
  if (response.status === 401) {
    sessionStorage.removeItem(KEY);
    showSignIn("The key was refused; sign in again.");
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

function when(text) {
  if (!text) return "";
  return new Date(text).toISOString().replace("T", " ").slice(0, 19);
}

function badge(state) {
  return el("span", { class: "badge " + state, "data-testid": "state" }, state);
}

function errorBox(error) {
  let text = error.message;
  if (error.details && error.details.allowed_actions) text += " (allowed: " + error.details.allowed_actions.join(", ") + ")";
  return el("p", { class: "error", role: "alert", "data-testid": "error" }, text);
}

function stuckText(stuck) {
  const d = stuck.detail || {};
  let text = stuck.reason + " since " + when(stuck.since);
  if (d.step) text += " — " + (d.compensating ? "compensating " : "step ") + d.step + (d.branch ? "[" + d.branch + "]" : "");
  if (d.attempt) text += ", attempt " + d.attempt + (d.max_attempts ? " of " + d.max_attempts : "");
  if (d.last_error) text += ", last error: " + d.last_error;
  if (d.next_retry_at) text += ", next retry " + when(d.next_retry_at);
  if (d.lease_owner) text += ", engine " + d.lease_owner;
  if (d.error) text += " (" + d.error + ")";
  return text;
}

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v) q.set(k, v);
  return q.toString();
}

// --- the confirmation every repair goes through --------------------------------

function confirmAction(title, body) {
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-title").textContent = title;
  document.getElementById("confirm-body").replaceChildren(body || "");
  document.getElementById("confirm-reason").value = "";
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener(
      "close",
      () => resolve({ ok: dialog.returnValue === "ok", reason: document.getElementById("confirm-reason").value }),
      { once: true },
    );
  });
}

// --- views ---------------------------------------------------------------------

async function sagaList(params) {
  const filters = el(
    "form",
    { class: "filters", "data-testid": "filters", onsubmit: (e) => {
        e.preventDefault();
        const f = new FormData(e.target);
        location.hash = "#/sagas?" + query({
          state: f.get("state"), definition: f.get("definition"), workspace_id: f.get("workspace_id"),
          stuck: f.get("stuck") ? "true" : "", reason: f.get("reason"),
        });
      } },
    el("label", {}, "State", el("select", { name: "state" }, ["", "pending", "running", "waiting", "paused",
      "compensating", "completed", "compensated", "failed", "cancelled"].map((s) =>
        el("option", { value: s, selected: params.get("state") === s }, s || "any")))),
    el("label", {}, "Definition", el("input", { name: "definition", value: params.get("definition") || "" })),
    el("label", {}, "Workspace", el("input", { name: "workspace_id", value: params.get("workspace_id") || "" })),
    el("label", {}, "Stuck reason", el("select", { name: "reason" }, ["", "failed", "lease_expired", "attempt_overdue",
      "unclaimed", "compensation_unfinished", "no_progress"].map((r) =>
        el("option", { value: r, selected: params.get("reason") === r }, r || "any")))),
    el("label", {}, el("input", { type: "checkbox", name: "stuck", checked: params.get("stuck") === "true" }), "stuck only"),
    el("button", { type: "submit" }, "Filter"),
  );
  const page = await api("GET", "/v1/sagas?" + params.toString());
  const rows = page.data.map((s) =>
    el("tr", { class: s.stuck ? "stuck" : "", "data-testid": "saga-row", "data-id": s.id },
      el("td", {}, el("a", { href: "#/saga/" + s.id, class: "mono" }, s.id)),
      el("td", {}, s.definition),
      el("td", {}, badge(s.state)),
      el("td", {}, s.stuck ? el("span", { class: "stuck-reason", "data-testid": "stuck-reason", title: stuckText(s.stuck) },
        s.stuck.reason) : ""),
      el("td", {}, when(s.updated_at))));
  const next = page.next_cursor
    ? el("a", { href: "#/sagas?" + query({ ...Object.fromEntries(params), cursor: page.next_cursor }) }, "Next page")
    : null;
  return [el("h2", {}, params.get("stuck") === "true" ? "Stuck sagas" : "Sagas"), filters,
    rows.length ? el("table", {}, el("thead", {}, el("tr", {}, ["Saga", "Definition", "State", "Stuck", "Updated"]
      .map((h) => el("th", {}, h)))), el("tbody", {}, rows)) : el("p", { class: "muted" }, "No sagas match."),
    next];
}

// The repair buttons a saga's state allows; each behind a confirmation.
function repairs(saga, rerender) {
  const run = async (action, title, body, preview) => {
    const answer = await confirmAction(title, preview);
    if (!answer.ok) return;
    try {
      await api("POST", "/v1/sagas/" + saga.id + "/" + action, { ...body, ...(answer.reason ? { reason: answer.reason } : {}) });
      rerender();
    } catch (error) {
      view.prepend(errorBox(error));
    }
  };
  const current = (saga.stuck && saga.stuck.detail && saga.stuck.detail.step) ||
    (saga.steps.find((s) => ["running", "retrying", "waiting"].includes(s.state)) || {}).step;
  const buttons = [];
  for (const action of saga.allowed_actions) {
    if (action === "retry") buttons.push(el("button", { "data-testid": "action-retry", onclick: () =>
      run("retry", "Retry saga " + saga.id + "?", {}, el("p", {}, saga.state === "failed"
        ? "Its failed compensations get a fresh budget and run again."
        : "The step in flight gets a fresh attempt budget and runs again now.")) }, "Retry"));
    if (action === "pause") buttons.push(el("button", { "data-testid": "action-pause", onclick: () =>
      run("pause", "Pause saga " + saga.id + "?", {}, el("p", {}, "It stops at its next step boundary.")) }, "Pause"));
    if (action === "resume") buttons.push(el("button", { "data-testid": "action-resume", onclick: () =>
      run("resume", "Resume saga " + saga.id + "?", {}, el("p", {}, "Timers kept their due times.")) }, "Resume"));
    if (action === "skip" && current) buttons.push(el("button", { "data-testid": "action-skip", onclick: () =>
      run("skip", "Skip step " + current + "?", { step: current },
        el("p", {}, "Mark it done by hand (empty output); the saga continues after it.")) }, "Skip " + current));
    if (action === "cancel") buttons.push(el("button", { class: "danger", "data-testid": "action-cancel", onclick: async () => {
      const plan = await api("POST", "/v1/sagas/" + saga.id + "/cancel", { dry_run: true });
      const list = el("ol", {}, plan.compensations.map((c) =>
        el("li", {}, c.compensate + " for " + c.step + (c.branch ? "[" + c.branch + "]" : "") + (c.in_doubt ? " (in doubt)" : ""))));
      run("cancel", "Cancel saga " + saga.id + "?", {},
        el("div", {}, el("p", {}, "These compensations will run, in order:"), plan.compensations.length ? list : el("p", {}, "none")));
    } }, "Cancel…"));
    if (action === "resolve") buttons.push(el("button", { "data-testid": "action-resolve", onclick: () =>
      run("resolve", "Mark the failed compensation done by hand?", {},
        el("p", {}, "Say in the reason what was done; the saga then finishes compensated.")) }, "Resolve by hand"));
  }
  return el("div", { class: "actions" }, buttons);
}

async function sagaDetail(id) {
  const saga = await api("GET", "/v1/sagas/" + encodeURIComponent(id));
  const events = [];
  for (let cursor = ""; ;) {
    const page = await api("GET", "/v1/sagas/" + saga.id + "/events?limit=100" + (cursor ? "&cursor=" + cursor : ""));
    events.push(...page.data);
    if (!page.next_cursor) break;
    cursor = page.next_cursor;
  }
  const rerender = () => route();
  const steps = saga.steps.map((s) => el("tr", { "data-testid": "step-row" },
    el("td", {}, s.step + (s.branch ? "[" + s.branch + "]" : "")),
    el("td", {}, badge(s.state)),
    el("td", {}, s.attempts + (s.max_attempts ? "/" + s.max_attempts : "") +
      (s.compensation_attempts ? " +" + s.compensation_attempts + " undo" : "")),
    el("td", {}, s.finished_at && s.started_at ? ((new Date(s.finished_at) - new Date(s.started_at)) / 1000).toFixed(3) + " s" : ""),
    el("td", { class: "error" }, s.error || "")));
  const timeline = events.map((e) => {
    const d = e.detail || {};
    const operator = e.kind.startsWith("operator_");
    let text = e.kind + (e.step ? " " + e.step + (e.branch ? "[" + e.branch + "]" : "") : "");
    if (d.attempt) text += " — attempt " + d.attempt + (d.max_attempts ? " of " + d.max_attempts : "");
    if (d.code) text += ": " + d.code + (d.message ? ": " + d.message : "");
    if (d.duration) text += " for " + d.duration;
    if (d.signal) text += " signal " + d.signal;
    if (operator) text += " — by " + d.by + (d.key_name ? " (key " + d.key_name + ")" : "") + (d.reason ? ": " + d.reason : "");
    return el("li", { class: operator ? "operator" : e.kind.includes("failed") ? "bad" : "", "data-testid": "event" },
      el("time", {}, when(e.at)), text);
  });
  return [
    el("h2", {}, "Saga ", el("span", { class: "mono" }, saga.id)),
    el("p", {}, saga.definition + " v" + saga.version + " ", badge(saga.state),
      saga.workspace_id ? el("span", {}, " workspace ", el("a", { href: "#/workspace/" + saga.workspace_id, class: "mono" }, saga.workspace_id)) : "",
      saga.rerun_of ? el("span", {}, " rerun of ", el("a", { href: "#/saga/" + saga.rerun_of, class: "mono" }, saga.rerun_of)) : ""),
    saga.error ? el("p", { class: "error" }, saga.error) : null,
    saga.stuck ? el("div", { class: "stuck-box", "data-testid": "stuck" }, el("strong", {}, "Stuck: "), stuckText(saga.stuck)) : null,
    saga.pause_requested ? el("p", { class: "muted" }, "Pause requested: it pauses after its current step.") : null,
    repairs(saga, rerender),
    el("h2", {}, "Steps"),
    steps.length ? el("table", {}, el("thead", {}, el("tr", {}, ["Step", "State", "Attempts", "Took", "Error"].map((h) => el("th", {}, h)))),
      el("tbody", {}, steps)) : el("p", { class: "muted" }, "No step has started."),
    el("h2", {}, "Timeline"),
    el("ol", { class: "timeline", "data-testid": "timeline" }, timeline),
  ];
}

async function workspaceList() {
  const page = await api("GET", "/v1/workspaces?limit=100");
  const rows = page.data.map((w) => el("tr", { "data-testid": "workspace-row" },
    el("td", {}, el("a", { href: "#/workspace/" + w.id }, w.slug)),
    el("td", {}, w.name), el("td", {}, w.plan), el("td", {}, badge(w.status)), el("td", {}, when(w.created_at))));
  return [el("h2", {}, "Workspaces"), rows.length ? el("table", {},
    el("thead", {}, el("tr", {}, ["Slug", "Name", "Plan", "Status", "Created"].map((h) => el("th", {}, h)))),
    el("tbody", {}, rows)) : el("p", { class: "muted" }, "No workspaces.")];
}

async function workspaceDetail(id) {
  const w = await api("GET", "/v1/workspaces/" + encodeURIComponent(id));
  const audit = await api("GET", "/v1/workspaces/" + w.id + "/audit?order=desc&limit=50");
  return [
    el("h2", {}, "Workspace " + w.slug + " ", badge(w.status)),
    el("p", {}, w.name + " — plan " + w.plan + ", region " + w.region + ", created " + when(w.created_at)),
    w.active_saga_id ? el("p", {}, "Active saga ", el("a", { href: "#/saga/" + w.active_saga_id, class: "mono" }, w.active_saga_id)) : null,
    el("p", {}, el("a", { href: "#/sagas?workspace_id=" + w.id }, "All its sagas")),
    el("h2", {}, "Environments"),
    el("table", {}, el("tbody", {}, (w.environments || []).map((e) => el("tr", { "data-testid": "environment-row" },
      el("td", {}, e.name), el("td", {}, badge(e.status)), el("td", { class: "error" }, e.error || ""))))),
    el("h2", {}, "Audit feed"),
    el("table", {}, el("tbody", {}, audit.data.map((a) => el("tr", {},
      el("td", {}, when(a.at)), el("td", {}, a.actor), el("td", {}, a.action),
      el("td", { class: "mono" }, JSON.stringify(a.detail)))))),
  ];
}

// --- routing -------------------------------------------------------------------

function showSignIn(message) {
  document.getElementById("sign-in").hidden = false;
  document.getElementById("sign-out").hidden = true;
  document.getElementById("sign-in-error").textContent = message || "";
  view.replaceChildren();
}

async function route() {
  clearTimeout(refreshTimer);
  if (!sessionStorage.getItem(KEY)) return showSignIn();
  document.getElementById("sign-in").hidden = true;
  document.getElementById("sign-out").hidden = false;
  const [path, search] = (location.hash.slice(1) || "/sagas?stuck=true").split("?");
  const params = new URLSearchParams(search || "");
  const parts = path.split("/").filter(Boolean);
  try {
    let content;
    if (parts[0] === "saga" && parts[1]) content = await sagaDetail(parts[1]);
    else if (parts[0] === "workspaces") content = await workspaceList();
    else if (parts[0] === "workspace" && parts[1]) content = await workspaceDetail(parts[1]);
    else content = await sagaList(params);
    // Not while the operator is typing in a filter or confirming an action.
    const typing = view.contains(document.activeElement) && ["INPUT", "SELECT"].includes(document.activeElement.tagName);
    if (!document.getElementById("confirm").open && !typing) view.replaceChildren(...content.filter(Boolean));
  } catch (error) {
    if (error.status !== 401) view.replaceChildren(errorBox(error));
    return;
  }
  // Live: the page follows what the engine does.
  refreshTimer = setTimeout(route, 2000);
}

document.getElementById("sign-in-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  sessionStorage.setItem(KEY, document.getElementById("key").value.trim());
  document.getElementById("key").value = "";
  route();
});
document.getElementById("sign-out").addEventListener("click", () => {
  sessionStorage.removeItem(KEY);
  showSignIn();
});
window.addEventListener("hashchange", route);
route();
