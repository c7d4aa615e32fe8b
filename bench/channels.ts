/**
 * W1, W1-fast, W2, W3: channel workloads, one function per implementation, each written the way
 * that implementation's README writes a producer and a consumer (an `await` per send and per
 * receive; the consumer loops until the channel says it is closed and drained).
 *
 * Every workload but the fast path runs in two orders:
 *  - "consumer first" (cf): the consumers start, find the channel empty and wait; then the
 *    producers start. Every send meets a parked receiver and hands its value over: the usual
 *    shape in a service, where workers wait for work.
 *  - "producer first" (pf): the producers start first and fill the buffer; receives mostly find
 *    a buffered value.
 *
 * Every run checks its result and throws (failing the whole benchmark) on a violation:
 * SPSC checks FIFO order and the count; MPMC checks exactly-once delivery with a bitmap.
 */
import { Channel, done, recv, select } from "../src/index.js";
import { Channel as AsyncChannel, ChannelClosedError as AsyncChannelClosedError } from "async-channel";
import { chan as mediumChan, put as mediumPut, take as mediumTake, close as mediumClose, CLOSED as MEDIUM_CLOSED } from "medium";
import { Chan as TsChan } from "ts-chan";
import { DONE, EMPTY, FloorChannel, ResultFloorChannel, SelectFloorChannel, StrictFloorChannel, SyncRing, floorSelect2 } from "./floors.js";
import { CHANNEL_CAPACITY, W3_CONSUMERS, W3_PRODUCERS, type Order } from "./workloads.js";

/** One implementation's version of the two channel shapes. */
interface ChannelImpl {
  /** One producer sends 0..n-1, one consumer receives them; resolves once all are received. */
  spsc(capacity: number, n: number, order: Order, pause?: Pause): Promise<void>;
  /** `producers` producers send disjoint ranges, `consumers` consumers receive; checks exactly-once. */
  mpmc(capacity: number, producers: number, perProducer: number, consumers: number, order: Order): Promise<void>;
}

function fail(message: string): never {
  throw new Error(`bench: correctness check failed: ${message}`);
}

/** FIFO check for one consumer of 0..n-1. */
class InOrder {
  next = 0;
  see(v: number): void {
    if (v !== this.next) fail(`SPSC expected ${this.next}, received ${v}`);
    this.next++;
  }
  end(n: number): void {
    if (this.next !== n) fail(`SPSC received ${this.next} values, expected ${n}`);
  }
}

/** Exactly-once check: every value in [0, total) seen once. */
class Bitmap {
  private readonly seen: Uint8Array;
  private count = 0;
  constructor(private readonly total: number) {
    this.seen = new Uint8Array(total);
  }
  see(v: number): void {
    if (!(v >= 0 && v < this.total)) fail(`MPMC received out-of-range value ${String(v)}`);
    if (this.seen[v] !== 0) fail(`MPMC value ${v} delivered twice`);
    this.seen[v] = 1;
    this.count++;
  }
  end(): void {
    if (this.count !== this.total) fail(`MPMC delivered ${this.count} of ${this.total} values`);
  }
}

/** Awaited between the start of the consumer and that of the producer (W6: a quiet period with the consumer waiting). */
type Pause = () => Promise<void>;

/** Starts one producer and one consumer in `order`, and waits for both. */
async function pair(produce: () => Promise<void>, consume: () => Promise<void>, order: Order, pause?: Pause): Promise<void> {
  if (order === "cf") {
    const c = consume();
    if (pause !== undefined) await pause();
    await produce();
    await c;
  } else {
    const p = produce();
    await consume();
    await p;
  }
}

/** Starts the producers and consumers in `order`; closes once every producer is done; waits for the consumers. */
async function crowd(
  producers: number,
  consumers: number,
  produce: (p: number) => Promise<void>,
  consume: () => Promise<void>,
  close: () => void,
  order: Order,
): Promise<void> {
  const cs: Promise<void>[] = [];
  const ps: Promise<void>[] = [];
  if (order === "cf") for (let c = 0; c < consumers; c++) cs.push(consume());
  for (let p = 0; p < producers; p++) ps.push(produce(p));
  if (order === "pf") for (let c = 0; c < consumers; c++) cs.push(consume());
  await Promise.all(ps);
  close();
  await Promise.all(cs);
}

