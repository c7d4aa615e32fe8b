/**
 * `npm run bench`: sluice against hand-written floors and the npm peers.
 *
 * Every measurement runs in a fresh child process (`bench/worker.ts`), one at a time. Rounds
 * are interleaved: round 1 measures every implementation of every selected workload once, then
 * round 2 again, and so on (the order within a workload rotates each round). The tables show
 * the median over the rounds, and ratios against the floor and sluice measured in the same run.
 *
 * Usage: npm run bench -- [--quick] [--rounds N] [--only W1,W4] [--write] [--help]
 *   --quick      2 rounds (W5: 1), for a first look
 *   --rounds N   N rounds (default 5; W5 runs min(N, 3) rounds: it is a 3 s memory test)
 *   --only IDS   comma-separated workload ids; "W1" also selects "W1-fast", "W4" "W4-pool"
 *   --write      also write the report to bench/RESULTS.md
 * Environment: BENCH_ROUNDS, BENCH_ONLY (as the flags); BENCH_POOL_MODULE (another Pool module).
 */
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import os from "node:os";
import { fileURLToPath } from "node:url";
import { poolAvailable, POOL_MISSING } from "./pool-api.js";
import { W5_HEAP_CAP_BYTES, WORKLOADS, type Measurement, type WorkloadSpec } from "./workloads.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const WORKER = fileURLToPath(new URL("./worker.ts", import.meta.url));
const RESULTS = fileURLToPath(new URL("./RESULTS.md", import.meta.url));
const CHILD_TIMEOUT_MS = 180_000;
const MB = 1024 * 1024;

interface Args {
  rounds: number;
  overloadRounds: number;
  only: string[] | undefined;
  write: boolean;
  quick: boolean;
}

function usage(): never {
  process.stdout.write(
    "usage: npm run bench -- [--quick] [--rounds N] [--only W1,W4] [--write]\n" +
      `workloads: ${WORKLOADS.map((w) => w.id).join(", ")}\n`,
  );
  process.exit(0);
}

function parseArgs(argv: readonly string[]): Args {
  let quick = false;
  let rounds: number | undefined = process.env.BENCH_ROUNDS ? Number(process.env.BENCH_ROUNDS) : undefined;
  let only = process.env.BENCH_ONLY;
  let write = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--quick") quick = true;
    else if (a === "--write") write = true;
    else if (a === "--help" || a === "-h") usage();
    else if (a === "--rounds") rounds = Number(argv[++i]);
    else if (a?.startsWith("--rounds=")) rounds = Number(a.slice("--rounds=".length));
    else if (a === "--only") only = argv[++i];
    else if (a?.startsWith("--only=")) only = a.slice("--only=".length);
    else throw new Error(`bench: unknown argument ${JSON.stringify(a)} (try --help)`);
  }
  const r = rounds ?? (quick ? 2 : 5);
  if (!Number.isSafeInteger(r) || r < 1) throw new Error(`bench: --rounds must be a positive integer, got ${String(rounds)}`);
  const list = only?.split(",").map((s) => s.trim()).filter((s) => s !== "");
  return { rounds: r, overloadRounds: quick ? 1 : Math.min(r, 3), only: list, write, quick };
}

function selected(w: WorkloadSpec, only: string[] | undefined): boolean {
  if (only === undefined || only.length === 0) return true;
  return only.some((o) => w.id.toLowerCase() === o.toLowerCase() || w.id.toLowerCase().startsWith(`${o.toLowerCase()}-`));
}

