/**
 * `npm run bench:http`: the load benchmark of `sluice/http`, with autocannon on loopback, in one
 * run, bounded in time (`--duration` seconds per measurement, 17 measurements) and connections.
 *
 *  (a) Overhead at normal load: a trivial node:http handler, bare and behind an `Admission`
 *      whose limit is never reached; `--normal` connections, after a
 *      warm-up, in four alternating groups (the median group is taken; a listener declaring the signal is measured too). Target: <= 3% throughput loss, p99 within 5%.
 *  (b) 10x overload of a handler with a fixed concurrency knee (8 units of 20 ms; latency grows
 *      past 8 concurrent): unloaded (8 connections) vs `--overload` connections (80), bare and
 *      behind an `Admission` (concurrency 8, LIFO queue of 4, 5 ms queue timeout). Targets for
 *      the admitted requests: p99 within 2x of unloaded; RSS flat; every rejection a 503 with
 *      Retry-After; no request errors or resets.
 *  (c) The same overload behind Fastify: `@fastify/under-pressure` with its README's settings,
 *      and `fastifyAdmission`, side by side.
 *
 * Each setup runs in its own child process (`http-load-server.ts`), so autocannon never shares
 * the server's event loop; server-side latency (arrival to response end) is measured there.
 * `--write` puts the results in bench/HTTP-RESULTS.md.
 */
import { fork } from "node:child_process";
import { once } from "node:events";
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import autocannon from "autocannon";
import type { ServerReport, Setup } from "./http-load-server.js";

const { values } = parseArgs({
  options: {
    duration: { type: "string", default: "5" },
    normal: { type: "string", default: "16" },
    overload: { type: "string", default: "80" },
    write: { type: "boolean", default: false },
  },
});
const DURATION = Number(values.duration);
const NORMAL = Number(values.normal);
const OVERLOAD = Number(values.overload);
for (const [k, v] of [["duration", DURATION], ["normal", NORMAL], ["overload", OVERLOAD]] as const) {
  if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`--${k} must be a positive integer, got ${v}`);
}
const SERVER = fileURLToPath(new URL("./http-load-server.ts", import.meta.url));

interface Run {
  readonly setup: Setup;
  readonly connections: number;
  readonly rps: number;
  readonly okPerS: number;
  readonly p50: number;
  readonly p99: number;
  readonly errors: number;
  readonly timeouts: number;
  readonly non2xx: number;
  readonly server: ServerReport;
}

async function measure(setup: Setup, connections: number, warmupS = 0): Promise<Run> {
  const child = fork(SERVER, [setup], { execArgv: ["--import", "tsx"], stdio: ["ignore", "inherit", "inherit", "ipc"] });
  try {
    const [{ port }] = (await once(child, "message")) as [{ port: number }];
    const url = `http://127.0.0.1:${port}/`;
    if (warmupS > 0) await autocannon({ url, connections, duration: warmupS });
    const marked = once(child, "message");
    child.send("mark");
    await marked;
    const r = await autocannon({ url, connections, duration: DURATION });
    const reply = once(child, "message");
    child.send("report");
    const [{ report }] = (await reply) as [{ report: ServerReport }];
    const ok = r["2xx"];
    return {
      setup,
      connections,
      rps: r.requests.average,
      okPerS: ok / r.duration,
      p50: r.latency.p50,
      p99: r.latency.p99,
      errors: r.errors,
      timeouts: r.timeouts,
      non2xx: r.non2xx,
      server: report,
    };
  } finally {
    if (child.exitCode === null) child.kill("SIGKILL");
  }
}

const pct = (x: number): string => `${x >= 0 ? "+" : ""}${(x * 100).toFixed(1)}%`;
const f1 = (x: number): string => x.toFixed(1);
const int = (x: number): string => Math.round(x).toLocaleString("en-US");

function rssLine(r: ServerReport): { first: number; last: number; max: number } {
  const s = r.rssMb.slice(Math.min(4, Math.max(0, r.rssMb.length - 1))); // after the first second
  return { first: s[0] ?? 0, last: s[s.length - 1] ?? 0, max: Math.max(...s, 0) };
}

