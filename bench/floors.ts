/**
 * The floors: the least code that does each workload correctly, written by hand, so that the
 * ratios say what sluice's abstraction costs over what the workload itself costs.
 *
 * They are deliberately minimal (no abort signals, no counters, no options, no validation, no
 * bounds on waiters) but not crippled or cheating: the same promise per waiting operation, the
 * same FIFO order, values and end-of-stream delivered, waiters woken in order.
 */

/** End of stream, returned by `FloorChannel.recv` once closed and drained. */
export const DONE: unique symbol = Symbol("done");

const RESOLVED: Promise<void> = Promise.resolve();

interface ParkedSend<T> {
  value: T;
  resolve: () => void;
}

/**
 * A minimal Go-style channel: a ring buffer of `capacity` slots, parked senders and receivers in
 * plain arrays (FIFO). `capacity` 0 is a rendezvous. A send or receive that can complete at once
 * returns an already-settled promise; one that cannot parks with one promise.
 */
export class FloorChannel<T> {
  private readonly buf: (T | undefined)[];
  private head = 0;
  private count = 0;
  private closed = false;
  private readonly recvq: ((v: T | typeof DONE) => void)[] = [];
  private readonly sendq: ParkedSend<T>[] = [];

  constructor(private readonly capacity: number) {
    this.buf = new Array<T | undefined>(capacity).fill(undefined);
  }

  send(value: T): Promise<void> {
    const r = this.recvq.shift();
    if (r !== undefined) {
      r(value);
      return RESOLVED;
    }
    if (this.count < this.capacity) {
      this.put(value);
      return RESOLVED;
    }
    return new Promise<void>((resolve) => {
      this.sendq.push({ value, resolve });
    });
  }

  recv(): Promise<T | typeof DONE> {
    if (this.count > 0) {
      const v = this.buf[this.head] as T;
      this.buf[this.head] = undefined;
      this.head = this.head + 1 === this.capacity ? 0 : this.head + 1;
      this.count--;
      const s = this.sendq.shift();
      if (s !== undefined) {
        this.put(s.value);
        s.resolve();
      }
      return Promise.resolve(v);
    }
    const s = this.sendq.shift();
    if (s !== undefined) {
      s.resolve();
      return Promise.resolve(s.value);
    }
    if (this.closed) return Promise.resolve(DONE);
    return new Promise<T | typeof DONE>((resolve) => {
      this.recvq.push(resolve);
    });
  }

  close(): void {
    this.closed = true;
    for (let r = this.recvq.shift(); r !== undefined; r = this.recvq.shift()) r(DONE);
  }

  private put(value: T): void {
    let i = this.head + this.count;
    if (i >= this.capacity) i -= this.capacity;
    this.buf[i] = value;
    this.count++;
  }
}

/**
 * The strictest honest floor: `FloorChannel` without a promise on its fast paths. A send that
 * need not wait returns `undefined`, a receive that need not wait returns the value itself (or
 * `DONE`); only an operation that parks returns a promise. `await` of a plain value is still
 * one microtask hop, so the loops that use it are the same as everyone else's.
 */
export class StrictFloorChannel<T> {
  private readonly buf: (T | undefined)[];
  private head = 0;
  private count = 0;
  private closed = false;
  private readonly recvq: ((v: T | typeof DONE) => void)[] = [];
  private readonly sendq: ParkedSend<T>[] = [];

  constructor(private readonly capacity: number) {
    this.buf = new Array<T | undefined>(capacity).fill(undefined);
  }

  send(value: T): Promise<void> | undefined {
    const r = this.recvq.shift();
    if (r !== undefined) {
      r(value);
      return undefined;
    }
    if (this.count < this.capacity) {
      this.put(value);
      return undefined;
    }
    return new Promise<void>((resolve) => {
      this.sendq.push({ value, resolve });
    });
  }

  recv(): T | typeof DONE | Promise<T | typeof DONE> {
    if (this.count > 0) {
      const v = this.buf[this.head] as T;
      this.buf[this.head] = undefined;
      this.head = this.head + 1 === this.capacity ? 0 : this.head + 1;
      this.count--;
      const s = this.sendq.shift();
      if (s !== undefined) {
        this.put(s.value);
        s.resolve();
      }
      return v;
    }
    const s = this.sendq.shift();
    if (s !== undefined) {
      s.resolve();
      return s.value;
    }
    if (this.closed) return DONE;
    return new Promise<T | typeof DONE>((resolve) => {
      this.recvq.push(resolve);
    });
  }

