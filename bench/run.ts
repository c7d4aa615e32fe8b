/**
 * `npm run bench`: sluice against hand-written floors and the npm peers.
 *
 * Every measurement runs in a fresh child process (`bench/worker.ts`), one at a time. Rounds
 * are interleaved: round 1 measures every implementation of every selected workload once (in
 * each of its orders), then round 2 again, and so on (the order within a workload rotates each
 * round). The tables show medians over the rounds; a ratio is the median over the rounds of
 * the ratio measured within each round (neighbours in time, so a load spike on a shared
 * machine moves both sides of it).
 *
 * Usage: npm run bench -- [--quick] [--rounds N] [--only W1,W4] [--write] [--help]
 * Environment: BENCH_ROUNDS, BENCH_ONLY (as the flags).
 */
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import os from "node:os";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { W5_HEAP_CAP_BYTES, WORKLOADS, type Measurement, type Order, type WorkloadSpec } from "./workloads.js";
import { measureMetricsOverhead, overheadTable, type OverheadRow } from "./metrics-overhead.js";
import { writeBenchReport, type BenchWorkload } from "./report.js";
import { compileBench, WORKER_JS } from "./compiled.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const RESULTS = fileURLToPath(new URL("./RESULTS.md", import.meta.url));
const HTML_REPORT = fileURLToPath(new URL("./report.html", import.meta.url));
const CHILD_TIMEOUT_MS = 180_000;
const MB = 1024 * 1024;
const ORDER_NAME: Readonly<Record<Order, string>> = { cf: "consumer first", pf: "producer first" };

const USAGE = `usage: npm run bench -- [options]

  --quick       2 rounds (W5: 1), for a first look
  --rounds N    N rounds (default 5; W5 runs min(N, 3) rounds: it is a 3 s memory test)
  --only IDS    comma-separated workload ids; "W1" also selects "W1-fast", "W4" "W4-pool"
  --write       also write the report to bench/RESULTS.md
  --report FILE the HTML report (bar charts; default bench/report.html, written on every run)
  --no-metrics  skip the metrics-overhead pairs (W1 and W4 with a Prometheus exporter attached)
  -h, --help    this text

workloads: ${WORKLOADS.map((w) => w.id).join(", ")}
environment: BENCH_ROUNDS, BENCH_ONLY (as the flags)
`;

interface Args {
  rounds: number;
  overloadRounds: number;
  only: string[] | undefined;
  write: boolean;
  quick: boolean;
  report: string;
  metrics: boolean;
}

function readArgs(argv: string[]): Args {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: "boolean", default: false },
      rounds: { type: "string" },
      only: { type: "string" },
      write: { type: "boolean", default: false },
      report: { type: "string", default: HTML_REPORT },
      "no-metrics": { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const roundsText = values.rounds ?? process.env.BENCH_ROUNDS;
  const rounds = roundsText === undefined ? (values.quick ? 2 : 5) : Number(roundsText);
  if (!Number.isSafeInteger(rounds) || rounds < 1) throw new RangeError(`bench: --rounds must be a positive integer, got ${JSON.stringify(roundsText)}`);
  const only = (values.only ?? process.env.BENCH_ONLY)?.split(",").map((s) => s.trim()).filter((s) => s !== "");
  return {
    rounds, overloadRounds: values.quick ? 1 : Math.min(rounds, 3), only, write: values.write, quick: values.quick,
    report: values.report, metrics: !values["no-metrics"],
  };
}

function selected(w: WorkloadSpec, only: string[] | undefined): boolean {
  if (only === undefined || only.length === 0) return true;
  return only.some((o) => w.id.toLowerCase() === o.toLowerCase() || w.id.toLowerCase().startsWith(`${o.toLowerCase()}-`));
}

