/**
 * Channel: Go's `chan T` for an event loop.
 *
 * A channel is a fixed ring buffer plus two FIFO queues of parked operations, `sendq` (senders,
 * each holding the value it wants to send) and `recvq` (receivers), as in Go's
 * `runtime/chan.go`. There is no lock: JavaScript runs one piece of code at a time, so every
 * method below is one indivisible step, and a hand-off is complete the moment the method
 * returns (the woken party's promise settles in a later microtask, but the value is already
 * theirs and the state already updated).
 *
 * Invariants (checked by the tests after every step of randomized schedules):
 *  - `0 <= count <= capacity`; the values are `buf[head]`, `buf[head+1]`, ... (mod
 *    `buf.length`), oldest first; every other slot of `buf` is `undefined`, so a consumed value
 *    is not retained. The ring starts small and doubles (never past `capacity`) only when it is
 *    full and the channel is not: memory follows use, the bound is still `capacity`.
 *  - At least one of `recvq` and `sendq` is empty, except while both hold cases of one and the
 *    same parked `select` (a select never matches itself).
 *  - `recvq` non-empty implies `count === 0`: a receiver parks only on an empty buffer, and a
 *    send hands its value to a parked receiver before it would touch the buffer.
 *  - `sendq` non-empty implies `count === capacity`: a sender parks only on a full buffer, and
 *    every receive from a full buffer moves the oldest parked sender's value into the slot it
 *    freed (so FIFO order holds across the buffer and the parked senders).
 *  - Once `closed`, `sendq` and `recvq` are empty and stay empty: `close` wakes every parked
 *    receiver with `{ ok: false }` and rejects every parked sender; later receivers are
 *    answered at once. Buffered values stay receivable.
 *  - `sent - received === count` at every step.
 *  - The parked queues are bounded by `maxParkedSends` / `maxParkedRecvs` (default: no bound,
 *    with a one-time warning past `warnParkedSends` / `warnParkedRecvs`).
 */
import { BusyError, ChannelClosedError } from "./errors.js";
import { ITER, WaitRing, type Parked } from "./waitring.js";
import { RESOLVED } from "./waitq.js";
import { unwatchAbort, watchAbort, type Abortable } from "./abort.js";
import { checkInteger, checkLimit, checkName, checkOptions, given, signalOf } from "./validate.js";
import { observe } from "./registry.js";
import { publishReject, rejectChannel } from "./events.js";

/** The result of a receive: a value (`ok: true`), or the channel is closed and drained. */
export type RecvResult<T> = { value: T; ok: true } | { value: undefined; ok: false };

/** Options of `new Channel(capacity, options)`. */
export interface ChannelOptions {
  /** Used in every error message, warning and report about this channel. */
  name?: string;
  /**
   * At most this many senders may be parked at once (default `Infinity`). When that many
   * already wait, `send` rejects at once with `BusyError` and the value is not taken.
   */
  maxParkedSends?: number;
  /**
   * Emit one `SLUICE_PARKED_SENDS` process warning the first time more than this many senders
   * are parked (default 1000 when `maxParkedSends` is not set; `Infinity` silences it).
   */
  warnParkedSends?: number;
  /** As `maxParkedSends`, for receivers (`recv`, iteration, select receive cases). */
  maxParkedRecvs?: number;
  /** As `warnParkedSends`, for receivers (`SLUICE_PARKED_RECVS`; default 1000 when unbounded). */
  warnParkedRecvs?: number;
}

/** Options of a single waiting operation. */
export interface WaitOptions {
  /** Aborting it withdraws the operation: it rejects with `signal.reason` and leaves nothing behind. */
  signal?: AbortSignal;
}

