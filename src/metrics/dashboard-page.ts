/**
 * The dashboard's page (internal): one HTML document, with its script inline, that loads uPlot
 * from the dashboard itself (`uplot.js`, `uplot.css`: nothing from a CDN, so it works offline),
 * takes the history once and then one frame per interval over server-sent events, and draws
 * per boundary: depth against capacity, in flight against limit, and the rates of sent, blocked,
 * dropped and rejected. Every number shown is also in a `data-field` element, for tests and
 * screen readers. The page keeps at most `maxPoints` points per line.
 */

const esc = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);

/** The page, for a dashboard titled `title` keeping `maxPoints` points per line. */
export function dashboardPage(title: string, maxPoints: number): string {
  const config = JSON.stringify({ maxPoints }).replace(/</g, "\\u003c");
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>
<style>
  :root { --fg: #1d2330; --muted: #667085; --line: #e4e7ec; --bg: #f7f8fa; --card: #fff; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
  header { display: flex; align-items: baseline; gap: 16px; padding: 14px 20px; background: var(--card); border-bottom: 1px solid var(--line); }
  header h1 { font-size: 18px; margin: 0; }
  header .status { color: var(--muted); font-variant-numeric: tabular-nums; }
  header .live { display: inline-block; width: 9px; height: 9px; border-radius: 50%; background: #bbb; margin-right: 6px; }
  header .live.on { background: #12b76a; }
  main { display: grid; grid-template-columns: repeat(auto-fill, minmax(520px, 1fr)); gap: 14px; padding: 14px 20px; }
  .card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; }
  .card h2 { font-size: 15px; margin: 0 0 6px; display: flex; gap: 8px; align-items: baseline; }
  .card h2 .kind { color: var(--muted); font-weight: 500; font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
  .card h2 .state { font-size: 12px; padding: 1px 6px; border-radius: 4px; background: #fef0c7; }
  .figures { display: flex; flex-wrap: wrap; gap: 4px 16px; color: var(--muted); font-variant-numeric: tabular-nums; margin-bottom: 6px; }
  .figures b { color: var(--fg); font-weight: 600; }
  .bar { height: 6px; background: var(--line); border-radius: 3px; overflow: hidden; margin: 2px 0 8px; }
  .bar > div { height: 100%; background: #2e90fa; width: 0; }
  .bar.hot > div { background: #f04438; }
  .charts { display: grid; grid-template-columns: 1fr 1fr; gap: 8px; }
  .charts .title { font-size: 12px; color: var(--muted); }
  .empty { color: var(--muted); padding: 40px 20px; }
  .omitted { color: var(--muted); padding: 0 20px 20px; }
</style>
</head>
<body>
<header>
  <h1>${esc(title)}</h1>
  <span class="status"><span class="live" id="live"></span><span id="status">connecting…</span></span>
  <span class="status">frame <span id="seq" data-seq="0">0</span></span>
  <span class="status"><span id="count">0</span> boundaries</span>
</header>
<main id="boundaries"></main>
<p class="empty" id="empty">No boundary is observed yet: give a channel, pool or limiter a <code>name</code>, or call <code>observeAll()</code>.</p>
<p class="omitted" id="omitted" hidden></p>
<script>
"use strict";
const CONFIG = ${config};
const base = location.pathname.endsWith("/") ? location.pathname : location.pathname + "/";
const cards = new Map();
const fmt = (v) => v === null || v === undefined ? "–" : v === Infinity ? "∞" :
  Math.abs(v) >= 100 || Number.isInteger(v) ? Math.round(v).toLocaleString("en-US") : v.toFixed(1);
const ratio = (a, b) => a === null || b === null || !(b > 0) || b === Infinity ? null : Math.min(1, Math.max(0, a / b));

function loadUplot() {
  const css = document.createElement("link");
  css.rel = "stylesheet";
  css.href = base + "uplot.css";
  document.head.appendChild(css);
  return new Promise((resolve, reject) => {
    const s = document.createElement("script");
    s.src = base + "uplot.js";
    s.onload = () => resolve(window.uPlot);
    s.onerror = () => reject(new Error("uplot.js did not load"));
    document.head.appendChild(s);
  });
}

function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

const LEVEL = [["depth", "#2e90fa"], ["capacity", "#98a2b3"], ["inFlight", "#12b76a"], ["limit", "#667085"], ["waiting", "#f79009"]];
const RATES = [["sentRate", "sent/s", "#2e90fa"], ["blockedRate", "blocked/s", "#f79009"], ["droppedRate", "dropped/s", "#9e77ed"], ["rejectedRate", "rejected/s", "#f04438"]];

function makeCard(b, uPlot) {
  const card = el("section", { class: "card", "data-boundary": b.id, "data-kind": b.kind, "data-name": b.name });
  const h = el("h2");
  h.append(el("span", { class: "kind" }, b.kind), el("span", { class: "name" }, b.name));
  const state = el("span", { class: "state", "data-field": "state" });
  state.hidden = true;
  h.append(state);
  card.append(h);
  const figures = el("div", { class: "figures" });
  const fields = {};
  for (const [key, label] of [["depth", "depth"], ["capacity", "capacity"], ["inFlight", "in flight"], ["limit", "limit"], ["waiting", "waiting"],
                              ["sentRate", "sent/s"], ["blockedRate", "blocked/s"], ["droppedRate", "dropped/s"], ["rejectedRate", "rejected/s"],
                              ["sent", "sent"], ["rejected", "rejected"], ["dropped", "dropped"]]) {
    const span = el("span", { class: "figure", "data-figure": key });
    const value = el("b", { "data-field": key });
    span.append(label + " ", value);
    figures.append(span);
    fields[key] = { span, value };
  }
  card.append(figures);
  const bar = el("div", { class: "bar", title: "depth / capacity, or in flight / limit" });
  bar.append(el("div"));
  card.append(bar);
  const charts = el("div", { class: "charts" });
  const c1 = el("div"); c1.append(el("div", { class: "title" }, "depth, capacity, in flight, limit, waiting"));
  const c2 = el("div"); c2.append(el("div", { class: "title" }, "rates per second"));
  charts.append(c1, c2);
  card.append(charts);
  document.getElementById("boundaries").append(card);
  const width = Math.max(220, Math.floor((card.clientWidth - 36) / 2));
  const axes = [{ stroke: "#667085", grid: { stroke: "#f2f4f7" } }, { stroke: "#667085", grid: { stroke: "#f2f4f7" }, size: 50 }];
  // Only the lines this kind of boundary has (a channel has no limit, a semaphore no depth).
  const level = LEVEL.filter(([k]) => b[k] !== null && b[k] !== undefined);
  const rates = RATES.filter(([k]) => b[k.replace(/Rate$/, "")] !== null && b[k.replace(/Rate$/, "")] !== undefined);
  const levelData = [[], ...level.map(() => [])];
  const rateData = [[], ...rates.map(() => [])];
  const common = { width, height: 150, legend: { show: true, live: false }, axes, cursor: { show: false } };
  const p1 = new uPlot({ ...common,
    series: [{}, ...level.map(([k, c]) => ({ label: k, stroke: c, width: 1.5, points: { show: false } }))] }, levelData, c1);
  const p2 = new uPlot({ ...common,
    series: [{}, ...rates.map(([, l, c]) => ({ label: l, stroke: c, width: 1.5, points: { show: false } }))] }, rateData, c2);
  return { card, fields, state, bar, p1, p2, levelData, rateData, level, rates };
}

function push(arrays, values) {
  arrays.forEach((a, i) => {
    a.push(values[i]);
    if (a.length > CONFIG.maxPoints) a.shift();
  });
}

function apply(frame, uPlot, redraw) {
  const seen = new Set();
  for (const b of frame.boundaries) {
    seen.add(b.id);
    let c = cards.get(b.id);
    if (c === undefined) cards.set(b.id, (c = makeCard(b, uPlot)));
    const t = frame.t / 1000;
    push(c.levelData, [t, ...c.level.map(([k]) => b[k] === Infinity ? null : b[k])]);
    push(c.rateData, [t, ...c.rates.map(([k]) => b[k])]);
    if (!redraw) continue;
    for (const [key, f] of Object.entries(c.fields)) {
      const v = b[key];
      f.span.hidden = v === null || v === undefined;
      f.value.textContent = fmt(v);
      f.value.dataset.value = v === null || v === undefined ? "" : String(v);
    }
    c.state.hidden = b.state === null;
    c.state.textContent = b.state || "";
    c.state.dataset.value = b.state || "";
    const r = ratio(b.depth, b.capacity) ?? ratio(b.inFlight, b.limit);
    c.bar.hidden = r === null;
    c.bar.firstChild.style.width = ((r || 0) * 100).toFixed(1) + "%";
    c.bar.classList.toggle("hot", r !== null && r >= 0.9);
    c.p1.setData(c.levelData);
    c.p2.setData(c.rateData);
    c.card.dataset.seq = String(frame.seq);
  }
  if (!redraw) return;
  for (const [id, c] of cards) {
    if (!seen.has(id)) { c.card.remove(); cards.delete(id); }
  }
  const seq = document.getElementById("seq");
  seq.textContent = String(frame.seq);
  seq.dataset.seq = String(frame.seq);
  document.getElementById("count").textContent = String(frame.boundaries.length);
  document.getElementById("empty").hidden = frame.boundaries.length > 0;
  const om = document.getElementById("omitted");
  om.hidden = !(frame.omitted > 0);
  om.textContent = frame.omitted > 0 ? frame.omitted + " more boundaries not shown (maxBoundaries)" : "";
  document.getElementById("status").textContent = "live, " + new Date(frame.t).toLocaleTimeString();
}

loadUplot().then((uPlot) => {
  const source = new EventSource(base + "events");
  const live = document.getElementById("live");
  source.addEventListener("history", (ev) => {
    const { frames } = JSON.parse(ev.data);
    for (const c of cards.values()) c.card.remove();
    cards.clear();
    frames.forEach((f, i) => apply(f, uPlot, i === frames.length - 1));
  });
  source.addEventListener("frame", (ev) => apply(JSON.parse(ev.data), uPlot, true));
  source.onopen = () => live.classList.add("on");
  source.onerror = () => {
    live.classList.remove("on");
    document.getElementById("status").textContent = "disconnected (retrying)";
  };
}, (e) => { document.getElementById("status").textContent = String(e); });
</script>
</body>
</html>
`;
}
