// relayd dashboard: polls the admin API and follows /events. No dependencies; everything is drawn here.
"use strict";

const STATES = ["detected", "proof_generated", "submitted", "confirmed", "acknowledged", "timed_out", "failed", "skipped"];
const HISTORY = 120;
const backlogSeries = new Map();
const latencySeries = new Map();
let lastLatency = new Map();

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const c of children) e.append(c instanceof Node ? c : c === null || c === undefined ? "" : String(c));
  return e;
}

function fill(tbody, rows) {
  tbody.replaceChildren(...rows);
}

async function getJson(path) {
  const r = await fetch(path, { cache: "no-store" });
  if (!r.ok) throw new Error(path + ": " + r.status);
  return r.json();
}

// Prometheus text format: name{labels} value, one sample per line.
function parseMetrics(text) {
  const out = [];
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)$/);
    if (!m) continue;
    const labels = {};
    if (m[3]) for (const p of m[3].matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[p[1]] = p[2];
    out.push({ name: m[1], labels, value: Number(m[4]) });
  }
  return out;
}

function push(series, key, value) {
  if (!series.has(key)) series.set(key, []);
  const s = series.get(key);
  s.push(value);
  if (s.length > HISTORY) s.shift();
}

function draw(canvasId, series) {
  const c = document.getElementById(canvasId);
  const g = c.getContext("2d");
  g.clearRect(0, 0, c.width, c.height);
  let max = 1;
  for (const s of series.values()) for (const v of s) max = Math.max(max, v);
  const colours = ["#2b6cb0", "#c05621", "#2f855a", "#6b46c1", "#b83280"];
  let i = 0;
  g.font = "11px sans-serif";
  for (const [key, s] of series) {
    g.strokeStyle = g.fillStyle = colours[i % colours.length];
    g.beginPath();
    s.forEach((v, x) => {
      const px = (x / (HISTORY - 1)) * (c.width - 10) + 5;
      const py = c.height - 15 - (v / max) * (c.height - 30);
      if (x === 0) g.moveTo(px, py); else g.lineTo(px, py);
    });
    g.stroke();
    g.fillText(key + " " + (s.length ? s[s.length - 1].toFixed(s[s.length - 1] % 1 ? 2 : 0) : ""), 8, 12 + 12 * i);
    i++;
  }
  g.fillStyle = "#888";
  g.fillText("max " + max.toFixed(max % 1 ? 2 : 0), c.width - 70, 12);
}

async function refreshMetrics() {
  const text = await (await fetch("/metrics", { cache: "no-store" })).text();
  const samples = parseMetrics(text);
  const flow = new Map();
  const row = (k) => {
    if (!flow.has(k)) flow.set(k, { states: {}, backlog: 0, oldest: 0 });
    return flow.get(k);
  };
  const latSum = new Map(), latCount = new Map();
  for (const s of samples) {
    const k = s.labels.chain + "/" + s.labels.channel;
    if (s.name === "relayd_packets") row(k).states[s.labels.state] = s.value;
    else if (s.name === "relayd_backlog_packets") row(k).backlog = s.value;
    else if (s.name === "relayd_backlog_oldest_sequence") row(k).oldest = s.value;
    else if (s.name === "relayd_relay_latency_seconds_sum") latSum.set(k, s.value);
    else if (s.name === "relayd_relay_latency_seconds_count") latCount.set(k, s.value);
  }
  let acknowledged = 0;
  const rows = [];
  for (const [k, r] of [...flow].sort()) {
    const tr = el("tr", { "data-channel": k }, );
    tr.append(el("td", {}, k));
    for (const st of STATES) {
      const n = r.states[st] || 0;
      if (st === "acknowledged") acknowledged += n;
      tr.append(el("td", { class: n ? st : "", "data-state": st }, n));
    }
    tr.append(el("td", { class: "backlog" }, r.backlog), el("td", {}, r.oldest || "-"));
    rows.push(tr);
    push(backlogSeries, k, r.backlog);
  }
  fill(document.querySelector("#flow tbody"), rows);
  document.getElementById("total-acknowledged").textContent = acknowledged;
  for (const [k, sum] of latSum) {
    const count = latCount.get(k) || 0;
    const prev = lastLatency.get(k);
    let mean = 0;
    if (prev && count > prev.count) mean = (sum - prev.sum) / (count - prev.count);
    else if (!prev && count > 0) mean = sum / count;
    lastLatency.set(k, { sum, count });
    push(latencySeries, k, mean);
  }
  draw("backlog-chart", backlogSeries);
  draw("latency-chart", latencySeries);
}

