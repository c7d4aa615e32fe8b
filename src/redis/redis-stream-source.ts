/**
 * consumeRedisStream: a Redis Streams consumer group read into a `Pool`, with backpressure
 * across the broker. It reads only as many entries as the pool has room for, removes an entry
 * only once its handler is done, takes over the entries of consumers that died, and moves an
 * entry that keeps failing to a dead-letter stream.
 *
 * The stream is a work queue with one consumer group (as a JetStream work-queue stream is):
 * an entry is acknowledged and deleted together (`XACK` + `XDEL` in one script) when its
 * handler succeeds, so `XLEN` is the backlog, and a `RedisStreamSink`'s `maxLength` bounds it.
 * A second group on the same stream would lose the entries the first one deleted: the source
 * refuses to start on a stream with more than one group.
 *
 * Invariants:
 *  - Entries read but not settled (`inFlight`, each one a pool task, running or queued) never
 *    exceed the pool's room at the moment of each read: a read asks for at most
 *    `free slots + free queue` entries (at most 1000), and nothing else is read until the pool
 *    has room again. Nothing is buffered in the source itself.
 *  - One loop issues every read (own pending, claims, new entries), one at a time, on a
 *    dedicated connection (a blocking `XREADGROUP` would hold up other commands). Acks, dead
 *    letters and touches go through the caller's client.
 *  - Every entry handed to the handler ends in exactly one of: removed (acked and deleted),
 *    dead-lettered (copied, acked and deleted in one script), or left pending in the group (the
 *    handler failed, or the ack could not reach Redis): a pending entry is delivered again
 *    after `claimIdleMs` by whichever consumer claims it. Nothing read is ever dropped.
 *  - While its handler runs, an entry's idle time is reset every `claimIdleMs / 3` (a "touch"),
 *    so other consumers do not claim the work of a live one; an entry another consumer claimed
 *    meanwhile is never taken back.
 *  - The group's consumer list stays bounded: after each claim pass, other consumers that hold
 *    nothing and have been idle for `2 * claimIdleMs` are deleted (checked and deleted in one
 *    script, so never one holding entries).
 *  - After `signal` aborts: no new read starts (a blocked read is unblocked), every entry
 *    already handed to the pool settles, then the promise resolves with the stats.
 */
import type { Redis, RedisOptions } from "ioredis";
import { BusyError } from "../core/errors.js";
import { checkFunction, checkInteger, checkLimit, checkName, checkOptions, checkSignal, given } from "../core/validate.js";
import { observe } from "../core/registry.js";
import { Pool } from "../flow/pool.js";
import { PoolClosedError } from "../flow/errors.js";
import { ACK_DELETE, CLAIM, DEAD_LETTER, OWN_PENDING, PRUNE, TOUCH } from "./scripts.js";
import { checkRedisClient, isOutage, whenReady } from "./client.js";

/** One stream entry, as given to the handler. */
export interface RedisStreamEntry {
  /** The stream's key. */
  readonly stream: string;
  /** The entry's id (`<ms>-<seq>`). */
  readonly id: string;
  /** Its fields and values (strings). */
  readonly fields: Readonly<Record<string, string>>;
  /** How many times the group has delivered it, this delivery included (1 the first time). */
  readonly deliveries: number;
}

/** Options of `consumeRedisStream(redis, options)`. */
export interface ConsumeRedisStreamOptions {
  /** The stream's key. */
  stream: string;
  /** The consumer group (created, from the stream's start, when missing: see `createGroup`). */
  group: string;
  /** This consumer's name in the group: stable across restarts, unique among live consumers. */
  consumer: string;
  /** Where handlers run; its free slots plus free queue bound every read. */
  pool: Pool;
  /**
   * Handles one entry; `signal` fires if the pool aborts. Fulfilled: the entry is acked and
   * deleted. Thrown or rejected: it stays pending and is delivered again after `claimIdleMs`
   * (or dead-lettered once it has had `maxDeliveries` deliveries).
   */
  handler: (entry: RedisStreamEntry, signal: AbortSignal) => unknown;
  /** Stops reading; the promise resolves once work in flight settled. Required. */
  signal: AbortSignal;
  /**
   * An entry pending this long without a touch belongs to a dead or stalled consumer and is
   * claimed (`XAUTOCLAIM`) by a live one (ms, a positive safe integer, default 30 000). A
   * failed entry is delivered again after this long. Touches run every third of it.
   */
  claimIdleMs?: number;
  /** Deliveries before an entry is dead-lettered (a positive safe integer; default Infinity: never). */
  maxDeliveries?: number;
  /** Where entries past `maxDeliveries` go (required with a finite `maxDeliveries`). Never trimmed. */
  deadLetterStream?: string;
  /** How long one read for new entries waits on the server (`XREADGROUP BLOCK`, ms, default 1000). */
  blockMs?: number;
  /** Create the group (from id 0, with MKSTREAM) when it does not exist (default true). */
  createGroup?: boolean;
  /** Names the source in `sluice/metrics` (kind `"redis-stream-source"`) while it runs; unnamed sources are not listed. */
  name?: string;
  /**
   * Told of handler failures (with the entry) and of Redis errors the source retried (without).
   * Default: a `SluiceWarning` `SLUICE_REDIS_SOURCE_ERROR`, at most one a second per source.
   */
  onError?: (error: unknown, entry?: RedisStreamEntry) => void;
}

