// The page over one audit log: records from /api/records, then new ones
// from the event stream /api/events; filters and counts run here, over the
// records the server keeps (the newest 5000).
"use strict";
const records = [];            // outcome records, oldest first
const MAX = 5000;
const $ = (id) => document.getElementById(id);

// glob turns "agent-*" or "*.github.com" into a test; empty matches all.
function glob(pattern) {
  if (!pattern) return () => true;
  const re = new RegExp("^" + pattern.split("*").map((s) => s.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join(".*") + "$", "i");
  return (v) => re.test(v || "");
}

function filters() {
  const id = glob($("f-identity").value.trim()), host = glob($("f-host").value.trim());
  const reason = glob($("f-reason").value.trim()), decision = $("f-decision").value;
  return (r) => id(r.identity) && host(r.host) && reason(r.reason) && (!decision || r.decision === decision);
}

function cell(tr, text, cls) {
  const td = document.createElement("td");
  td.textContent = text == null ? "" : String(text);
  if (cls) td.className = cls;
  tr.appendChild(td);
}

function row(r, fresh) {
  const tr = document.createElement("tr");
  tr.className = r.decision + (fresh ? " fresh" : "");
  tr.dataset.seq = r.seq;
  cell(tr, (r.time || "").replace("T", " ").replace(/\.\d+Z$/, "Z"));
  cell(tr, r.identity); cell(tr, r.role); cell(tr, r.decision, "decision"); cell(tr, r.reason);
  cell(tr, r.method); cell(tr, r.host ? r.host + (r.port ? ":" + r.port : "") : ""); cell(tr, r.path, "path");
  // What the record says of credentials: the names of those injected and
  // how many secret values were redacted from the response. Records hold
  // names and counts only, never a value, and nothing else is shown here.
  cell(tr, (r.credentials || []).join(", "), "credentials");
  cell(tr, r.redactions || "", "redactions");
  cell(tr, r.status); cell(tr, r.duration_ms);
  return tr;
}

function counts(shown) {
  const hosts = new Map(), reasons = new Map();
  for (const r of shown) {
    const h = r.host || "(none)";
    const c = hosts.get(h) || { n: 0, refused: 0 };
    c.n++;
    if (r.decision === "deny") {
      c.refused++;
      reasons.set(r.reason, (reasons.get(r.reason) || 0) + 1);
    }
    hosts.set(h, c);
  }
  const fill = (table, entries, cols) => {
    const body = $(table).tBodies[0];
    body.replaceChildren();
    for (const e of entries.slice(0, 25)) {
      const tr = document.createElement("tr");
      for (const v of cols(e)) cell(tr, v);
      body.appendChild(tr);
    }
  };
  fill("by-host", [...hosts].sort((a, b) => b[1].n - a[1].n), ([h, c]) => [h, c.n, c.refused]);
  fill("by-reason", [...reasons].sort((a, b) => b[1] - a[1]), ([r, n]) => [r, n]);
}

function render() {
  const keep = filters();
  const shown = records.filter(keep);
  const body = $("records").tBodies[0];
  body.replaceChildren(...shown.slice(-500).reverse().map((r) => row(r, false)));
  $("shown").textContent = `${shown.length} of ${records.length} records`;
  counts(shown);
}

function add(r) {
  if (r.phase) return; // a write-ahead record: its outcome follows
  records.push(r);
  if (records.length > MAX) records.shift();
  if (filters()(r)) {
    const body = $("records").tBodies[0];
    body.insertBefore(row(r, true), body.firstChild);
    while (body.rows.length > 500) body.deleteRow(-1);
  }
  const keep = filters();
  const shown = records.filter(keep);
  $("shown").textContent = `${shown.length} of ${records.length} records`;
  counts(shown);
}

function chain(v) {
  const el = $("chain");
  el.className = "chain " + (v.ok ? "ok" : "broken");
  el.textContent = v.ok ? `chain ok · ${v.records} records${v.keyed ? " · keyed" : " · unkeyed"}` : "chain broken";
  el.title = v.detail;
}

async function start() {
  const resp = await fetch("api/records");
  const data = await resp.json();
  for (const r of data.records) if (!r.phase) records.push(r);
  chain(data.verify);
  render();
  const es = new EventSource("api/events");
  es.onopen = () => { $("live").textContent = "live"; };
  es.onerror = () => { $("live").textContent = "reconnecting…"; };
  es.onmessage = (e) => add(JSON.parse(e.data));
  es.addEventListener("verify", (e) => chain(JSON.parse(e.data)));
}

for (const id of ["f-identity", "f-host", "f-reason", "f-decision"]) $(id).addEventListener("input", render);
$("filters").addEventListener("submit", (e) => e.preventDefault());
start();
