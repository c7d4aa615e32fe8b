/**
 * Broadcast: pub/sub in one process (seed 001's broadcast server), every subscriber with its
 * own bounded buffer and its own answer to falling behind.
 *
 * Invariants:
 *  - Each subscription owns one `Channel` of capacity `buffer`: its values, oldest first. A
 *    publish offers the value to every current subscriber, in subscription order; per
 *    subscriber, values arrive in publish order (a `"block"` subscriber's waiting publishes are
 *    parked senders of its channel, served FIFO).
 *  - A subscription leaves the set exactly once: `unsubscribe()` (or `break`), a `"disconnect"`
 *    overflow, or `close()` of the broadcast; its channel is closed then. After
 *    `unsubscribe()` or a disconnect its iteration yields nothing more (buffered values are
 *    discarded, and counted in `dropped` for a disconnect); after `close()` it drains them.
 *  - At most `maxSubscribers` subscriptions are in the set.
 */
import { Channel } from "../core/channel.js";
import { RESOLVED } from "../core/waitq.js";
import { BusyError, ChannelClosedError } from "../core/errors.js";
import { observe } from "../core/registry.js";
import { checkInteger, checkLimit, checkName, checkOptions, given, signalOf } from "../core/validate.js";
import { LaggedError } from "./errors.js";
import { DEFAULT_BUFFER } from "./stage.js";

/** What a subscriber's full buffer does to a new value. */
export type BroadcastPolicy = "block" | "drop-oldest" | "drop-newest" | "disconnect";

const POLICIES: readonly string[] = ["block", "drop-oldest", "drop-newest", "disconnect"];
const DEFAULT_WARN = 1000;
const DONE: IteratorResult<never> = Object.freeze({ value: undefined, done: true }) as IteratorResult<never>;

/** Options of `new Broadcast(options)`. */
export interface BroadcastOptions {
  /** Shown in errors, warnings and metrics; a named broadcast is registered with `sluice/metrics`. */
  name?: string;
  /** At most this many subscribers at once (a positive safe integer or Infinity, default Infinity); past it `subscribe` throws `BusyError`. */
  maxSubscribers?: number;
  /** Warn once (`SLUICE_SUBSCRIBERS`) past this many subscribers (default 1000 when `maxSubscribers` is not set). */
  warnSubscribers?: number;
}

/** Options of `broadcast.subscribe(options)`. */
export interface SubscribeOptions {
  /** This subscriber's buffer (a non-negative safe integer, default 16; at least 1 for `"drop-oldest"`). */
  buffer?: number;
  /**
   * When a value is published while the buffer is full: `"block"` (default: the publisher waits
   * for room), `"drop-oldest"` (the oldest buffered value is dropped), `"drop-newest"` (the new
   * value is dropped for this subscriber), `"disconnect"` (the subscription ends with `LaggedError`).
   */
  policy?: BroadcastPolicy;
  /**
   * Ends the subscription when it aborts: it leaves the broadcast at once (buffered values are
   * discarded, as by `unsubscribe()`), and its iteration throws `signal.reason` (once; then it
   * is done). An already-aborted signal makes `subscribe` throw its reason.
   */
  signal?: AbortSignal;
}

/** Counters of one subscription (a fresh snapshot). */
export interface SubscriptionStats {
  readonly policy: BroadcastPolicy;
  readonly buffer: number;
  /** Values this subscriber took (iteration). */
  readonly received: number;
  /** Values this subscriber lost: dropped by its policy, or discarded when it was disconnected. */
  readonly dropped: number;
  /** Values buffered now. */
  readonly length: number;
  /** Whether it fell behind under `"disconnect"`. */
  readonly lagged: boolean;
}

/** Counters of a broadcast (a fresh snapshot). */
export interface BroadcastStats {
  readonly name: string | undefined;
  readonly subscribers: number;
  readonly maxSubscribers: number;
  /** Calls of `publish` that were accepted. */
  readonly published: number;
  /** Values lost by subscribers (their `dropped`, summed, including those that left). */
  readonly dropped: number;
  /** Subscribers disconnected for falling behind. */
  readonly disconnected: number;
  readonly closed: boolean;
}

/**
 * One subscriber of a `Broadcast`: an `AsyncIterable` of the values published after it
 * subscribed (iterate it once). `break` (or `unsubscribe()`) leaves the broadcast.
 */
export class Subscription<T> implements AsyncIterable<T> {
  /** @internal */ readonly ch: Channel<T>;
  /** @internal */ received = 0;
  /** @internal */ dropped = 0;
  /** @internal */ lagged: LaggedError | null = null;
  /** @internal Left by unsubscribe() or a disconnect: nothing more is yielded. */ gone = false;
  #iterated = false;
  /** The abort of `options.signal`, thrown once by the iteration. */
  #aborted: { reason: unknown } | null = null;
  #signal: AbortSignal | undefined;
  #onAbort: (() => void) | undefined;

