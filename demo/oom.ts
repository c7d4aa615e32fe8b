/**
 * `npm run demo`: seed 000's OOM (parked senders) reproduced in Node with sluice, and its fix.
 *
 * The parent starts two child processes (`oom-run.ts bug` and `oom-run.ts fix`), each with its
 * own heap, releases them at the same moment, merges what they report into one table (a row per
 * run per second), prints the sluice warning the bug run catches, and ends with a verdict. It
 * exits by itself (code 0) once both children have shut down; a watchdog kills them if they
 * do not.
 */
import { fork, type ChildProcess } from "node:child_process";
import { pathToFileURL } from "node:url";
import type { ChannelStats } from "../src/index.js";
import { observe } from "../src/core/registry.js";
import type { DemoChart, DemoContext, DemoMain, DemoResult } from "./demo.js";
import { sibling } from "./sibling.js";
import {
  parseArgs,
  UsageError,
  USAGE,
  type ChildMessage,
  type DemoOptions,
  type RunName,
  type Sample,
  type StopReason,
} from "./oom-options.js";

const RUNS: readonly RunName[] = ["bug", "fix"];
/** Extra time the children get beyond `--duration` (start-up, shutdown) before the watchdog kills them. */
const WATCHDOG_GRACE_MS = 60_000;
/** The pod of the seed: its cgroup limit, for the extrapolation line. */
const POD_LIMIT_MB = 4096;

/** Where the demo's lines go (the context's `out`; console.log when run as a script). */
let print: (line: string) => void = (line) => console.log(line);

const int = (n: number): string => Math.round(n).toLocaleString("en-US");
const mb = (n: number): string => n.toFixed(1);

function bytes(n: number): string {
  if (n >= 1024 * 1024 && n % (1024 * 1024) === 0) return `${n / (1024 * 1024)} MB`;
  if (n >= 1024 && n % 1024 === 0) return `${n / 1024} KB`;
  return `${int(n)} bytes`;
}

/** Something a run reported that goes into the table, in the order of `key` (seconds). */
type Item =
  | { kind: "sample"; key: number; sample: Sample }
  | { kind: "warning"; key: number; code: string; name: string; message: string }
  | { kind: "stopped"; key: number; sample: Sample; reason: StopReason };

interface RunState {
  readonly name: RunName;
  child: ChildProcess | undefined;
  ready: boolean;
  /** Reported, not printed yet (bounded: the parent prints as soon as both runs got that far). */
  readonly queue: Item[];
  /** Samples received so far (for the verdict: one per second, bounded by `--duration`). */
  readonly samples: Sample[];
  /** The run's channel as it last reported it (relayed to this process's registry). */
  channel: ChannelStats | undefined;
  warnings: number;
  stopped: { sample: Sample; reason: StopReason } | undefined;
  shutdown: { drained: number; rejected: number; seconds: number } | undefined;
  /** The last item has been printed (or the child died): the table no longer waits for it. */
  ended: boolean;
  exited: boolean;
  exitCode: number | null;
  exitSignal: NodeJS.Signals | null;
}

// ---------------------------------------------------------------------------------------------
// The table

const COLUMNS: readonly (readonly [string, number])[] = [
  ["elapsed", 7],
  ["run", 4],
  ["accepted", 9],
  ["processed", 10],
  ["pending", 8],
  ["parked", 7],
  ["lag", 8],
  ["heap MB", 8],
];
const INDENT = " ".repeat(COLUMNS[0]![1] + 2 + COLUMNS[1]![1] + 2);

function row(cells: readonly string[]): string {
  return cells
    .map((c, i) => (i === 1 ? c.padEnd(COLUMNS[i]![1]) : c.padStart(COLUMNS[i]![1])))
    .join("  ")
    .trimEnd();
}

let lastKey = NaN;

function printSample(run: RunName, key: number, s: Sample, note = ""): void {
  const elapsed = key === lastKey ? "" : `${key.toFixed(1)}s`;
  lastKey = key;
  const line = row([elapsed, run, int(s.accepted), int(s.processed), int(s.pending), int(s.parked), int(s.lag), mb(s.heapMb)]);
  print(note === "" ? line : `${line}  ${note}`);
}

function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/)) {
    if (line !== "" && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line === "" ? word : `${line} ${word}`;
    }
  }
  if (line !== "") lines.push(line);
  return lines;
}