/** Runs one measurement in a fresh process; exits the whole run loudly if it fails. */
function measure(workloadId: string, impl: string): Measurement {
  const child = spawnSync(process.execPath, ["--import", "tsx", "--expose-gc", WORKER, workloadId, impl], {
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
      `\nbench: FAILED: ${workloadId} ${impl} (exit ${String(child.status)}${child.signal ? `, ${child.signal}` : ""}${child.error ? `, ${child.error.message}` : ""})\n` +
        `${stderr}\n${child.stdout}\n`,
    );
    process.exit(1);
  }
  if (stderr !== "") process.stderr.write(`  [${workloadId} ${impl} stderr] ${stderr.split("\n").join("\n  ")}\n`);
  return JSON.parse(line) as Measurement;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

function fmt(x: number, digits = 1): string {
  return x.toLocaleString("en", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

interface Row {
  impl: string;
  label: string;
  skipped?: string;
  nsPerOp: number;
  cpuPerOp: number;
  min: number;
  max: number;
  peakMB: number;
  baseMB: number;
  extra: Record<string, number>;
  samples: number;
}

function summarize(w: WorkloadSpec, results: Map<string, Measurement[]>): Row[] {
  return w.impls.map((spec) => {
    const ms = results.get(spec.id) ?? [];
    const skipped = ms.find((m) => m.skipped !== undefined)?.skipped;
    const perOp = ms.map((m) => (m.ops > 0 ? m.ns / m.ops : m.ns));
    const extraKeys = new Set(ms.flatMap((m) => Object.keys(m.extra)));
    const extra: Record<string, number> = {};
    for (const k of extraKeys) extra[k] = median(ms.map((m) => m.extra[k] ?? 0));
    return {
      impl: spec.id,
      label: spec.label,
      skipped,
      nsPerOp: ms.length > 0 ? median(perOp) : NaN,
      cpuPerOp: ms.length > 0 ? median(ms.map((m) => (m.ops > 0 ? m.cpuNs / m.ops : m.cpuNs))) : NaN,
      min: Math.min(...perOp),
      max: Math.max(...perOp),
      peakMB: ms.length > 0 ? median(ms.map((m) => m.peakHeap / MB)) : NaN,
      baseMB: ms.length > 0 ? median(ms.map((m) => m.baseHeap / MB)) : NaN,
      extra,
      samples: ms.length,
    };
  });
}

function table(w: WorkloadSpec, rows: Row[]): string {
  const floor = rows.find((r) => r.impl === w.floor);
  const ref = rows.find((r) => r.impl === w.sluice);
  const lines: string[] = [];
  if (w.timed) {
    const head = ["implementation", "ns/op (median)", "min–max", "vs floor", "vs sluice", "CPU ns/op"];
    if (w.heap) head.push("peak heap MB");
    lines.push(`| ${head.join(" | ")} |`, `|${head.map((_, i) => (i === 0 ? "---" : "---:")).join("|")}|`);
    for (const r of rows) {
      if (r.skipped !== undefined || r.samples === 0) {
        lines.push(`| ${r.label} | skipped | | | | |${w.heap ? " |" : ""}`);
        continue;
      }
      const vsFloor = floor && floor.samples > 0 ? `${fmt(r.nsPerOp / floor.nsPerOp, 2)}×` : "–";
      const vsRef = ref && ref.samples > 0 && ref.skipped === undefined ? `${fmt(r.nsPerOp / ref.nsPerOp, 2)}×` : "–";
      const cells = [r.label, fmt(r.nsPerOp), `${fmt(r.min)}–${fmt(r.max)}`, vsFloor, vsRef, fmt(r.cpuPerOp)];
      if (w.heap) cells.push(fmt(r.peakMB));
      lines.push(`| ${cells.join(" | ")} |`);
    }
  } else {
    const head = ["implementation", "accepted", "processed", "pending at end", "peak heap MB", "ran for s", "safety cap hit"];
    lines.push(`| ${head.join(" | ")} |`, `|${head.map((_, i) => (i === 0 ? "---" : "---:")).join("|")}|`);
    for (const r of rows) {
      if (r.skipped !== undefined || r.samples === 0) {
        lines.push(`| ${r.label} | skipped | | | | | |`);
        continue;
      }
      const e = r.extra;
      lines.push(
        `| ${r.label} | ${fmt(e.accepted ?? NaN, 0)} | ${fmt(e.processed ?? NaN, 0)} | ${fmt(e.pending ?? NaN, 0)} | ` +
          `${(e.capped ?? 0) > 0 ? "≥ " : ""}${fmt(r.peakMB)} | ${fmt(e.seconds ?? NaN, 2)} | ` +
          `${(e.capped ?? 0) > 0 ? `yes (stopped at ${fmt(W5_HEAP_CAP_BYTES / MB, 0)} MB)` : "no"} |`,
      );
    }
  }
  const base = rows.filter((r) => r.samples > 0 && r.skipped === undefined).map((r) => r.baseMB);
  const n = Math.max(0, ...rows.map((r) => r.samples));
  let foot = `_${n} fresh process${n === 1 ? "" : "es"} per row, median shown._`;
  if (w.heap && base.length > 0) foot += ` _Peak heap is the highest \`heapUsed\` seen; each process starts at about ${fmt(median(base))} MB after a forced gc._`;
  lines.push("", foot);
  return lines.join("\n");
}

interface Target {
  text: string;
  /** undefined: not measured in this run. */
  met: boolean | undefined;
  detail: string;
}

function targets(summaries: Map<string, Row[]>): Target[] {
  const out: Target[] = [];
  const row = (w: string, impl: string): Row | undefined => {
    const r = summaries.get(w)?.find((x) => x.impl === impl);
    return r && r.samples > 0 && r.skipped === undefined ? r : undefined;
  };
  const ratio = (w: string, impl: string, floorImpl: string): number | undefined => {
    const a = row(w, impl);
    const b = row(w, floorImpl);
    return a && b ? a.nsPerOp / b.nsPerOp : undefined;
  };
  for (const w of ["W1", "W2", "W3"]) {
    const r = ratio(w, "sluice", "floor");
    out.push({
      text: `${w}: sluice await loop within 1.1× of the floor`,
      met: r === undefined ? undefined : r <= 1.1,
      detail: r === undefined ? "not measured" : `${fmt(r, 2)}×`,
    });
    const s = row(w, "sluice");
    const peers = (summaries.get(w) ?? []).filter((x) => !x.impl.startsWith("floor") && !x.impl.startsWith("sluice") && x.samples > 0);
    const slower = peers.filter((p) => s !== undefined && p.nsPerOp <= s.nsPerOp);
    out.push({
      text: `${w}: sluice await loop faster than every peer`,
      met: s === undefined || peers.length === 0 ? undefined : slower.length === 0,
      detail:
        s === undefined || peers.length === 0
          ? "not measured"
          : slower.length === 0
            ? `fastest peer ${fmt(Math.min(...peers.map((p) => p.nsPerOp / s.nsPerOp)), 2)}× sluice's time`
            : `not faster than ${slower.map((p) => `${p.impl} (${fmt(p.nsPerOp / s.nsPerOp, 2)}×)`).join(", ")}`,
    });
  }
  {
    const r = ratio("W1-fast", "sluice-try", "sync-ring");
    out.push({ text: "W1 fast path: trySend/tryRecv within 2× of a synchronous ring", met: r === undefined ? undefined : r <= 2, detail: r === undefined ? "not measured" : `${fmt(r, 2)}×` });
  }
  const timeAndHeap = (w: string, impl: string, label: string, limit: number): void => {
    const r = ratio(w, impl, "lazy-pool");
    const x = row(w, impl);
    out.push({
      text: `${w}: ${label} within ${limit}× of the lazy pool at ≤ 32 MB peak heap`,
      met: r === undefined || x === undefined ? undefined : r <= limit && x.peakMB <= 32,
      detail: r === undefined || x === undefined ? "not measured" : `${fmt(r, 2)}×, ${fmt(x.peakMB)} MB`,
    });
  };
  timeAndHeap("W4", "sluice-semaphore", "Semaphore", 2);
  timeAndHeap("W4", "sluice-errgroup", "ErrGroup", 2);
  timeAndHeap("W4-pool", "pool-submit", "Pool submit loop", 1.5);
  timeAndHeap("W4-pool", "pool-map", "Pool map", 1.5);
  return out;
}

/** W5 has no numeric target in the issue: one line that says what it showed. */
function overloadSummary(summaries: Map<string, Row[]>): string | undefined {
  const rows = summaries.get("W5");
  const q = rows?.find((r) => r.impl === "p-queue" && r.samples > 0);
  const p = rows?.find((r) => r.impl === "pool-bounded" && r.samples > 0 && r.skipped === undefined);
  if (q === undefined || p === undefined) return undefined;
  const capped = (q.extra.capped ?? 0) > 0 ? ` (and was stopped by the ${fmt(W5_HEAP_CAP_BYTES / MB, 0)} MB safety cap)` : "";
  return (
    `- W5 (no numeric target): the bounded Pool peaked at ${fmt(p.peakMB)} MB with ${fmt(p.extra.pending ?? NaN, 0)} pending at the end; ` +
    `p-queue's unbounded add peaked at ${fmt(q.peakMB)} MB${capped} with ${fmt(q.extra.pending ?? NaN, 0)} pending, ` +
    `and processed ${fmt(q.extra.processed ?? NaN, 0)} messages to the Pool's ${fmt(p.extra.processed ?? NaN, 0)} (its consumer starved by GC of the backlog).`
  );
}

function loadavg(): string {
  return os.loadavg().map((x) => fmt(x, 2)).join(", ");
}

function machine(loadAtStart: string): string {
  const cpus = os.cpus();
  return [
    `- CPU: ${cpus[0]?.model ?? "unknown"}, ${cpus.length} logical cores`,
    `- Memory: ${fmt(os.totalmem() / 1024 ** 3)} GB; OS: ${os.type()} ${os.release()} (${os.arch()})`,
    `- Node ${process.version} (V8 ${process.versions.v8}); children run \`node --import tsx --expose-gc\``,
    `- Load average (1, 5, 15 min): ${loadAtStart} at the start of the run, ${loadavg()} at the end`,
  ].join("\n");
}

function main(): void {
  const args = parseArgs(process.argv.slice(2));
  const chosen = WORKLOADS.filter((w) => selected(w, args.only));
  if (chosen.length === 0) throw new Error(`bench: --only ${args.only?.join(",")} selects nothing; workloads: ${WORKLOADS.map((w) => w.id).join(", ")}`);
  const pool = poolAvailable();
  const started = new Date();
  const loadAtStart = loadavg();
  if ((os.loadavg()[0] ?? 0) > os.cpus().length / 2) {
    process.stdout.write(`warning: load average ${loadAtStart} on ${os.cpus().length} cores: other work may be running and wall times may be noisy (compare the CPU column)\n`);
  }
  const t0 = performance.now();
  process.stdout.write(
    `sluice bench: ${chosen.map((w) => w.id).join(", ")}; ${args.rounds} round${args.rounds === 1 ? "" : "s"}` +
      `${chosen.some((w) => !w.timed) ? ` (W5: ${args.overloadRounds})` : ""}; one fresh process per measurement\n`,
  );
  if (!pool) process.stdout.write(`note: ${POOL_MISSING}\n`);

  const results = new Map<string, Map<string, Measurement[]>>(chosen.map((w) => [w.id, new Map()]));
  for (let round = 0; round < args.rounds; round++) {
    for (const w of chosen) {
      if (!w.timed && round >= args.overloadRounds) continue;
      const impls = w.impls.filter((i) => pool || i.needsPool !== true);
      if (impls.length === 0) continue;
      const k = round % impls.length;
      const order = [...impls.slice(k), ...impls.slice(0, k)];
      const parts: string[] = [];
      for (const impl of order) {
        const m = measure(w.id, impl.id);
        const byImpl = results.get(w.id) as Map<string, Measurement[]>;
        byImpl.set(impl.id, [...(byImpl.get(impl.id) ?? []), m]);
        parts.push(m.skipped !== undefined ? `${impl.id} skipped` : w.timed ? `${impl.id} ${fmt(m.ns / m.ops)}` : `${impl.id} ${fmt(m.peakHeap / MB)} MB`);
      }
      process.stderr.write(`  round ${round + 1}/${args.rounds} ${w.id}: ${parts.join(", ")}${w.timed ? " ns/op" : ""}\n`);
    }
  }

  const summaries = new Map<string, Row[]>();
  const sections: string[] = [];
  for (const w of chosen) {
    const rows = summarize(w, results.get(w.id) as Map<string, Measurement[]>);
    summaries.set(w.id, rows);
    const note = w.impls.some((i) => i.needsPool === true) && !pool ? `\n\n_${POOL_MISSING}._` : "";
    sections.push(`### ${w.title}\n\n${table(w, rows)}${note}`);
  }
  const tgs = targets(summaries).filter((t) => t.met !== undefined);
  const targetLines = tgs.map((t) => `- ${t.met ? "met" : "**MISSED**"}: ${t.text} (${t.detail})`);
  const w5 = overloadSummary(summaries);
  if (w5 !== undefined) targetLines.push(w5);
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
    ...(targetLines.length > 0 ? ["", "## Targets (issue 3 §4, issue 4 \"Proof and speed\")", "", ...targetLines] : []),
  ].join("\n");
  process.stdout.write(`\n${report}\n`);
  if (args.write) {
    writeFileSync(RESULTS, resultsFile(report, args));
    process.stdout.write(`\nwrote ${RESULTS}\n`);
  }
}

function resultsFile(report: string, args: Args): string {
  return [
    "# sluice benchmark results",
    "",
    `Produced by \`npm run bench -- --write\` (${args.rounds} rounds${args.quick ? ", --quick" : ""}${args.only ? `, --only ${args.only.join(",")}` : ""}).`,
    "How it measures: each number is one measured pass in a fresh `node` process, after six",
    "warm-up passes of a tenth of the work in the same process with a forced gc after the fourth",
    "(`bench/worker.ts` says why the gc is not right before the measured pass); rounds are",
    "interleaved across implementations; the tables show medians and the min–max over the",
    "rounds. Ratios are taken against the floor and sluice measured in the same run, on wall",
    "time. The CPU column",
    "(user + system time of the whole process during the pass, GC threads included) is there",
    "because the machine may be shared: it moves much less than wall time when other work runs.",
    "Peak heap is the highest `heapUsed` sampled every 1024 operations and every 5 ms during the",
    "measured pass (which starts from the heap left by the forced gc and the last two warm-ups).",
    "The \"floor resolving `{ value, ok }`\" row is not a floor: it is the floor plus the fresh",
    "result object that sluice's contract requires, to show what that object alone costs.",
    "Workload code: `bench/channels.ts`, `bench/tasks.ts`, `bench/overload.ts`; floors: `bench/floors.ts`.",
    "",
    report,
    "",
  ].join("\n");
}

main();
