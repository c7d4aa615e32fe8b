/**
 * `npm run bench:brokers`: how the bounded JetStream source scales with consumer processes.
 *
 * For 1, 2 and 4 consumer processes (each `consumeJetStream` into a `Pool({ concurrency: 16,
 * queue: 16 })`), drains a pre-filled work-queue stream and reports messages per second, and
 * where the time goes: CPU seconds of the consumer processes and of nats-server per 1,000
 * messages, against the wall time available on this machine's cores. Two handlers: `noop` (the
 * cost of the broker round trips and sluice itself) and `io` (5 ms of waiting per message, as a
 * database write would: latency-bound work, where more processes should help until the CPU is
 * full).
 *
 * Options: --messages N (default 20000), --consumers 1,2,4, --modes noop,io, --write FILE
 * (default bench/BROKERS-RESULTS.md; "-" to skip). Child mode (internal): --child.
 */
import { fork, type ChildProcess } from "node:child_process";
import { readFileSync, writeFileSync, readdirSync } from "node:fs";
import { availableParallelism, loadavg } from "node:os";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { connect } from "@nats-io/transport-node";
import { AckPolicy, DiscardPolicy, RetentionPolicy, StorageType, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { JetStreamSink, consumeJetStream } from "../src/nats/index.js";
import { Pool } from "../src/flow/index.js";

const SELF = fileURLToPath(import.meta.url);
const NATS = process.env.NATS_URL ?? "127.0.0.1:4222";

// ---------------------------------------------------------------------------------------------
// Child: one consumer process.

async function child(stream: string, durable: string, mode: string): Promise<void> {
  const nc = await connect({ servers: NATS });
  const consumer = await jetstream(nc).consumers.get(stream, durable);
  const pool = new Pool({ concurrency: 16, queue: 16 });
  const ac = new AbortController();
  process.on("disconnect", () => ac.abort());
  let handled = 0;
  const report = setInterval(() => process.send?.({ type: "progress", handled }), 100);
  await new Promise<void>((resolve) => {
    process.once("message", () => resolve()); // "go"
    process.send?.({ type: "ready" });
  });
  const cpu0 = process.cpuUsage();
  const lag = monitorEventLoopDelay({ resolution: 10 });
  lag.enable();
  const source = consumeJetStream(consumer, {
    pool,
    signal: ac.signal,
    handler:
      mode === "io"
        ? async () => {
            await new Promise((r) => setTimeout(r, 5));
            handled++;
          }
        : () => {
            handled++;
          },
  });
  process.once("message", () => ac.abort()); // "stop"
  const stats = await source;
  const cpu = process.cpuUsage(cpu0);
  lag.disable();
  clearInterval(report);
  process.send?.({
    type: "done",
    handled,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    fetches: stats.fetches,
    maxInFlight: stats.maxInFlight,
    runMs: pool.stats.runTime.mean,
    lagMs: lag.mean / 1e6,
  });
  await nc.drain();
  process.disconnect?.();
}

// ---------------------------------------------------------------------------------------------
// Parent.

/** CPU seconds used so far by the nats-server process, when /proc shows it (else undefined). */
function natsServerCpu(): number | undefined {
  try {
    for (const pid of readdirSync("/proc")) {
      if (!/^\d+$/.test(pid)) continue;
      let comm: string;
      try {
        comm = readFileSync(`/proc/${pid}/comm`, "utf8").trim();
      } catch {
        continue;
      }
      if (comm !== "nats-server") continue;
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      return (Number(fields[11]) + Number(fields[12])) / 100; // utime + stime, in clock ticks (100 Hz)
    }
  } catch {
    return undefined;
  }
  return undefined;
}

interface Row {
  mode: string;
  consumers: number;
  messages: number;
  seconds: number;
  perSecond: number;
  consumerCpuPer1k: number;
  serverCpuPer1k: number | undefined;
  cpuShare: number;
  fetches: number;
  maxInFlight: number;
  /** Mean time a handler took (ms): 5 ms of io stretches when the event loop is late. */
  runMs: number;
  /** Mean event-loop delay in the consumer processes (ms): time spent waiting for a core. */
  lagMs: number;
  load: number;
}

interface Kid {
  proc: ChildProcess;
  handled: number;
  ready: Promise<void>;
  done: Promise<KidDone>;
}

interface KidDone {
  handled: number;
  cpuSeconds: number;
  fetches: number;
  maxInFlight: number;
  runMs: number;
  lagMs: number;
}

function spawnKid(args: string[]): Kid {
  const proc = fork(SELF, ["--child", ...args], { execArgv: ["--import", "tsx"], stdio: ["ignore", "inherit", "inherit", "ipc"] });
  let ready!: () => void;
  let done!: (d: KidDone) => void;
  const k: Kid = {
    proc,
    handled: 0,
    ready: new Promise((r) => (ready = r)),
    done: new Promise((r) => (done = r)),
  };
  proc.on("message", (m: { type: string } & KidDone) => {
    if (m.type === "ready") ready();
    if (m.type === "progress") k.handled = m.handled;
    if (m.type === "done") done(m);
  });
  return k;
}

async function measure(mode: string, consumers: number, messages: number): Promise<Row> {
  const nc = await connect({ servers: NATS });
  const jsm = await jetstreamManager(nc);
  const name = `bench_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
  await jsm.streams.add({ name, subjects: [`${name}.>`], retention: RetentionPolicy.Workqueue, storage: StorageType.File, discard: DiscardPolicy.New });
  const kids: Kid[] = [];
  try {
    await jsm.consumers.add(name, { durable_name: "c", ack_policy: AckPolicy.Explicit, max_ack_pending: 10_000 });
    const sink = new JetStreamSink(jetstream(nc), { maxInFlight: 512 });
    const body = new Uint8Array(256);
    const pending = new Set<Promise<unknown>>();
    for (let i = 0; i < messages; i++) {
      const p = sink.publish(`${name}.work`, body).finally(() => pending.delete(p));
      pending.add(p);
      if (pending.size >= 512) await Promise.race(pending);
    }
    await Promise.all(pending);
    for (let i = 0; i < consumers; i++) kids.push(spawnKid([name, "c", mode]));
    await Promise.all(kids.map((k) => k.ready));
    const server0 = natsServerCpu();
    const t0 = performance.now();
    for (const k of kids) k.proc.send("go");
    while (kids.reduce((n, k) => n + k.handled, 0) < messages) await new Promise((r) => setTimeout(r, 20));
    const seconds = (performance.now() - t0) / 1000;
    const server1 = natsServerCpu();
    for (const k of kids) k.proc.send("stop");
    const done = await Promise.all(kids.map((k) => k.done));
    const consumerCpu = done.reduce((n, d) => n + d.cpuSeconds, 0);
    const serverCpu = server0 !== undefined && server1 !== undefined ? server1 - server0 : undefined;
    const cores = availableParallelism();
    return {
      mode,
      consumers,
      messages,
      seconds,
      perSecond: messages / seconds,
      consumerCpuPer1k: (consumerCpu / messages) * 1000,
      serverCpuPer1k: serverCpu === undefined ? undefined : (serverCpu / messages) * 1000,
      cpuShare: (consumerCpu + (serverCpu ?? 0)) / (seconds * cores),
      fetches: done.reduce((n, d) => n + d.fetches, 0),
      maxInFlight: Math.max(...done.map((d) => d.maxInFlight)),
      runMs: done.reduce((n, d) => n + d.runMs, 0) / done.length,
      lagMs: done.reduce((n, d) => n + d.lagMs, 0) / done.length,
      load: loadavg()[0]!,
    };
  } finally {
    for (const k of kids) if (k.proc.exitCode === null && k.proc.signalCode === null) k.proc.kill("SIGKILL");
    await jsm.streams.delete(name).catch(() => undefined);
    await nc.close();
  }
}

async function parent(): Promise<void> {
  const { values } = parseArgs({
    options: {
      messages: { type: "string", default: "20000" },
      consumers: { type: "string", default: "1,2,4" },
      modes: { type: "string", default: "noop,io" },
      write: { type: "string", default: "bench/BROKERS-RESULTS.md" },
    },
  });
  const messages = Number(values.messages);
  if (!Number.isSafeInteger(messages) || messages < 1) throw new RangeError(`--messages must be a positive integer, got ${values.messages}`);
  const counts = values.consumers.split(",").map(Number);
  const modes = values.modes.split(",");
  const rows: Row[] = [];
  console.log(`brokers-scale: ${messages} messages per run, cores ${availableParallelism()}, NATS ${NATS}`);
  for (const mode of modes) {
    for (const n of counts) {
      const r = await measure(mode, n, messages);
      rows.push(r);
      console.log(
        `${mode.padEnd(5)} consumers ${n}: ${Math.round(r.perSecond).toString().padStart(6)} msg/s in ${r.seconds.toFixed(2)} s; ` +
          `CPU per 1k msgs: consumers ${r.consumerCpuPer1k.toFixed(3)} s, nats-server ${r.serverCpuPer1k?.toFixed(3) ?? "?"} s; ` +
          `cores busy ${(r.cpuShare * 100).toFixed(0)}%; fetches ${r.fetches}; max held ${r.maxInFlight}; handler ${r.runMs.toFixed(2)} ms; loop delay ${r.lagMs.toFixed(1)} ms; load ${r.load.toFixed(1)}`,
      );
    }
  }
  if (values.write !== "-") {
    const table = [
      "| handler | consumer processes | msg/s | vs 1 process | consumer CPU s / 1k msgs | nats-server CPU s / 1k msgs | both cores busy | fetches | max held per process | handler mean ms | event-loop delay mean ms | load avg |",
      "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
      ...rows.map((r) => {
        const base = rows.find((x) => x.mode === r.mode && x.consumers === counts[0])!;
        return `| ${r.mode} | ${r.consumers} | ${Math.round(r.perSecond)} | ${(r.perSecond / base.perSecond).toFixed(2)}x | ${r.consumerCpuPer1k.toFixed(3)} | ${r.serverCpuPer1k?.toFixed(3) ?? "?"} | ${(r.cpuShare * 100).toFixed(0)}% | ${r.fetches} | ${r.maxInFlight} | ${r.runMs.toFixed(2)} | ${r.lagMs.toFixed(1)} | ${r.load.toFixed(1)} |`;
      }),
    ].join("\n");
    const previous = (() => {
      try {
        return readFileSync(values.write, "utf8");
      } catch {
        return "";
      }
    })();
    const marker = "<!-- results -->";
    const head = previous.includes(marker) ? previous.slice(0, previous.indexOf(marker) + marker.length) : `# Broker scale results\n\n${marker}`;
    writeFileSync(values.write, `${head}\n\nRun ${new Date().toISOString()}, ${messages} messages per run, ${availableParallelism()} cores, Node ${process.version}.\n\n${table}\n`);
    console.log(`written: ${values.write}`);
  }
}

const argv = process.argv.slice(2);
if (argv[0] === "--child") await child(argv[1]!, argv[2]!, argv[3]!);
else await parent();