function stopNote(reason: StopReason, options: DemoOptions): string {
  switch (reason) {
    case "pending-cap":
      return `<- STOPPED at the safety cap (pending > ${int(options.cap)})`;
    case "heap-cap":
      return `<- STOPPED at the safety cap (heap > ${int(options.heapCapMb)} MB)`;
    case "duration":
      return "<- end of run";
  }
}

function printItem(run: RunState, item: Item, options: DemoOptions): void {
  switch (item.kind) {
    case "sample":
      return printSample(run.name, item.key, item.sample);
    case "stopped":
      return printSample(run.name, item.key, item.sample, stopNote(item.reason, options));
    case "warning": {
      const head = `${run.name.padEnd(COLUMNS[1]![1])}  !! ${item.name} ${item.code} at ${item.key.toFixed(2)}s, ` +
        `caught by the ${run.name} run with process.on("warning"):`;
      print(`${" ".repeat(COLUMNS[0]![1])}  ${head}`);
      for (const l of wrap(item.message, 96 - INDENT.length)) print(`${INDENT}   ${l}`);
      lastKey = NaN;
      return;
    }
  }
}

/**
 * Prints what both runs have reported, in time order, as far as both have got: an item is
 * printed once the other run has reported something later (or has ended).
 */
function flush(states: Record<RunName, RunState>, options: DemoOptions): void {
  for (;;) {
    const [a, b] = [states.bug, states.fix];
    const ia = a.queue[0];
    const ib = b.queue[0];
    let pick: RunState;
    if (ia !== undefined && ib !== undefined) pick = ia.key <= ib.key ? a : b;
    else if (ia !== undefined && b.ended) pick = a;
    else if (ib !== undefined && a.ended) pick = b;
    else return;
    const item = pick.queue.shift()!;
    printItem(pick, item, options);
    if (item.kind === "stopped") pick.ended = true;
  }
}

// ---------------------------------------------------------------------------------------------
// Header, summary and verdict

function header(o: DemoOptions): string {
  const perSec = Math.round(1000 / o.workMs);
  return `sluice demo: the OOM of seed 000 (parked senders) in Node, and its fix

A simulated broker publishes ${int(o.rate)} msg/s, each with a ${bytes(o.payload)} payload. The handler takes ${o.workMs} ms
per message, so it keeps up with only ~${int(perSec)}/s. The same broker and handler run twice, side by
side, each run in its own process with its own heap:

  bug  The broker pushes, and each message gets its own un-awaited send into an unbuffered channel:
         const events = new Channel<Message>(0);
         broker.subscribe((msg) => { events.send(msg).catch(log); });
       Nothing ever tells the broker to wait: every send that finds no receiver parks on the
       channel, holding its message. sluice warns (SLUICE_PARKED_SENDS) past 1,000 parked senders.
  fix  One producer pulls a message and awaits its send (or shutdown) before it pulls the next:
         const events = new Channel<Message>(${o.capacity});
         for (;;) {
           const msg = await broker.poll();
           const r = await select([send(events, msg), recv(done(signal))]);
           if (r.index === 1) break;
         }
       The process holds at most ${o.capacity} + 2 messages; the backlog stays on the broker (lag).

Columns:  accepted   taken from the broker
          processed  handled
          pending    accepted - processed: messages held in this process
          parked     senders parked on the channel (ch.stats.parkedSenders)
          lag        published but not taken yet: the backlog that waits on the broker
          heap MB    live memory after a full GC (V8 heap + Buffers)
The bug run stops itself at pending > ${int(o.cap)} or heap > ${int(o.heapCapMb)} MB (--cap, --heap-cap).
`;
}

/** How fast `field` grew per second, from the 1 s sample (past the start-up) to `last`. */
function growth(samples: readonly Sample[], last: Sample, field: "pending" | "lag"): string {
  const from = samples.length > 1 && samples[1]!.elapsed < last.elapsed ? samples[1]! : samples[0]!;
  const seconds = last.elapsed - from.elapsed;
  return seconds > 0 ? `~${int((last[field] - from[field]) / seconds)}/s` : "";
}

