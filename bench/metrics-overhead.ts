/**
 * What observing costs: W1 (sluice Channel, both orders) and W4 (sluice Semaphore and ErrGroup)
 * run plain, and again with every boundary registered (`SLUICE_OBSERVE=all`) and a Prometheus
 * exporter attached and scraped every 100 ms, in fresh processes, interleaved round by round
 * (plain then attached, then the other way round next round). Target: attached within 1.03× of
 * plain (issue 16).
 *
 * Two roles in one file:
 *  - imported by `bench/run.ts`: `measureMetricsOverhead()` runs the pairs and returns rows;
 *  - preloaded into a worker (`--import bench/metrics-overhead.ts` with
 *    `SLUICE_BENCH_METRICS=attach`): attaches the exporter and its scrape timer, and makes the
 *    process fail at exit if five or more scrapes never saw a boundary (so the attached rows are real).
 */
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { Measurement } from "./workloads.js";
import { OVERHEAD_JS, WORKER_JS } from "./compiled.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const SCRAPE_MS = 100;
const CHILD_TIMEOUT_MS = 180_000;

/**
 * The cells measured: workload, sluice implementation, order, and how many times the
 * workload's operations each pass runs: about a second of work, so that the exporter scrapes
 * about ten times during it (W4's own 200k tasks last ~15 ms, less than one scrape period).
 */
export const OVERHEAD_CELLS: readonly { workload: string; impl: string; order: "cf" | "pf" | ""; label: string; scale: number }[] = [
  { workload: "W1", impl: "sluice", order: "cf", label: "W1 Channel await loop, consumer first (10M)", scale: 10 },
  { workload: "W1", impl: "sluice", order: "pf", label: "W1 Channel await loop, producer first (10M)", scale: 10 },
  { workload: "W4", impl: "sluice-semaphore", order: "", label: "W4 Semaphore await acquire loop (8M tasks)", scale: 40 },
  { workload: "W4", impl: "sluice-errgroup", order: "", label: "W4 ErrGroup await go loop (8M tasks)", scale: 40 },
];

/** One cell's result. */
export interface OverheadRow {
  readonly label: string;
  readonly workload: string;
  /** Median ns/op, plain and attached. */
  readonly plainNs: number;
  readonly attachedNs: number;
  /** Median over the rounds of attached / plain wall time measured in the same round. */
  readonly ratio: number;
  /** The same on CPU time. */
  readonly cpuRatio: number;
  /** Median over the attached processes of the mean time one scrape took (ms), and of the scrapes' share of the process's wall time. */
  readonly scrapeMs: number;
  readonly scrapeShare: number;
}

