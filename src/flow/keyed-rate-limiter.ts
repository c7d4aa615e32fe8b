/**
 * KeyedRateLimiter: one token bucket per key (client, tenant, IP), all with the same rate and
 * burst, and at most `maxKeys` buckets in memory.
 *
 * Invariants:
 *  - `#buckets` is a Map in least-recently-used-first order: every call that names an existing
 *    key moves it to the end (delete + set, O(1)), including calls that are refused, so a
 *    client hammering an empty bucket stays recent and keeps its debt.
 *  - `#buckets.size <= maxKeys` at every step: a bucket is created only when a call takes
 *    tokens from a key that has none, and then, if the map is full, the least recently used
 *    bucket (the Map's first entry) is evicted first, O(1).
 *  - A key with no bucket behaves exactly as a full bucket, so a call that takes nothing
 *    (`n === 0`, `n > burst`, rate Infinity) never creates one and never evicts.
 *  - The arithmetic, the waits and their timers are those of `RateLimiter` (`BucketEngine`):
 *    every parked wait holds one reservation on its key's bucket and one armed timer.
 */
import { observe } from "../core/registry.js";
import {
  BucketEngine, TokenBucket, checkMaxDelay, describeLimiter, readLimiterOptions,
  type RateLimiterOptions, type RateLimiterStats, type RateWaitOptions, type Reservation, type ReserveOptions,
} from "./rate-limiter.js";
import { checkInteger, checkOptions, signalOf } from "../core/validate.js";

/**
 * Options of `new KeyedRateLimiter(options)`: those of `RateLimiter`, applied to every key, plus `maxKeys`.
 *
 * @example
 * new KeyedRateLimiter({ rate: 5, burst: 10, maxKeys: 50_000, name: "per-ip" });
 */
export interface KeyedRateLimiterOptions extends RateLimiterOptions {
  /** The most buckets kept at once (a positive safe integer); past it the least recently used key is forgotten. */
  maxKeys: number;
}

/**
 * Counters of a keyed limiter (summed over all keys): a fresh snapshot.
 *
 * @example
 * if (limiter.stats.evicted > 0) log.warn("maxKeys too small for the active clients");
 * // Every counter of RateLimiterStats but `tokens` (which is per key: see `tokens(key)`), summed over keys.
 */
export interface KeyedRateLimiterStats extends Omit<RateLimiterStats, "tokens"> {
  /** Buckets held now. */
  readonly keys: number;
  readonly maxKeys: number;
  /** Buckets forgotten to make room for a new key (least recently used first). */
  readonly evicted: number;
}

function checkKey(key: unknown): void {
  if (key === undefined) throw new TypeError("key must not be undefined");
}

/**
 * Per-key rate limits: each key gets its own token bucket of `burst` tokens refilled at `rate`
 * per second, with the `allow` / `reserve` / `wait` semantics of `RateLimiter`.
 *
 * Bounded: at most `maxKeys` buckets; when a new key needs one and the limiter is full, the
 * least recently used key's bucket is evicted. What eviction means for that client: its
 * bucket is forgotten, so its next call starts from a fresh, full bucket, as if it had been
 * idle long enough to refill; any debt it had (reservations, waits in progress) is forgiven,
 * and its waiting callers still resume at the times they were given. A full bucket carries no
 * information, so evicting an idle client costs nothing; to keep active clients from being
 * evicted (and so getting an extra burst), size `maxKeys` above the number of clients active
 * within `burst / rate` seconds, and watch `stats.evicted`. `prune()` drops full buckets early.
 *
 * @example
 * const perClient = new KeyedRateLimiter({ rate: 5, burst: 10, maxKeys: 10_000 });
 * if (!perClient.allow(req.socket.remoteAddress ?? "?")) return reply429();
 * await perClient.wait(tenantId, 1, { signal, maxDelayMs: 1000 });
 */
export class KeyedRateLimiter<K = string> {
  readonly #e: BucketEngine;
  readonly #buckets = new Map<K, TokenBucket>();
  readonly #maxKeys: number;
  readonly #name: string | undefined;
  #evicted = 0;

  constructor(options: KeyedRateLimiterOptions) {
    const o = readLimiterOptions(options);
    this.#maxKeys = checkInteger(options.maxKeys, "options.maxKeys", 1);
    this.#name = o.name;
    this.#e = new BucketEngine(this, "keyed-rate-limiter", o.rate, o.burst, o.clock, o.maxWaiters, o.warnWaiters);
    observe("keyed-rate-limiter", this, o.name !== undefined);
  }

  /** The name given in the options (undefined without one). */
  get name(): string | undefined {
    return this.#name;
  }

  /** Tokens added per second to each key's bucket. */
  get rate(): number {
    return this.#e.rate;
  }

  /** Each key's bucket size. */
  get burst(): number {
    return this.#e.burst;
  }

  /** The most buckets kept at once. */
  get maxKeys(): number {
    return this.#maxKeys;
  }

  /** Buckets held now (`<= maxKeys`). */
  get size(): number {
    return this.#buckets.size;
  }

  /** `wait` calls waiting now, all keys together. */
  get waiting(): number {
    return this.#e.waiters.length;
  }

