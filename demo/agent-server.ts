/**
 * The agent inbox of seed 000, as a server (run as a child process by `demo/agent.ts`, so that
 * its memory is its own): `POST /tasks` takes an agent task into a bounded queue served by a
 * few workers (a `Pool`, `overflow: "reject"`) and answers `202 Accepted` with the task's id
 * and status URL, or `503` + `Retry-After` (a problem body) when the queue is full; `GET
 * /tasks/:id` reports `queued`, `running` or `completed`; `GET /stats` (outside admission) the
 * server's counters and memory. All HTTP traffic but /stats goes through an `Admission`, so the
 * HTTP side is bounded too. The parent sends "stop" over IPC to shut it down gracefully.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { Pool } from "../src/flow/index.js";
import { Admission } from "../src/http/index.js";

/** What the server is started with (argv[2], JSON). */
export interface AgentServerOptions {
  readonly workers: number;
  readonly queue: number;
  readonly taskMs: number;
}

/** What `GET /stats` answers. */
export interface AgentServerStats {
  readonly accepted: number;
  readonly rejected: number;
  readonly completed: number;
  readonly queued: number;
  readonly running: number;
  readonly maxQueued: number;
  readonly queueBound: number;
  readonly tasksKept: number;
  readonly rssMb: number;
  readonly heapMb: number;
  readonly httpRejected: number;
}

type TaskState = "queued" | "running" | "completed";

/** Task states kept for status queries; past this, the oldest completed ones are forgotten. */
const MAX_TASKS = 100_000;
/** The largest task body read. */
const MAX_BODY = 16 * 1024;

const options = JSON.parse(process.argv[2] ?? "{}") as AgentServerOptions;
const pool = new Pool({ concurrency: options.workers, queue: options.queue, overflow: "reject", name: "agent-inbox" });
const admission = new Admission({ concurrency: 256, queue: 512, queueTimeoutMs: 2000, name: "agent-http" });
const tasks = new Map<string, TaskState>();
let seq = 0;
let accepted = 0;
let rejected = 0;
let completed = 0;
let maxQueued = 0;

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text), ...headers });
  res.end(text);
}

async function readBody(req: IncomingMessage, signal: AbortSignal): Promise<string | undefined> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req.iterator({ destroyOnReturn: true }) as AsyncIterable<Buffer>) {
    if (signal.aborted) return undefined;
    size += chunk.length;
    if (size > MAX_BODY) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString("utf8");
}

function forgetOldCompleted(): void {
  if (tasks.size <= MAX_TASKS) return;
  for (const [id, state] of tasks) {
    if (tasks.size <= MAX_TASKS) break;
    if (state === "completed") tasks.delete(id);
  }
}

async function submit(req: IncomingMessage, res: ServerResponse, signal: AbortSignal): Promise<void> {
  const body = await readBody(req, signal);
  if (body === undefined) return json(res, 413, { type: "urn:demo:too-large", title: "Body too large", status: 413, detail: `at most ${MAX_BODY} bytes` });
  const id = `t${++seq}`;
  tasks.set(id, "queued");
  const ok = pool.trySubmit(async () => {
    tasks.set(id, "running");
    await sleep(options.taskMs); // the agent's work: an LLM call, a tool run...
    tasks.set(id, "completed");
    completed++;
  });
  if (!ok) {
    tasks.delete(id);
    rejected++;
    // The queue drains at workers / taskMs per ms: come back when about this queue has gone.
    const drainS = Math.ceil((pool.queued * options.taskMs) / options.workers / 1000);
    const retryAfter = Math.max(1, drainS) + Math.floor(Math.random() * 2);
    return json(
      res,
      503,
      { type: "urn:demo:inbox-full", title: "Inbox full", status: 503, detail: `${pool.queued} tasks are waiting, the inbox's bound; retry after ${retryAfter} s` },
      { "retry-after": String(retryAfter), "content-type": "application/problem+json" },
    );
  }
  accepted++;
  maxQueued = Math.max(maxQueued, pool.queued);
  forgetOldCompleted();
  json(res, 202, { id, status: `/tasks/${id}` }, { location: `/tasks/${id}` });
}

const api = admission.handler(async (req, res, signal) => {
  const url = req.url ?? "/";
  if (req.method === "POST" && url === "/tasks") return submit(req, res, signal);
  const m = /^\/tasks\/(t\d+)$/.exec(url);
  if (req.method === "GET" && m !== null) {
    const state = tasks.get(m[1]!);
    return state === undefined ? json(res, 404, { title: "No such task", status: 404 }) : json(res, 200, { id: m[1], state });
  }
  json(res, 404, { title: "Not found", status: 404 });
});

function stats(): AgentServerStats {
  const mem = process.memoryUsage();
  const r = admission.stats.rejected;
  return {
    accepted,
    rejected,
    completed,
    queued: pool.queued,
    running: pool.running,
    maxQueued,
    queueBound: options.queue,
    tasksKept: tasks.size,
    rssMb: mem.rss / 2 ** 20,
    heapMb: mem.heapUsed / 2 ** 20,
    httpRejected: r.queueFull + r.queueTimeout + r.quota + r.closed,
  };
}

const server = createServer({ keepAliveTimeout: 10_000 }, (req, res) => {
  if (req.url === "/stats") return json(res, 200, stats());
  api(req, res);
});
server.listen(0, "127.0.0.1", () => {
  process.send?.({ port: (server.address() as AddressInfo).port });
});

process.on("message", (m) => {
  if (m !== "stop") return;
  void (async () => {
    await admission.close({ signal: AbortSignal.timeout(5000) });
    await pool.drain();
    server.closeAllConnections();
    server.close(() => process.exit(0));
  })();
});
process.on("disconnect", () => process.exit(0)); // the parent is gone
