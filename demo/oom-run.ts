/**
 * One run of the demo, in its own child process (so that its heap is its own):
 * `node --import tsx --expose-gc demo/oom-run.ts <bug|fix> <options as JSON>`, forked by
 * `oom.ts` with an IPC channel. It reports a sample every second, the sluice warnings it sees,
 * why it stopped and how its shutdown went; it exits by itself once shut down, and at once if
 * the parent goes away.
 */
import { Channel, done, recv, select, send, type ChannelStats } from "../src/index.js";
import { SimulatedBroker, SlowHandler, type Message } from "./oom-sim.js";
import type { ChildMessage, DemoOptions, ParentMessage, RunName, Sample, StopReason } from "./oom-options.js";

/** What the sampler needs from a run, and how to stop it. */
interface Run {
  accepted(): number;
  processed(): number;
  parked(): number;
  lag(): number;
  /** The channel's counters (relayed to the parent, for `--dashboard`). */
  stats(): ChannelStats;
  /** Stops taking messages from the broker, at once. */
  stopIntake(): void;
  /** Shuts down what is left (after `stopIntake`); resolves when nothing of the run is left. */
  shutdown(): Promise<{ rejected: number }>;
}

/**
 * THE BUG, as it is written in Node: the broker pushes, and every message gets its own
 * un-awaited send into an unbuffered channel. Nothing ever tells the broker to wait, so every
 * send that finds no receiver parks on the channel, holding its message (10 KB) and a promise.
 */
function startBug(broker: SimulatedBroker, handler: SlowHandler, onMessage: () => void): Run {
  const events = new Channel<Message>(0, { name: "events" });
  let accepted = 0;
  let processed = 0;
  let rejected = 0;

  const consumer = (async () => {
    for await (const msg of events) {
      await handler.handle(msg);
      processed++;
    }
  })();

  const unsubscribe = broker.subscribe((msg) => {
    accepted++;
    events.send(msg).catch(() => rejected++); // fire and forget: one parked send per message
    onMessage();
  });

  return {
    accepted: () => accepted,
    processed: () => processed,
    parked: () => events.stats.parkedSenders,
    lag: () => broker.lag(),
    stats: () => events.stats,
    stopIntake: unsubscribe,
    async shutdown() {
      events.close(); // rejects every parked send: those messages are never processed
      await consumer; // the handler finishes the message it holds
      return { rejected };
    },
  };
}

/**
 * THE FIX: one producer loop pulls a message, then awaits its send into a bounded channel,
 * or shutdown, whichever comes first. It pulls the next message only when the send completed,
 * so the process holds at most `capacity` + 2 messages and the backlog waits on the broker.
 */
function startFix(broker: SimulatedBroker, handler: SlowHandler, capacity: number): Run {
  const events = new Channel<Message>(capacity, { name: "events" });
  const stop = new AbortController();
  let accepted = 0;
  let processed = 0;

  const producer = (async () => {
    try {
      for (;;) {
        const msg = await broker.poll({ signal: stop.signal });
        accepted++;
        const r = await select([send(events, msg), recv(done(stop.signal))]);
        if (r.index === 1) return; // shutdown: msg was not handed on (a real client would not commit it)
      }
    } catch (e) {
      if (!stop.signal.aborted) throw e;
    } finally {
      events.close(); // the consumer drains what is buffered, then its loop ends
    }
  })();

  const consumer = (async () => {
    for await (const msg of events) {
      await handler.handle(msg);
      processed++;
    }
  })();

  return {
    accepted: () => accepted,
    processed: () => processed,
    parked: () => events.stats.parkedSenders,
    lag: () => broker.lag(),
    stats: () => events.stats,
    stopIntake: () => stop.abort(),
    async shutdown() {
      await producer;
      await consumer; // drains the buffer: at most `capacity` messages
      return { rejected: 0 };
    },
  };
}

const MB = 1024 * 1024;

/**
 * Memory in MB: V8 heap used plus Buffer memory. With `collect` (and `--expose-gc`), live memory
 * only: two full GCs, because the memory of dead Buffers is released by the GC after the one
 * that found them dead.
 */
function heapMb(collect: boolean): number {
  if (collect) {
    globalThis.gc?.();
    globalThis.gc?.();
  }
  const m = process.memoryUsage();
  return (m.heapUsed + m.arrayBuffers) / MB;
}