/** Responses neither 2xx nor 503. */
function otherThan503(r: ServerReport): number {
  return Object.entries(r.statuses).reduce((n, [s, c]) => (s === "503" || s.startsWith("2") ? n : n + c), 0);
}

const lines: string[] = [];
const out = (l = ""): void => {
  lines.push(l);
  console.log(l);
};

console.error(`bench:http: ${DURATION} s per measurement, ${NORMAL} connections normal, ${OVERLOAD} overload...`);

// (a) overhead: PAIRS pairs, each bare and sluice back to back (alternating which goes first);
// the machine's load drifts, so each pair is compared within itself and the median pair is taken.
const PAIRS = 4;
const a: Run[] = [];
const pairRps: number[] = [];
const pairP99: number[] = [];
const pairServerP99: number[] = [];
const pairSignal: number[] = [];
const pairCpu: number[] = [];
const pairCpuSignal: number[] = [];
for (let i = 0; i < PAIRS; i++) {
  const order: Setup[] = i % 2 === 0 ? ["bare", "sluice", "sluice-signal"] : ["sluice-signal", "sluice", "bare"];
  const runs: Record<string, Run> = {};
  for (const setup of order) {
    const r = await measure(setup, NORMAL, 1);
    runs[setup] = r;
    a.push(r);
  }
  pairRps.push(runs.sluice!.rps / runs.bare!.rps);
  pairP99.push(runs.sluice!.p99 / runs.bare!.p99);
  pairServerP99.push(runs.sluice!.server.okLatency.p99 / runs.bare!.server.okLatency.p99);
  pairSignal.push(runs["sluice-signal"]!.rps / runs.bare!.rps);
  pairCpu.push(runs.bare!.server.cpuUsPerResponse / runs.sluice!.server.cpuUsPerResponse);
  pairCpuSignal.push(runs.bare!.server.cpuUsPerResponse / runs["sluice-signal"]!.server.cpuUsPerResponse);
}
const median = (xs: number[]): number => {
  const w = [...xs].sort((x, y) => x - y);
  return w.length % 2 === 1 ? w[(w.length - 1) / 2]! : (w[w.length / 2 - 1]! + w[w.length / 2]!) / 2;
};
const rpsLoss = 1 - median(pairRps);
// The client's p99 has autocannon's 1 ms granularity, at which a trivial handler's p99 is 0 or
// 1 ms (a ratio of NaN or Infinity): the target is judged on the server's p99 (arrival to the
// response's end, measured with hrtime), and the client's is shown beside it.
const p99Change = median(pairServerP99) - 1;

// (b) overload of the knee
const unloaded = await measure("knee-bare", 8, 1);
const kneeBare = await measure("knee-bare", OVERLOAD);
const kneeSluice = await measure("knee-sluice", OVERLOAD);
// (c) Fastify
const fup = await measure("fastify-under-pressure", OVERLOAD);
const fsl = await measure("fastify-sluice", OVERLOAD);

out(`# sluice/http load benchmark`);
out();
out(`Node ${process.version}, ${process.platform}/${process.arch}, autocannon 8 on loopback, one server process per setup; ` +
  `${DURATION} s per measurement; run at ${new Date().toISOString()}.`);
out();
out(`## (a) Overhead at normal load (${NORMAL} connections, trivial handler, the admission's limit never reached)`);
out();
out(`| group: setup | req/s | client p50 ms | client p99 ms | server p99 µs | server CPU µs/response |`);
out(`|---|---:|---:|---:|---:|---:|`);
const label = (s: Setup): string => (s === "bare" ? "bare node:http" : s === "sluice" ? "admission.handler((req, res) => ...)" : "admission.handler((req, res, signal) => ...)");
a.forEach((r, i) => out(`| ${Math.floor(i / 3) + 1}: ${label(r.setup)} | ${int(r.rps)} | ${r.p50} | ${r.p99} | ${f1(r.server.okLatency.p99 * 1000)} | ${f1(r.server.cpuUsPerResponse)} |`));
out();
out(`Per group, admission / bare req/s: ${pairRps.map((x) => x.toFixed(3)).join(", ")}; client p99 (1 ms granularity): ${pairP99.map((x) => x.toFixed(2)).join(", ")}; server p99: ${pairServerP99.map((x) => x.toFixed(2)).join(", ")}.`);
out();
const cpuLoss = 1 - median(pairCpu);
out(`Throughput a saturated server can reach is 1 / its CPU time per response, which the machine's load disturbs far less than req/s: ` +
  `admission / bare, per group: ${pairCpu.map((x) => x.toFixed(3)).join(", ")}; median ${pct(-cpuLoss)} ` +
  `(target: loss <= 3%): ${cpuLoss <= 0.03 ? "met" : "MISSED"}. With the signal declared: median ${pct(median(pairCpuSignal) - 1)}.`);