/** The bug run's part of the verdict, from what it reported. */
function bugVerdict(s: RunState, o: DemoOptions): { text: string; heapRate: number; last: Sample } | undefined {
  const first = s.samples[0];
  const last = s.stopped?.sample;
  if (first === undefined || last === undefined) return undefined;
  const t = last.elapsed;
  const heapRate = t > first.elapsed ? (last.heapMb - first.heapMb) / (t - first.elapsed) : 0;
  const maxPending = Math.max(last.pending, ...s.samples.map((x) => x.pending));
  if (last.pending <= o.capacity + 2) {
    return {
      text: `bug: pending stayed at <= ${int(maxPending)}: the handler keeps up at this rate, nothing piles up (try a higher --rate)`,
      heapRate,
      last,
    };
  }
  const how =
    s.stopped?.reason === "duration"
      ? `and was still growing when the run ended at ${t.toFixed(1)} s`
      : `-> stopped at the safety cap (${s.stopped?.reason === "heap-cap" ? `heap > ${int(o.heapCapMb)} MB` : `pending > ${int(o.cap)}`}) after ${t.toFixed(1)} s`;
  return {
    text: `bug: pending grew ${growth(s.samples, last, "pending")} to ${int(last.pending)} (${int(last.parked)} parked senders), heap ${mb(first.heapMb)} -> ${mb(last.heapMb)} MB ${how}`,
    heapRate,
    last,
  };
}

/** The fix run's part of the verdict. */
function fixVerdict(s: RunState, o: DemoOptions): string | undefined {
  const last = s.stopped?.sample;
  if (last === undefined || s.samples.length === 0) return undefined;
  const all = [...s.samples, last];
  const maxPending = Math.max(...all.map((x) => x.pending));
  // Heap from the 1 s sample on: the one at 0 s is the process before its first message.
  const heaps = all.slice(all.length > 2 ? 1 : 0).map((x) => x.heapMb);
  const lo = Math.min(...heaps);
  const hi = Math.max(...heaps);
  const flat = hi - lo <= Math.max(2, lo * 0.25);
  const pending =
    maxPending <= o.capacity + 2
      ? `pending flat at <= ${int(maxPending)} (capacity ${int(o.capacity)})`
      : `pending reached ${int(maxPending)} (capacity ${int(o.capacity)})`;
  const range = mb(lo) === mb(hi) ? `${mb(lo)} MB` : `${mb(lo)}-${mb(hi)} MB`;
  const heap = flat ? `heap flat at ${range}` : `heap ${range}`;
  const lag = last.lag > o.capacity ? `; the backlog waits on the broker instead (lag grew ${growth(s.samples, last, "lag")} to ${int(last.lag)})` : "";
  return `fix: ${pending}, ${heap}${lag}`;
}

/** Prints the summary and returns the verdict line (without "verdict: "). */
function summary(states: Record<RunName, RunState>, o: DemoOptions): string {
  const bug = states.bug;
  const fix = states.fix;
  print("");
  if (bug.warnings === 0) {
    print(`bug: no SLUICE_PARKED_SENDS warning: parked senders never passed 1,000 in this run`);
  }
  if (bug.shutdown !== undefined) {
    const { rejected } = bug.shutdown;
    const drainTime = (rejected * o.workMs) / 1000;
    print(
      rejected > 0
        ? `shutdown bug: close() rejected ${int(rejected)} parked sends: those messages are never processed ` +
            `(handling them would take another ${drainTime.toFixed(1)} s)`
        : "shutdown bug: no send was parked; close() rejected nothing",
    );
  }
  if (fix.shutdown !== undefined) {
    const { drained, seconds } = fix.shutdown;
    print(
      `shutdown fix: the producer saw done(signal) and closed the channel; the handler drained the ` +
        `${int(drained)} messages in it in ${seconds.toFixed(1)} s`,
    );
  }
  const b = bugVerdict(bug, o);
  const f = fixVerdict(fix, o);
  if (b !== undefined && b.heapRate > 0.1 && b.last.pending > o.capacity + 2) {
    const minutes = (POD_LIMIT_MB - b.last.heapMb) / b.heapRate / 60;
    print(
      `\nLeft running, the bug run gains ~${b.heapRate.toFixed(1)} MB/s: a pod with the seed's ${POD_LIMIT_MB / 1024} GB limit ` +
        `is OOM-killed after ~${minutes < 1 ? "1" : int(minutes)} min. The fix's memory does not depend on how far behind it is.`,
    );
  }
  const verdict = `${b?.text ?? "bug: no result"}; ${f ?? "fix: no result"}.`;
  print("");
  print(`verdict: ${verdict}`);
  return verdict;
}