/** Counters of one channel (`ch.stats`): a fresh snapshot, cheap to take, always on. */
export interface ChannelStats {
  readonly name: string;
  readonly capacity: number;
  /** Values in the buffer now. */
  readonly length: number;
  readonly closed: boolean;
  /** Values accepted by the channel: buffered, or handed to a receiver. */
  readonly sent: number;
  /** Values taken by receivers (receives that got `ok: true`). */
  readonly received: number;
  /** Send operations (and select send cases) that had to park. */
  readonly sendsWaited: number;
  /** Receive operations (and select receive cases) that had to park. */
  readonly recvsWaited: number;
  /** Senders parked now. */
  readonly parkedSenders: number;
  /** Receivers parked now. */
  readonly parkedReceivers: number;
  /** The most senders ever parked at once. */
  readonly peakParkedSenders: number;
  /** The most receivers ever parked at once. */
  readonly peakParkedReceivers: number;
  /** Sends refused with `BusyError` because `maxParkedSends` senders already waited. */
  readonly rejectedSends: number;
  /** Receives refused with `BusyError` because `maxParkedRecvs` receivers already waited. */
  readonly rejectedRecvs: number;
}

/** @internal What a parked select implements, so that a channel can complete or fail it. */
export interface SelectParent {
  complete(w: CaseWaiter, value: unknown, ok: boolean): void;
  fail(w: CaseWaiter, error: unknown): void;
}

/** @internal Returned by `take()` when nothing can be received now. */
export const NOTHING: unique symbol = Symbol("nothing");

/*
 * Parked operations. A plain `send`/`recv`/`next()` (no signal) parks as bare slots of its
 * queue's ring (see waitring.ts): nothing but its promise is allocated. The others park as a
 * `Parked` object, so that they can be withdrawn: a receive or send with a signal
 * (`WatchedRecv`, `WatchedSend`), or a case of a select (`CaseWaiter`). The channel calls
 * `deliver` on a receiver object, `taken`/`refuse` on a sender object, each already out of
 * its ring when called; a sender's value always lives in the ring's value slot.
 */

/** @internal A parked `recv()` or iterator `next()` with a signal. */
export class WatchedRecv implements Parked, Abortable {
  ring: WaitRing | null = null;
  slot = 0;
  abortPrev: Abortable | null = null;
  abortNext: Abortable | null = null;
  abortList: Abortable["abortList"] = null;
  constructor(
    readonly resolve: (value: any) => void,
    readonly reject: (error: unknown) => void,
    /** Resolve with an IteratorResult (`next()`) instead of a RecvResult (`recv()`). */
    readonly iter: boolean,
  ) {}

  /** Given `value` (`ok`), or told the channel closed (`!ok`). */
  deliver(value: unknown, ok: boolean): void {
    unwatchAbort(this);
    this.resolve(this.iter ? iterResult(value, ok) : recvResult(value, ok));
  }

  /** Its signal aborted: withdraw, taking nothing. */
  onAbort(reason: unknown): void {
    this.ring?.withdraw(this);
    this.reject(reason);
  }
}

/** @internal A parked `send()` with a signal (its value is in the ring). */
export class WatchedSend implements Parked, Abortable {
  ring: WaitRing | null = null;
  slot = 0;
  abortPrev: Abortable | null = null;
  abortNext: Abortable | null = null;
  abortList: Abortable["abortList"] = null;
  constructor(
    readonly resolve: (value: undefined) => void,
    readonly reject: (error: unknown) => void,
  ) {}

  /** Its value was taken (buffered or handed off). */
  taken(): void {
    unwatchAbort(this);
    this.resolve(undefined);
  }

  /** The channel closed under it: its value was never sent. */
  refuse(error: ChannelClosedError): void {
    unwatchAbort(this);
    this.reject(error);
  }

  /** Its signal aborted: withdraw (the ring drops the value); it is never delivered. */
  onAbort(reason: unknown): void {
    this.ring?.withdraw(this);
    this.reject(reason);
  }
}

/** @internal One case of a parked select (a send case's value is in the ring). */
export class CaseWaiter implements Parked {
  ring: WaitRing | null = null;
  slot = 0;
  /** The select's next case (its cases form a list). */
  nextCase: CaseWaiter | null = null;
  constructor(
    readonly select: SelectParent,
    /** The case's position in the select. */
    readonly index: number,
  ) {}

  deliver(value: unknown, ok: boolean): void {
    this.select.complete(this, value, ok);
  }

  taken(): void {
    this.select.complete(this, undefined, true);
  }

  refuse(error: ChannelClosedError): void {
    this.select.fail(this, error);
  }
}

