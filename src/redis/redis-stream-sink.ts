/**
 * RedisStreamSink: a bounded producer for a Redis stream used as a work queue.
 *
 * `add` appends an entry only while the stream holds fewer than `maxLength` entries, checked
 * and appended in one Lua script (atomic on the server: twenty concurrent adds at room five
 * store exactly five). At the limit it refuses with `BusyError` instead of trimming
 * (`XADD MAXLEN` silently deletes the oldest entries: unread work). The consumers'
 * `consumeRedisStream` deletes each entry once its handler is done, so the stream's length is
 * the backlog and room comes back as they finish.
 *
 * Invariants:
 *  - Nothing is buffered here: each `add` is one script call on a client whose offline queue
 *    is off, so while Redis is unreachable an add fails at once (`BusyError`, cause attached)
 *    instead of queueing in memory. The sink holds no per-entry state.
 *  - `stats.added + stats.refused + stats.unavailable + stats.failed` counts every add that
 *    reached the script call; an add refused for bad input or an aborted signal is not counted.
 */
import type { Redis } from "ioredis";
import { BusyError } from "../core/errors.js";
import { Abortable, unwatchAbort, watchAbort } from "../core/abort.js";
import { observe } from "../core/registry.js";
import { checkDuration, checkInteger, checkName, checkOptions, given, signalOf } from "../core/validate.js";
import { BOUNDED_ADD } from "./scripts.js";
import { checkRedisClient, isOutage } from "./client.js";

/** A field value of a stream entry. */
export type RedisFieldValue = string | number | Buffer;

/** Options of `new RedisStreamSink(redis, options)`. */
export interface RedisStreamSinkOptions {
  /** The stream's key. */
  stream: string;
  /** At most this many entries in the stream (a positive safe integer): the backlog's bound. */
  maxLength: number;
  /** The `retryAfterMs` hint of a refusal at the limit or during an outage (ms, default 200). */
  retryAfterMs?: number;
  /** Used in stats and metrics; a named sink is listed by `sluice/metrics`. */
  name?: string;
}

/** A fresh snapshot of a sink's counters. */
export interface RedisStreamSinkStats {
  readonly name: string;
  readonly stream: string;
  readonly maxLength: number;
  /** Entries stored. */
  readonly added: number;
  /** Adds refused because the stream was at `maxLength` (`BusyError`). */
  readonly refused: number;
  /** Adds refused because Redis could not be reached or did not answer in time (`BusyError`). */
  readonly unavailable: number;
  /** Adds that failed otherwise (a reply error such as WRONGTYPE: rethrown unchanged). */
  readonly failed: number;
  /** Adds in flight now. */
  readonly inFlight: number;
}

const MAX_FIELDS = 1000;

/**
 * A bounded `XADD`: refuses with `BusyError` at `maxLength` entries, atomically, and never trims.
 *
 * The client must be created with `enableOfflineQueue: false` (a `TypeError` otherwise), so an
 * outage is refused at once rather than buffered. Set a `commandTimeout` on it too, so that a
 * Redis that accepts the connection but does not answer is also refused (`BusyError`) in bounded
 * time.
 *
 * @example
 * const redis = new Redis({ enableOfflineQueue: false, commandTimeout: 2000 });
 * const sink = new RedisStreamSink(redis, { stream: "jobs", maxLength: 10_000 });
 * try { await sink.add({ order: "42" }); }
 * catch (e) { if (e instanceof BusyError) return reply503(e.retryAfterMs); throw e; }
 */
export class RedisStreamSink {
  readonly #redis: Redis;
  readonly #stream: string;
  readonly #maxLength: number;
  readonly #retryAfterMs: number;
  readonly #name: string | undefined;
  #added = 0;
  #refused = 0;
  #unavailable = 0;
  #failed = 0;
  #inFlight = 0;