async function refreshActors() {
  const { actors } = await getJson("/actors");
  document.getElementById("actor-count").textContent = "(" + actors.length + ")";
  const shown = actors.slice(0, 200);
  fill(document.querySelector("#actors tbody"), shown.map((a) => el("tr", { "data-actor-id": a.id },
    el("td", {}, (a.parent ? "\u00a0\u00a0".repeat(a.kind === "packet_builder" ? 1 : 2) : "") + a.id),
    el("td", {}, a.kind),
    el("td", { class: a.state }, a.state),
    el("td", {}, a.mailbox_depth ?? "-"),
    el("td", {}, a.messages_handled ?? "-"),
    el("td", {}, a.restarts),
    el("td", {}, a.last_error || ""))));
}

async function refreshChains() {
  const { chains } = await getJson("/chains");
  fill(document.querySelector("#chains tbody"), chains.map((c) => el("tr", { "data-chain": c.id },
    el("td", {}, c.id),
    el("td", { class: "height" }, c.height ?? "-"),
    el("td", {}, (c.rpc ? (c.rpc.healthy ? "ok " + c.rpc.latency_ms + " ms" : "down: " + c.rpc.error) : "…") +
      // Several endpoints: each with its state and score, the current one marked.
      ((c.rpc_endpoints || []).length > 1 ? " | " + c.rpc_endpoints.map((e) => (e.current ? "* " : "") + e.url +
        " " + e.state + " (" + e.score + ")").join(", ") : "")),
    el("td", { class: c.degraded ? "degraded" : "" }, (c.circuit_breaker ? c.circuit_breaker.state : "-") + (c.degraded ? " (degraded)" : "")),
    el("td", {}, (c.clients || []).map((k) => k.client_id + " @" + (k.latest_height || "?") +
      (k.expires_in_secs != null ? " expires in " + Math.round(k.expires_in_secs / 3600) + " h" : "")).join(", ")),
    el("td", {}, c.wallet ? (c.wallet.balance ?? "?") + " " + c.wallet.denom : "…"))));
}

async function refreshOperations() {
  const { operations } = await getJson("/operations");
  fill(document.querySelector("#operations tbody"), operations.slice(-20).reverse().map((o) => el("tr", { "data-operation": o.id },
    el("td", {}, o.id),
    el("td", {}, o.request.chain + "/" + o.request.port + "/" + o.request.channel),
    el("td", { class: o.status }, o.status),
    el("td", {}, o.counts.total), el("td", {}, o.counts.done),
    el("td", {}, o.counts.failed), el("td", {}, o.counts.pending))));
}

async function refreshHealth() {
  const [v, h] = await Promise.all([getJson("/version"), getJson("/health")]);
  document.getElementById("version").textContent = v.name + " " + v.version;
  const badge = document.getElementById("health");
  // Not ready names what is not followed: each chain with its reason, and the paths waiting for a node.
  const waiting = h.chains.filter((c) => !c.ready).map((c) => c.chain + " (" + c.reason + ")")
    .concat((h.pending_paths || []).map((p) => "path " + p + " (waiting for its node)"));
  badge.textContent = h.ready ? "ready" : "not ready: " + waiting.join(", ");
  badge.className = "badge " + (h.ready ? "ok" : "bad");
}

async function refresh() {
  const jobs = [refreshHealth(), refreshChains(), refreshMetrics(), refreshActors(), refreshOperations()];
  for (const r of await Promise.allSettled(jobs)) if (r.status === "rejected") console.warn(r.reason);
  document.body.dataset.loaded = "true";
}

function follow() {
  const list = document.getElementById("events");
  const live = document.getElementById("live");
  const source = new EventSource("/events");
  source.onopen = () => { live.textContent = "events: live"; live.className = "badge ok"; };
  source.onerror = () => { live.textContent = "events: reconnecting"; live.className = "badge bad"; };
  const show = (e) => {
    const data = JSON.parse(e.data);
    const text = e.type === "lifecycle" ? data.packet + " → " + data.state
      : e.type === "operation" ? data.id + " " + data.status
      : e.type === "actor_restarted" ? data.actor + " restarted (" + data.restarts + ")" : e.type;
    list.prepend(el("li", { "data-event": e.type }, new Date().toISOString().slice(11, 19) + " " + text));
    while (list.children.length > 100) list.lastChild.remove();
  };
  for (const t of ["lifecycle", "operation", "actor_restarted"]) source.addEventListener(t, show);
}

// The event stream opens once the first data is drawn; polling covers the moment in between. (Headless
// browsers taking snapshots also rely on this: an open stream keeps their virtual clock from advancing.)
refresh().then(() => setTimeout(follow, 2500));
setInterval(refresh, 2000);