  close(): void {
    this.closed = true;
    for (let r = this.recvq.shift(); r !== undefined; r = this.recvq.shift()) r(DONE);
  }

  private put(value: T): void {
    let i = this.head + this.count;
    if (i >= this.capacity) i -= this.capacity;
    this.buf[i] = value;
    this.count++;
  }
}

/** What `ResultFloorChannel.recv` resolves with: the shape sluice's contract requires. */
export type FloorResult<T> = { value: T; ok: true } | { value: undefined; ok: false };

/**
 * `FloorChannel` resolving receives with a fresh `{ value, ok }` object instead of the bare value,
 * as sluice's `recv` must (DESIGN.md: every result object is fresh). Not a floor: a reference row
 * that shows how much of the gap to the floor that result object alone costs (resolving a promise
 * with an object makes V8 look up a `then` property on it; a number skips that).
 */
export class ResultFloorChannel<T> {
  private readonly buf: (T | undefined)[];
  private head = 0;
  private count = 0;
  private closed = false;
  private readonly recvq: ((r: FloorResult<T>) => void)[] = [];
  private readonly sendq: ParkedSend<T>[] = [];

  constructor(private readonly capacity: number) {
    this.buf = new Array<T | undefined>(capacity).fill(undefined);
  }

  send(value: T): Promise<void> {
    const r = this.recvq.shift();
    if (r !== undefined) {
      r({ value, ok: true });
      return RESOLVED;
    }
    if (this.count < this.capacity) {
      this.put(value);
      return RESOLVED;
    }
    return new Promise<void>((resolve) => {
      this.sendq.push({ value, resolve });
    });
  }

  recv(): Promise<FloorResult<T>> {
    if (this.count > 0) {
      const v = this.buf[this.head] as T;
      this.buf[this.head] = undefined;
      this.head = this.head + 1 === this.capacity ? 0 : this.head + 1;
      this.count--;
      const s = this.sendq.shift();
      if (s !== undefined) {
        this.put(s.value);
        s.resolve();
      }
      return Promise.resolve({ value: v, ok: true });
    }
    const s = this.sendq.shift();
    if (s !== undefined) {
      s.resolve();
      return Promise.resolve({ value: s.value, ok: true });
    }
    if (this.closed) return Promise.resolve({ value: undefined, ok: false });
    return new Promise<FloorResult<T>>((resolve) => {
      this.recvq.push(resolve);
    });
  }

  close(): void {
    this.closed = true;
    for (let r = this.recvq.shift(); r !== undefined; r = this.recvq.shift()) r({ value: undefined, ok: false });
  }

  private put(value: T): void {
    let i = this.head + this.count;
    if (i >= this.capacity) i -= this.capacity;
    this.buf[i] = value;
    this.count++;
  }
}

/** Empty, returned by `SyncRing.shift`. */
export const EMPTY: unique symbol = Symbol("empty");

/** A synchronous bounded ring buffer: the floor of the `trySend`/`tryRecv` fast path. */
export class SyncRing<T> {
  private readonly buf: (T | undefined)[];
  private head = 0;
  private count = 0;

  constructor(private readonly capacity: number) {
    this.buf = new Array<T | undefined>(capacity).fill(undefined);
  }

  push(value: T): boolean {
    if (this.count === this.capacity) return false;
    let i = this.head + this.count;
    if (i >= this.capacity) i -= this.capacity;
    this.buf[i] = value;
    this.count++;
    return true;
  }

  shift(): T | typeof EMPTY {
    if (this.count === 0) return EMPTY;
    const h = this.head;
    const v = this.buf[h] as T;
    this.buf[h] = undefined;
    this.head = h + 1 === this.capacity ? 0 : h + 1;
    this.count--;
    return v;
  }
}

/**
 * The lazy pool: `concurrency` async workers, each pulling the next index from a shared counter
 * and awaiting `task(i)`. Nothing is enqueued ahead; memory is bounded by `concurrency`.
 */
export async function lazyPool(n: number, concurrency: number, task: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < n) await task(next++);
  };
  const workers: Promise<void>[] = [];
  for (let w = 0; w < concurrency; w++) workers.push(worker());
  await Promise.all(workers);
}

/**
 * Reference (not a floor of the workload): the least semaphore there is, used in the same loop
 * shape as sluice's Semaphore row (`await acquire()`, then `task().then(release)`). It shows
 * what that loop shape costs by itself: two promise hops per task where the lazy pool has one.
 */