// ---------------------------------------------------------------------------------------------
// The result: figures for --json, charts for --report

function peak(samples: readonly Sample[], field: keyof Sample): number {
  return samples.reduce((m, x) => Math.max(m, x[field]), 0);
}

function series(states: Record<RunName, RunState>, field: keyof Sample): DemoChart["series"] {
  return RUNS.map((r) => {
    const s = states[r];
    const all = s.stopped === undefined ? s.samples : [...s.samples, s.stopped.sample];
    return { label: r, points: all.map((x) => [x.elapsed, x[field]] as const) };
  });
}

function result(states: Record<RunName, RunState>, o: DemoOptions, verdict: string, ok: boolean): DemoResult {
  const bug = states.bug;
  const fix = states.fix;
  const all = (st: RunState): Sample[] => (st.stopped === undefined ? st.samples : [...st.samples, st.stopped.sample]);
  return {
    demo: "oom",
    title: "The OOM of seed 000 (parked senders) in Node, and its fix",
    ok,
    verdict,
    figures: {
      durationS: o.duration,
      rate: o.rate,
      payloadBytes: o.payload,
      workMs: o.workMs,
      capacity: o.capacity,
      bugStop: bug.stopped?.reason ?? "none",
      bugSeconds: bug.stopped?.sample.elapsed ?? 0,
      bugPeakPending: peak(all(bug), "pending"),
      bugPeakParked: peak(all(bug), "parked"),
      bugPeakHeapMb: Math.round(peak(all(bug), "heapMb") * 10) / 10,
      bugWarnings: bug.warnings,
      bugRejectedAtClose: bug.shutdown?.rejected ?? 0,
      fixPeakPending: peak(all(fix), "pending"),
      fixPeakHeapMb: Math.round(peak(all(fix), "heapMb") * 10) / 10,
      fixFinalLag: fix.stopped?.sample.lag ?? 0,
      fixDrained: fix.shutdown?.drained ?? 0,
    },
    charts: [
      { title: "Live memory after a full GC (V8 heap + Buffers), bug against fix", unit: "MB", series: series(states, "heapMb") },
      { title: "Messages held in the process (pending = accepted - processed)", unit: "messages", series: series(states, "pending") },
      { title: "Senders parked on the channel", unit: "senders", series: series(states, "parked") },
      { title: "Backlog left on the broker (lag)", unit: "messages", series: series(states, "lag") },
    ],
  };
}

/** Makes a run's channel, as its process last reported it, visible in this process's registry. */
function relay(state: RunState): { readonly name: string; readonly stats: object } {
  const mirror = {
    name: `${state.name}/events`,
    get stats(): object {
      return state.channel ?? {};
    },
  };
  observe("channel", mirror, true);
  return mirror;
}

// ---------------------------------------------------------------------------------------------
// The children

/** The demo's usage text. */
export const usage = USAGE;

/**
 * Runs the demo: starts the two children, prints the table through `out`, and resolves with
 * the figures and charts once both have shut down (or been killed by the watchdog, or stopped
 * by `signal`). Throws `UsageError` for bad flags.
 */
export const main: DemoMain = async (context: DemoContext): Promise<DemoResult> => {
  print = context.out;
  const parsed = parseArgs(context.args);
  if (parsed === "help") {
    for (const line of USAGE.trimEnd().split("\n")) print(line);
    return { demo: "oom", title: "help", ok: true, verdict: "help", figures: {}, charts: [] };
  }
  return run(parsed, context.signal);
};