/** The counters of one `consumeRedisStream` run (the promise resolves with them). */
export interface RedisStreamSourceStats {
  readonly stream: string;
  readonly group: string;
  readonly consumer: string;
  /** New entries read (`>`). */
  readonly read: number;
  /** This consumer's own pending entries read again at start (it had them when it stopped). */
  readonly recovered: number;
  /** Entries claimed from consumers idle past `claimIdleMs`. */
  readonly claimed: number;
  /** Handlers that succeeded (their entries then acked and deleted). */
  readonly completed: number;
  /** Of `completed`: entries another consumer had already finished (at-least-once duplicates). */
  readonly duplicates: number;
  /** Handlers that failed (their entries left pending for another delivery, or dead-lettered). */
  readonly failed: number;
  /** Entries moved to the dead-letter stream. */
  readonly deadLettered: number;
  /** Acks that could not reach Redis (the entry stays pending: it will be delivered again). */
  readonly ackErrors: number;
  /** Redis errors while reading or claiming (each retried after a backoff). */
  readonly errors: number;
  /** Other consumers deleted from the group: no pending entries, idle for `2 * claimIdleMs` (dead ones). */
  readonly pruned: number;
  /** Entries handed to the pool and not settled yet. */
  readonly inFlight: number;
}

/** At most this many entries per read, whatever the room. */
const MAX_COUNT = 1000;

/**
 * Consumes `stream` as consumer `consumer` of group `group`, running `handler` for each entry in
 * `pool`, until `signal` aborts; then resolves with the stats once everything handed to the pool
 * settled. At-least-once: an entry is removed only after its handler succeeded, so a crash
 * means it is handled again (by this consumer when it restarts, or by another after
 * `claimIdleMs`).
 *
 * Order of reading: first this consumer's own pending entries (from id 0: what it held when it
 * last stopped), then entries claimed from consumers idle past `claimIdleMs` (checked at start
 * and every `claimIdleMs / 2`), then new entries (`>`). Each read asks for at most the pool's
 * free slots plus free queue; with no room, the source waits for its own tasks to settle (or
 * polls every 20 ms if the room is held by other users of a shared pool).
 *
 * Redis errors (an outage, a restart) are retried with a backoff (50 ms doubling to 2 s) and
 * counted; a missing group (a Redis restarted without persistence) is recreated when
 * `createGroup` is on. The promise rejects only for setup errors (a stream with more than one
 * group, `WRONGTYPE`, no group and `createGroup: false`) and if the pool closes under it
 * (`PoolClosedError`), in each case after work in flight settled. An already-aborted signal
 * rejects with its reason; bad options reject with `TypeError`/`RangeError`.
 *
 * The client must have `enableOfflineQueue: false` (`TypeError` otherwise). A second
 * connection (`redis.duplicate()`) is opened for the blocking reads and closed at the end.
 *
 * @example
 * const redis = new Redis({ enableOfflineQueue: false });
 * const pool = new Pool({ concurrency: 16 });
 * const stats = await consumeRedisStream(redis, {
 *   stream: "jobs", group: "workers", consumer: `worker-${hostname()}`, pool,
 *   handler: async (entry, signal) => { await process(JSON.parse(entry.fields.job), signal); },
 *   claimIdleMs: 30_000, maxDeliveries: 5, deadLetterStream: "jobs:dead",
 *   signal: shutdown.signal,
 * });
 */