  constructor(redis: Redis, options: RedisStreamSinkOptions) {
    this.#redis = checkRedisClient(redis, "RedisStreamSink");
    if (options === null || typeof options !== "object") throw new TypeError("options must be an object with a stream and a maxLength");
    if (typeof options.stream !== "string" || options.stream === "") {
      throw new TypeError(`options.stream must be a non-empty string, got ${typeof options.stream === "string" ? '""' : typeof options.stream}`);
    }
    this.#stream = options.stream;
    if (options.maxLength === Infinity) throw new RangeError("options.maxLength must be a positive safe integer, got Infinity: an unbounded stream is what this sink exists to prevent");
    this.#maxLength = checkInteger(options.maxLength, "options.maxLength", 1);
    this.#retryAfterMs = checkDuration(given(options.retryAfterMs, 200), "options.retryAfterMs");
    this.#name = checkName(options.name);
    observe("redis-stream-sink", this, this.#name !== undefined);
  }

  /** The sink's name, if it was given one. */
  get name(): string | undefined {
    return this.#name;
  }

  /** A fresh snapshot of the counters. */
  get stats(): RedisStreamSinkStats {
    return {
      name: this.#name ?? this.#stream,
      stream: this.#stream,
      maxLength: this.#maxLength,
      added: this.#added,
      refused: this.#refused,
      unavailable: this.#unavailable,
      failed: this.#failed,
      inFlight: this.#inFlight,
    };
  }

  /**
   * Appends an entry with `fields` (an object of field names to string, number or Buffer
   * values; at least one, at most 1000) and resolves with its id. Waits for one round trip to
   * Redis, nothing more.
   *
   * Rejects with `BusyError` (with `retryAfterMs`) when the stream holds `maxLength` entries or
   * more (nothing was stored), and when Redis is unreachable or did not answer in time (then
   * `cause` is the client's error; with a timeout the entry may have been stored all the same).
   * An already-aborted `signal` rejects with its reason and sends nothing; an abort during the
   * round trip rejects at once with the reason, but the entry may still be stored: an add is
   * at-least-once, so give entries an id of your own when a retry must not store work twice.
   * Other reply errors (e.g. `WRONGTYPE`) are rethrown unchanged. Bad `fields`: `TypeError`.
   *
   * @example
   * const id = await sink.add({ job: JSON.stringify(job) }, { signal: AbortSignal.timeout(1000) });
   */
  add(fields: Readonly<Record<string, RedisFieldValue>>, options?: { signal?: AbortSignal }): Promise<string> {
    let signal: AbortSignal | undefined;
    let args: RedisFieldValue[];
    try {
      signal = signalOf(checkOptions(options));
      if (signal?.aborted) return Promise.reject(signal.reason);
      args = flatten(fields);
    } catch (e) {
      return Promise.reject(e);
    }
    const call = this.#call(args);
    if (signal === undefined) return call;
    const s = signal;
    return new Promise<string>((resolve, reject) => {
      const waiter = new AbortWaiter(reject);
      watchAbort(s, waiter); // one native listener per signal, however many adds share it
      call.then(
        (id) => {
          unwatchAbort(waiter);
          resolve(id);
        },
        (e: unknown) => {
          unwatchAbort(waiter);
          reject(e);
        },
      );
    });
  }

  async #call(args: RedisFieldValue[]): Promise<string> {
    this.#inFlight++;
    let reply: unknown;
    try {
      reply = await BOUNDED_ADD.run(this.#redis, [this.#stream], [this.#maxLength, ...args]);
    } catch (e) {
      if (isOutage(e)) {
        this.#unavailable++;
        throw new BusyError(`redis stream "${this.#stream}" is unavailable: ${(e as Error).message}`, { cause: e, retryAfterMs: this.#retryAfterMs });
      }
      this.#failed++;
      throw e;
    } finally {
      this.#inFlight--;
    }
    const [ok, value] = reply as [number, string | number];
    if (ok === 1) {
      this.#added++;
      return String(value);
    }
    this.#refused++;
    throw new BusyError(`redis stream "${this.#stream}" is full (${value} entries, maxLength ${this.#maxLength})`, { retryAfterMs: this.#retryAfterMs });
  }
}

/** An add waiting for its reply, rejected at once when its signal aborts. */
class AbortWaiter extends Abortable {
  constructor(readonly reject: (reason: unknown) => void) {
    super();
  }
  onAbort(reason: unknown): void {
    this.reject(reason);
  }
}

/** `{ a: 1, b: "x" }` -> `["a", 1, "b", "x"]`, checked. */
function flatten(fields: Readonly<Record<string, RedisFieldValue>>): RedisFieldValue[] {
  if (fields === null || typeof fields !== "object" || Array.isArray(fields) || Buffer.isBuffer(fields)) {
    throw new TypeError("fields must be an object of field names to string, number or Buffer values");
  }
  const out: RedisFieldValue[] = [];
  for (const key of Object.keys(fields)) {
    const v = fields[key];
    if (typeof v !== "string" && !Buffer.isBuffer(v) && !(typeof v === "number" && Number.isFinite(v))) {
      throw new TypeError(`fields.${key} must be a string, a finite number or a Buffer, got ${v === null ? "null" : typeof v}`);
    }
    out.push(key, v);
  }
  if (out.length === 0) throw new RangeError("fields must have at least one field (a stream entry cannot be empty)");
  if (out.length > 2 * MAX_FIELDS) throw new RangeError(`fields must have at most ${MAX_FIELDS} fields, got ${out.length / 2}`);
  return out;
}
