/**
 * PoolMap: the async iterator behind `pool.map(source, fn, { ordered })`.
 *
 * Each item is processed by a "step": a pool task that, once it holds a slot, pulls the next
 * item from the source and calls `fn` on it. So an item is pulled only when a slot is free, and
 * the pool's concurrency, FIFO admission and counters cover map work like any other.
 *
 * Invariants:
 *  - At most one step waits for admission at a time (`admitting`), and steps are admitted,
 *    started and pull in the order they were created; pulls are serialized (`pulling`), so the
 *    source never sees two `next()` calls at once and item k goes to the k-th step that pulls.
 *  - `inWindow` counts steps created and neither consumed nor found empty; a result handed to
 *    the consumer counts as consumed only when the consumer asks for the next one (its loop
 *    body is done with it). A step is created only while `inWindow < concurrency`, so at most
 *    `concurrency` items are ever pulled but not yet consumed, even counting the one the
 *    consumer holds: a consumer that stops asking stops the pulling.
 *  - Ordered: `head..tail` lists every live step in creation order (= item order); results are
 *    handed out from the head only. Unordered: it lists only finished steps, in finishing order.
 *  - An entry is reused (`#free`) only once its result was handed to the consumer: its step has
 *    settled, so its two settle handlers (made once per entry) can never fire for it again. The
 *    free list holds at most the largest window there was (the pool's largest concurrency).
 *  - Once `stopped` nothing more is pulled or admitted, every step still in the pool sees its
 *    signal abort (queued ones are withdrawn), and the source's `return()` has been called
 *    (unless it was exhausted or threw).
 */
import { Abortable, unwatchAbort, watchAbort } from "../core/abort.js";
import type { WaitOptions } from "../core/channel.js";
import { DroppedError } from "./errors.js";
import type { Pool, PoolTask, StepOwner } from "./pool.js";

/** Options of `pool.map`. */
export interface MapOptions extends WaitOptions {
  /** Yield results in input order (default true; the reorder window is bounded by the concurrency). */
  ordered?: boolean;
}

const PENDING = 0;
const OK = 1;
const ERR = 2;
const EMPTY = 3;

class Entry {
  state = PENDING;
  value: unknown = undefined;
  accepted = false;
  /** An item was pulled for this step (so the pool counts it as completed or failed). */
  pulled = false;
  next: Entry | null = null;
  /** Its claimed step's settle handlers, made once: entries are reused (see `#entry`). */
  onFulfilled: (value: unknown) => void = noop;
  onRejected: (error: unknown) => void = noop;
}

class StopOnAbort extends Abortable {
  constructor(readonly map: { abortedBy(reason: unknown): void }) {
    super();
  }
  onAbort(reason: unknown): void {
    this.map.abortedBy(reason);
  }
}

const END: unique symbol = Symbol("end");

function noop(): void {}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return v !== null && (typeof v === "object" || typeof v === "function") && typeof (v as PromiseLike<unknown>).then === "function";
}

/** @internal */
export class PoolMap<I, R> implements AsyncIterableIterator<R>, StepOwner {
  readonly #pool: Pool;
  readonly #source: Iterable<I> | AsyncIterable<I>;
  readonly #fn: (item: I, signal: AbortSignal) => unknown;
  readonly #ordered: boolean;
  readonly #controller = new AbortController();
  readonly #signal = this.#controller.signal;
  readonly #userLink = new StopOnAbort(this);
  readonly #poolLink = new StopOnAbort(this);
  #it: Iterator<I> | AsyncIterator<I> | null = null;
  /** The source is synchronous: items are pulled inside the step, with no promise. */
  #sync = false;
  #head: Entry | null = null;
  #tail: Entry | null = null;
  #inWindow = 0;
  /** Entries whose results were consumed, kept for reuse (linked by `next`). */
  #free: Entry | null = null;
  #admitting = false;
  #filling = false;
  #exhausted = false;
  #stopped = false;
  #finished = false;
  #abortReason: { reason: unknown } | null = null;
  #pulling: Promise<unknown> = Promise.resolve();
  #consumer: { resolve: (r: IteratorResult<R>) => void; reject: (e: unknown) => void } | null = null;
  #pendingNext: Promise<IteratorResult<R>> | null = null;
  /** The consumer holds a result it has not yet finished with (counted in inWindow). */
  #held = false;