export function consumeRedisStream(redis: Redis, options: ConsumeRedisStreamOptions): Promise<RedisStreamSourceStats> {
  const given = (options as { signal?: unknown } | null | undefined)?.signal;
  if (given instanceof AbortSignal && given.aborted) return Promise.reject(given.reason); // an aborted signal wins
  let source: RedisStreamSource;
  try {
    source = new RedisStreamSource(redis, options);
  } catch (e) {
    return Promise.reject(e);
  }
  if (options.signal.aborted) return Promise.reject(options.signal.reason);
  return source.run();
}

function checkKey(value: unknown, name: string): string {
  if (typeof value !== "string" || value === "") {
    throw new TypeError(`${name} must be a non-empty string, got ${typeof value === "string" ? '""' : typeof value}`);
  }
  return value;
}

type RawEntry = [id: string, fields: string[], deliveries: number];

class RedisStreamSource {
  readonly #redis: Redis;
  readonly #stream: string;
  readonly #group: string;
  readonly #consumer: string;
  readonly #pool: Pool;
  readonly #handler: (entry: RedisStreamEntry, signal: AbortSignal) => unknown;
  readonly #signal: AbortSignal;
  readonly #claimIdleMs: number;
  readonly #maxDeliveries: number;
  readonly #deadKey: string;
  readonly #blockMs: number;
  readonly #createGroup: boolean;
  readonly #onError: ((error: unknown, entry?: RedisStreamEntry) => void) | undefined;
  readonly #name: string | undefined;

  #reader: Redis | null = null;
  #readerId: number | null = null;
  #setUp = false;
  #history = true;
  #historyCursor = "0";
  #claimCursor = "0-0";
  #nextClaimAt = 0;
  #stopped = false;
  #blocked = false;
  /** Ids of the entries handed to the pool and not settled: touched while they run. */
  readonly #inFlight = new Set<string>();
  #touchTimer: ReturnType<typeof setInterval> | null = null;
  #touching = false;
  /** The loop's one pending wait (for room, a backoff, the end of the drain), if any. */
  #wakeup: (() => void) | null = null;
  #sleepTimer: ReturnType<typeof setTimeout> | null = null;
  #lastWarn = -Infinity;
  /** Acks waiting for this turn's batch (one script call for all the entries done in a turn). */
  #acks: Array<{ id: string; resolve: (removed: number) => void; reject: (e: unknown) => void }> = [];

  #read = 0;
  #recovered = 0;
  #claimed = 0;
  #completed = 0;
  #duplicates = 0;
  #failed = 0;
  #deadLettered = 0;
  #ackErrors = 0;
  #errors = 0;
  #pruned = 0;