  /** A fresh snapshot of the counters. */
  get stats(): KeyedRateLimiterStats {
    const e = this.#e;
    return {
      rate: e.rate,
      burst: e.burst,
      keys: this.#buckets.size,
      maxKeys: this.#maxKeys,
      evicted: this.#evicted,
      allowed: e.allowed,
      refused: e.refused,
      reserved: e.reserved,
      cancelled: e.cancelled,
      passed: e.passed,
      waited: e.waiters.parkedTotal,
      rejected: e.rejected,
      aborted: e.aborted,
      waiting: e.waiters.length,
      peakWaiting: e.waiters.peak,
    };
  }

  /** Whether `key` has a bucket now. Does not count as a use. */
  has(key: K): boolean {
    return this.#buckets.has(key);
  }

  /**
   * Tokens in `key`'s bucket now (negative while it has reservations outstanding; `burst` for
   * a key without a bucket). Does not count as a use.
   */
  tokens(key: K): number {
    const b = this.#buckets.get(key);
    return b === undefined ? this.#e.burst : this.#e.tokens(b);
  }

  /**
   * `RateLimiter.allow` for `key`'s bucket: takes `n` tokens (default 1) if they are there
   * now; never waits. Counts as a use of `key` (refused or not).
   *
   * @throws TypeError if `key` is undefined; TypeError / RangeError if `n` is invalid.
   * @example
   * if (!limiter.allow(clientIp)) return reply429();
   */
  allow(key: K, n = 1): boolean {
    checkKey(key);
    checkInteger(n, "n", 0);
    return this.#e.allow(this.#bucket(key, n), n);
  }

  /**
   * `RateLimiter.reserve` for `key`'s bucket: takes `n` tokens now, ahead of the refill if
   * need be, and says after how long to act; `cancel()` gives back what it can. Never waits.
   *
   * @throws TypeError if `key` is undefined; TypeError / RangeError if `n` or `maxDelayMs` is invalid.
   * @example
   * const r = limiter.reserve(tenant, 1, { maxDelayMs: 0 });
   * if (!r.ok) return reply429(r.delayMs);
   */
  reserve(key: K, n = 1, options?: ReserveOptions): Reservation {
    checkKey(key);
    checkInteger(n, "n", 0);
    const maxDelay = checkMaxDelay(checkOptions(options)?.maxDelayMs);
    return this.#e.reserve(this.#bucket(key, n), n, maxDelay);
  }

  /**
   * `RateLimiter.wait` for `key`'s bucket: reserves `n` tokens (default 1) at the call and
   * waits until they are ready. Rejects with `signal.reason` (already aborted: nothing taken;
   * aborted while waiting: reservation cancelled), `RangeError` when `n > burst`, `BusyError`
   * (nothing taken) when the wait would exceed `maxDelayMs` or `maxWaiters` callers wait.
   *
   * @example
   * await limiter.wait(tenantId, 1, { signal, maxDelayMs: 2000 });
   */
  wait(key: K, n = 1, options?: RateWaitOptions): Promise<void> {
    let signal: AbortSignal | undefined;
    let maxDelay: number;
    try {
      signal = signalOf(options);
      if (signal?.aborted) return Promise.reject(signal.reason);
      checkKey(key);
      checkInteger(n, "n", 0);
      maxDelay = checkMaxDelay(options?.maxDelayMs);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.#e.wait(this.#bucket(key, n), n, signal, maxDelay);
  }

  /**
   * Forgets `key`'s bucket (its next call starts full); returns whether it had one. Waiting
   * callers of that key still resume at their times.
   *
   * @example
   * limiter.delete(userId); // e.g. after an admin reset
   */
  delete(key: K): boolean {
    return this.#buckets.delete(key);
  }

  /**
   * Forgets every bucket that has refilled completely: such a bucket behaves exactly as a
   * missing one, so this frees memory without changing any outcome. O(size). Returns how many
   * were dropped.
   *
   * @example
   * setInterval(() => limiter.prune(), 60_000).unref();
   */
  prune(): number {
    const e = this.#e;
    const now = e.clock.now();
    let dropped = 0;
    for (const [key, b] of this.#buckets) {
      if (b.lastEvent <= now && b.at(now, e.rate, e.burst) >= e.burst) {
        this.#buckets.delete(key);
        dropped++;
      }
    }
    return dropped;
  }

  /** @internal */
  describe(): string {
    return describeLimiter("keyed rate limiter", this.#name, this.#e.rate, this.#e.burst);
  }

  /**
   * The bucket a call on `key` works on: the key's own (now most recently used), a new one
   * when the call takes tokens (evicting the least recently used key if full), or else a
   * throwaway full bucket that is never stored.
   */
  #bucket(key: K, n: number): TokenBucket {
    const map = this.#buckets;
    const e = this.#e;
    const b = map.get(key);
    if (b !== undefined) {
      map.delete(key);
      map.set(key, b);
      return b;
    }
    const fresh = new TokenBucket(e.burst, e.clock.now());
    if (!e.takes(n)) return fresh;
    if (map.size >= this.#maxKeys) {
      const oldest = map.keys().next();
      if (oldest.done !== true) {
        map.delete(oldest.value);
        this.#evicted++;
      }
    }
    map.set(key, fresh);
    return fresh;
  }
}
