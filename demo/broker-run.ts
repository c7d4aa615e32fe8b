/**
 * One run of the broker demo, in its own process (its own heap): `bug` or `fix`, over the stream
 * and consumer the parent made.
 *
 * Both runs write to the same kind of downstream: a database of 16 connections, `work-ms` a write.
 *
 *  - bug: seed 000's consumer, over NATS. A JetStream push consumer delivers as fast as the
 *    server can; the callback starts a handler per message and never waits for it. Nothing
 *    bounds the handlers in flight but the backlog itself (and the consumer's max_ack_pending,
 *    set high here as a replay would need): every message delivered faster than the database
 *    takes it waits, parsed, in memory, for a connection (the seed's goroutines parked on sendq).
 *  - fix: `consumeJetStream` into a `Pool` (concurrency 16, queue 16): the source pulls only what
 *    the pool has room for, so at most 32 messages are in this process at once, whatever the
 *    backlog.
 *
 * argv: <bug|fix> <stream> <consumer> <work-ms> <messages>
 * IPC: { type: "sample", t, heapMB, inFlight, processed } every 250 ms, then { type: "done", ... }.
 */
import { connect } from "@nats-io/transport-node";
import { jetstream, type JsMsg } from "@nats-io/jetstream";
import { consumeJetStream } from "../src/nats/index.js";
import { Pool } from "../src/flow/index.js";
import { Semaphore } from "../src/index.js";

const [run, stream, durable, workArg, countArg] = process.argv.slice(2);
if ((run !== "bug" && run !== "fix") || stream === undefined || durable === undefined) {
  throw new Error("usage: broker-run <bug|fix> <stream> <consumer> <work-ms> <messages>");
}
const workMs = Number(workArg ?? 20);
const total = Number(countArg ?? 0);
const nc = await connect({ servers: process.env.NATS_URL ?? "127.0.0.1:4222" });
const js = jetstream(nc);
const t0 = performance.now();
let inFlight = 0;
/** Messages held but not yet in a handler (the fix's pool queue). */
let waiting = (): number => 0;
let maxInFlight = 0;
let processed = 0;
let peakHeap = 0;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The downstream both runs share the shape of: a database with 16 connections, work-ms a write. */
const database = new Semaphore(16);

/** The work: parse the event and write it to the database. */
async function handle(msg: JsMsg): Promise<void> {
  inFlight++;
  if (inFlight + waiting() > maxInFlight) maxInFlight = inFlight + waiting();
  try {
    const event = { id: msg.seq, body: msg.string(), raw: msg.data.slice() }; // what a handler keeps alive
    await database.acquire();
    try {
      await sleep(workMs);
    } finally {
      database.release();
    }
    if (event.body.length === 0) throw new Error("empty event");
    processed++;
  } finally {
    inFlight--;
  }
}

const sample = (): void => {
  const heapMB = process.memoryUsage().heapUsed / (1024 * 1024);
  if (heapMB > peakHeap) peakHeap = heapMB;
  process.send?.({ type: "sample", t: (performance.now() - t0) / 1000, heapMB, inFlight: inFlight + waiting(), processed });
};
const timer = setInterval(sample, 250);
const ac = new AbortController();
process.on("SIGTERM", () => ac.abort());
process.on("disconnect", () => ac.abort());
const allDone = new Promise<void>((resolve) => {
  const check = setInterval(() => {
    if (processed >= total || ac.signal.aborted) {
      clearInterval(check);
      resolve();
    }
  }, 50);
});

process.send?.({ type: "ready" });
if (run === "bug") {
  // The bug: a push subscription, a handler per message, no bound.
  const consumer = await js.consumers.getPushConsumer(stream, durable);
  const messages = await consumer.consume({
    callback: (msg) => {
      void handle(msg).then(
        () => msg.ack(),
        () => msg.nak(),
      );
    },
  });
  await allDone;
  await messages.close();
} else {
  // The fix: the bounded pull source.
  const consumer = await js.consumers.get(stream, durable);
  const pool = new Pool({ concurrency: 16, queue: 16 });
  waiting = () => pool.queued;
  const stop = new AbortController();
  const source = consumeJetStream(consumer, { pool, signal: stop.signal, handler: (msg) => handle(msg) });
  await allDone;
  stop.abort();
  await source;
}
clearInterval(timer);
sample();
process.send?.({ type: "done", seconds: (performance.now() - t0) / 1000, processed, maxInFlight, peakHeapMB: peakHeap });
await nc.drain();
process.disconnect?.();