  /** @internal */
  constructor(
    readonly owner: Broadcast<T>,
    readonly policy: BroadcastPolicy,
    readonly buffer: number,
  ) {
    this.ch = new Channel<T>(buffer);
  }

  /** @internal Ends this subscription when `signal` aborts (see `SubscribeOptions.signal`). */
  watch(signal: AbortSignal): void {
    this.#signal = signal;
    this.#onAbort = () => {
      this.#aborted = { reason: signal.reason };
      this.unsubscribe();
    };
    signal.addEventListener("abort", this.#onAbort, { once: true });
  }

  /** @internal It left the broadcast: the signal no longer holds it. */
  detach(): void {
    if (this.#onAbort !== undefined) this.#signal?.removeEventListener("abort", this.#onAbort);
    this.#onAbort = undefined;
    this.#signal = undefined;
  }

  /** A fresh snapshot of this subscription's counters. */
  get stats(): SubscriptionStats {
    return {
      policy: this.policy,
      buffer: this.buffer,
      received: this.received,
      dropped: this.dropped,
      length: this.gone ? 0 : this.ch.length,
      lagged: this.lagged !== null,
    };
  }

  /** Leaves the broadcast now: buffered values are discarded and a waiting iteration ends. Idempotent. */
  unsubscribe(): void {
    if (this.gone) return;
    this.gone = true;
    this.owner.remove(this);
    if (!this.ch.closed) this.ch.close();
  }

  /** @internal Fell behind under "disconnect": discard what it holds, remember what it lost. */
  disconnect(): void {
    let missed = 1;
    while (this.ch.tryRecv()?.ok === true) missed++;
    this.dropped += missed;
    this.lagged = new LaggedError(missed);
    this.unsubscribe();
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    if (this.#iterated) throw new Error("a subscription is iterated once: it was already iterated");
    this.#iterated = true;
    const it: AsyncIterableIterator<T> = {
      next: (): Promise<IteratorResult<T>> => {
        try {
          const r = this.ch.tryRecv();
          if (r !== undefined) return Promise.resolve(this.#result(r.ok, r.value));
          const end = this.#result(false, undefined);
          if (end !== undefined) return Promise.resolve(end);
        } catch (e) {
          return Promise.reject(e);
        }
        return this.ch.recv().then((v) => this.#result(v.ok, v.value));
      },
      return: (): Promise<IteratorResult<T>> => {
        this.unsubscribe();
        return Promise.resolve(DONE);
      },
      [Symbol.asyncIterator]: () => it,
    };
    return it;
  }

  #lagThrown = false;

  // For a value: count it (unless gone). For the end: LaggedError once if lagged, else done.
  #result(ok: boolean, value: T | undefined): IteratorResult<T>;
  #result(ok: false, value: undefined): IteratorResult<T> | undefined;
  #result(ok: boolean, value: T | undefined): IteratorResult<T> | undefined {
    if (this.#aborted !== null) {
      const { reason } = this.#aborted;
      this.#aborted = null;
      this.#lagThrown = true; // one end only
      throw reason;
    }
    if (this.lagged !== null) {
      if (this.#lagThrown) return DONE;
      this.#lagThrown = true;
      throw this.lagged;
    }
    if (this.gone) return DONE;
    if (ok) {
      this.received++;
      return { value: value as T, done: false };
    }
    if (!this.ch.closed) return undefined;
    this.owner.remove(this); // the broadcast closed and this subscriber drained it
    return DONE;
  }
}

/**
 * Pub/sub with a bounded buffer and a policy per subscriber. Subscribe and unsubscribe at any
 * time; a subscriber sees the values published after it subscribed.
 *
 * What waits: `publish` waits only for `"block"` subscribers without room; the others never
 * slow it. Bounded: every buffer, and the number of subscribers (`maxSubscribers`, or a warning
 * past 1000). Closed: `publish` rejects with `ChannelClosedError`; every subscriber drains what
 * it holds, then its iteration ends.
 *
 * @example
 * const prices = new Broadcast<Tick>({ name: "prices", maxSubscribers: 100 });
 * const sub = prices.subscribe({ buffer: 64, policy: "drop-oldest" });
 * (async () => { for await (const t of sub) render(t); })();
 * await prices.publish(tick);
 */
export class Broadcast<T> {
  readonly #subs = new Set<Subscription<T>>();
  readonly #name: string | undefined;
  readonly #max: number;
  readonly #warnAt: number;
  #warned = false;
  #closed = false;
  #published = 0;
  #droppedGone = 0;
  #disconnected = 0;

  constructor(options?: BroadcastOptions) {
    checkOptions(options);
    this.#name = checkName(options?.name);
    this.#max = checkLimit(given(options?.maxSubscribers, Infinity), "options.maxSubscribers", 1);
    this.#warnAt = checkLimit(given(options?.warnSubscribers, this.#max === Infinity ? DEFAULT_WARN : Infinity), "options.warnSubscribers", 0);
    observe("broadcast", this, this.#name !== undefined);
  }

  /** The `name` option. */
  get name(): string | undefined {
    return this.#name;
  }

  /** Subscribers now. */
  get size(): number {
    return this.#subs.size;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** A fresh snapshot of the broadcast's counters. */
  get stats(): BroadcastStats {
    let dropped = this.#droppedGone;
    for (const s of this.#subs) dropped += s.dropped;
    return {
      name: this.#name,
      subscribers: this.#subs.size,
      maxSubscribers: this.#max,
      published: this.#published,
      dropped,
      disconnected: this.#disconnected,
      closed: this.#closed,
    };
  }

  /**
   * Adds a subscriber. Throws `BusyError` when `maxSubscribers` are subscribed,
   * `ChannelClosedError` when the broadcast is closed, `RangeError`/`TypeError` for bad options.
   *
   * @example
   * for await (const v of bus.subscribe({ policy: "disconnect", buffer: 8 })) use(v);
   */
  subscribe(options?: SubscribeOptions): Subscription<T> {
    const signal = signalOf(options);
    const policy = given(options?.policy, "block");
    if (!POLICIES.includes(policy)) throw new RangeError(`options.policy must be one of ${POLICIES.join(", ")}, got ${JSON.stringify(policy)}`);
    const buffer = checkInteger(given(options?.buffer, DEFAULT_BUFFER), "options.buffer", policy === "drop-oldest" ? 1 : 0);
    if (this.#closed) throw new ChannelClosedError(`subscribe to closed ${this.#describe()}`);
    if (this.#subs.size >= this.#max) {
      throw new BusyError(`${this.#describe()} has ${this.#max} subscribers (maxSubscribers)`);
    }
    signal?.throwIfAborted();
    const sub = new Subscription<T>(this, policy, buffer);
    if (signal !== undefined) sub.watch(signal);
    this.#subs.add(sub);
    if (this.#subs.size > this.#warnAt && !this.#warned) {
      this.#warned = true;
      process.emitWarning(`${this.#subs.size} subscribers on ${this.#describe()} (threshold ${this.#warnAt}): a subscribe without its unsubscribe leaks`, {
        type: "SluiceWarning",
        code: "SLUICE_SUBSCRIBERS",
      });
    }
    return sub;
  }

  /**
   * Publishes `value` to every current subscriber. Resolves at once unless a `"block"`
   * subscriber has no room; then when every such subscriber has taken it into its buffer.
   *
   * Rejects with: `signal.reason` if the signal is (or becomes) aborted first (a value already
   * handed to some subscribers stays with them; the blocked ones do not get it);
   * `ChannelClosedError` if the broadcast is closed (or closes while this waits).
   */
  publish(value: T, options?: { signal?: AbortSignal }): Promise<void> {
    let signal: AbortSignal | undefined;
    try {
      signal = signalOf(options);
    } catch (e) {
      return Promise.reject(e);
    }
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.#closed) return Promise.reject(new ChannelClosedError(`publish on closed ${this.#describe()}`));
    this.#published++;
    let waits: Promise<void>[] | null = null;
    for (const sub of this.#subs) {
      if (sub.ch.trySend(value)) continue;
      switch (sub.policy) {
        case "block":
          (waits ??= []).push(
            sub.ch.send(value, signal === undefined ? undefined : { signal }).catch((e: unknown) => {
              if (sub.gone && e instanceof ChannelClosedError) return; // it left while we waited
              // The broadcast closed under this publish: say so, not the subscriber's own channel.
              if (e instanceof ChannelClosedError) throw new ChannelClosedError(`publish on closed ${this.#describe()}`);
              throw e;
            }),
          );
          break;
        case "drop-oldest":
          sub.ch.tryRecv();
          sub.dropped++;
          sub.ch.trySend(value);
          break;
        case "drop-newest":
          sub.dropped++;
          break;
        case "disconnect":
          this.#disconnected++;
          sub.disconnect();
          break;
      }
    }
    if (waits === null) return RESOLVED;
    return Promise.all(waits).then(() => undefined);
  }

  /**
   * Closes the broadcast: no more publishes or subscriptions; every subscriber drains what it
   * holds, then its iteration ends; publishes still waiting reject with `ChannelClosedError`.
   * Idempotent.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const sub of this.#subs) if (!sub.ch.closed) sub.ch.close();
  }

  /** @internal A subscription leaves. */
  remove(sub: Subscription<T>): void {
    sub.detach();
    if (this.#subs.delete(sub)) this.#droppedGone += sub.dropped;
  }

  #describe(): string {
    return this.#name === undefined ? "broadcast" : `broadcast ${JSON.stringify(this.#name)}`;
  }
}