const floorStrict: ChannelImpl = {
  async spsc(capacity, n, order, pause) {
    const ch = new StrictFloorChannel<number>(capacity);
    const check = new InOrder();
    await pair(
      async () => {
        for (let i = 0; i < n; i++) await ch.send(i);
        ch.close();
      },
      async () => {
        for (;;) {
          const v = await ch.recv();
          if (v === DONE) break;
          check.see(v);
        }
      },
      order,
      pause,
    );
    check.end(n);
  },
  async mpmc(capacity, producers, per, consumers, order) {
    const ch = new StrictFloorChannel<number>(capacity);
    const bits = new Bitmap(producers * per);
    await crowd(
      producers,
      consumers,
      async (p) => {
        for (let j = p * per, end = j + per; j < end; j++) await ch.send(j);
      },
      async () => {
        for (;;) {
          const v = await ch.recv();
          if (v === DONE) return;
          bits.see(v);
        }
      },
      () => ch.close(),
      order,
    );
    bits.end();
  },
};

const floor: ChannelImpl = {
  async spsc(capacity, n, order, pause) {
    const ch = new FloorChannel<number>(capacity);
    const check = new InOrder();
    await pair(
      async () => {
        for (let i = 0; i < n; i++) await ch.send(i);
        ch.close();
      },
      async () => {
        for (;;) {
          const v = await ch.recv();
          if (v === DONE) break;
          check.see(v);
        }
      },
      order,
      pause,
    );
    check.end(n);
  },
  async mpmc(capacity, producers, per, consumers, order) {
    const ch = new FloorChannel<number>(capacity);
    const bits = new Bitmap(producers * per);
    await crowd(
      producers,
      consumers,
      async (p) => {
        for (let j = p * per, end = j + per; j < end; j++) await ch.send(j);
      },
      async () => {
        for (;;) {
          const v = await ch.recv();
          if (v === DONE) return;
          bits.see(v);
        }
      },
      () => ch.close(),
      order,
    );
    bits.end();
  },
};

const floorResult: ChannelImpl = {
  async spsc(capacity, n, order, pause) {
    const ch = new ResultFloorChannel<number>(capacity);
    const check = new InOrder();
    await pair(
      async () => {
        for (let i = 0; i < n; i++) await ch.send(i);
        ch.close();
      },
      async () => {
        for (;;) {
          const r = await ch.recv();
          if (!r.ok) break;
          check.see(r.value);
        }
      },
      order,
      pause,
    );
    check.end(n);
  },
  async mpmc(capacity, producers, per, consumers, order) {
    const ch = new ResultFloorChannel<number>(capacity);
    const bits = new Bitmap(producers * per);
    await crowd(
      producers,
      consumers,
      async (p) => {
        for (let j = p * per, end = j + per; j < end; j++) await ch.send(j);
      },
      async () => {
        for (;;) {
          const r = await ch.recv();
          if (!r.ok) return;
          bits.see(r.value);
        }
      },
      () => ch.close(),
      order,
    );
    bits.end();
  },
};

/** A consumer that waits with `select([recv(ch), recv(quit)])`, the usual loop of a worker that can be stopped. */
const floorSelect: ChannelImpl = {
  async spsc(capacity, n, order, pause) {
    const ch = new SelectFloorChannel<number>(capacity);
    const quit = new SelectFloorChannel<number>(0);
    const check = new InOrder();
    await pair(
      async () => {
        for (let i = 0; i < n; i++) await ch.send(i);
        ch.close();
      },
      async () => {
        for (;;) {
          const r = await floorSelect2(ch, quit);
          if (r.index === 1 || !r.ok) break;
          check.see(r.value as number);
        }
      },
      order,
      pause,
    );
    check.end(n);
  },
  async mpmc(capacity, producers, per, consumers, order) {
    const ch = new SelectFloorChannel<number>(capacity);
    const quit = new SelectFloorChannel<number>(0);
    const bits = new Bitmap(producers * per);
    await crowd(
      producers,
      consumers,
      async (p) => {
        for (let j = p * per, end = j + per; j < end; j++) await ch.send(j);
      },
      async () => {
        for (;;) {
          const r = await floorSelect2(ch, quit);
          if (r.index === 1 || !r.ok) return;
          bits.see(r.value as number);
        }
      },
      () => ch.close(),
      order,
    );
    bits.end();
  },
};

const sluice: ChannelImpl = {
  async spsc(capacity, n, order, pause) {
    const ch = new Channel<number>(capacity);
    const check = new InOrder();
    await pair(
      async () => {
        for (let i = 0; i < n; i++) await ch.send(i);
        ch.close();
      },
      async () => {
        for (;;) {
          const r = await ch.recv();
          if (!r.ok) break;
          check.see(r.value);
        }
      },
      order,
      pause,
    );
    check.end(n);
  },
  async mpmc(capacity, producers, per, consumers, order) {
    const ch = new Channel<number>(capacity);
    const bits = new Bitmap(producers * per);
    await crowd(
      producers,
      consumers,
      async (p) => {
        for (let j = p * per, end = j + per; j < end; j++) await ch.send(j);
      },
      async () => {
        for (;;) {
          const r = await ch.recv();
          if (!r.ok) return;
          bits.see(r.value);
        }
      },
      () => ch.close(),
      order,
    );
    bits.end();
  },
};

