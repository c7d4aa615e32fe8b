/**
 * Overload: two producer processes publish far faster than one slow consumer process handles.
 * The stream (max_msgs 200, discard new) never holds more than its limit, the producers see
 * BusyError and wait, nothing published is lost (the consumer acks exactly what the server
 * stored), and every process's heap (sampled after a full GC) stays flat.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { fork, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { testStream, until } from "./helpers.js";

const CHILD = fileURLToPath(new URL("./fixtures/overload-child.ts", import.meta.url));
const LIMIT = 200;
const RUN_MS = Number(process.env.SLUICE_OVERLOAD_MS ?? 6000);

interface Sample {
  t: number;
  heapUsed: number;
  rss: number;
  published: number;
  busy: number;
  acked: number;
}

interface Proc {
  name: string;
  proc: ChildProcess;
  ready: Promise<void>;
  samples: Sample[];
  final: Promise<Sample>;
  exited: Promise<number | null>;
}

function start(name: string, args: string[]): Proc {
  const proc = fork(CHILD, args, { execArgv: ["--import", "tsx", "--expose-gc"], stdio: ["ignore", "inherit", "inherit", "ipc"] });
  let ready!: () => void;
  let final!: (s: Sample) => void;
  const p: Proc = {
    name,
    proc,
    ready: new Promise((r) => (ready = r)),
    samples: [],
    final: new Promise((r) => (final = r)),
    exited: new Promise((r) => proc.once("exit", (code) => r(code))),
  };
  proc.on("message", (m: { type: string } & Sample) => {
    if (m.type === "ready") ready();
    // Bounded: one sample every 250 ms for a run of seconds.
    if (m.type === "sample" && p.samples.length < 10_000) p.samples.push(m);
    if (m.type === "final") final(p.samples[p.samples.length - 1] ?? m);
  });
  return p;
}

const MB = 1024 * 1024;

test("overload: the stream stays within its limit, producers see BusyError, nothing lost, memory flat", { timeout: 120_000 }, async (t) => {
  const s = await testStream("overload", { max_msgs: LIMIT });
  const procs: Proc[] = [];
  try {
    await s.consumer({ ack_wait: 10e9, max_deliver: -1 });
    const consumer = start("consumer", ["consumer", s.name, "c0"]);
    const producers = [start("producer-1", ["producer", s.subject]), start("producer-2", ["producer", s.subject])];
    procs.push(consumer, ...producers);
    await Promise.all(procs.map((p) => p.ready));
    let maxDepth = 0;
    const end = Date.now() + RUN_MS;
    while (Date.now() < end) {
      maxDepth = Math.max(maxDepth, await s.count());
      await new Promise((r) => setTimeout(r, 50));
    }
    for (const p of producers) p.proc.kill("SIGTERM");
    const finals = await Promise.all(producers.map((p) => p.final));
    const published = finals.reduce((n, f) => n + f.published, 0);
    const busy = finals.reduce((n, f) => n + f.busy, 0);
    await until(async () => (await s.count()) === 0, "the consumer drains the stream", 60_000, 100);
    await until(() => (consumer.samples.at(-1)?.acked ?? 0) >= published, "the consumer's count reaches the published count", 10_000, 50);
    consumer.proc.kill("SIGTERM");
    const cfinal = await consumer.final;
    const codes = await Promise.all(procs.map((p) => p.exited));

    const lines = procs.map((p) => {
      const heap = p.samples.map((x) => x.heapUsed);
      return `${p.name}: heap ${(Math.min(...heap) / MB).toFixed(1)}..${(Math.max(...heap) / MB).toFixed(1)} MB, rss last ${((p.samples.at(-1)?.rss ?? 0) / MB).toFixed(0)} MB`;
    });
    t.diagnostic(`overload: ${published} published, ${busy} BusyErrors, max depth ${maxDepth}/${LIMIT}, ${cfinal.acked} acked; ${lines.join("; ")}`);

    assert.ok(maxDepth <= LIMIT, `stream depth ${maxDepth} > ${LIMIT}`);
    assert.ok(busy > 0, "producers were told the stream was full");
    assert.equal(cfinal.acked, published, "every stored message was consumed, none lost, none twice");
    for (const p of procs) {
      // Flat: after the first second (start-up), the heap after a full GC does not climb.
      const steady = p.samples.filter((x) => x.t >= 1.5).map((x) => x.heapUsed);
      assert.ok(steady.length >= 4, `${p.name}: too few samples (${steady.length})`);
      const half = Math.floor(steady.length / 2);
      const early = Math.max(...steady.slice(0, half));
      const late = Math.max(...steady.slice(half));
      assert.ok(late - early < 4 * MB, `${p.name}: heap climbed from ${(early / MB).toFixed(1)} to ${(late / MB).toFixed(1)} MB`);
    }
    assert.deepEqual(codes, [0, 0, 0]);
  } finally {
    for (const p of procs) if (p.proc.exitCode === null && p.proc.signalCode === null) p.proc.kill("SIGKILL");
    await s.close();
  }
});
