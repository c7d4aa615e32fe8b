/**
 * `npm run demo:broker` (`sluice demo broker`): seed 000's consumer story over NATS JetStream.
 * A replay backlog waits in a stream; two consumer processes (their own heaps) drain identical
 * copies of it side by side:
 *
 *  - bug: a push subscription with a handler per message and no bound (the seed's
 *    `go func(msg)` per inbound message). Every message of the backlog is in memory at once;
 *    the heap grows with the backlog, so a long enough replay kills the pod.
 *  - fix: `consumeJetStream` into a `Pool({ concurrency: 16, queue: 16 })`: it asks the server
 *    for no more than the pool has room for; the heap stays flat whatever the backlog.
 *
 * Options: --messages N (default 5000), --size BYTES (default 10240, the seed's 10 KB),
 * --work-ms MS (default 40: one write to a database of 16 connections), --json (the last stdout line is the figures as one JSON object).
 * Needs NATS with JetStream on 127.0.0.1:4222 (NATS_URL).
 */
import { fork, type ChildProcess } from "node:child_process";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { connect } from "@nats-io/transport-node";
import { AckPolicy, DiscardPolicy, RetentionPolicy, StorageType, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { JetStreamSink } from "../src/nats/index.js";
import type { DemoChart, DemoMain, DemoResult } from "./demo.js";
import { childLoader, sibling } from "./sibling.js";

const RUN = sibling("./broker-run", import.meta.url);
const FIX_CAPACITY = 32;

interface Sample {
  t: number;
  heapMB: number;
  inFlight: number;
  processed: number;
}

interface Done {
  seconds: number;
  processed: number;
  maxInFlight: number;
  peakHeapMB: number;
}

interface Run {
  readonly name: "bug" | "fix";
  readonly proc: ChildProcess;
  readonly samples: Sample[];
  readonly ready: Promise<void>;
  readonly done: Promise<Done>;
}

function startRun(name: "bug" | "fix", args: string[], onSample: (name: string, s: Sample) => void): Run {
  const proc = fork(RUN, [name, ...args], { execArgv: childLoader(), stdio: ["ignore", "inherit", "inherit", "ipc"] });
  const samples: Sample[] = [];
  let ready!: () => void;
  let done!: (d: Done) => void;
  let failed!: (e: Error) => void;
  const r: Run = {
    name,
    proc,
    samples,
    ready: new Promise((res) => (ready = res)),
    done: new Promise((res, rej) => {
      done = res;
      failed = rej;
    }),
  };
  proc.on("message", (m: { type: string } & Sample & Done) => {
    if (m.type === "ready") ready();
    if (m.type === "sample" && samples.length < 100_000) {
      samples.push({ t: m.t, heapMB: m.heapMB, inFlight: m.inFlight, processed: m.processed });
      onSample(name, m);
    }
    if (m.type === "done") done(m);
  });
  proc.once("exit", (code, signal) => failed(new Error(`${name} run exited (${code ?? signal}) before it finished`)));
  return r;
}

/** The demo: fills two streams with the same backlog, runs bug and fix side by side, compares. */
/** The demo's flags (`sluice demo broker --help`). */
export const usage = `  --messages N    messages published to the stream (default 5000)
  --size BYTES    payload size of each message (default 10240)
  --work-ms MS    how long handling one message takes (default 40)
  --json          print the final figures as one JSON line
  (NATS with JetStream on NATS_URL, default 127.0.0.1:4222)
`;

export const main: DemoMain = async ({ args, out, signal }) => {
  const { values } = parseArgs({
    args: [...args],
    options: {
      messages: { type: "string", default: "5000" },
      size: { type: "string", default: "10240" },
      "work-ms": { type: "string", default: "40" },
      json: { type: "boolean", default: false },
    },
    strict: true,
  });
  const messages = Number(values.messages);
  const size = Number(values.size);
  const workMs = Number(values["work-ms"]);
  for (const [k, v] of [["--messages", messages], ["--size", size], ["--work-ms", workMs]] as const) {
    if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`${k} must be a positive integer, got ${String(v)}`);
  }
  const nc = await connect({ servers: process.env.NATS_URL ?? "127.0.0.1:4222" }).catch((e: unknown) => {
    throw new Error(`the broker demo needs NATS with JetStream on ${process.env.NATS_URL ?? "127.0.0.1:4222"}: ${(e as Error).message}`);
  });
  const jsm = await jetstreamManager(nc);
  const js = jetstream(nc);
  const suffix = `${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
  const streams = { bug: `demo_bug_${suffix}`, fix: `demo_fix_${suffix}` };
  const runs: Run[] = [];
  try {
    out(`Seed 000 over NATS: a replay of ${messages.toLocaleString("en-US")} events of ${size.toLocaleString("en-US")} bytes, ${workMs} ms of work each.`);
    for (const name of ["bug", "fix"] as const) {
      const stream = streams[name];
      await jsm.streams.add({
        name: stream,
        subjects: [`${stream}.events`],
        retention: RetentionPolicy.Workqueue,
        storage: StorageType.Memory,
        discard: DiscardPolicy.New,
      });
      if (name === "bug") {
        await jsm.consumers.add(stream, {
          durable_name: "c",
          ack_policy: AckPolicy.Explicit,
          deliver_subject: `_demo.deliver.${suffix}`,
          max_ack_pending: messages, // what a replay "needs" when each message gets its own handler
          ack_wait: 120e9,
        });
      } else {
        await jsm.consumers.add(stream, { durable_name: "c", ack_policy: AckPolicy.Explicit, ack_wait: 30e9 });
      }
      const sink = new JetStreamSink(js, { maxInFlight: 256 });
      const body = "e".repeat(size);
      const pending = new Set<Promise<unknown>>();
      for (let i = 0; i < messages; i++) {
        const p = sink.publish(`${stream}.events`, body, { msgID: String(i) }).finally(() => pending.delete(p));
        pending.add(p);
        if (pending.size >= 256) await Promise.race(pending);
      }
      await Promise.all(pending);
    }
    out("Backlog published to two identical streams. Starting both consumers.");
    out("  elapsed  run  in flight  processed  heap MB");
    let lastPrint = { bug: -1, fix: -1 };
    const onSample = (name: string, smp: Sample): void => {
      const key = name as "bug" | "fix";
      const second = Math.floor(smp.t * 2) / 2;
      if (second <= lastPrint[key]) return;
      lastPrint = { ...lastPrint, [key]: second };
      out(`${smp.t.toFixed(1).padStart(8)}s  ${name}  ${String(smp.inFlight).padStart(9)}  ${String(smp.processed).padStart(9)}  ${smp.heapMB.toFixed(1).padStart(7)}`);
    };
    const common = ["c", String(workMs), String(messages)];
    runs.push(startRun("bug", [streams.bug, ...common], onSample), startRun("fix", [streams.fix, ...common], onSample));
    const onAbort = (): void => {
      for (const r of runs) r.proc.kill("SIGTERM");
    };
    signal.addEventListener("abort", onAbort, { once: true });
    let bug: Done;
    let fix: Done;
    try {
      [bug, fix] = await Promise.all(runs.map((r) => r.done)) as [Done, Done];
    } finally {
      signal.removeEventListener("abort", onAbort);
    }
    const ratio = bug.peakHeapMB / fix.peakHeapMB;
    const bound = fix.maxInFlight <= FIX_CAPACITY;
    const ok = bound && fix.processed === messages && bug.processed === messages && bug.maxInFlight > FIX_CAPACITY;
    const perThousand = (bug.peakHeapMB - fix.peakHeapMB) / (messages / 1000);
    const heapWords =
      ratio >= 1.5
        ? `; the bug's heap grows with the backlog (~${perThousand.toFixed(1)} MB per 1,000 messages here), the fix's does not (${ratio.toFixed(1)}x less at the peak)`
        : "; this backlog is too small to show in the heap (run with the defaults: 5,000 messages of 10 KB)";
    const verdict = ok
      ? `bug: ${bug.maxInFlight.toLocaleString("en-US")} messages in flight, heap peak ${bug.peakHeapMB.toFixed(1)} MB; ` +
        `fix: at most ${fix.maxInFlight} in flight (bound ${FIX_CAPACITY}), heap peak ${fix.peakHeapMB.toFixed(1)} MB${heapWords}.`
      : `unexpected: bug in flight ${bug.maxInFlight}, fix in flight ${fix.maxInFlight} (bound ${FIX_CAPACITY}), processed ${bug.processed}/${fix.processed} of ${messages}`;
    out(verdict);
    const charts: DemoChart[] = [
      {
        title: "Heap used",
        unit: "MB",
        series: runs.map((r) => ({ label: r.name, points: r.samples.map((x) => [x.t, x.heapMB] as const) })),
      },
      {
        title: "Messages in flight in the consumer process",
        unit: "messages",
        series: runs.map((r) => ({ label: r.name, points: r.samples.map((x) => [x.t, x.inFlight] as const) })),
      },
    ];
    const result: DemoResult = {
      demo: "broker",
      title: "Seed 000 over NATS JetStream: a push handler per message vs the bounded pull source",
      ok,
      verdict,
      figures: {
        messages,
        sizeBytes: size,
        workMs,
        bugMaxInFlight: bug.maxInFlight,
        bugPeakHeapMB: Number(bug.peakHeapMB.toFixed(1)),
        bugSeconds: Number(bug.seconds.toFixed(2)),
        fixMaxInFlight: fix.maxInFlight,
        fixBound: FIX_CAPACITY,
        fixPeakHeapMB: Number(fix.peakHeapMB.toFixed(1)),
        fixSeconds: Number(fix.seconds.toFixed(2)),
        heapRatio: Number(ratio.toFixed(2)),
      },
      charts,
    };
    return result;
  } finally {
    for (const r of runs) if (r.proc.exitCode === null && r.proc.signalCode === null) r.proc.kill("SIGKILL");
    for (const s of Object.values(streams)) await jsm.streams.delete(s).catch(() => undefined);
    await nc.close();
  }
};

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const ac = new AbortController();
  process.once("SIGINT", () => ac.abort());
  process.once("SIGTERM", () => ac.abort());
  const args = process.argv.slice(2);
  main({ args, out: (line) => console.log(line), signal: ac.signal }).then(
    (r) => {
      if (args.includes("--json")) console.log(JSON.stringify(r.figures));
      process.exitCode = r.ok ? 0 : 1;
    },
    (e: unknown) => {
      console.error(e instanceof Error ? e.message : e);
      process.exitCode = e instanceof RangeError || e instanceof TypeError ? 2 : 1;
    },
  );
}