const sluiceIter: ChannelImpl = {
  async spsc(capacity, n, order, pause) {
    const ch = new Channel<number>(capacity);
    const check = new InOrder();
    await pair(
      async () => {
        for (let i = 0; i < n; i++) await ch.send(i);
        ch.close();
      },
      async () => {
        for await (const v of ch) check.see(v);
      },
      order,
      pause,
    );
    check.end(n);
  },
  async mpmc(capacity, producers, per, consumers, order) {
    const ch = new Channel<number>(capacity);
    const bits = new Bitmap(producers * per);
    await crowd(
      producers,
      consumers,
      async (p) => {
        for (let j = p * per, end = j + per; j < end; j++) await ch.send(j);
      },
      async () => {
        for await (const v of ch) bits.see(v);
      },
      () => ch.close(),
      order,
    );
    bits.end();
  },
};

const sluiceSelect: ChannelImpl = {
  async spsc(capacity, n, order, pause) {
    const ch = new Channel<number>(capacity);
    const stop = new AbortController();
    const cases = [recv(ch), recv(done(stop.signal))];
    const check = new InOrder();
    await pair(
      async () => {
        for (let i = 0; i < n; i++) await ch.send(i);
        ch.close();
      },
      async () => {
        for (;;) {
          const r = await select(cases);
          if (r.index === 1 || !r.ok) break;
          check.see(r.value as number);
        }
      },
      order,
      pause,
    );
    check.end(n);
  },
  async mpmc(capacity, producers, per, consumers, order) {
    const ch = new Channel<number>(capacity);
    const stop = new AbortController();
    const cases = [recv(ch), recv(done(stop.signal))];
    const bits = new Bitmap(producers * per);
    await crowd(
      producers,
      consumers,
      async (p) => {
        for (let j = p * per, end = j + per; j < end; j++) await ch.send(j);
      },
      async () => {
        for (;;) {
          const r = await select(cases);
          if (r.index === 1 || !r.ok) return;
          bits.see(r.value as number);
        }
      },
      () => ch.close(),
      order,
    );
    bits.end();
  },
};

/** async-channel: `push` / `get`; `get` rejects with its ChannelClosedError once closed and drained. */
const asyncChannel: ChannelImpl = {
  async spsc(capacity, n, order, pause) {
    // An async-channel Channel is a thenable: it is never awaited or returned here.
    const ch = new AsyncChannel<number>(capacity);
    const check = new InOrder();
    await pair(
      async () => {
        for (let i = 0; i < n; i++) await ch.push(i);
        ch.close();
      },
      async () => {
        try {
          for (;;) check.see(await ch.get());
        } catch (e) {
          if (!(e instanceof AsyncChannelClosedError)) throw e;
        }
      },
      order,
      pause,
    );
    check.end(n);
  },
  async mpmc(capacity, producers, per, consumers, order) {
    const ch = new AsyncChannel<number>(capacity);
    const bits = new Bitmap(producers * per);
    await crowd(
      producers,
      consumers,
      async (p) => {
        for (let j = p * per, end = j + per; j < end; j++) await ch.push(j);
      },
      async () => {
        try {
          for (;;) bits.see(await ch.get());
        } catch (e) {
          if (!(e instanceof AsyncChannelClosedError)) throw e;
        }
      },
      () => ch.close(),
      order,
    );
    bits.end();
  },
};

/**
 * medium: `put` / `take`, `take` resolving `CLOSED` once closed and drained. `chan(n)` for a
 * buffer of n; the unbuffered channel is `chan()` (its `chan(0)`, a fixed buffer of 0, never
 * hands a parked put to a later take).
 */
function mediumOf(capacity: number): ReturnType<typeof mediumChan<number>> {
  return capacity === 0 ? mediumChan<number>() : mediumChan<number>(capacity);
}

const medium: ChannelImpl = {
  async spsc(capacity, n, order, pause) {
    const ch = mediumOf(capacity);
    const check = new InOrder();
    await pair(
      async () => {
        for (let i = 0; i < n; i++) await mediumPut(ch, i);
        mediumClose(ch);
      },
      async () => {
        for (;;) {
          const v = await mediumTake(ch);
          if (v === MEDIUM_CLOSED) break;
          check.see(v);
        }
      },
      order,
      pause,
    );
    check.end(n);
  },
  async mpmc(capacity, producers, per, consumers, order) {
    const ch = mediumOf(capacity);
    const bits = new Bitmap(producers * per);
    await crowd(
      producers,
      consumers,
      async (p) => {
        for (let j = p * per, end = j + per; j < end; j++) await mediumPut(ch, j);
      },
      async () => {
        for (;;) {
          const v = await mediumTake(ch);
          if (v === MEDIUM_CLOSED) return;
          bits.see(v);
        }
      },
      () => mediumClose(ch),
      order,
    );
    bits.end();
  },
};

