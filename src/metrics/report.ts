/**
 * The HTML report: a run (a demo, a benchmark) as one self-contained file, its charts drawn as
 * inline SVG (no script, no network, no external file), readable by someone who never ran it.
 *
 * Invariants:
 *  - The output depends only on the input: every text is escaped, every number formatted here.
 *  - Bounded: a line keeps at most `MAX_POINTS` points (evenly thinned beyond that, first and
 *    last kept), a bar chart at most `MAX_BARS` bars; the drawn values are also written as data
 *    attributes (`data-points`, `data-value`) so a reader or a test can take them back exactly.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";

/** One line of a line chart: `[x, y]` points (x: seconds since the start, usually), in order. */
export interface ReportSeries {
  readonly label: string;
  readonly points: readonly (readonly [number, number])[];
}

/** A line chart. */
export interface ReportLineChart {
  readonly type?: "line";
  readonly title: string;
  /** The y axis' unit, e.g. "MB", "messages". */
  readonly unit: string;
  /** The x axis' unit (default "s"). */
  readonly xUnit?: string;
  readonly series: readonly ReportSeries[];
}

/** One bar of a bar chart; bars with the same `group` are drawn together under its label. */
export interface ReportBar {
  readonly label: string;
  readonly value: number;
  readonly group?: string;
  /** Drawn in the accent colour (e.g. sluice among its peers). */
  readonly highlight?: boolean;
}

/** A horizontal bar chart (e.g. ns/op per implementation). */
export interface ReportBarChart {
  readonly type: "bars";
  readonly title: string;
  readonly unit: string;
  readonly bars: readonly ReportBar[];
  /** A note under the chart (e.g. "lower is better"). */
  readonly note?: string;
}

export type ReportChart = ReportLineChart | ReportBarChart;

/** One run in a report. */
export interface ReportSection {
  readonly title: string;
  /** A paragraph explaining what was run. */
  readonly description?: string;
  /** The run's verdict in words, and whether its checks held. */
  readonly verdict?: string;
  readonly ok?: boolean;
  /** Final figures, shown as a table. */
  readonly figures?: Readonly<Record<string, number | string | boolean>>;
  readonly charts: readonly ReportChart[];
}

/** A whole report. */
export interface Report {
  readonly title: string;
  /** A line under the title (e.g. the command that produced it). */
  readonly subtitle?: string;
  /** When it was produced (default: now). */
  readonly generatedAt?: Date;
  readonly sections: readonly ReportSection[];
}

export const MAX_POINTS = 2000;
export const MAX_BARS = 200;
/** Characters of a bar's label drawn (the whole label is its tooltip and its `data-bar`). */
const MAX_LABEL = 36;
const COLORS = ["#d92d20", "#1570ef", "#039855", "#f79009", "#7a5af8", "#475467", "#dd2590", "#0e9384"];

const esc = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);

function fmt(v: number): string {
  if (!Number.isFinite(v)) return v > 0 ? "∞" : v < 0 ? "-∞" : "–";
  const a = Math.abs(v);
  if (a >= 1000) return Math.round(v).toLocaleString("en-US");
  if (a >= 100 || Number.isInteger(v)) return String(Math.round(v * 10) / 10);
  if (a >= 1) return v.toFixed(2).replace(/\.?0+$/, "");
  return v.toPrecision(3).replace(/\.?0+$/, "");
}

/** Nice tick values covering [lo, hi]. */
function ticks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Math.round(v / step) * step);
  return out;
}

function thin(points: readonly (readonly [number, number])[]): (readonly [number, number])[] {
  const finite = points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  if (finite.length <= MAX_POINTS) return finite;
  const out: (readonly [number, number])[] = [];
  for (let i = 0; i < MAX_POINTS; i++) out.push(finite[Math.round((i * (finite.length - 1)) / (MAX_POINTS - 1))]!);
  return out;
}

