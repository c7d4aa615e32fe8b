/**
 * W5, overload memory: a producer makes 10 KB messages as fast as it can (one per event-loop
 * turn, as a broker's deliveries arrive) for 3 s into a consumer that takes 1 ms per message.
 *
 * - `p-queue`: what people write: `void queue.add(() => handle(msg))` with concurrency 1. The
 *   queue is unbounded, so every message the consumer has not reached yet stays in memory.
 * - `pool-bounded`: `await pool.submit(() => handle(msg))` into `Pool({ concurrency: 1,
 *   queue: 64 })`. Once 64 wait, `submit` waits for room, and so does the producer.
 *
 * Messages are fresh 10 KB strings on the V8 heap (so that `heapUsed` sees them). A safety cap
 * stops the producer if the heap passes 1 GB, so the unbounded run cannot take the machine
 * down; the result says whether it was hit.
 */
import PQueue from "p-queue";
import { sampleHeap } from "./heap.js";
import { Pool } from "../src/flow/index.js";
import { W5_DURATION_MS, W5_HEAP_CAP_BYTES, W5_MESSAGE_BYTES, W5_QUEUE } from "./workloads.js";

const template = Buffer.alloc(W5_MESSAGE_BYTES, 0x78);

/** A fresh 10 KB string (a new flat string on the V8 heap each time). */
function makeMessage(): string {
  return template.toString("latin1");
}

function nextTurn(): Promise<void> {
  return new Promise<void>((resolve) => setImmediate(resolve));
}

function sleep1ms(): Promise<void> {
  return new Promise<void>((resolve) => setTimeout(resolve, 1));
}

/** Runs W5 with `impl` for `durationMs`; returns the counts at the end. */
export async function runOverload(impl: string, durationMs = W5_DURATION_MS): Promise<Record<string, number>> {
  let accepted = 0;
  let processed = 0;
  let capped = 0;
  const handle = async (msg: string): Promise<void> => {
    await sleep1ms();
    if (msg.length !== W5_MESSAGE_BYTES) throw new Error("bench: W5 message corrupted");
    processed++;
  };
  const start = performance.now();
  const end = start + durationMs;
  let pending: number;

  if (impl === "p-queue") {
    const queue = new PQueue({ concurrency: 1 });
    while (performance.now() < end) {
      const msg = makeMessage();
      void queue.add(() => handle(msg));
      accepted++;
      if (sampleHeap() > W5_HEAP_CAP_BYTES) {
        capped = 1;
        break;
      }
      await nextTurn();
    }
    pending = queue.size + queue.pending;
    queue.clear();
  } else if (impl === "pool-bounded") {
    const pool = new Pool({ concurrency: 1, queue: W5_QUEUE, name: "w5" });
    while (performance.now() < end) {
      const msg = makeMessage();
      await pool.submit(() => handle(msg));
      accepted++;
      if (sampleHeap() > W5_HEAP_CAP_BYTES) {
        capped = 1;
        break;
      }
      await nextTurn();
    }
    const s = pool.stats;
    pending = s.queued + s.running;
    if (accepted - processed !== pending) {
      throw new Error(`bench: W5 pool counts disagree: accepted ${accepted}, processed ${processed}, pool ${JSON.stringify(s)}`);
    }
    pool.abort(new Error("W5 over"));
  } else {
    throw new Error(`bench: no W5 implementation ${JSON.stringify(impl)}`);
  }
  const seconds = (performance.now() - start) / 1000;
  return { accepted, processed, pending, capped, seconds };
}