export class MiniSemaphore {
  private free: number;
  private readonly waiters: (() => void)[] = [];
  constructor(size: number) {
    this.free = size;
  }
  acquire(): Promise<void> {
    if (this.free > 0 && this.waiters.length === 0) {
      this.free--;
      return RESOLVED;
    }
    return new Promise<void>((resolve) => this.waiters.push(resolve));
  }
  release(): void {
    const w = this.waiters.shift();
    if (w !== undefined) w();
    else this.free++;
  }
}

/**
 * Reference: the least pool with an awaited `submit` that resolves once the task started (a
 * running count and a FIFO of parked submitters, no queue, no counters, no signals), used in
 * the same loop shape as the Pool's submit row.
 */
export class MiniSubmitPool {
  private running = 0;
  private readonly parked: { task: () => Promise<unknown>; resolve: () => void }[] = [];
  private idle: (() => void) | null = null;
  /** The first failure (kept for `MiniGroup`; the submit loop's tasks do not fail). */
  protected failure: { error: unknown } | null = null;
  constructor(private readonly concurrency: number) {}
  submit(task: () => Promise<unknown>): Promise<void> {
    if (this.running < this.concurrency && this.parked.length === 0) {
      this.start(task);
      return RESOLVED;
    }
    return new Promise<void>((resolve) => this.parked.push({ task, resolve }));
  }
  drain(): Promise<void> {
    if (this.running === 0) return RESOLVED;
    return new Promise<void>((resolve) => (this.idle = resolve));
  }
  private start(task: () => Promise<unknown>): void {
    this.running++;
    task().then(this.done, this.failed);
  }
  private readonly failed = (e: unknown): void => {
    this.failure ??= { error: e };
    this.done();
  };
  private readonly done = (): void => {
    this.running--;
    const next = this.parked.shift();
    if (next !== undefined) {
      this.start(next.task);
      next.resolve();
    } else if (this.running === 0 && this.idle !== null) {
      this.idle();
      this.idle = null;
    }
  };
}

/**
 * Reference: the least errgroup with a limit, the minimal submit pool with `go` (the same
 * submit: a running count, a FIFO of parked callers) and `wait` (drain, then the first error),
 * used in the same `await group.go(() => task(i))` loop as the ErrGroup's row: a closure per
 * task, called and its promise watched. No signal, no counters, no argument checks.
 */
export class MiniGroup extends MiniSubmitPool {
  go(fn: () => Promise<unknown>): Promise<void> {
    return this.submit(fn);
  }
  async wait(): Promise<void> {
    await this.drain();
    if (this.failure !== null) throw this.failure.error;
  }
}


/** A parked receive case of `floorSelect2`: `sel` is shared by the select's two cases. */
interface CaseWaiter<T> {
  readonly sel: { fired: boolean; resolve: (r: { index: number; value: T | undefined; ok: boolean }) => void };
  readonly index: number;
}

/**
 * Reference (not a floor of the channel workloads): the least channel with receive cases that
 * a two-case select can wait on, and that select (`floorSelect2`). Receivers are case waiters in
 * a plain array; a case whose select already fired is skipped when met and swept out once they
 * pile up, so a channel that never fires (a `done` channel) does not grow. Resolves a fresh
 * `{ index, value, ok }`, as sluice's select must.
 */
export class SelectFloorChannel<T> {
  private readonly buf: (T | undefined)[];
  private head = 0;
  private count = 0;
  closed = false;
  private recvq: CaseWaiter<T>[] = [];
  private readonly sendq: ParkedSend<T>[] = [];

  constructor(private readonly capacity: number) {
    this.buf = new Array<T | undefined>(capacity).fill(undefined);
  }

  send(value: T): Promise<void> {
    for (let w = this.recvq.shift(); w !== undefined; w = this.recvq.shift()) {
      if (w.sel.fired) continue;
      w.sel.fired = true;
      w.sel.resolve({ index: w.index, value, ok: true });
      return RESOLVED;
    }
    if (this.count < this.capacity) {
      this.put(value);
      return RESOLVED;
    }
    return new Promise<void>((resolve) => {
      this.sendq.push({ value, resolve });
    });
  }

  /** Whether a receive would complete now. */
  ready(): boolean {
    return this.count > 0 || this.sendq.length > 0 || this.closed;
  }

  /** Receives now (only when `ready()`). */
  take(): { value: T | undefined; ok: boolean } {
    if (this.count > 0) {
      const v = this.buf[this.head] as T;
      this.buf[this.head] = undefined;
      this.head = this.head + 1 === this.capacity ? 0 : this.head + 1;
      this.count--;
      const s = this.sendq.shift();
      if (s !== undefined) {
        this.put(s.value);
        s.resolve();
      }
      return { value: v, ok: true };
    }
    const s = this.sendq.shift();
    if (s !== undefined) {
      s.resolve();
      return { value: s.value, ok: true };
    }
    return { value: undefined, ok: false };
  }