function median(xs: readonly number[]): number {
  const s = [...xs].filter(Number.isFinite).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function measure(workload: string, impl: string, order: string, attached: boolean, scale: number): Measurement {
  const args = ["--expose-gc", ...(attached ? ["--import", OVERHEAD_JS] : []), WORKER_JS, workload, impl, ...(order === "" ? [] : [order])];
  const env: NodeJS.ProcessEnv = { ...process.env, SLUICE_TRACE: "0", SLUICE_BENCH_OPS_SCALE: String(scale), SLUICE_BENCH_PASSES: "1" };
  if (attached) {
    env.SLUICE_OBSERVE = "all";
    env.SLUICE_BENCH_METRICS = "attach";
  } else {
    delete env.SLUICE_OBSERVE;
    delete env.SLUICE_BENCH_METRICS;
  }
  const child = spawnSync(process.execPath, args, { cwd: ROOT, encoding: "utf8", timeout: CHILD_TIMEOUT_MS, maxBuffer: 16 << 20, env });
  const line = child.stdout.trim().split("\n").pop() ?? "";
  if (child.status !== 0 || !line.startsWith("{")) {
    throw new Error(`bench: metrics overhead: ${workload} ${impl} ${order} ${attached ? "attached" : "plain"} failed (exit ${String(child.status)}): ${child.stderr}`);
  }
  const m = JSON.parse(line) as Measurement;
  const scrapes = /^SLUICE_SCRAPES (\{.*\})$/m.exec(child.stderr)?.[1];
  return scrapes === undefined ? m : { ...m, extra: { ...m.extra, ...(JSON.parse(scrapes) as Record<string, number>) } };
}

const perOp = (m: Measurement): number => m.ns / m.ops;
const cpuPerOp = (m: Measurement): number => m.cpuNs / m.ops;

/**
 * Measures the cells of the selected workloads (`W1`, `W4`), `rounds` rounds, and reports each
 * round on `log`.
 */
export function measureMetricsOverhead(rounds: number, workloads: readonly string[], log: (line: string) => void): OverheadRow[] {
  const cells = OVERHEAD_CELLS.filter((c) => workloads.includes(c.workload));
  const data = cells.map(() => ({ plain: [] as Measurement[], attached: [] as Measurement[] }));
  for (let round = 0; round < rounds; round++) {
    const parts: string[] = [];
    cells.forEach((c, i) => {
      const order = round % 2 === 0 ? [false, true] : [true, false];
      for (const attached of order) {
        const m = measure(c.workload, c.impl, c.order, attached, c.scale);
        data[i]![attached ? "attached" : "plain"].push(m);
      }
      const p = data[i]!.plain.at(-1)!;
      const a = data[i]!.attached.at(-1)!;
      parts.push(`${c.impl}${c.order === "" ? "" : `/${c.order}`} ${(perOp(a) / perOp(p)).toFixed(3)}×`);
    });
    log(`  round ${round + 1}/${rounds} metrics overhead (attached / plain): ${parts.join(", ")}`);
  }
  return cells.map((c, i) => {
    const { plain, attached } = data[i]!;
    const n = Math.min(plain.length, attached.length);
    const ratios: number[] = [];
    const cpu: number[] = [];
    for (let k = 0; k < n; k++) {
      ratios.push(perOp(attached[k]!) / perOp(plain[k]!));
      cpu.push(cpuPerOp(attached[k]!) / cpuPerOp(plain[k]!));
    }
    return {
      label: c.label,
      workload: c.workload,
      plainNs: median(plain.map(perOp)),
      attachedNs: median(attached.map(perOp)),
      ratio: median(ratios),
      cpuRatio: median(cpu),
      scrapeMs: median(attached.map((m) => (m.extra.scrapeMs ?? NaN) / (m.extra.scrapes ?? NaN))),
      scrapeShare: median(attached.map((m) => (m.extra.scrapeMs ?? NaN) / (m.extra.lifeMs ?? NaN))),
    };
  });
}

/** The Markdown section of the rows. */
export function overheadTable(rows: readonly OverheadRow[], rounds: number): string {
  const f = (x: number, d = 1): string => (Number.isFinite(x) ? x.toLocaleString("en", { minimumFractionDigits: d, maximumFractionDigits: d }) : "–");
  return [
    "### Metrics overhead: every boundary registered and a Prometheus exporter scraped every 100 ms, against plain",
    "",
    "| workload | plain ns/op | attached ns/op | attached / plain | CPU attached / plain | one scrape, ms | scrapes' share of the process's time |",
    "|---|---:|---:|---:|---:|---:|---:|",
    ...rows.map((r) => `| ${r.label} | ${f(r.plainNs)} | ${f(r.attachedNs)} | **${f(r.ratio, 3)}×** | ${f(r.cpuRatio, 3)}× | ${f(r.scrapeMs, 3)} | ${f(r.scrapeShare * 100, 2)}% |`),
    "",
    `_${rounds} pairs of fresh processes per row (plain and attached alternate which goes first); ratios are medians of the ratios within each pair. The last two columns are timed inside the attached processes: what the exporter itself costs, against which the pairs' spread can be judged._`,
  ].join("\n");
}

// Preloaded into a worker: attach the exporter.
if (process.env.SLUICE_BENCH_METRICS === "attach") {
  const { Registry } = await import("prom-client");
  const { registerPrometheus } = await import("../src/metrics/index.js");
  const registry = new Registry();
  registerPrometheus(registry);
  let scrapes = 0;
  let seen = 0;
  let scrapeMs = 0;
  const born = performance.now();
  const timer = setInterval(() => {
    const t0 = performance.now();
    void registry.metrics().then((text) => {
      scrapeMs += performance.now() - t0;
      scrapes++;
      if (/^sluice_(channel_capacity|semaphore_size|errgroup_limit)\{/m.test(text)) seen++;
    });
  }, SCRAPE_MS);
  timer.unref();
  process.on("exit", (code) => {
    process.stderr.write(`SLUICE_SCRAPES ${JSON.stringify({ scrapes, scrapeMs, lifeMs: performance.now() - born })}\n`);
    // A pass on a quiet machine can end within a scrape or two, before or between the
    // workload's short-lived boundaries: the check needs a run long enough to be decisive.
    if (code === 0 && scrapes >= 5 && seen === 0) {
      process.stderr.write(`metrics overhead: the exporter saw no boundary in ${scrapes} scrapes\n`);
      process.exitCode = 1;
    }
  });
}