  constructor(redis: Redis, options: ConsumeRedisStreamOptions) {
    this.#redis = checkRedisClient(redis, "consumeRedisStream");
    if (options === null || typeof options !== "object") throw new TypeError("options must be an object");
    checkOptions(options);
    this.#stream = checkKey(options.stream, "options.stream");
    this.#group = checkKey(options.group, "options.group");
    this.#consumer = checkKey(options.consumer, "options.consumer");
    if (!(options.pool instanceof Pool)) throw new TypeError("options.pool must be a Pool (from sluice/flow)");
    this.#pool = options.pool;
    this.#handler = checkFunction(options.handler, "options.handler");
    const signal = checkSignal(options.signal);
    if (signal === undefined) throw new TypeError("options.signal is required: an AbortSignal that stops the source");
    this.#signal = signal;
    this.#claimIdleMs = checkInteger(given(options.claimIdleMs, 30_000), "options.claimIdleMs", 1);
    this.#maxDeliveries = checkLimit(given(options.maxDeliveries, Infinity), "options.maxDeliveries", 1);
    const dead = options.deadLetterStream;
    if (dead !== undefined) checkKey(dead, "options.deadLetterStream");
    if (dead === this.#stream) throw new RangeError("options.deadLetterStream must differ from options.stream");
    if (this.#maxDeliveries !== Infinity && dead === undefined) {
      throw new TypeError("options.deadLetterStream is required with a finite options.maxDeliveries (an entry past it is moved there, never dropped)");
    }
    if (this.#maxDeliveries === Infinity && dead !== undefined) {
      throw new TypeError("options.deadLetterStream needs a finite options.maxDeliveries (without one nothing is ever dead-lettered)");
    }
    this.#deadKey = dead ?? this.#stream;
    this.#blockMs = checkInteger(given(options.blockMs, 1000), "options.blockMs", 1);
    const create = given(options.createGroup, true);
    if (typeof create !== "boolean") throw new TypeError("options.createGroup must be a boolean");
    this.#createGroup = create;
    this.#onError = options.onError === undefined ? undefined : checkFunction(options.onError, "options.onError");
    this.#name = checkName(options.name);
  }

  get name(): string | undefined {
    return this.#name;
  }

  get stats(): RedisStreamSourceStats {
    return {
      stream: this.#stream,
      group: this.#group,
      consumer: this.#consumer,
      read: this.#read,
      recovered: this.#recovered,
      claimed: this.#claimed,
      completed: this.#completed,
      duplicates: this.#duplicates,
      failed: this.#failed,
      deadLettered: this.#deadLettered,
      ackErrors: this.#ackErrors,
      errors: this.#errors,
      pruned: this.#pruned,
      inFlight: this.#inFlight.size,
    };
  }

  async run(): Promise<RedisStreamSourceStats> {
    observe("redis-stream-source", this, this.#name !== undefined);
    const onAbort = (): void => this.#stop();
    this.#signal.addEventListener("abort", onAbort, { once: true });
    let fatal: unknown = null;
    let backoff = 0;
    try {
      while (!this.#stopped) {
        if (!this.#connected()) {
          await this.#sleep(Math.min(500, 20 + backoff));
          backoff = Math.min(2000, backoff * 2 + 20);
          continue;
        }
        if (this.#pool.closed) {
          fatal = new PoolClosedError(`consumeRedisStream: ${this.#pool.describe()} is closed; the source stops reading`);
          break;
        }
        const room = this.#room();
        if (room === 0) {
          await this.#sleep(this.#inFlight.size > 0 ? undefined : 20);
          continue;
        }
        try {
          await this.#step(room);
          backoff = 0;
        } catch (e) {
          if (this.#stopped) break; // e.g. the unblocked read
          if (e instanceof PoolClosedError || !this.#setUp && !isOutage(e)) {
            fatal = e;
            break;
          }
          this.#errors++;
          this.#report(e);
          if (e instanceof Error && e.message.includes("NOGROUP")) this.#setUp = false; // Redis lost the group (restart without persistence)
          backoff = Math.min(2000, backoff === 0 ? 50 : backoff * 2);
          await this.#sleep(backoff);
        }
      }
    } finally {
      this.#stopped = true;
      this.#signal.removeEventListener("abort", onAbort);
      while (this.#inFlight.size > 0) await this.#sleep(undefined);
      if (this.#touchTimer !== null) clearInterval(this.#touchTimer);
      this.#reader?.disconnect();
    }
    if (fatal !== null) throw fatal;
    return this.stats;
  }

  #connected(): boolean {
    if (this.#redis.status === "wait") this.#redis.connect().catch(() => {}); // a lazyConnect client: errors surface as its status
    if (this.#redis.status !== "ready") return false;
    if (this.#reader === null) {
      const override: Partial<RedisOptions> = { enableOfflineQueue: false, lazyConnect: false };
      const timeout = this.#redis.options.commandTimeout;
      if (timeout !== undefined) override.commandTimeout = timeout + this.#blockMs;
      this.#reader = this.#redis.duplicate(override);
      this.#reader.on("error", (e: unknown) => this.#report(e));
      this.#reader.on("ready", () => (this.#readerId = null));
    }
    return this.#reader.status === "ready";
  }

  /** Free slots plus free queue of the pool (a queued task means no slot is free). */
  #room(): number {
    const pool = this.#pool;
    const room = Math.max(0, pool.concurrency - pool.running) + Math.max(0, pool.queueSize - pool.queued);
    return Math.min(room, MAX_COUNT);
  }

  /** One read: setup, own pending, a claim pass, or new entries; hands what it got to the pool. */
  async #step(room: number): Promise<void> {
    const reader = this.#reader as Redis;
    if (!this.#setUp) return this.#setup(reader);
    if (this.#readerId === null) this.#readerId = (await reader.call("CLIENT", "ID")) as number;
    const limit = this.#maxDeliveries === Infinity ? 0 : this.#maxDeliveries;
    const keys = [this.#stream, this.#deadKey];
    if (this.#history) {
      const [entries, last, count, dead] = (await OWN_PENDING.run(reader, keys, [this.#group, this.#consumer, this.#historyCursor, room, limit])) as [RawEntry[], string, number, number];
      this.#deadLettered += dead;
      if (count === 0) this.#history = false;
      this.#historyCursor = last;
      this.#recovered += entries.length;
      return this.#handAll(entries);
    }
    const now = Date.now();
    if (now >= this.#nextClaimAt) {
      const [cursor, entries, dead] = (await CLAIM.run(reader, keys, [this.#group, this.#consumer, this.#claimIdleMs, this.#claimCursor, room, limit])) as [string, RawEntry[], number, number];
      this.#deadLettered += dead;
      this.#claimCursor = cursor;
      if (cursor === "0-0") {
        this.#nextClaimAt = now + Math.max(1, Math.floor(this.#claimIdleMs / 2));
        this.#pruned += (await PRUNE.run(reader, [this.#stream], [this.#group, this.#consumer, 2 * this.#claimIdleMs])) as number;
      }
      this.#claimed += entries.length;
      return this.#handAll(entries);
    }
    const block = Math.max(1, Math.min(this.#blockMs, this.#nextClaimAt - now));
    this.#blocked = true;
    let reply: unknown;
    try {
      await whenReady(reader);
      reply = await reader.call("XREADGROUP", "GROUP", this.#group, this.#consumer, "COUNT", room, "BLOCK", block, "STREAMS", this.#stream, ">");
    } finally {
      this.#blocked = false;
    }
    if (reply === null) return;
    const [[, raw]] = reply as [[string, [string, string[]][]]];
    this.#read += raw.length;
    const entries: RawEntry[] = raw.map(([id, fields]) => [id, fields, 1]);
    return this.#handAll(entries);
  }

  async #setup(reader: Redis): Promise<void> {
    if (this.#createGroup) {
      try {
        await reader.call("XGROUP", "CREATE", this.#stream, this.#group, "0", "MKSTREAM");
      } catch (e) {
        if (!(e instanceof Error) || !e.message.startsWith("BUSYGROUP")) throw e;
      }
    }
    const groups = (await reader.call("XINFO", "GROUPS", this.#stream)) as unknown[][];
    const names = groups.map((g) => String(g[g.indexOf("name") + 1]));
    if (!names.includes(this.#group)) {
      throw new Error(`consumeRedisStream: stream "${this.#stream}" has no group "${this.#group}" (pass createGroup: true, or XGROUP CREATE it)`);
    }
    if (names.length > 1) {
      throw new Error(
        `consumeRedisStream: stream "${this.#stream}" has ${names.length} consumer groups (${names.join(", ")}); ` +
          "it is consumed as a work queue (entries are deleted once done), which is only safe with one group",
      );
    }
    this.#setUp = true;
    this.#history = true;
    this.#historyCursor = "0";
    this.#claimCursor = "0-0";
    this.#nextClaimAt = 0;
    if (this.#touchTimer === null) {
      this.#touchTimer = setInterval(() => void this.#touch(), Math.max(1, Math.floor(this.#claimIdleMs / 3)));
      this.#touchTimer.unref();
    }
  }

  async #handAll(entries: RawEntry[]): Promise<void> {
    for (const [id, flat, deliveries] of entries) {
      if (this.#inFlight.has(id)) continue; // ours and running (a claim found it idle): no second run here
      const fields: Record<string, string> = {};
      for (let i = 0; i + 1 < flat.length; i += 2) fields[flat[i] as string] = flat[i + 1] as string;
      await this.#hand({ stream: this.#stream, id, fields, deliveries });
    }
  }

  /** Hands one entry to the pool: waits while a shared pool is full; never drops it. */
  async #hand(entry: RedisStreamEntry): Promise<void> {
    this.#inFlight.add(entry.id);
    const task = (signal: AbortSignal): Promise<void> => this.#work(entry, signal);
    for (;;) {
      try {
        await this.#pool.submit(task);
        return;
      } catch (e) {
        if (!(e instanceof BusyError)) {
          this.#inFlight.delete(entry.id); // left pending in the group: delivered again later
          throw e;
        }
        await this.#sleep(this.#inFlight.size > 1 ? undefined : 20);
      }
    }
  }

  async #work(entry: RedisStreamEntry, signal: AbortSignal): Promise<void> {
    try {
      let ok = false;
      let error: unknown;
      try {
        const handler = this.#handler;
        await handler(entry, signal);
        ok = true;
      } catch (e) {
        error = e;
      }
      if (ok) await this.#done(entry);
      else await this.#fail(entry, error);
    } finally {
      this.#inFlight.delete(entry.id);
      this.#wake();
    }
  }

  async #done(entry: RedisStreamEntry): Promise<void> {
    this.#completed++;
    for (let attempt = 0; ; attempt++) {
      try {
        const removed = await this.#ack(entry.id);
        if (removed === 0) this.#duplicates++;
        return;
      } catch (e) {
        if (attempt >= 2 || !isOutage(e)) {
          this.#ackErrors++;
          this.#report(e);
          return;
        }
        await delay(100 * 2 ** attempt);
      }
    }
  }

  /** Queues an ack for the batch sent at the end of this turn; resolves with its 1 or 0. */
  #ack(id: string): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      if (this.#acks.push({ id, resolve, reject }) === 1) setImmediate(() => void this.#flushAcks());
    });
  }

  async #flushAcks(): Promise<void> {
    const batch = this.#acks.splice(0, MAX_COUNT);
    if (this.#acks.length > 0) setImmediate(() => void this.#flushAcks());
    try {
      const removed = (await ACK_DELETE.run(this.#redis, [this.#stream], [this.#group, ...batch.map((a) => a.id)])) as number[];
      batch.forEach((a, i) => a.resolve(removed[i] as number));
    } catch (e) {
      for (const a of batch) a.reject(e);
    }
  }

  async #fail(entry: RedisStreamEntry, error: unknown): Promise<void> {
    this.#failed++;
    this.#report(error, entry);
    if (entry.deliveries < this.#maxDeliveries) return; // stays pending: delivered again after claimIdleMs
    const reason = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    try {
      const moved = (await DEAD_LETTER.run(this.#redis, [this.#stream, this.#deadKey], [this.#group, entry.id, entry.deliveries, reason])) as number;
      this.#deadLettered += moved;
    } catch (e) {
      this.#errors++;
      this.#report(e); // stays pending; the next claim dead-letters it
    }
  }

  async #touch(): Promise<void> {
    if (this.#touching || this.#inFlight.size === 0 || this.#redis.status !== "ready") return;
    this.#touching = true;
    try {
      const ids = [...this.#inFlight];
      for (let i = 0; i < ids.length; i += MAX_COUNT) {
        await TOUCH.run(this.#redis, [this.#stream], [this.#group, this.#consumer, ...ids.slice(i, i + MAX_COUNT)]);
      }
    } catch (e) {
      this.#errors++;
      this.#report(e);
    } finally {
      this.#touching = false;
    }
  }

  #stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#wake();
    if (this.#blocked && this.#readerId !== null && this.#redis.status === "ready") {
      this.#redis.call("CLIENT", "UNBLOCK", this.#readerId).catch(() => {}); // else the read ends within blockMs
    }
  }

  /** Waits for `#wake()` (a task settled, the stop), or `ms` when given. */
  #sleep(ms: number | undefined): Promise<void> {
    if (this.#stopped && this.#inFlight.size === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      this.#wakeup = resolve;
      if (ms !== undefined) this.#sleepTimer = setTimeout(() => this.#wake(), ms);
    });
  }

  #wake(): void {
    if (this.#sleepTimer !== null) {
      clearTimeout(this.#sleepTimer);
      this.#sleepTimer = null;
    }
    const w = this.#wakeup;
    this.#wakeup = null;
    w?.();
  }

  #report(error: unknown, entry?: RedisStreamEntry): void {
    if (this.#onError !== undefined) {
      try {
        this.#onError(error, entry);
      } catch {
        // a throwing onError must not stop the source
      }
      return;
    }
    const now = Date.now();
    if (now - this.#lastWarn < 1000) return;
    this.#lastWarn = now;
    const what = entry === undefined ? "a Redis error (retried)" : `the handler failed on entry ${entry.id}`;
    process.emitWarning(`consumeRedisStream("${this.#stream}", "${this.#group}", "${this.#consumer}"): ${what}: ${String(error)}; pass options.onError to handle these`, {
      type: "SluiceWarning",
      code: "SLUICE_REDIS_SOURCE_ERROR",
    });
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