function run(options: DemoOptions, signal: AbortSignal): Promise<DemoResult> {
  lastKey = NaN;
  print(header(options));
  print(row(COLUMNS.map(([name]) => name)));

  const runFile = sibling("./oom-run", import.meta.url);
  const execArgv = [
    ...process.execArgv, // the loader that runs this file (tsx) runs the children too
    "--expose-gc", // heap MB is measured after a full GC: live memory only
    "--no-warnings", // the run catches sluice's warning itself and reports it here
    `--max-old-space-size=${options.heapCapMb + 256}`, // a backstop behind the run's own cap
  ];
  const states = {} as Record<RunName, RunState>;
  const mirrors: { readonly name: string; readonly stats: object }[] = [];
  let interrupted = false;
  let resolve!: (r: DemoResult) => void;
  const done = new Promise<DemoResult>((r) => (resolve = r));

  const watchdog = setTimeout(() => {
    process.stderr.write(`demo: a run did not finish within ${options.duration} s + ${WATCHDOG_GRACE_MS / 1000} s; killing it\n`);
    for (const s of RUNS) if (!states[s].exited) states[s].child?.kill("SIGKILL");
  }, options.duration * 1000 + WATCHDOG_GRACE_MS);

  const onAbort = (): void => {
    interrupted = true;
    for (const s of RUNS) if (!states[s].exited) states[s].child?.kill("SIGINT");
  };
  signal.addEventListener("abort", onAbort, { once: true });

  const maybeStart = (): void => {
    if (RUNS.every((r) => states[r].ready)) for (const r of RUNS) states[r].child?.send({ type: "start" });
  };

  const onExit = (): void => {
    if (!RUNS.every((r) => states[r].exited)) return;
    clearTimeout(watchdog);
    signal.removeEventListener("abort", onAbort);
    for (const r of RUNS) states[r].ended = true;
    flush(states, options);
    mirrors.length = 0; // the relayed channels leave the registry with them
    if (interrupted) {
      print("\ninterrupted");
      resolve(result(states, options, "interrupted", false));
      return;
    }
    const failed = RUNS.filter((r) => states[r].exitCode !== 0 || states[r].shutdown === undefined);
    const verdict = summary(states, options);
    for (const r of failed) {
      const s = states[r];
      process.stderr.write(`demo: the ${r} run failed (exit ${s.exitSignal ?? s.exitCode}) before it finished\n`);
    }
    const fixPeak = Math.max(0, ...states.fix.samples.map((x) => x.pending), states.fix.stopped?.sample.pending ?? 0);
    resolve(result(states, options, verdict, failed.length === 0 && fixPeak <= options.capacity + 2));
  };

  for (const name of RUNS) {
    const child = fork(runFile, [name, JSON.stringify(options)], {
      execArgv,
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    const state: RunState = {
      name,
      child,
      ready: false,
      queue: [],
      samples: [],
      channel: undefined,
      warnings: 0,
      stopped: undefined,
      shutdown: undefined,
      ended: false,
      exited: false,
      exitCode: null,
      exitSignal: null,
    };
    states[name] = state;
    mirrors.push(relay(state));
    child.on("message", (m: ChildMessage) => {
      switch (m.type) {
        case "ready":
          state.ready = true;
          return maybeStart();
        case "sample":
          state.queue.push({ kind: "sample", key: state.samples.length, sample: m.sample });
          state.samples.push(m.sample);
          if (m.channel !== undefined) state.channel = m.channel;
          break;
        case "warning":
          state.warnings++;
          state.queue.push({ kind: "warning", key: m.elapsed, code: m.code, name: m.name, message: m.message });
          break;
        case "stopped": {
          const key = m.reason === "duration" ? options.duration : m.sample.elapsed;
          state.stopped = { sample: m.sample, reason: m.reason };
          state.queue.push({ kind: "stopped", key, sample: m.sample, reason: m.reason });
          break;
        }
        case "shutdown":
          state.shutdown = { drained: m.drained, rejected: m.rejected, seconds: m.seconds };
          return;
      }
      flush(states, options);
    });
    child.on("error", (e) => {
      process.stderr.write(`demo: the ${name} run: ${e.message}\n`);
      for (const r of RUNS) if (r !== name && !states[r].exited) states[r].child?.kill("SIGKILL");
    });
    child.on("close", (code, sig) => {
      state.exited = true;
      state.ended = true;
      state.exitCode = code;
      state.exitSignal = sig;
      state.child = undefined;
      // A run that died before it was ready must not hold the other one back.
      if (!state.ready) {
        state.ready = true;
        maybeStart();
      }
      flush(states, options);
      onExit();
    });
  }
  return done;
}

// `npm run demo` (node --import tsx demo/oom.ts): the same demo, without the CLI's flags.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const controller = new AbortController();
  const onSignal = (): void => controller.abort();
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  main({ args: process.argv.slice(2), out: (line) => console.log(line), signal: controller.signal }).then(
    (r) => {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
      if (controller.signal.aborted) process.exitCode = 130;
      else if (r.verdict !== "help" && !r.ok) process.exitCode = 1;
    },
    (e: unknown) => {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
      if (!(e instanceof UsageError)) throw e;
      process.stderr.write(`demo: ${e.message}\n\n${USAGE}`);
      process.exitCode = 2;
    },
  );
}