  constructor(
    pool: Pool,
    source: Iterable<I> | AsyncIterable<I>,
    fn: (item: I, signal: AbortSignal) => unknown,
    ordered: boolean,
    signal: AbortSignal | undefined,
    poolSignal: AbortSignal,
  ) {
    const s = source as Partial<Iterable<I> & AsyncIterable<I>> | null;
    if (s == null || (typeof s[Symbol.asyncIterator] !== "function" && typeof s[Symbol.iterator] !== "function")) {
      throw new TypeError("source must be an iterable or an async iterable");
    }
    this.#pool = pool;
    this.#source = source;
    this.#fn = fn;
    this.#ordered = ordered;
    const first = signal?.aborted ? signal : poolSignal.aborted ? poolSignal : null;
    if (first !== null) {
      this.#stopped = this.#finished = true;
      this.#abortReason = { reason: first.reason };
      return;
    }
    if (signal !== undefined) watchAbort(signal, this.#userLink);
    watchAbort(poolSignal, this.#poolLink);
  }

  next(): Promise<IteratorResult<R>> {
    if (this.#consumer !== null) {
      // A next() is already pending: answer this one after it.
      return this.#pendingNext!.then(() => this.next(), () => this.next());
    }
    if (this.#finished) {
      return this.#abortReason !== null ? Promise.reject(this.#abortReason.reason) : Promise.resolve({ value: undefined, done: true });
    }
    if (this.#it === null) {
      try {
        const s = this.#source as Partial<Iterable<I> & AsyncIterable<I>>;
        this.#sync = typeof s[Symbol.asyncIterator] !== "function";
        this.#it = this.#sync ? s[Symbol.iterator]!() : s[Symbol.asyncIterator]!();
      } catch (e) {
        this.#exhausted = true;
        this.#finish();
        this.#stop(e);
        return Promise.reject(e);
      }
    }
    if (this.#held) {
      this.#held = false;
      this.#inWindow--;
    }
    const ready = this.#takeReady();
    if (ready !== null) {
      // A result is already waiting: hand it over without parking the consumer.
      this.#held = true;
      const value = ready.value as R;
      this.#reuse(ready);
      this.#fill();
      return Promise.resolve({ value, done: false });
    }
    const p = new Promise<IteratorResult<R>>((resolve, reject) => {
      this.#consumer = { resolve, reject };
    });
    this.#pendingNext = p;
    this.#deliver();
    this.#fill();
    return p;
  }

  /** Ends the iteration early (a `break`): work in flight is signalled, the source closed. */
  return(): Promise<IteratorResult<R>> {
    this.#finish();
    this.#stop(undefined);
    const c = this.#consumer;
    this.#consumer = null;
    c?.resolve({ value: undefined, done: true });
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<R> {
    return this;
  }

  /** @internal The user's signal or the pool's aborted. */
  abortedBy(reason: unknown): void {
    if (this.#finished) return this.#stop(reason);
    this.#finish();
    this.#abortReason = { reason };
    this.#stop(reason);
    const c = this.#consumer;
    this.#consumer = null;
    c?.reject(reason);
  }

  #finish(): void {
    this.#finished = true;
  }

  /** Creates steps while the window has room. */
  #fill(): void {
    if (this.#filling) return;
    this.#filling = true;
    try {
      while (!this.#stopped && !this.#exhausted && !this.#admitting && this.#inWindow < this.#pool.concurrency) {
        const e = this.#entry();
        if (this.#ordered) this.#append(e);
        this.#inWindow++;
        if (this.#pool.claimSlot()) {
          e.accepted = true;
          this.#runClaimed(e);
          continue;
        }
        this.#admitting = true;
        this.#pool.admitStep(this, e, this.#signal);
      }
    } finally {
      this.#filling = false;
    }
  }

  /** @internal The pool admitted a step (started or queued it). */
  stepAccepted(entry: unknown): void {
    (entry as Entry).accepted = true;
    this.#admitting = false;
    this.#fill();
  }

  /** @internal A step ended (or was refused before it ran). */
  stepSettled(entry: unknown, ok: boolean, value: unknown): void {
    this.#settled(entry as Entry, ok, value);
  }

  /** @internal A step holds a slot: pull the next item, then call `fn` on it. */
  runStep(entry: unknown, signal: AbortSignal, task: PoolTask): unknown {
    const e = entry as Entry;
    if (!this.#sync) return this.#stepAsync(e, signal, task);
    // Synchronous source: steps start one at a time in order, so pulling here keeps item order.
    try {
      return this.#pullAndCall(e, task);
    } finally {
      task.counted = e.pulled;
    }
  }

  /**
   * A step that claimed a slot at once: pulls its item and calls `fn` without a pool task (the
   * pool counts the slot; `#claimedDone` frees it), which is how most steps run while the pool
   * has room. Pulls stay in step order: no step is admitted while this one pulls.
   */
  #runClaimed(e: Entry): void {
    let r: unknown;
    try {
      r = this.#sync ? this.#pullAndCall(e) : this.#stepAsync(e, this.#signal, null);
    } catch (err) {
      this.#claimedDone(e, false, err);
      return;
    }
    if (r instanceof Promise) r.then(e.onFulfilled, e.onRejected);
    else if (isThenable(r)) Promise.resolve(r).then(e.onFulfilled, e.onRejected);
    else this.#claimedDone(e, true, r);
  }

  /** A claimed step's function settled: free its slot, then record its result. */
  #claimedDone(e: Entry, ok: boolean, value: unknown): void {
    this.#pool.releaseSlot(e.pulled, ok);
    this.#settled(e, ok, value);
  }

  /** Pulls the next item of a synchronous source and calls `fn` on it; marks `e` EMPTY when there is none. */
  #pullAndCall(e: Entry, task: PoolTask | null = null): unknown {
    let item: I | typeof END = END;
    if (!this.#exhausted && !this.#stopped) {
      let r: IteratorResult<I>;
      try {
        r = (this.#it as Iterator<I>).next();
      } catch (err) {
        this.#exhausted = true;
        throw err;
      }
      if (r.done === true) this.#exhausted = true;
      else item = r.value;
    }
    if (item === END) {
      e.state = EMPTY;
      return undefined;
    }
    e.pulled = true;
    if (task !== null) this.#pool.itemStarted(task);
    return this.#fn(item, this.#signal);
  }

  async #stepAsync(e: Entry, signal: AbortSignal, task: PoolTask | null): Promise<unknown> {
    const item = await this.#pull();
    if (item === END) {
      e.state = EMPTY;
      return undefined;
    }
    e.pulled = true;
    if (task !== null) {
      task.counted = true;
      this.#pool.itemStarted(task);
    }
    return this.#fn(item, signal);
  }

  #pull(): Promise<I | typeof END> {
    const p = this.#pulling.then(() => this.#nextItem());
    this.#pulling = p.then(noop, noop);
    return p;
  }

  async #nextItem(): Promise<I | typeof END> {
    if (this.#exhausted || this.#stopped) return END;
    let r: IteratorResult<I>;
    try {
      r = await this.#it!.next();
    } catch (e) {
      this.#exhausted = true;
      throw e;
    }
    if (r.done === true) {
      this.#exhausted = true;
      return END;
    }
    return r.value;
  }

  #settled(e: Entry, ok: boolean, value: unknown): void {
    if (!e.accepted) {
      e.accepted = true;
      this.#admitting = false;
    }
    if (e.state === EMPTY || (!ok && value instanceof DroppedError && e.state === PENDING)) {
      // Nothing was pulled (the source was done, or the pool dropped the step before it ran).
      e.state = EMPTY;
      this.#inWindow--;
    } else {
      e.state = ok ? OK : ERR;
      e.value = value;
      if (!this.#ordered) this.#append(e);
    }
    if (this.#stopped) return;
    this.#deliver();
    this.#fill();
  }

  /** The next result in delivery order if it is a success ready now (popped); null otherwise. */
  #takeReady(): Entry | null {
    let e = this.#head;
    while (e !== null && e.state === EMPTY) e = this.#shift();
    if (e === null || e.state !== OK) return null;
    this.#shift();
    return e;
  }

  /** Hands the next result to a waiting consumer, or tells it the iteration is done. */
  #deliver(): void {
    const c = this.#consumer;
    if (c === null) return;
    let e = this.#head;
    while (e !== null && e.state === EMPTY) e = this.#shift();
    if (e !== null && e.state !== PENDING) {
      this.#shift();
      this.#consumer = null;
      if (e.state === OK) {
        this.#held = true; // counted in inWindow until the consumer asks again
        const value = e.value as R;
        this.#reuse(e);
        c.resolve({ value, done: false });
      } else {
        this.#finish();
        this.#stop(e.value);
        c.reject(e.value);
      }
      return;
    }
    if (this.#exhausted && this.#inWindow === 0) {
      this.#consumer = null;
      this.#finish();
      this.#stop(undefined);
      c.resolve({ value: undefined, done: true });
    }
  }