type RecvEntry = WatchedRecv | CaseWaiter;
type SendEntry = WatchedSend | CaseWaiter;

function recvResult(value: unknown, ok: boolean): RecvResult<unknown> {
  return ok ? { value, ok: true } : { value: undefined, ok: false };
}

function iterResult(value: unknown, ok: boolean): IteratorResult<unknown> {
  return ok ? { value, done: false } : { value: undefined, done: true };
}

const DEFAULT_WARN = 1000;
const INITIAL_RING = 16;
let nextId = 1;

/**
 * A Go channel: a bounded FIFO of values between producers and consumers that wait for each
 * other. `capacity` 0 (the default) is unbuffered: every send waits for a receiver.
 *
 * What waits: `send` waits while the buffer is full (or, unbuffered, until a receiver takes the
 * value); `recv` waits while the buffer is empty. Both take `{ signal }`; an aborted operation
 * rejects with `signal.reason` and leaves no trace. Parked operations are served FIFO.
 *
 * What is bounded: the buffer (`capacity`, fixed), and, when set, the parked senders
 * (`maxParkedSends`) and receivers (`maxParkedRecvs`): past those, the operation rejects at
 * once with `BusyError`. Unbounded parked queues warn once past 1000.
 *
 * Closed: `send` rejects and `trySend` throws `ChannelClosedError`; receivers drain what is
 * buffered, then get `{ ok: false }`.
 *
 * @example
 * const jobs = new Channel<Job>(64, { name: "jobs" });
 * (async () => { for (const j of input) await jobs.send(j); jobs.close(); })();
 * for await (const job of jobs) await handle(job);
 */
export class Channel<T> implements AsyncIterable<T> {
  /** @internal */ buf: (T | undefined)[];
  /** @internal */ head = 0;
  /** @internal */ count = 0;
  /** @internal */ isClosed = false;
  /** @internal */ readonly sendq: WaitRing;
  /** @internal */ readonly recvq: WaitRing;
  /** @internal */ readonly maxParkedSends: number;
  /** @internal */ readonly maxParkedRecvs: number;
  /** @internal */ sent = 0;
  /** @internal */ received = 0;
  /** @internal */ rejectedSends = 0;
  /** @internal */ rejectedRecvs = 0;
  readonly #capacity: number;
  readonly #name: string;