function lineChart(chart: ReportLineChart): string {
  const W = 760;
  const H = 300;
  const L = 64;
  const R = 16;
  const T = 16;
  const B = 44;
  const series = chart.series.map((s) => ({ label: s.label, points: thin(s.points) }));
  const all = series.flatMap((s) => s.points);
  const xs = all.map(([x]) => x);
  const ys = all.map(([, y]) => y);
  const x0 = xs.length > 0 ? Math.min(...xs) : 0;
  const x1 = xs.length > 0 ? Math.max(...xs) : 1;
  const y0 = Math.min(0, ...ys);
  const y1Raw = ys.length > 0 ? Math.max(...ys) : 1;
  const yt = ticks(y0, y1Raw > y0 ? y1Raw : y0 + 1);
  const y1 = Math.max(y1Raw, yt.at(-1)!);
  const sx = (x: number): number => L + ((x - x0) / (x1 > x0 ? x1 - x0 : 1)) * (W - L - R);
  const sy = (y: number): number => T + (1 - (y - y0) / (y1 > y0 ? y1 - y0 : 1)) * (H - T - B);
  const parts: string[] = [];
  for (const v of yt) {
    parts.push(`<line x1="${L}" x2="${W - R}" y1="${sy(v).toFixed(1)}" y2="${sy(v).toFixed(1)}" class="grid"/>`);
    parts.push(`<text x="${L - 6}" y="${(sy(v) + 4).toFixed(1)}" text-anchor="end">${esc(fmt(v))}</text>`);
  }
  for (const v of ticks(x0, x1 > x0 ? x1 : x0 + 1, 8)) {
    parts.push(`<text x="${sx(v).toFixed(1)}" y="${H - B + 18}" text-anchor="middle">${esc(fmt(v))}</text>`);
  }
  parts.push(`<text x="${(L + W - R) / 2}" y="${H - 6}" text-anchor="middle" class="axis">${esc(chart.xUnit ?? "s")}</text>`);
  parts.push(`<text x="14" y="${(T + H - B) / 2}" text-anchor="middle" class="axis" transform="rotate(-90 14 ${(T + H - B) / 2})">${esc(chart.unit)}</text>`);
  parts.push(`<line x1="${L}" x2="${L}" y1="${T}" y2="${H - B}" class="axisline"/><line x1="${L}" x2="${W - R}" y1="${H - B}" y2="${H - B}" class="axisline"/>`);
  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length]!;
    const d = s.points.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(" ");
    const data = s.points.map(([x, y]) => `${x},${y}`).join(";");
    parts.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${d}" data-series="${esc(s.label)}" data-points="${esc(data)}"><title>${esc(s.label)}</title></polyline>`);
  });
  const legend = series
    .map((s, i) => `<span class="key"><i style="background:${COLORS[i % COLORS.length]}"></i>${esc(s.label)}</span>`)
    .join("");
  return `<figure class="chart" data-chart="${esc(chart.title)}" data-type="line">
<figcaption>${esc(chart.title)}</figcaption>
<svg viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(chart.title)}">${parts.join("")}</svg>
<div class="legend">${legend}</div>
</figure>`;
}

function barChart(chart: ReportBarChart): string {
  const bars = chart.bars.filter((b) => Number.isFinite(b.value)).slice(0, MAX_BARS);
  const W = 760;
  const L = 230;
  const R = 90;
  const ROW = 20;
  const GAP = 10;
  const max = Math.max(0, ...bars.map((b) => b.value)) || 1;
  const parts: string[] = [];
  let y = 6;
  let group: string | undefined;
  for (const b of bars) {
    if (b.group !== undefined && b.group !== group) {
      group = b.group;
      y += y > 6 ? GAP : 0;
      parts.push(`<text x="4" y="${y + 13}" class="group">${esc(b.group)}</text>`);
      y += ROW;
    }
    const w = (b.value / max) * (W - L - R);
    const shown = b.label.length > MAX_LABEL ? `${b.label.slice(0, MAX_LABEL - 1)}…` : b.label;
    parts.push(`<text x="${L - 8}" y="${y + 14}" text-anchor="end">${esc(shown)}<title>${esc(b.label)}</title></text>`);
    parts.push(`<rect x="${L}" y="${y + 2}" width="${Math.max(1, w).toFixed(1)}" height="${ROW - 5}" rx="2" fill="${b.highlight === true ? COLORS[0] : "#98a2b3"}" data-bar="${esc(b.label)}" data-group="${esc(b.group ?? "")}" data-value="${b.value}"><title>${esc(b.label)}: ${esc(fmt(b.value))} ${esc(chart.unit)}</title></rect>`);
    parts.push(`<text x="${(L + w + 6).toFixed(1)}" y="${y + 14}">${esc(fmt(b.value))}</text>`);
    y += ROW;
  }
  const H = y + 8;
  return `<figure class="chart" data-chart="${esc(chart.title)}" data-type="bars">
<figcaption>${esc(chart.title)} <span class="unit">(${esc(chart.unit)})</span></figcaption>
<svg viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(chart.title)}">${parts.join("")}</svg>
${chart.note === undefined ? "" : `<p class="note">${esc(chart.note)}</p>`}
</figure>`;
}

