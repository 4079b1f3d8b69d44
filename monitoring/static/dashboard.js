// persona monitor dashboard: polls /dashboard/api/state once a second. No framework, no build step.
"use strict";
const key = new URLSearchParams(location.hash.slice(1)).get("key");
let selected = null; // request id, null = the latest
let state = null;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v; else if (k === "style") node.style.cssText = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v); else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}
const fmt = (x) => (x === null || x === undefined ? "-" : (x >= 0 ? "+" : "") + x.toFixed(3));

function latestValue(req, trait) {
  const r = req.readings && req.readings[trait];
  if (r && r.running_mean !== null && r.running_mean !== undefined) return r.running_mean;
  const vals = req.tokens.map((t) => t.projections[trait]).filter((v) => v !== null && v !== undefined);
  if (vals.length > 1) return vals.slice(1).reduce((a, b) => a + b, 0) / (vals.length - 1);
  return vals.length ? vals[0] : null;
}

function rangeFor(trait) {
  // the meter spans what was seen and the thresholds (projections are often all negative)
  const vals = [];
  for (const req of state.requests) for (const t of req.tokens) {
    const v = t.projections[trait]; if (v !== null && v !== undefined) vals.push(v);
  }
  const info = state.traits[trait];
  for (const th of [info.response_threshold, info.prompt_threshold]) if (th !== null) vals.push(th);
  if (!vals.length) return { lo: -1, hi: 1 };
  let lo = Math.min(...vals), hi = Math.max(...vals);
  const pad = Math.max(1e-6, 0.1 * (hi - lo), 0.05 * Math.max(Math.abs(lo), Math.abs(hi)));
  return { lo: lo - pad, hi: hi + pad };
}

function scaleFor(trait) {
  const { lo, hi } = rangeFor(trait);
  return (hi - lo) / 2;
}

function colour(v, threshold, scale) {
  if (v === null || v === undefined) return "transparent";
  const t = threshold === null ? 0 : threshold;
  const x = Math.max(-1, Math.min(1, (v - t) / scale));
  return x >= 0 ? `rgba(220,38,38,${0.15 + 0.7 * x})` : `rgba(59,130,246,${0.15 + 0.6 * -x})`;
}

function renderMeters(req) {
  const box = document.getElementById("meters");
  box.replaceChildren();
  for (const [trait, info] of Object.entries(state.traits)) {
    const value = latestValue(req, trait);
    const threshold = info.response_threshold;
    const { lo, hi } = rangeFor(trait);
    const pos = (x) => `${Math.max(0, Math.min(100, (100 * (x - lo)) / (hi - lo)))}%`;
    const over = value !== null && threshold !== null && value > threshold;
    const bar = el("div", { class: "bar" },
      el("div", { class: "fill" + (over ? " over" : ""), style: `width:${value === null ? 0 : pos(value)}` }));
    if (threshold !== null) bar.append(el("div", { class: "tick", title: "threshold", style: `left:${pos(threshold)}` }));
    const r = req.readings && req.readings[trait];
    const early = r ? r.prompt_last : (req.tokens[0] ? req.tokens[0].projections[trait] : null);
    box.append(el("div", { class: "meter", id: `meter-${trait}`, "data-value": value === null ? "" : value, "data-over": over },
      el("div", { class: "meter-label" },
        el("span", {}, el("b", {}, trait), ` (${info.guard}, layer ${info.layer})`),
        el("span", {}, `mean ${fmt(value)} / threshold ${fmt(threshold)} · early warning ${fmt(early)}`)),
      bar));
  }
}

function renderAnswer(req) {
  const box = document.getElementById("answer");
  box.classList.remove("muted");
  box.replaceChildren();
  const trait = Object.keys(state.traits)[0];
  const threshold = state.traits[trait].response_threshold;
  const scale = scaleFor(trait);
  for (const t of req.tokens) {
    const v = t.projections[trait];
    box.append(el("span", { class: "tok", title: Object.entries(t.projections).map(([k, x]) => `${k} ${fmt(x)}`).join("  "),
      style: `background:${colour(v, threshold, scale)}` }, t.text));
  }
  if (!req.tokens.length) box.append(el("span", { class: "muted" }, "(waiting for the first token)"));
  box.append(el("div", { class: "muted" }, `colour: ${trait} projection vs its threshold; ` +
    (req.finish_reason ? `finish: ${req.finish_reason}, ${req.seconds.toFixed(2)} s` : "generating...")));
}

