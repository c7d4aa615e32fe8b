/**
 * The server side of `bench/http-load.ts`, one process per run (so the load generator never
 * shares its event loop). `argv[2]` names the setup:
 *
 *  - `bare` / `sluice` / `sluice-signal`: a trivial handler ("ok"), plain or behind an
 *    `Admission` whose limit is never reached (the overhead at normal load), the last one with a
 *    listener that declares the signal parameter (so an AbortSignal is made per request);
 *  - `knee-bare` / `knee-sluice`: a handler in front of a resource with a fixed concurrency
 *    knee: 8 units, 20 ms of work per request; past 8 concurrent requests, they wait for a unit
 *    (latency grows with the excess), plain or behind an `Admission` (concurrency 8, a small
 *    LIFO queue with a short queue timeout);
 *  - `fastify-under-pressure` / `fastify-sluice`: the same knee behind Fastify, with
 *    `@fastify/under-pressure` and the settings of its README, or with `fastifyAdmission`.
 *
 * Server-side figures (CPU time per response since the parent's "mark", latency from arrival to the response's end, by status; 503s without a
 * Retry-After; RSS every 250 ms) are sent to the parent over IPC when it sends "report".
 * Latency samples are kept in a bounded ring.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import Fastify from "fastify";
import underPressure from "@fastify/under-pressure";
import { Semaphore } from "../src/index.js";
import { Admission, fastifyAdmission } from "../src/http/index.js";

export type Setup = "bare" | "sluice" | "sluice-signal" | "knee-bare" | "knee-sluice" | "fastify-under-pressure" | "fastify-sluice";

/** What the server reports at the end of a run. */
export interface ServerReport {
  readonly statuses: Record<string, number>;
  readonly without503RetryAfter: number;
  /** Server-side latency of 2xx responses, ms. */
  readonly okLatency: { count: number; p50: number; p99: number; max: number };
  readonly rssMb: number[];
  /** Server CPU time (user + system) per response since the parent's "mark", in µs. */
  readonly cpuUsPerResponse: number;
  readonly admission?: unknown;
}

const KNEE = 8;
const WORK_MS = 20;
const RING = 1 << 18;

const setup = process.argv[2] as Setup;
const unit = new Semaphore(KNEE);

/** The resource: 8 units; a request holds one for WORK_MS. Beyond 8 at once, requests wait for a unit. */
async function work(): Promise<void> {
  await unit.acquire();
  try {
    await new Promise((r) => setTimeout(r, WORK_MS));
  } finally {
    unit.release();
  }
}

const statuses: Record<string, number> = {};
let without503RetryAfter = 0;
const okRing = new Float64Array(RING);
let okCount = 0;
const rss: number[] = [];
let responses = 0;
let mark = { cpu: process.cpuUsage(), responses: 0 };
const rssTimer = setInterval(() => {
  if (rss.length < 10_000) rss.push(process.memoryUsage.rss() / 2 ** 20);
}, 250);

/** Whether a `writeHead` headers argument (object or flat array) has a Retry-After. */
function hasRetryAfter(headers: unknown): boolean {
  if (Array.isArray(headers)) return headers.some((h, i) => i % 2 === 0 && String(h).toLowerCase() === "retry-after");
  if (headers !== null && typeof headers === "object") return Object.keys(headers).some((k) => k.toLowerCase() === "retry-after");
  return false;
}

/**
 * Measures every response from its arrival: status, Retry-After of 503s (set with setHeader or
 * passed to writeHead, as Fastify does), latency of 2xx.
 */
function measure(_req: IncomingMessage, res: ServerResponse): void {
  const t0 = performance.now();
  let retryAfter = false;
  const writeHead = res.writeHead;
  res.writeHead = function (this: ServerResponse, ...args: unknown[]) {
    retryAfter = hasRetryAfter(args[args.length - 1]);
    return (writeHead as (...a: unknown[]) => ServerResponse).apply(this, args);
  } as typeof res.writeHead;
  res.once("finish", () => {
    responses++;
    const s = res.statusCode;
    statuses[s] = (statuses[s] ?? 0) + 1;
    if (s === 503 && !retryAfter && res.getHeader("retry-after") === undefined) without503RetryAfter++;
    if (s >= 200 && s < 300) okRing[okCount++ % RING] = performance.now() - t0;
  });
}

function report(admission?: Admission): ServerReport {
  const cpu = process.cpuUsage(mark.cpu);
  const n = responses - mark.responses;
  const k = Math.min(okCount, RING);
  const w = okRing.slice(0, k).sort();
  const at = (q: number): number => (k === 0 ? 0 : w[Math.min(k - 1, Math.ceil(q * k) - 1)]!);
  return {
    statuses,
    without503RetryAfter,
    okLatency: { count: okCount, p50: at(0.5), p99: at(0.99), max: k === 0 ? 0 : w[k - 1]! },
    rssMb: rss,
    cpuUsPerResponse: n === 0 ? 0 : (cpu.user + cpu.system) / n,
    admission: admission?.stats,
  };
}

async function start(): Promise<{ port: number; admission?: Admission }> {
  if (setup === "fastify-under-pressure" || setup === "fastify-sluice") {
    const app = Fastify();
    app.server.prependListener("request", measure);
    let admission: Admission | undefined;
    if (setup === "fastify-under-pressure") {
      // The settings of @fastify/under-pressure's README.
      await app.register(underPressure, { maxEventLoopDelay: 1000, maxHeapUsedBytes: 100_000_000, maxRssBytes: 100_000_000, maxEventLoopUtilization: 0.98 });
    } else {
      admission = new Admission({ concurrency: KNEE, queue: 4, order: "lifo", queueTimeoutMs: 5, name: "bench" });
      await app.register(fastifyAdmission, { admission });
    }
    app.get("/", async () => {
      await work();
      return "ok";
    });
    await app.listen({ port: 0, host: "127.0.0.1" });
    return { port: (app.server.address() as AddressInfo).port, admission };
  }
  let admission: Admission | undefined;
  let listener: (req: IncomingMessage, res: ServerResponse) => void;
  if (setup === "bare") listener = (_req, res) => void res.end("ok");
  else if (setup === "sluice") {
    admission = new Admission({ concurrency: 10_000, name: "bench" });
    listener = admission.handler((_req, res) => void res.end("ok"));
  } else if (setup === "sluice-signal") {
    admission = new Admission({ concurrency: 10_000, name: "bench" });
    listener = admission.handler((_req, res, _signal) => void res.end("ok"));
  } else if (setup === "knee-bare") {
    listener = (_req, res) => void work().then(() => res.end("ok"));
  } else {
    admission = new Admission({ concurrency: KNEE, queue: 4, order: "lifo", queueTimeoutMs: 5, name: "bench" });
    listener = admission.handler(async (_req, res) => {
      await work();
      res.end("ok");
    });
  }
  const server = createServer({ keepAliveTimeout: 60_000 }, listener);
  server.prependListener("request", measure);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { port: (server.address() as AddressInfo).port, admission };
}

const { port, admission } = await start();
process.send!({ port });
process.on("message", (m) => {
  if (m === "mark") {
    mark = { cpu: process.cpuUsage(), responses };
    // The figures reported are the measured pass's: the warm-up's latencies and statuses go.
    okCount = 0;
    for (const k of Object.keys(statuses)) delete statuses[k];
    without503RetryAfter = 0;
    process.send!({ marked: true });
    return;
  }
  if (m !== "report") return;
  clearInterval(rssTimer);
  process.send!({ report: report(admission) }, () => process.exit(0));
});
process.on("disconnect", () => process.exit(0));