function section(s: ReportSection): string {
  const figures = Object.entries(s.figures ?? {});
  const table = figures.length === 0 ? "" : `<table class="figures"><tbody>${figures
    .map(([k, v]) => `<tr><th>${esc(k)}</th><td data-figure="${esc(k)}" data-value="${esc(String(v))}">${esc(typeof v === "number" ? fmt(v) : String(v))}</td></tr>`)
    .join("")}</tbody></table>`;
  const verdict = s.verdict === undefined ? "" :
    `<p class="verdict ${s.ok === false ? "bad" : "good"}" data-ok="${String(s.ok ?? "")}">${esc(s.verdict)}</p>`;
  return `<section class="run">
<h2>${esc(s.title)}</h2>
${s.description === undefined ? "" : `<p class="description">${esc(s.description)}</p>`}
${verdict}
${s.charts.map((c) => (c.type === "bars" ? barChart(c) : lineChart(c))).join("\n")}
${table}
</section>`;
}

/**
 * The report as one HTML document: no script, no external resource, charts as inline SVG.
 *
 * @example
 * writeFileSync("report.html", renderReport({ title: "OOM demo", sections: [{ title: "bug vs fix", charts }] }));
 */
export function renderReport(report: Report): string {
  if (report === null || typeof report !== "object" || !Array.isArray(report.sections)) {
    throw new TypeError("report must be an object with a sections array");
  }
  const at = (report.generatedAt ?? new Date()).toISOString();
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(report.title)}</title>
<style>
  body { margin: 0 auto; max-width: 860px; padding: 24px; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d2330; }
  h1 { font-size: 24px; margin: 0 0 4px; } h2 { font-size: 19px; margin: 32px 0 8px; border-top: 1px solid #e4e7ec; padding-top: 20px; }
  .subtitle, .generated, .note, .description { color: #475467; }
  .verdict { padding: 10px 14px; border-radius: 6px; } .verdict.good { background: #ecfdf3; } .verdict.bad { background: #fef3f2; }
  figure { margin: 18px 0; } figcaption { font-weight: 600; margin-bottom: 4px; } .unit { font-weight: 400; color: #475467; }
  svg { max-width: 100%; height: auto; font-size: 12px; fill: #344054; }
  svg .grid { stroke: #f2f4f7; } svg .axisline { stroke: #98a2b3; } svg .axis { fill: #475467; } svg .group { font-weight: 600; }
  .legend { display: flex; flex-wrap: wrap; gap: 4px 16px; font-size: 13px; } .key i { display: inline-block; width: 14px; height: 3px; vertical-align: middle; margin-right: 6px; }
  table.figures { border-collapse: collapse; font-variant-numeric: tabular-nums; } .figures th { text-align: left; font-weight: 500; padding: 3px 16px 3px 0; color: #475467; } .figures td { padding: 3px 0; }
</style>
</head>
<body>
<h1>${esc(report.title)}</h1>
${report.subtitle === undefined ? "" : `<p class="subtitle">${esc(report.subtitle)}</p>`}
<p class="generated">generated <time datetime="${at}">${at}</time> by sluice</p>
${report.sections.map(section).join("\n")}
</body>
</html>
`;
}

/** Writes `renderReport(report)` to `file` (creating its folder), and returns the absolute path. */
export function writeReport(file: string, report: Report): string {
  if (typeof file !== "string" || file === "") throw new TypeError("file must be a non-empty string");
  const abs = path.resolve(file);
  mkdirSync(path.dirname(abs), { recursive: true });
  writeFileSync(abs, renderReport(report));
  return abs;
}