/**
 * ts-chan: `send` / `recv`, `recv` resolving an IteratorResult (`done` once closed and drained).
 * By default ts-chan yields to the macrotask queue in `send`/`recv` (its guard against microtask
 * starvation); `unsafe` turns that off, its fastest mode.
 */
function tsChan(unsafe: boolean): ChannelImpl {
  return {
    async spsc(capacity, n, order, pause) {
      const ch = new TsChan<number>(capacity).setUnsafe(unsafe);
      const check = new InOrder();
      await pair(
        async () => {
          for (let i = 0; i < n; i++) await ch.send(i);
          ch.close();
        },
        async () => {
          for (;;) {
            const r = await ch.recv();
            if (r.done === true) break;
            check.see(r.value);
          }
        },
        order,
        pause,
      );
      check.end(n);
    },
    async mpmc(capacity, producers, per, consumers, order) {
      const ch = new TsChan<number>(capacity).setUnsafe(unsafe);
      const bits = new Bitmap(producers * per);
      await crowd(
        producers,
        consumers,
        async (p) => {
          for (let j = p * per, end = j + per; j < end; j++) await ch.send(j);
        },
        async () => {
          for (;;) {
            const r = await ch.recv();
            if (r.done === true) return;
            bits.see(r.value);
          }
        },
        () => ch.close(),
        order,
      );
      bits.end();
    },
  };
}

const IMPLS: Readonly<Record<string, ChannelImpl>> = {
  "floor-strict": floorStrict,
  floor,
  "floor-result": floorResult,
  "floor-select": floorSelect,
  sluice,
  "sluice-iter": sluiceIter,
  "sluice-select": sluiceSelect,
  "async-channel": asyncChannel,
  medium,
  "ts-chan": tsChan(false),
  "ts-chan-unsafe": tsChan(true),
};

function channelImpl(impl: string): ChannelImpl {
  const c = IMPLS[impl];
  if (c === undefined) throw new Error(`bench: no channel implementation ${JSON.stringify(impl)}`);
  return c;
}

/** The synchronous fast path: fill with trySend until full, drain with tryRecv until empty. */
function fastPath(impl: string, n: number): void {
  const check = new InOrder();
  if (impl === "sync-ring") {
    const ring = new SyncRing<number>(CHANNEL_CAPACITY);
    for (let i = 0; i < n; i++) {
      if (!ring.push(i)) {
        for (let v = ring.shift(); v !== EMPTY; v = ring.shift()) check.see(v);
        if (!ring.push(i)) fail("sync ring full after draining");
      }
    }
    for (let v = ring.shift(); v !== EMPTY; v = ring.shift()) check.see(v);
  } else if (impl === "sluice-try") {
    const ch = new Channel<number>(CHANNEL_CAPACITY);
    for (let i = 0; i < n; i++) {
      if (!ch.trySend(i)) {
        for (let r = ch.tryRecv(); r !== undefined && r.ok; r = ch.tryRecv()) check.see(r.value);
        if (!ch.trySend(i)) fail("trySend refused after draining");
      }
    }
    for (let r = ch.tryRecv(); r !== undefined && r.ok; r = ch.tryRecv()) check.see(r.value);
  } else {
    throw new Error(`bench: no fast-path implementation ${JSON.stringify(impl)}`);
  }
  check.end(n);
}

/** Runs `n` operations of `workload` with `impl`, in `order` (ignored by the fast path). */
export async function runChannelWorkload(workload: string, impl: string, n: number, order: Order, pause?: Pause): Promise<void> {
  switch (workload) {
    case "W1":
      return channelImpl(impl).spsc(CHANNEL_CAPACITY, n, order, pause);
    case "W2":
      return channelImpl(impl).spsc(0, n, order);
    case "W3": {
      const per = n / W3_PRODUCERS;
      if (!Number.isInteger(per)) throw new Error(`bench: W3 needs a multiple of ${W3_PRODUCERS} messages, got ${n}`);
      return channelImpl(impl).mpmc(CHANNEL_CAPACITY, W3_PRODUCERS, per, W3_CONSUMERS, order);
    }
    case "W1-fast":
      return fastPath(impl, n);
    default:
      throw new Error(`bench: ${workload} is not a channel workload`);
  }
}