  private put(value: T): void {
    let i = this.head + this.count;
    if (i >= this.capacity) i -= this.capacity;
    this.buf[i] = value;
    this.count++;
  }

  park(w: CaseWaiter<T>): void {
    if (this.recvq.length >= 32 && (this.recvq.length & 31) === 0) this.recvq = this.recvq.filter((x) => !x.sel.fired);
    this.recvq.push(w);
  }

  close(): void {
    this.closed = true;
    for (let w = this.recvq.shift(); w !== undefined; w = this.recvq.shift()) {
      if (w.sel.fired) continue;
      w.sel.fired = true;
      w.sel.resolve({ index: w.index, value: undefined, ok: false });
    }
  }
}

/** A two-case receive select over `SelectFloorChannel`s: a ready case (random among ready ones), or park on both. */
export function floorSelect2<T>(a: SelectFloorChannel<T>, b: SelectFloorChannel<T>): Promise<{ index: number; value: T | undefined; ok: boolean }> {
  const ra = a.ready();
  const rb = b.ready();
  if (ra || rb) {
    const index = ra && rb ? (Math.random() < 0.5 ? 0 : 1) : ra ? 0 : 1;
    const r = (index === 0 ? a : b).take();
    return Promise.resolve({ index, value: r.value, ok: r.ok });
  }
  return new Promise((resolve) => {
    const sel = { fired: false, resolve };
    a.park({ sel, index: 0 });
    b.park({ sel, index: 1 });
  });
}

/**
 * Reference (not a floor): the least ordered `map` over a pull source with a window of
 * `concurrency` calls, handing results in input order to a consumer that iterates it with
 * `for await`. A call starts wherever the window has room (at the start, and each time the
 * consumer takes the head), and a handler made once per slot stores its result there;
 * `next()` takes them in order. It is the lazy pool plus the two things a map adds: the
 * source's iterator and a hand-off to a consumer. No signals, no errors, no counters.
 */
export class MiniMap<I, R> implements AsyncIterableIterator<R> {
  private readonly it: Iterator<I>;
  private readonly results: (R | undefined)[];
  private readonly ready: boolean[];
  private pulled = 0;
  private consumed = 0;
  private running = 0;
  private exhausted = false;
  private consumer: ((r: IteratorResult<R>) => void) | null = null;
  /** Per slot, made once: stores the result and hands it on (no closure per item). */
  private readonly onResult: ((v: R) => void)[];

  constructor(
    source: Iterable<I>,
    private readonly concurrency: number,
    private readonly fn: (item: I) => Promise<R>,
  ) {
    this.it = source[Symbol.iterator]();
    this.results = new Array<R | undefined>(concurrency).fill(undefined);
    this.ready = new Array<boolean>(concurrency).fill(false);
    this.onResult = [];
    for (let k = 0; k < concurrency; k++) {
      this.onResult.push((v: R) => {
        this.results[k] = v;
        this.settled(k);
      });
    }
    this.fill();
  }

  next(): Promise<IteratorResult<R>> {
    const k = this.consumed % this.concurrency;
    if (this.ready[k]) return Promise.resolve({ value: this.take(k), done: false });
    if (this.exhausted && this.running === 0) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => (this.consumer = resolve));
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<R> {
    return this;
  }

  private take(k: number): R {
    const v = this.results[k] as R;
    this.results[k] = undefined;
    this.ready[k] = false;
    this.consumed++;
    this.fill();
    return v;
  }

  /** Starts items while the window has room. */
  private fill(): void {
    while (!this.exhausted && this.pulled - this.consumed < this.concurrency) {
      const r = this.it.next();
      if (r.done === true) {
        this.exhausted = true;
        break;
      }
      const k = this.pulled++ % this.concurrency;
      this.running++;
      void this.fn(r.value).then(this.onResult[k]);
    }
  }

  private settled(k: number): void {
    this.running--;
    this.ready[k] = true;
    const c = this.consumer;
    if (c === null) return;
    const head = this.consumed % this.concurrency;
    if (this.ready[head]) {
      this.consumer = null;
      c({ value: this.take(head), done: false });
    } else if (this.exhausted && this.running === 0) {
      this.consumer = null;
      c({ value: undefined, done: true });
    }
  }
}