/** Runs one measurement in a fresh process; exits the whole run loudly if it fails. */
function measure(workloadId: string, impl: string, order: Order | ""): Measurement {
  const child = spawnSync(process.execPath, ["--expose-gc", WORKER_JS, workloadId, impl, ...(order === "" ? [] : [order])], {
    cwd: ROOT,
    encoding: "utf8",
    timeout: CHILD_TIMEOUT_MS,
    maxBuffer: 16 * MB,
    env: { ...process.env, SLUICE_TRACE: "0" },
  });
  const stderr = child.stderr.trim();
  const line = child.stdout.trim().split("\n").pop() ?? "";
  if (child.status !== 0 || !line.startsWith("{")) {
    process.stderr.write(
      `\nbench: FAILED: ${workloadId} ${impl} ${order} (exit ${String(child.status)}${child.signal ? `, ${child.signal}` : ""}${child.error ? `, ${child.error.message}` : ""})\n` +
        `${stderr}\n${child.stdout}\n`,
    );
    process.exit(1);
  }
  if (stderr !== "") process.stderr.write(`  [${workloadId} ${impl} stderr] ${stderr.split("\n").join("\n  ")}\n`);
  return JSON.parse(line) as Measurement;
}

function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

function fmt(x: number, digits = 1): string {
  if (!Number.isFinite(x)) return "–";
  return x.toLocaleString("en", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function ratioText(r: number): string {
  return Number.isFinite(r) ? `${fmt(r, 2)}×` : "–";
}

/** All the measurements of one run: per workload, per implementation, per order, one per round (in round order). */
type Results = Map<string, Map<string, Map<Order | "", Measurement[]>>>;

function measurements(results: Results, w: string, impl: string, order: Order | ""): Measurement[] {
  return results.get(w)?.get(impl)?.get(order) ?? [];
}

const perOp = (m: Measurement): number => (m.ops > 0 ? m.ns / m.ops : m.ns);
const cpuPerOp = (m: Measurement): number => (m.ops > 0 ? m.cpuNs / m.ops : m.cpuNs);

/** Median ns/op of a row. */
function nsOf(results: Results, w: string, impl: string, order: Order | ""): number {
  return median(measurements(results, w, impl, order).map(perOp));
}

/** Median over the rounds of (impl / reference) measured in the same round. */
function ratio(results: Results, w: string, impl: string, ref: string, order: Order | ""): number {
  const a = measurements(results, w, impl, order);
  const b = measurements(results, w, ref, order);
  const n = Math.min(a.length, b.length);
  const rs: number[] = [];
  for (let i = 0; i < n; i++) rs.push(perOp(a[i] as Measurement) / perOp(b[i] as Measurement));
  return median(rs);
}

function peakMB(results: Results, w: string, impl: string): number {
  return median(measurements(results, w, impl, "").map((m) => m.peakHeap / MB));
}

function orderedTable(w: WorkloadSpec, results: Results): string {
  const orders = w.orders ?? [];
  const strict = w.strictFloor ?? w.floor ?? "";
  const lenient = w.floor ?? "";
  const head = ["implementation"];
  for (const o of orders) head.push(`${ORDER_NAME[o]}: ns/msg`, "vs strict floor", "vs floor");
  if (orders.length > 1) head.push("worst vs strict floor");
  head.push(`CPU ns/msg (${orders.join(" / ")})`);
  const lines = [`| ${head.join(" | ")} |`, `|${head.map((_, i) => (i === 0 ? "---" : "---:")).join("|")}|`];
  for (const impl of w.impls) {
    const cells = [impl.label];
    const worst: number[] = [];
    for (const o of orders) {
      const vsStrict = ratio(results, w.id, impl.id, strict, o);
      worst.push(vsStrict);
      cells.push(fmt(nsOf(results, w.id, impl.id, o)), ratioText(vsStrict), ratioText(ratio(results, w.id, impl.id, lenient, o)));
    }
    if (orders.length > 1) cells.push(`**${ratioText(Math.max(...worst))}**`);
    cells.push(orders.map((o) => fmt(median(measurements(results, w.id, impl.id, o).map(cpuPerOp)))).join(" / "));
    lines.push(`| ${cells.join(" | ")} |`);
  }
  return lines.join("\n");
}

function idleTable(w: WorkloadSpec, results: Results): string {
  const strict = w.strictFloor ?? "";
  const head = ["implementation", "burst ns/msg", "vs strict floor", "steady ns/msg (same process, before the idle)", "burst / steady"];
  const lines = [`| ${head.join(" | ")} |`, `|${head.map((_, i) => (i === 0 ? "---" : "---:")).join("|")}|`];
  for (const impl of w.impls) {
    const ms = measurements(results, w.id, impl.id, "cf");
    const steady = median(ms.map((m) => m.extra.steadyNs ?? NaN));
    const slowdown = median(ms.map((m) => perOp(m) / (m.extra.steadyNs ?? NaN)));
    lines.push(`| ${impl.label} | ${fmt(nsOf(results, w.id, impl.id, "cf"))} | ${ratioText(ratio(results, w.id, impl.id, strict, "cf"))} | ${fmt(steady)} | ${ratioText(slowdown)} |`);
  }
  return lines.join("\n");
}

function plainTable(w: WorkloadSpec, results: Results): string {
  const lines: string[] = [];
  if (w.timed) {
    const head = ["implementation", "ns/op (median)", "min–max", "vs floor", "vs sluice", "CPU ns/op"];
    if (w.heap) head.push("peak heap MB");
    lines.push(`| ${head.join(" | ")} |`, `|${head.map((_, i) => (i === 0 ? "---" : "---:")).join("|")}|`);
    for (const impl of w.impls) {
      const ms = measurements(results, w.id, impl.id, "");
      const xs = ms.map(perOp);
      const cells = [
        impl.label,
        fmt(median(xs)),
        `${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))}`,
        ratioText(ratio(results, w.id, impl.id, w.floor ?? "", "")),
        ratioText(ratio(results, w.id, impl.id, w.sluice ?? "", "")),
        fmt(median(ms.map(cpuPerOp))),
      ];
      if (w.heap) cells.push(fmt(peakMB(results, w.id, impl.id)));
      lines.push(`| ${cells.join(" | ")} |`);
    }
  } else {
    const head = ["implementation", "accepted", "processed", "pending at end", "peak heap MB", "ran for s", "safety cap hit"];
    lines.push(`| ${head.join(" | ")} |`, `|${head.map((_, i) => (i === 0 ? "---" : "---:")).join("|")}|`);
    for (const impl of w.impls) {
      const ms = measurements(results, w.id, impl.id, "");
      const e = (k: string): number => median(ms.map((m) => m.extra[k] ?? NaN));
      const capped = e("capped") > 0;
      lines.push(
        `| ${impl.label} | ${fmt(e("accepted"), 0)} | ${fmt(e("processed"), 0)} | ${fmt(e("pending"), 0)} | ` +
          `${capped ? "≥ " : ""}${fmt(peakMB(results, w.id, impl.id))} | ${fmt(e("seconds"), 2)} | ` +
          `${capped ? `yes (stopped at ${fmt(W5_HEAP_CAP_BYTES / MB, 0)} MB)` : "no"} |`,
      );
    }
  }
  return lines.join("\n");
}

function table(w: WorkloadSpec, results: Results): string {
  const body = w.idle === true ? idleTable(w, results) : w.orders !== undefined ? orderedTable(w, results) : plainTable(w, results);
  const n = Math.max(0, ...w.impls.flatMap((i) => [...(results.get(w.id)?.get(i.id)?.values() ?? [])].map((ms) => ms.length)));
  let foot = `_${n} fresh process${n === 1 ? "" : "es"} per cell, medians; a ratio is the median of the ratios within each round._`;
  if (w.heap) {
    const base = median(w.impls.flatMap((i) => measurements(results, w.id, i.id, "").map((m) => m.baseHeap / MB)));
    foot += ` _Peak heap is the highest \`heapUsed\` seen; each process starts at about ${fmt(base)} MB after a forced gc._`;
  }
  return `${body}\n\n${foot}`;
}

interface Target {
  text: string;
  /** undefined: not measured in this run. */
  met: boolean | undefined;
  detail: string;
}

function targets(results: Results): Target[] {
  const out: Target[] = [];
  const has = (w: string, impl: string, order: Order | ""): boolean => measurements(results, w, impl, order).length > 0;
  const limit = (text: string, r: number, max: number, extra = ""): void => {
    out.push({ text, met: Number.isFinite(r) ? r <= max : undefined, detail: Number.isFinite(r) ? `${fmt(r, 2)}×${extra}` : "not measured" });
  };
  for (const w of ["W1", "W2", "W3"]) {
    for (const o of ["cf", "pf"] as const) {
      if (!has(w, "sluice", o)) continue;
      limit(`${w} ${ORDER_NAME[o]}: sluice await loop within 1.2× of the strict floor`, ratio(results, w, "sluice", "floor-strict", o), 1.2);
      const peers = ["async-channel", "medium", "ts-chan", "ts-chan-unsafe"].filter((p) => has(w, p, o));
      const faster = peers.map((p) => ({ p, r: ratio(results, w, p, "sluice", o) })).filter((x) => x.r <= 1);
      out.push({
        text: `${w} ${ORDER_NAME[o]}: sluice await loop faster than every peer`,
        met: peers.length === 0 ? undefined : faster.length === 0,
        detail:
          faster.length === 0
            ? `the fastest peer takes ${fmt(Math.min(...peers.map((p) => ratio(results, w, p, "sluice", o))), 2)}× sluice's time`
            : `not faster than ${faster.map((x) => `${x.p} (${fmt(x.r, 2)}× sluice's time)`).join(", ")}`,
      });
    }
  }
  if (has("W1-fast", "sluice-try", "")) limit("W1 fast path: trySend/tryRecv within 2× of a synchronous ring", ratio(results, "W1-fast", "sluice-try", "sync-ring", ""), 2);
  const heapNote = (w: string, impl: string): string => `, ${fmt(peakMB(results, w, impl))} MB peak`;
  /** `shape`: a reference row of the same shape, whose ratio to `ref` is quoted beside the result. */
  const withHeap = (text: string, w: string, impl: string, ref: string, max: number, shape?: { impl: string; name: string }): void => {
    const r = ratio(results, w, impl, ref, "");
    const mb = peakMB(results, w, impl);
    const s = shape === undefined ? NaN : ratio(results, w, shape.impl, ref, "");
    out.push({
      text: `${text} at ≤ 32 MB peak heap`,
      met: Number.isFinite(r) && Number.isFinite(mb) ? r <= max && mb <= 32 : undefined,
      detail: Number.isFinite(r) ? `${fmt(r, 2)}×${heapNote(w, impl)}${Number.isFinite(s) ? `; ${shape!.name}: ${fmt(s, 2)}×` : ""}` : "not measured",
    });
  };
  withHeap("W4: Semaphore await loop within 1.15× of a minimal semaphore in the same loop", "W4", "sluice-semaphore", "mini-semaphore", 1.15);
  withHeap("W4: ErrGroup await loop within 1.15× of a minimal semaphore in the same loop", "W4", "sluice-errgroup", "mini-semaphore", 1.15);
  withHeap("W4: ErrGroup await go loop within 1.15× of a minimal errgroup in the same loop (a closure per task)", "W4", "sluice-errgroup", "mini-group", 1.15);
  withHeap("W4-pool: Pool await submit loop within 1.3× of a minimal submit pool in the same loop", "W4-pool", "pool-submit", "mini-submit", 1.3);
  withHeap("W4-pool: pool.map within 2.5× of the lazy floor (16 pulling workers)", "W4-pool", "pool-map", "lazy-pool", 2.5, { impl: "mini-map", name: "the minimal ordered map" });
  if (has("W5", "pool-bounded", "")) {
    const mb = peakMB(results, "W5", "pool-bounded");
    out.push({ text: "W5: the bounded Pool under overload stays at ≤ 32 MB peak heap", met: mb <= 32, detail: `${fmt(mb)} MB` });
  }
  return out;
}

function loadavg(): string {
  return os.loadavg().map((x) => fmt(x, 2)).join(", ");
}

function machine(loadAtStart: string): string {
  const cpus = os.cpus();
  return [
    `- CPU: ${cpus[0]?.model ?? "unknown"}, ${cpus.length} logical cores`,
    `- Memory: ${fmt(os.totalmem() / 1024 ** 3)} GB; OS: ${os.type()} ${os.release()} (${os.arch()})`,
    `- Node ${process.version} (V8 ${process.versions.v8}); children run the harness and sluice as tsc compiled them (\`tsconfig.bench.json\`): \`node --expose-gc .bench-build/bench/worker.js\``,
    `- Load average (1, 5, 15 min): ${loadAtStart} at the start of the run, ${loadavg()} at the end`,
  ].join("\n");
}

/** Every (impl, order) cell of a workload, as measured in one round. */
function cells(w: WorkloadSpec): { impl: string; order: Order | "" }[] {
  const orders: readonly (Order | "")[] = w.orders ?? [""];
  return w.impls.flatMap((i) => orders.filter((o) => o === "" || i.orders === undefined || i.orders.includes(o)).map((order) => ({ impl: i.id, order })));
}

function main(): void {
  const args = readArgs(process.argv.slice(2));
  const chosen = WORKLOADS.filter((w) => selected(w, args.only));
  if (chosen.length === 0) throw new Error(`bench: --only ${args.only?.join(",")} selects nothing; workloads: ${WORKLOADS.map((w) => w.id).join(", ")}`);
  const started = new Date();
  const loadAtStart = loadavg();
  if ((os.loadavg()[0] ?? 0) > os.cpus().length / 2) {
    process.stdout.write(`warning: load average ${loadAtStart} on ${os.cpus().length} cores: other work may be running and wall times may be noisy (compare the CPU column)\n`);
  }
  const t0 = performance.now();
  compileBench();
  process.stdout.write(
    `sluice bench: ${chosen.map((w) => w.id).join(", ")}; ${args.rounds} round${args.rounds === 1 ? "" : "s"}` +
      `${chosen.some((w) => !w.timed) ? ` (W5: ${args.overloadRounds})` : ""}; one fresh process per measurement\n`,
  );

  const results: Results = new Map(chosen.map((w) => [w.id, new Map()]));
  for (let round = 0; round < args.rounds; round++) {
    for (const w of chosen) {
      if (!w.timed && round >= args.overloadRounds) continue;
      const all = cells(w);
      const k = round % all.length;
      const parts: string[] = [];
      for (const { impl, order } of [...all.slice(k), ...all.slice(0, k)]) {
        const m = measure(w.id, impl, order);
        const byImpl = results.get(w.id)!;
        const byOrder = byImpl.get(impl) ?? new Map<Order | "", Measurement[]>();
        byImpl.set(impl, byOrder);
        byOrder.set(order, [...(byOrder.get(order) ?? []), m]);
        parts.push(`${impl}${order === "" ? "" : `/${order}`} ${w.timed ? fmt(perOp(m)) : `${fmt(m.peakHeap / MB)} MB`}`);
      }
      process.stderr.write(`  round ${round + 1}/${args.rounds} ${w.id}: ${parts.join(", ")}${w.timed ? " ns/op" : ""}\n`);
    }
  }

  // What observing costs (issue 16): W1 and W4 with a registry and a Prometheus exporter attached.
  const overheadIds = chosen.map((w) => w.id).filter((id) => id === "W1" || id === "W4");
  const overhead: OverheadRow[] = args.metrics && overheadIds.length > 0
    ? measureMetricsOverhead(args.rounds, overheadIds, (line) => process.stderr.write(`${line}\n`))
    : [];
  const sections = chosen.map((w) => `### ${w.title}\n\n${table(w, results)}`);
  if (overhead.length > 0) sections.push(overheadTable(overhead, args.rounds));
  const allTargets = targets(results);
  for (const r of overhead) {
    allTargets.push({ text: `metrics overhead: ${r.label} with a Prometheus exporter attached within 1.03× of plain`, met: r.ratio <= 1.03, detail: `${fmt(r.ratio, 3)}×` });
  }
  const targetLines = allTargets
    .filter((t) => t.met !== undefined)
    .map((t) => `- ${t.met ? "met" : "**MISSED**"}: ${t.text} (${t.detail})`);
  const seconds = (performance.now() - t0) / 1000;
  const report = [
    "## Machine",
    "",
    machine(loadAtStart),
    `- Date: ${started.toISOString()}; the run took ${fmt(seconds, 0)} s`,
    "",
    "## Results",
    "",
    sections.join("\n\n"),
    ...(targetLines.length > 0 ? ["", "## Targets (issue 12; the earlier issues' targets they replace)", "", ...targetLines] : []),
  ].join("\n");
  process.stdout.write(`\n${report}\n`);
  if (args.write) {
    writeFileSync(RESULTS, resultsFile(report, args));
    process.stdout.write(`\nwrote ${RESULTS}\n`);
  }
  const html = writeBenchReport(args.report, {
    machine: machine(loadAtStart).split("\n").map((l) => l.replace(/^- /, "")).join("; "),
    command: `npm run bench -- ${process.argv.slice(2).join(" ")}`.trim(),
    workloads: chosen.map((w) => benchWorkload(w, results)),
    overhead,
    targets: allTargets,
  });
  process.stdout.write(`wrote ${html}\n`);
}

/** A workload's rows for the HTML report: every implementation in every order, median ns/op (W5: peak heap MB). */
function benchWorkload(w: WorkloadSpec, results: Results): BenchWorkload {
  const orders: readonly (Order | "")[] = w.orders ?? [""];
  const rows = orders.flatMap((o) =>
    w.impls.map((impl) => ({
      impl: impl.id,
      label: impl.label,
      order: o === "" ? "" : ORDER_NAME[o],
      nsPerOp: w.timed ? nsOf(results, w.id, impl.id, o) : peakMB(results, w.id, impl.id),
    })),
  );
  return { id: w.id, title: w.title, unit: w.timed ? "ns/op" : "peak heap MB", rows };
}

function resultsFile(report: string, args: Args): string {
  return [
    "# sluice benchmark results",
    "",
    `Produced by \`npm run bench -- --write\` (${args.rounds} rounds${args.quick ? ", --quick" : ""}${args.only ? `, --only ${args.only.join(",")}` : ""}).`,
    "",
    "How it measures: each number is the fastest of three measured passes in a fresh `node`",
    "process, after six warm-up passes of a tenth of the work in the same process with a forced gc",
    "after the fourth (`bench/worker.ts` says why the gc is not right before the measured passes;",
    "W6 measures that case on purpose, once per process). The machine is shared, and another",
    "tenant's burst only adds time to a pass: the fastest of three is the steadier figure of a",
    "process, and the spread between processes stays in the medians. Rounds are interleaved",
    "across implementations and orders; the tables show",
    "medians over the rounds, and each ratio is the median of the ratios measured within each",
    "round, on wall time. The CPU column (user + system time of the whole process during the",
    "pass, GC threads included) is there because the machine may be shared: it moves much less",
    "than wall time when other work runs.",
    "",
    "The channel workloads run in both orders: consumer first (the consumers wait on an empty",
    "channel, so every send hands its value to a parked receiver, as a service's workers wait",
    "for work) and producer first (the buffer fills and receives mostly find a value). The",
    "headline of a row is its worst order against the strict floor, which returns the value",
    "itself (no promise) whenever an operation need not wait; the other floor returns",
    "`Promise.resolve(v)` there. The reference rows are not floors: the floor resolving",
    "`{ value, ok }` shows what the fresh result object of sluice's contract costs by itself,",
    "the minimal select, semaphore, submit pool and map show what a loop of that shape costs",
    "with the least code. Peak heap is the highest `heapUsed` sampled every 1024 operations and",
    "every 5 ms during the measured pass.",
    "Workload code: `bench/channels.ts`, `bench/tasks.ts`, `bench/overload.ts`; floors and",
    "references: `bench/floors.ts`.",
    "",
    report,
    "",
  ].join("\n");
}

main();