out();
out(`A listener that declares the signal (an AbortSignal made per request, Node's cost): ${pct(median(pairSignal) - 1)} (median), per pair ${pairSignal.map((x) => x.toFixed(3)).join(", ")}.`);
out();
out(`Measured req/s (disturbed by the machine's load), median group: throughput ${pct(-rpsLoss)} (target: loss <= 3%): ${rpsLoss <= 0.03 ? "met" : "MISSED"}. ` +
  `Server p99 change (median group): ${pct(p99Change)} (target within 5%): ${Math.abs(p99Change) <= 0.05 || p99Change < 0 ? "met" : "MISSED"}.`);
out();
out(`## (b) 10x overload of a handler with a concurrency knee at 8 (8 units x 20 ms)`);
out();
out(`| run | conns | 2xx/s | client p99 ms (all) | server p99 ms (2xx) | 503 | 503 w/o Retry-After | errors | timeouts | RSS MB first/last/max |`);
out(`|---|---:|---:|---:|---:|---:|---:|---:|---:|---|`);
const row = (name: string, r: Run): void => {
  const m = rssLine(r.server);
  out(`| ${name} | ${r.connections} | ${int(r.okPerS)} | ${r.p99} | ${f1(r.server.okLatency.p99)} | ${int(r.server.statuses["503"] ?? 0)} | ${r.server.without503RetryAfter} | ${r.errors} | ${r.timeouts} | ${f1(m.first)}/${f1(m.last)}/${f1(m.max)} |`);
};
row("unloaded, bare", unloaded);
row("overload, bare", kneeBare);
row("overload, Admission", kneeSluice);
const ratio = kneeSluice.server.okLatency.p99 / unloaded.server.okLatency.p99;
const rssS = rssLine(kneeSluice.server);
out();
out(`Admitted p99 under overload / unloaded p99: ${ratio.toFixed(2)}x (target <= 2x): ${ratio <= 2 ? "met" : "MISSED"}. ` +
  `Without admission: ${(kneeBare.server.okLatency.p99 / unloaded.server.okLatency.p99).toFixed(2)}x. ` +
  `Rejections without Retry-After: ${kneeSluice.server.without503RetryAfter}; refusals other than 503: ${otherThan503(kneeSluice.server)}; ` +
  `errors ${kneeSluice.errors}, timeouts ${kneeSluice.timeouts}; RSS ${f1(rssS.first)} -> ${f1(rssS.last)} MB (max ${f1(rssS.max)}).`);
out();
out(`## (c) The same overload behind Fastify: @fastify/under-pressure (its README's settings) vs fastifyAdmission`);
out();
out(`| run | conns | 2xx/s | client p99 ms (all) | server p99 ms (2xx) | 503 | 503 w/o Retry-After | errors | timeouts | RSS MB first/last/max |`);
out(`|---|---:|---:|---:|---:|---:|---:|---:|---:|---|`);
row("Fastify + under-pressure", fup);
row("Fastify + fastifyAdmission", fsl);
out();
out(`under-pressure: admitted p99 ${(fup.server.okLatency.p99 / unloaded.server.okLatency.p99).toFixed(2)}x of unloaded, ${int(fup.server.statuses["503"] ?? 0)} refusals; ` +
  `fastifyAdmission: ${(fsl.server.okLatency.p99 / unloaded.server.okLatency.p99).toFixed(2)}x, ${int(fsl.server.statuses["503"] ?? 0)} refusals.`);

if (values.write) {
  writeFileSync(fileURLToPath(new URL("./HTTP-RESULTS.md", import.meta.url)), lines.join("\n") + "\n");
  console.error("bench:http: wrote bench/HTTP-RESULTS.md");
}