function renderTurns(req) {
  const box = document.getElementById("turns");
  box.replaceChildren();
  const conv = state.requests.filter((r) => r.conversation_id === req.conversation_id);
  for (const [trait, info] of Object.entries(state.traits)) {
    const r = req.readings && req.readings[trait];
    const means = [...((r && r.turns) || []), latestValue(req, trait)].filter((x) => x !== null);
    const scale = scaleFor(trait);
    const row = el("div", { class: "turns", title: `${trait}: earlier assistant turns, then this answer` });
    for (const m of means) {
      const over = info.response_threshold !== null && m > info.response_threshold;
      row.append(el("div", { class: "turn" + (over ? " over" : ""), title: fmt(m),
        style: `height:${4 + 40 * Math.min(1, Math.abs(m) / scale)}px` }));
    }
    box.append(el("div", {}, el("span", { class: "muted" }, `${trait}: ${means.length} turn(s), ${conv.length} request(s) in this conversation`), row));
  }
}

function renderConversations() {
  const box = document.getElementById("conversations");
  box.replaceChildren();
  const groups = new Map();
  for (const req of state.requests) {
    if (!groups.has(req.conversation_id)) groups.set(req.conversation_id, []);
    groups.get(req.conversation_id).push(req);
  }
  for (const [conv, reqs] of [...groups.entries()].reverse()) {
    const div = el("div", { class: "conv" }, el("div", { class: "conv-title" }, conv));
    for (const req of reqs.slice().reverse()) {
      div.append(el("div", { class: "req" + (req.id === currentId() ? " selected" : ""), onclick: () => { selected = req.id; render(); } },
        el("span", {}, new Date(req.created * 1000).toLocaleTimeString() + " " + req.id.slice(-6)),
        el("span", { class: "flag" }, req.alerts.length ? `${req.alerts.length} alert${req.alerts.length > 1 ? "s" : ""}` : "")));
    }
    box.append(div);
  }
  if (!groups.size) box.append(el("p", { class: "muted" }, "no requests yet"));
}

function renderAlerts() {
  const list = document.getElementById("alerts");
  list.replaceChildren();
  const alerts = state.requests.flatMap((r) => r.alerts).sort((a, b) => b.time - a.time);
  for (const a of alerts) {
    list.append(el("li", { class: "alert", "data-trait": a.trait },
      el("b", {}, `${a.trait} ${a.kind}`), ` ${fmt(a.value)} > ${fmt(a.threshold)} at token ${a.position} · ${a.guard}`,
      el("div", { class: "muted" }, `${new Date(a.time * 1000).toLocaleTimeString()} · ${a.request_id.slice(-6)}` +
        (a.text ? ` · "${a.text.slice(-80)}"` : ""))));
  }
  if (!alerts.length) list.append(el("li", { class: "muted" }, "no alerts"));
}

const ROLLING = 50; // requests in the rolling alert rate

function pct(x) { return x === null || x === undefined ? "–" : `${(100 * x).toFixed(1)}%`; }

function rollingAlertRate(trait) {
  const done = state.requests.filter((r) => r.finish_reason !== null).slice(-ROLLING);
  if (!done.length) return null;
  return done.filter((r) => r.alerts.some((a) => a.trait === trait)).length / done.length;
}

function renderTraits() {
  const table = document.getElementById("traits");
  const heads = ["trait", "layer", "guard", "early warning >", "mean >", "cap", "expected alerts", `alerts, last ${ROLLING}`, "source"];
  table.replaceChildren(el("tr", {}, ...heads.map((h) => el("th", {}, h))));
  for (const [trait, i] of Object.entries(state.traits)) {
    const cells = [trait, i.layer, i.guard, fmt(i.prompt_threshold), fmt(i.response_threshold), fmt(i.cap),
      pct(i.expected_false_alert_rate), pct(rollingAlertRate(trait)), i.threshold_source];
    table.append(el("tr", {}, ...cells.map((x) => el("td", {}, x))));
  }
}

function currentId() {
  if (!state.requests.length) return null;
  if (selected && state.requests.some((r) => r.id === selected)) return selected;
  return state.requests[state.requests.length - 1].id;
}

function render() {
  document.getElementById("model").textContent = `${state.model} · ${state.requests.length} request(s)`;
  renderConversations(); renderAlerts(); renderTraits();
  const id = currentId();
  const req = state.requests.find((r) => r.id === id);
  if (req) { document.getElementById("req-id").textContent = id; renderMeters(req); renderAnswer(req); renderTurns(req); }
}

async function poll() {
  try {
    const res = await fetch("/dashboard/api/state", { headers: key ? { Authorization: `Bearer ${key}` } : {} });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    state = await res.json();
    document.getElementById("status").textContent = "live";
    render();
  } catch (e) {
    document.getElementById("status").textContent = `offline (${e.message})`;
  }
  setTimeout(poll, 1000);
}
poll();
