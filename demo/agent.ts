/**
 * `npm run demo:agent`: seed 000's agent inbox, with admission control. An inbox server (a
 * child process, `agent-server.ts`) takes agent tasks into a bounded queue served by a few
 * workers and answers `202` + a task id, or `503` + `Retry-After` when the queue is full; many
 * agents (`agent-clients.ts`) submit tasks faster than the workers can go, honouring every
 * Retry-After with jitter and backoff. Each second the demo prints what the server accepted,
 * rejected and completed, its queue and its memory; at the end it stops the agents, lets the
 * inbox drain, checks that every task that got a 202 ended `completed` (asking the status
 * endpoint for each one), and prints a verdict.
 *
 * Flags: --duration <s> (10), --agents <n> (64), --workers <n> (4), --queue <n> (32),
 * --task-ms <ms> (50), --json (the last line is the final figures as one JSON object).
 */
import { fork, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { Pool } from "../src/flow/index.js";
import type { DemoChart, DemoContext, DemoMain, DemoResult } from "./demo.js";
import type { AgentServerOptions, AgentServerStats } from "./agent-server.js";
import { runAgents, type AgentTally } from "./agent-clients.js";
import { childLoader, sibling } from "./sibling.js";

interface AgentDemoOptions extends AgentServerOptions {
  readonly duration: number;
  readonly agents: number;
  readonly json: boolean;
}

const SERVER = sibling("./agent-server", import.meta.url);
/** Heap growth past the first second's that still counts as flat. */
const FLAT_HEAP_MB = 64;

/** The demo's flags (`sluice demo agent --help`). */
export const usage = `  --duration S    seconds of overload (default 10)
  --agents N      concurrent agent clients (default 64)
  --workers N     the inbox's pool concurrency (default 4)
  --queue N       the inbox's bounded queue (default 32)
  --task-ms MS    how long one agent task takes (default 50)
  --json          print the final figures as one JSON line
`;

function options(args: readonly string[]): AgentDemoOptions {
  const { values } = parseArgs({
    args: [...args],
    options: {
      duration: { type: "string", default: "10" },
      agents: { type: "string", default: "64" },
      workers: { type: "string", default: "4" },
      queue: { type: "string", default: "32" },
      "task-ms": { type: "string", default: "50" },
      json: { type: "boolean", default: false },
    },
    strict: true,
  });
  const int = (name: string, v: string | undefined, min: number): number => {
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < min) throw new RangeError(`--${name} must be an integer >= ${min}, got ${v}`);
    return n;
  };
  return {
    duration: int("duration", values.duration, 1),
    agents: int("agents", values.agents, 1),
    workers: int("workers", values.workers, 1),
    queue: int("queue", values.queue, 0),
    taskMs: int("task-ms", values["task-ms"], 1),
    json: values.json === true,
  };
}

async function getStats(url: string): Promise<AgentServerStats> {
  const res = await fetch(`${url}/stats`);
  return (await res.json()) as AgentServerStats;
}

async function startServer(o: AgentServerOptions): Promise<{ child: ChildProcess; url: string }> {
  const child = fork(SERVER, [JSON.stringify({ workers: o.workers, queue: o.queue, taskMs: o.taskMs })], {
    execArgv: childLoader(),
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const [message] = (await Promise.race([
    once(child, "message"),
    once(child, "exit").then(() => {
      throw new Error("the inbox server exited before listening");
    }),
  ])) as [{ port: number }];
  return { child, url: `http://127.0.0.1:${message.port}` };
}

async function stopServer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, "exit");
  child.send("stop");
  const t = setTimeout(() => child.kill("SIGKILL"), 15_000);
  await exited;
  clearTimeout(t);
}

const pad = (v: string | number, n: number): string => String(v).padStart(n);