function tell(message: ChildMessage): Promise<void> {
  return new Promise((resolve) => {
    if (process.send === undefined || !process.connected) return resolve();
    process.send(message, undefined, {}, () => resolve());
  });
}

function main(): void {
  const [name, json] = process.argv.slice(2);
  if ((name !== "bug" && name !== "fix") || json === undefined || process.send === undefined) {
    process.stderr.write("oom-run.ts is started by demo/oom.ts (npm run demo), not by hand\n");
    process.exitCode = 2;
    return;
  }
  const run: RunName = name;
  const options = JSON.parse(json) as DemoOptions;
  // The parent is gone (killed, Ctrl-C): never linger.
  process.on("disconnect", () => process.exit(0));
  process.once("message", (m: ParentMessage) => {
    if (m.type === "start") start(run, options);
  });
  void tell({ type: "ready" });
}

function start(run: RunName, options: DemoOptions): void {
  const broker = new SimulatedBroker(options.rate, options.payload);
  const handler = new SlowHandler(options.workMs);
  const baseline = heapMb(true);
  const t0 = performance.now();
  const elapsed = (): number => (performance.now() - t0) / 1000;
  let stopping = false;

  process.on("warning", (w: Error & { code?: string }) => {
    if (w.code?.startsWith("SLUICE_")) {
      void tell({ type: "warning", elapsed: elapsed(), code: w.code, name: w.name, message: w.message });
    }
  });

  const sample = (collect: boolean): Sample => {
    const accepted = r.accepted();
    const processed = r.processed();
    return {
      elapsed: elapsed(),
      accepted,
      processed,
      pending: accepted - processed,
      parked: r.parked(),
      lag: r.lag(),
      heapMb: heapMb(collect),
    };
  };

  const finish = (reason: StopReason): void => {
    if (stopping) return;
    stopping = true;
    clearTimeout(tickTimer);
    clearInterval(heapWatch);
    clearTimeout(endTimer);
    r.stopIntake();
    const last = sample(true);
    const t = performance.now();
    void (async () => {
      await tell({ type: "stopped", sample: last, reason });
      const { rejected } = await r.shutdown();
      const drained = r.processed() - last.processed;
      await tell({ type: "shutdown", drained, rejected, seconds: (performance.now() - t) / 1000 });
      process.removeAllListeners("disconnect");
      if (process.connected) process.disconnect(); // nothing else is left: the process exits
    })();
  };

  // Safety caps, checked on every message the bug run accepts: pending, and the memory its
  // payloads alone take (so that even a huge --rate cannot outrun the heap check below).
  const onMessage = (): void => {
    if (stopping) return;
    const pending = r.accepted() - r.processed();
    if (pending > options.cap) finish("pending-cap");
    else if (pending * options.payload > options.heapCapMb * MB) finish("heap-cap");
  };
  broker.start();
  const r = run === "bug" ? startBug(broker, handler, onMessage) : startFix(broker, handler, options.capacity);

  // Safety cap on memory: a cheap look (no GC) four times a second, and a real one per sample.
  const heapWatch = setInterval(() => {
    if (heapMb(false) > options.heapCapMb && heapMb(true) > options.heapCapMb) finish("heap-cap");
  }, 250);

  // t = 0: the process before its first message.
  const zero = { elapsed: 0, accepted: 0, processed: 0, pending: 0, parked: 0, lag: 0, heapMb: baseline };
  void tell({ type: "sample", sample: zero });
  let tick = 1;
  let tickTimer: ReturnType<typeof setTimeout>;
  const nextTick = (): void => {
    tickTimer = setTimeout(onTick, Math.max(0, t0 + tick * 1000 - performance.now()));
  };
  const onTick = (): void => {
    if (tick >= options.duration) return finish("duration"); // the last row is the "stopped" one
    const s = sample(true);
    void tell({ type: "sample", sample: s, channel: r.stats() });
    tick++;
    if (s.heapMb > options.heapCapMb) return finish("heap-cap");
    nextTick();
  };
  nextTick();
  // A duration that is not a whole number of seconds ends between ticks.
  const endTimer = setTimeout(() => finish("duration"), options.duration * 1000);
}

main();