  /** A fresh entry, or one whose result was consumed (its handlers are made once, here). */
  #entry(): Entry {
    const f = this.#free;
    if (f !== null) {
      this.#free = f.next;
      f.next = null;
      return f;
    }
    const e = new Entry();
    e.onFulfilled = (v) => this.#claimedDone(e, true, v);
    e.onRejected = (err) => this.#claimedDone(e, false, err);
    return e;
  }

  /** Keeps a consumed entry (settled, out of the list) for the next step; lets go of its value. */
  #reuse(e: Entry): void {
    e.state = PENDING;
    e.value = undefined;
    e.accepted = false;
    e.pulled = false;
    e.next = this.#free;
    this.#free = e;
  }

  #append(e: Entry): void {
    if (this.#tail === null) this.#head = e;
    else this.#tail.next = e;
    this.#tail = e;
  }

  /** Drops the head entry; returns the new head. */
  #shift(): Entry | null {
    const h = this.#head!;
    this.#head = h.next;
    h.next = null;
    if (this.#head === null) this.#tail = null;
    return this.#head;
  }

  #stop(reason: unknown): void {
    if (this.#stopped) return;
    this.#stopped = true;
    unwatchAbort(this.#userLink);
    unwatchAbort(this.#poolLink);
    this.#controller.abort(reason);
    const it = this.#it;
    if (it !== null && !this.#exhausted && typeof it.return === "function") {
      this.#exhausted = true;
      try {
        const r = it.return() as unknown;
        if (r instanceof Promise) r.then(noop, noop);
      } catch {
        // A source that cannot be closed has nothing more to tell us.
      }
    }
  }
}