/** Runs the demo (see the file's comment). */
export const main: DemoMain = async (context: DemoContext): Promise<DemoResult> => {
  const o = options(context.args);
  const out = context.out;
  out(`Agent inbox: ${o.agents} agents submit tasks back to back; ${o.workers} workers, ${o.taskMs} ms a task ` +
    `(capacity ~${Math.round((o.workers * 1000) / o.taskMs)} tasks/s); the inbox queue holds ${o.queue}.`);
  out("Full: 503 + Retry-After. The agents wait what they are told (with jitter), within a retry budget.");
  out("");
  const { child, url } = await startServer(o);
  const tally: AgentTally = { acceptedIds: [], unavailable: 0, withoutRetryAfter: 0, gaveUp: 0, errors: 0 };
  const agentsStop = new AbortController();
  const series = { accepted: [] as [number, number][], rejected: [] as [number, number][], completed: [] as [number, number][], queued: [] as [number, number][], rss: [] as [number, number][], heap: [] as [number, number][] };
  let last = await getStats(url);
  const first = last;
  let peakRss = last.rssMb;
  let peakHeap = last.heapMb;
  let heapAfter1s = last.heapMb;
  try {
    const agents = runAgents(url, o.agents, agentsStop.signal, context.signal, tally);
    out(`${pad("t", 4)}  ${pad("accepted/s", 10)}  ${pad("rejected/s", 10)}  ${pad("completed/s", 11)}  ${pad("queued", 6)}  ${pad("running", 7)}  ${pad("rss MB", 7)}  ${pad("heap MB", 7)}`);
    const started = performance.now();
    for (let sec = 1; sec <= o.duration && !context.signal.aborted; sec++) {
      const wait = started + sec * 1000 - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const s = await getStats(url);
      const row = { accepted: s.accepted - last.accepted, rejected: s.rejected - last.rejected, completed: s.completed - last.completed };
      out(`${pad(`${sec}s`, 4)}  ${pad(row.accepted, 10)}  ${pad(row.rejected, 10)}  ${pad(row.completed, 11)}  ${pad(s.queued, 6)}  ${pad(s.running, 7)}  ${pad(s.rssMb.toFixed(1), 7)}  ${pad(s.heapMb.toFixed(1), 7)}`);
      series.accepted.push([sec, row.accepted]);
      series.rejected.push([sec, row.rejected]);
      series.completed.push([sec, row.completed]);
      series.queued.push([sec, s.queued]);
      series.rss.push([sec, s.rssMb]);
      series.heap.push([sec, s.heapMb]);
      peakRss = Math.max(peakRss, s.rssMb);
      peakHeap = Math.max(peakHeap, s.heapMb);
      if (sec === 1) heapAfter1s = s.heapMb;
      last = s;
    }
    agentsStop.abort(new Error("the demo's time is up"));
    await agents;

    // Drain: every accepted task must end completed.
    let drained = await getStats(url);
    for (let i = 0; i < 600 && (drained.queued > 0 || drained.running > 0); i++) {
      await new Promise((r) => setTimeout(r, 50));
      drained = await getStats(url);
    }
    const checker = new Pool({ concurrency: 16 });
    let notCompleted = 0;
    for await (const state of checker.map(tally.acceptedIds, async (id) => {
      const res = await fetch(`${url}/tasks/${id}`);
      return res.status === 200 ? ((await res.json()) as { state: string }).state : `http ${res.status}`;
    })) {
      if (state !== "completed") notCompleted++;
    }
    const end = await getStats(url);
    const heapGrowth = peakHeap - heapAfter1s;
    const figures = {
      agents: o.agents,
      workers: o.workers,
      queueBound: o.queue,
      accepted: end.accepted,
      rejected: end.rejected,
      completed: end.completed,
      acceptedSeenByAgents: tally.acceptedIds.length,
      notCompleted,
      unavailableSeenByAgents: tally.unavailable,
      withoutRetryAfter: tally.withoutRetryAfter,
      gaveUp: tally.gaveUp,
      errors: tally.errors,
      maxQueued: end.maxQueued,
      rssStartMb: Number(first.rssMb.toFixed(1)),
      rssPeakMb: Number(peakRss.toFixed(1)),
      heapAfter1sMb: Number(heapAfter1s.toFixed(1)),
      heapPeakMb: Number(peakHeap.toFixed(1)),
    };
    const checks: [boolean, string][] = [
      [notCompleted === 0 && tally.acceptedIds.length === end.accepted && end.completed === end.accepted,
        `every 202 ended completed (${end.accepted} accepted, ${tally.acceptedIds.length} ids received, ${notCompleted} of them not completed)`],
      [end.rejected > 0, `the inbox was overloaded and said so (${end.rejected} answered 503)`],
      [tally.withoutRetryAfter === 0, `every 503 carried a Retry-After (${tally.unavailable} seen by the agents)`],
      [end.maxQueued <= o.queue, `the queue stayed within its bound (max ${end.maxQueued} of ${o.queue})`],
      [heapGrowth < FLAT_HEAP_MB, `the server's heap stayed flat (peak ${peakHeap.toFixed(1)} MB, ${heapGrowth.toFixed(1)} MB over the first second's)`],
      [tally.errors === 0, `no request failed (${tally.errors} errors)`],
    ];
    const ok = checks.every(([c]) => c) && !context.signal.aborted;
    out("");
    for (const [c, text] of checks) out(`${c ? "ok  " : "FAIL"} ${text}`);
    const verdict = ok
      ? `Verdict: bounded. ${end.accepted} tasks accepted and all completed; ${end.rejected} refused with 503 + Retry-After instead of queued without bound; memory flat.`
      : `Verdict: NOT OK: ${checks.filter(([c]) => !c).map(([, t]) => t).join("; ")}${context.signal.aborted ? " (interrupted)" : ""}.`;
    out(verdict);
    const charts: DemoChart[] = [
      { title: "Inbox answers per second", unit: "requests/s", series: [
        { label: "accepted (202)", points: series.accepted },
        { label: "rejected (503)", points: series.rejected },
        { label: "completed", points: series.completed },
      ] },
      { title: "Inbox queue", unit: "tasks", series: [{ label: "queued", points: series.queued }] },
      { title: "Server memory", unit: "MB", series: [{ label: "rss", points: series.rss }, { label: "heap used", points: series.heap }] },
    ];
    return { demo: "agent", title: "Agent inbox: 202 or 503 + Retry-After, nothing accepted is lost", ok, verdict, figures, charts };
  } finally {
    agentsStop.abort();
    await stopServer(child);
  }
};

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const ac = new AbortController();
  const stop = (): void => ac.abort(new Error("interrupted"));
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  const args = process.argv.slice(2);
  main({ args, out: (line) => console.log(line), signal: ac.signal }).then(
    (result) => {
      if (args.includes("--json")) console.log(JSON.stringify(result.figures));
      process.exitCode = result.ok ? 0 : 1;
      process.off("SIGINT", stop);
      process.off("SIGTERM", stop);
    },
    (e: unknown) => {
      console.error(e instanceof Error ? e.message : e);
      process.exitCode = 2;
    },
  );
}