  /**
   * @param capacity buffer size, a non-negative safe integer (0: unbuffered). `Infinity` is
   *   refused: sluice has no unbounded channel.
   * @throws TypeError / RangeError for a bad capacity or option.
   */
  constructor(capacity = 0, options?: ChannelOptions) {
    if (capacity === Infinity) {
      throw new RangeError("capacity must be a non-negative safe integer, got Infinity: sluice has no unbounded channel");
    }
    this.#capacity = checkInteger(capacity, "capacity", 0);
    checkOptions(options);
    const name = checkName(options?.name);
    this.#name = name ?? `#${nextId++}`;
    this.maxParkedSends = checkLimit(given(options?.maxParkedSends, Infinity), "options.maxParkedSends", 0);
    this.maxParkedRecvs = checkLimit(given(options?.maxParkedRecvs, Infinity), "options.maxParkedRecvs", 0);
    const warnSends = given(options?.warnParkedSends, this.maxParkedSends === Infinity ? DEFAULT_WARN : Infinity);
    const warnRecvs = given(options?.warnParkedRecvs, this.maxParkedRecvs === Infinity ? DEFAULT_WARN : Infinity);
    this.sendq = new WaitRing(this, "send", checkLimit(warnSends, "options.warnParkedSends", 0), "SLUICE_PARKED_SENDS");
    this.recvq = new WaitRing(this, "recv", checkLimit(warnRecvs, "options.warnParkedRecvs", 0), "SLUICE_PARKED_RECVS");
    this.buf = new Array<T | undefined>(Math.min(this.#capacity, INITIAL_RING)).fill(undefined);
    observe("channel", this, name !== undefined);
  }

  /** The buffer size (Go's `cap(ch)`). */
  get capacity(): number {
    return this.#capacity;
  }

  /** Values in the buffer now (Go's `len(ch)`); a snapshot. */
  get length(): number {
    return this.count;
  }

  /** Whether `close()` was called. */
  get closed(): boolean {
    return this.isClosed;
  }

  /** The name given in the options, or `#<n>`. */
  get name(): string {
    return this.#name;
  }

  /** A fresh snapshot of this channel's counters. */
  get stats(): ChannelStats {
    return {
      name: this.#name,
      capacity: this.#capacity,
      length: this.count,
      closed: this.isClosed,
      sent: this.sent,
      received: this.received,
      sendsWaited: this.sendq.parkedTotal,
      recvsWaited: this.recvq.parkedTotal,
      parkedSenders: this.sendq.length,
      parkedReceivers: this.recvq.length,
      peakParkedSenders: this.sendq.peak,
      peakParkedReceivers: this.recvq.peak,
      rejectedSends: this.rejectedSends,
      rejectedRecvs: this.rejectedRecvs,
    };
  }

  /**
   * Sends `value`: hands it to the oldest parked receiver, or buffers it, or parks until one of
   * those is possible. When it completes at once, the returned promise is already resolved.
   *
   * Rejects with: `signal.reason` if the signal is (or becomes) aborted first, the value then
   * not sent; `ChannelClosedError` if the channel is closed (or closes while parked);
   * `BusyError` if `maxParkedSends` senders already wait.
   *
   * @example
   * await ch.send(job, { signal: AbortSignal.timeout(100) }); // a send with a deadline
   */
  send(value: T, options?: WaitOptions): Promise<void> {
    let signal: AbortSignal | undefined;
    if (options !== undefined) {
      try {
        signal = signalOf(options);
      } catch (e) {
        return Promise.reject(e);
      }
      if (signal?.aborted) return Promise.reject(signal.reason);
    }
    if (this.isClosed) return Promise.reject(this.closedError("send on"));
    if (this.offer(value)) return RESOLVED;
    return this.parkSend(value, signal);
  }

  /**
   * Sends `value` only if that needs no waiting: to a parked receiver or into free buffer space.
   * Returns whether it did; allocates nothing.
   *
   * @throws ChannelClosedError if the channel is closed.
   */
  trySend(value: T): boolean {
    if (this.isClosed) throw this.closedError("send on");
    return this.offer(value);
  }

  /**
   * Receives the oldest value: from the buffer, from the oldest parked sender, or by parking
   * until a value is sent. On a closed channel, buffered values are still received, then every
   * receive resolves with `{ value: undefined, ok: false }` at once. When a value is available,
   * the returned promise is already resolved.
   *
   * Rejects with `signal.reason` if the signal is (or becomes) aborted first (no value is taken),
   * or `BusyError` if `maxParkedRecvs` receivers already wait.
   *
   * @example
   * const r = await ch.recv();
   * if (!r.ok) return; // closed and drained
   */
  recv(options?: WaitOptions): Promise<RecvResult<T>> {
    let signal: AbortSignal | undefined;
    if (options !== undefined) {
      try {
        signal = signalOf(options);
      } catch (e) {
        return Promise.reject(e);
      }
      if (signal?.aborted) return Promise.reject(signal.reason);
    }
    const v = this.take();
    if (v !== NOTHING) return Promise.resolve({ value: v, ok: true });
    if (this.isClosed) return Promise.resolve({ value: undefined, ok: false });
    return this.parkRecv(false, signal);
  }

  /**
   * Receives only if that needs no waiting. Returns a fresh `RecvResult`, or `undefined` when a
   * receive would have to wait (Go's `select` with a `default` case).
   */
  tryRecv(): RecvResult<T> | undefined {
    const v = this.take();
    if (v !== NOTHING) return { value: v, ok: true };
    if (this.isClosed) return { value: undefined, ok: false };
    return undefined;
  }

  /**
   * Closes the channel: no more sends. Every parked receiver resolves with `{ ok: false }`
   * and every parked sender rejects with `ChannelClosedError` (their values were never sent).
   * Values already buffered stay receivable. Close from the sending side, once.
   *
   * @throws ChannelClosedError if already closed.
   */
  close(): void {
    if (this.isClosed) throw this.closedError("close of");
    this.isClosed = true;
    const rq = this.recvq;
    for (let r = rq.shift(); r !== undefined; r = rq.shift()) {
      if (typeof r === "function") r(rq.value === ITER ? iterResult(undefined, false) : recvResult(undefined, false));
      else (r as RecvEntry).deliver(undefined, false);
    }
    const sq = this.sendq;
    for (let w = sq.shift(); w !== undefined; w = sq.shift()) {
      const reject = sq.reject;
      sq.value = sq.reject = undefined; // the value was never sent: not retained
      if (typeof w === "function") reject!(this.closedError("send on"));
      else (w as SendEntry).refuse(this.closedError("send on"));
    }
  }

  /**
   * Iterates the values received until the channel is closed and drained. Breaking out of the
   * loop does not close the channel (a value is never taken unless the loop body gets it).
   * With `{ signal }`, a pending `next()` rejects with `signal.reason` when it aborts.
   *
   * @example
   * for await (const v of ch.values({ signal })) use(v);
   */
  values(options?: WaitOptions): AsyncIterableIterator<T> {
    const signal = signalOf(options);
    return new ChannelIterator(this, signal);
  }

  /** Same as `values()`: `for await (const v of ch)`. */
  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return new ChannelIterator(this, undefined);
  }

  /** @internal A name for messages: `channel "jobs" (capacity 64)`. */
  describe(): string {
    return `channel ${this.#name.startsWith("#") ? this.#name : JSON.stringify(this.#name)} (capacity ${this.#capacity})`;
  }

  /** @internal Hands `value` to the oldest parked receiver, or buffers it. False when neither is possible now. */
  offer(value: T): boolean {
    const rq = this.recvq;
    if (rq.length > 0) {
      const r = rq.shift()!;
      this.sent++;
      this.received++;
      if (typeof r === "function") r(rq.value === ITER ? { value, done: false } : { value, ok: true });
      else (r as RecvEntry).deliver(value, true);
      return true;
    }
    if (this.count < this.#capacity) {
      if (this.count === this.buf.length) this.grow();
      const size = this.buf.length;
      let i = this.head + this.count;
      if (i >= size) i -= size;
      this.buf[i] = value;
      this.count++;
      this.sent++;
      return true;
    }
    return false;
  }

  /** @internal Doubles the ring (up to capacity), unrolling it so the oldest value is at 0. */
  grow(): void {
    const old = this.buf;
    const size = Math.min(this.#capacity, Math.max(1, old.length * 2));
    const next = new Array<T | undefined>(size).fill(undefined);
    for (let k = 0; k < this.count; k++) next[k] = old[(this.head + k) % old.length];
    this.buf = next;
    this.head = 0;
  }

  /**
   * @internal Takes the oldest value: from the buffer (then moving the oldest parked sender's
   * value into the freed slot), or straight from the oldest parked sender. NOTHING otherwise.
   */
  take(): T | typeof NOTHING {
    if (this.count > 0) {
      const size = this.buf.length;
      const h = this.head;
      const v = this.buf[h] as T;
      this.buf[h] = undefined;
      this.head = h + 1 === size ? 0 : h + 1;
      this.count--;
      this.received++;
      if (this.sendq.length > 0) {
        // A sender parks only on a full channel, so the ring is at capacity: no growth needed.
        let i = this.head + this.count;
        if (i >= size) i -= size;
        this.buf[i] = this.takeSender();
        this.count++;
        this.sent++;
      }
      return v;
    }
    if (this.sendq.length > 0) {
      const s = this.takeSender();
      this.sent++;
      this.received++;
      return s;
    }
    return NOTHING;
  }

  /** @internal Unlinks the oldest parked sender, tells it its value was taken, and returns the value. */
  takeSender(): T {
    const q = this.sendq;
    const w = q.shift()!;
    const v = q.value as T;
    q.value = q.reject = undefined;
    if (typeof w === "function") w(undefined);
    else (w as SendEntry).taken();
    return v;
  }

  /** @internal Parks a sender holding `value`, or refuses it at once (BusyError) at `maxParkedSends`. */
  parkSend(value: T, signal: AbortSignal | undefined): Promise<void> {
    const q = this.sendq;
    if (q.length >= this.maxParkedSends) {
      this.rejectedSends++;
      if (rejectChannel.hasSubscribers) publishReject("channel", this, "maxParkedSends");
      return Promise.reject(this.busyError("send"));
    }
    if (signal === undefined) {
      return new Promise<void>((resolve, reject) => {
        q.push(resolve, value, reject);
      });
    }
    return new Promise<void>((resolve, reject) => {
      const w = new WatchedSend(resolve, reject);
      q.pushParked(w, value);
      watchAbort(signal, w);
    });
  }

  /** @internal Parks a receiver (`iter`: an iterator's `next()`), or refuses it at `maxParkedRecvs`. */
  parkRecv<R>(iter: boolean, signal: AbortSignal | undefined): Promise<R> {
    const q = this.recvq;
    if (q.length >= this.maxParkedRecvs) {
      this.rejectedRecvs++;
      if (rejectChannel.hasSubscribers) publishReject("channel", this, "maxParkedRecvs");
      return Promise.reject(this.busyError("recv"));
    }
    if (signal === undefined) {
      return new Promise<R>((resolve) => {
        q.push(resolve, iter ? ITER : undefined, undefined);
      });
    }
    return new Promise<R>((resolve, reject) => {
      const w = new WatchedRecv(resolve, reject, iter);
      q.pushParked(w, undefined);
      watchAbort(signal, w);
    });
  }

  /** @internal */
  closedError(what: string): ChannelClosedError {
    return new ChannelClosedError(`${what} closed ${this.describe()}`);
  }

  /** @internal */
  busyError(op: "send" | "recv"): BusyError {
    const limit = op === "send" ? `maxParkedSends ${this.maxParkedSends}` : `maxParkedRecvs ${this.maxParkedRecvs}`;
    return new BusyError(`${op} refused: ${this.describe()} already has ${limit} parked ${op === "send" ? "senders" : "receivers"}`);
  }
}

/**
 * `for await` over a channel: each `next()` is a receive; done once closed and drained.
 *
 * `return()` ends this iteration (the channel stays open): a `next()` still waiting is
 * withdrawn and resolves `{ done: true }`, so no value sent later is taken by an iteration that
 * ended (nothing is lost), and every later `next()` is done at once.
 */
class ChannelIterator<T> implements AsyncIterableIterator<T> {
  /** Set by `return()`: the iteration is over. */
  private ended = false;
  /** The resolve function of the last `next()` that parked bare (no signal); for `return()`. */
  private waiting: ((value: IteratorResult<T>) => void) | undefined = undefined;
  /** The last `next()` that parked with a signal; for `return()`. */
  private watched: WatchedRecv | undefined = undefined;

  constructor(
    private readonly ch: Channel<T>,
    private readonly signal: AbortSignal | undefined,
  ) {}

  next(): Promise<IteratorResult<T>> {
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    const signal = this.signal;
    if (signal?.aborted) return Promise.reject(signal.reason);
    const ch = this.ch;
    const v = ch.take();
    if (v !== NOTHING) return Promise.resolve({ value: v, done: false });
    if (ch.isClosed) return Promise.resolve({ value: undefined, done: true });
    const q = ch.recvq;
    if (q.length >= ch.maxParkedRecvs) return ch.parkRecv(true, signal);
    if (signal === undefined) {
      return new Promise<IteratorResult<T>>((resolve) => {
        this.waiting = resolve;
        q.push(resolve, ITER, undefined);
      });
    }
    return new Promise<IteratorResult<T>>((resolve, reject) => {
      const w = new WatchedRecv(resolve, reject, true);
      this.watched = w;
      q.pushParked(w, undefined);
      watchAbort(signal, w);
    });
  }

  /** Ends this iteration only; the channel stays open. A waiting `next()` resolves done. */
  return(): Promise<IteratorResult<T>> {
    this.ended = true;
    const q = this.ch.recvq;
    const fn = this.waiting;
    if (fn !== undefined) {
      this.waiting = undefined;
      if (q.withdrawBare(fn)) fn({ value: undefined, done: true });
    }
    const w = this.watched;
    if (w !== undefined) {
      this.watched = undefined;
      if (q.withdraw(w)) w.deliver(undefined, false);
    }
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return this;
  }
}
