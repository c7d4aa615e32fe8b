/**
 * JetStreamSink: publishes to a JetStream stream with a bounded number of publishes awaiting
 * their acknowledgement, and turns the server's "full" answers into `BusyError`.
 *
 * Invariants:
 *  - At most `maxInFlight` publishes are sent and not yet answered (acked, refused, timed out):
 *    a slot is held from the request until the server's answer (or the timeout), even when the
 *    caller's signal gave up earlier, because the message may still be stored.
 *  - At most `maxWaiting` callers wait for a slot (FIFO); one more is refused with `BusyError`
 *    at once. So the sink holds at most `maxInFlight + maxWaiting` messages.
 *  - A full stream (`discard: "new"` at `max_msgs`/`max_bytes`: err_code 10077/10078), a
 *    publish timeout, and no responders (JetStream not reachable: a restarting server) reject
 *    with `BusyError` carrying `retryAfterMs`; nothing is stored by the sink itself. Any other
 *    error is passed through unchanged.
 *  - `msgID` is sent as `Nats-Msg-Id`: within the stream's `duplicate_window` the server stores a
 *    retried publish once and answers `duplicate: true` (counted in `stats.duplicates`).
 */
import type { JetStreamClient, PubAck } from "@nats-io/jetstream";
import type { MsgHdrs } from "@nats-io/transport-node";
import { Semaphore } from "../core/semaphore.js";
import { BusyError } from "../core/errors.js";
import { observe } from "../core/registry.js";
import { checkDuration, checkInteger, checkLimit, checkName, checkOptions, given, signalOf } from "../core/validate.js";

/** The largest timer delay Node accepts (ms). */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;
/** JetStream API error codes of a stream refusing a message because it is full. */
const STREAM_FULL_CODES: ReadonlySet<number> = new Set([10077, 10078]);

/** Options of `new JetStreamSink(js, options)`. */
export interface JetStreamSinkOptions {
  /** Publishes sent and not yet acknowledged, at most (a positive safe integer, default 256). */
  maxInFlight?: number;
  /** How long a publish waits for the server's acknowledgement (ms, an integer 1..2^31-1, default 5000). */
  timeoutMs?: number;
  /** Callers waiting for an in-flight slot, at most (a non-negative safe integer or Infinity, default 1000); past it `BusyError`. */
  maxWaiting?: number;
  /** The `retryAfterMs` hint of the `BusyError`s this sink raises (ms, default 1000). */
  retryAfterMs?: number;
  /** Named sinks are listed by `sluice/metrics` (kind `"jetstream-sink"`). */
  name?: string;
}

/** Options of one `publish`. */
export interface JetStreamPublishOptions {
  /** Sent as `Nats-Msg-Id`: the server stores a message with the same id once within its duplicate window. */
  msgID?: string;
  /** Extra headers (from `headers()` of `@nats-io/nats-core`). */
  headers?: MsgHdrs;
  /** Bounds the wait for a slot and for the acknowledgement; rejects with `signal.reason`. */
  signal?: AbortSignal;
}

/** A fresh snapshot of a sink's counters. */
export interface JetStreamSinkStats {
  readonly name: string;
  readonly maxInFlight: number;
  /** Publishes sent and not answered yet. */
  readonly inFlight: number;
  /** Callers waiting for a slot now. */
  readonly waiting: number;
  /** Publishes the server acknowledged (duplicates included). */
  readonly published: number;
  /** Of those, answered `duplicate: true` (an earlier publish with the same `msgID` was stored). */
  readonly duplicates: number;
  /** Refused with `BusyError`: full stream, timeout, no responders, or too many waiting. */
  readonly busy: number;
  /** Failed with another error. */
  readonly failed: number;
  /** Calls withdrawn before sending (an aborted signal, or an abort while waiting for a slot): nothing sent. */
  readonly aborted: number;
  /**
   * Callers that gave up after sending (an abort before the answer came). Their publishes are
   * still counted in `published`, `busy` or `failed` when answered. Once nothing is in flight,
   * `published + busy + failed + aborted` is the number of calls.
   */
  readonly abandoned: number;
}

/** Whether `error` is JetStream saying the stream is full (`discard: new` at its limits). */
export function isStreamFull(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const api = (error as { apiError?: () => { err_code?: number } }).apiError;
  if (typeof api === "function") {
    const code = api.call(error).err_code;
    if (typeof code === "number" && STREAM_FULL_CODES.has(code)) return true;
  }
  return /maximum (messages|bytes)( per subject)? exceeded/i.test(error.message);
}

/** Whether `error` is a request timeout or "no responders" (JetStream not reachable now). */
function isUnavailable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (error.name === "TimeoutError" || error.name === "JetStreamNotEnabled") return true;
  const cause = error.cause as { isNoResponders?: () => boolean } | undefined;
  return typeof cause?.isNoResponders === "function" && cause.isNoResponders();
}

/**
 * Publishes to JetStream with backpressure: at most `maxInFlight` publishes await their
 * acknowledgement; further callers wait (FIFO, at most `maxWaiting` of them); a full stream or a
 * timeout is a `BusyError` with a `retryAfterMs` hint, never a silent loss and never a trim
 * (use a stream with `discard: "new"` and a `max_msgs` limit so that "full" is an answer).
 *
 * @example
 * const sink = new JetStreamSink(jetstream(nc), { maxInFlight: 64 });
 * try { await sink.publish("orders.new", JSON.stringify(order), { msgID: order.id }); }
 * catch (e) { if (e instanceof BusyError) return reply503(e.retryAfterMs); throw e; }
 */
export class JetStreamSink {
  readonly #js: JetStreamClient;
  readonly #name: string;
  readonly #maxInFlight: number;
  readonly #timeoutMs: number;
  readonly #maxWaiting: number;
  readonly #retryAfterMs: number;
  readonly #slots: Semaphore;
  #inFlight = 0;
  #waiting = 0;
  #published = 0;
  #duplicates = 0;
  #busy = 0;
  #failed = 0;
  #aborted = 0;
  #abandoned = 0;

  /**
   * @throws TypeError if `js` is not a JetStream client (`jetstream(nc)`); RangeError/TypeError
   * naming the option for a bad option.
   */
  constructor(js: JetStreamClient, options?: JetStreamSinkOptions) {
    if (js === null || typeof js !== "object" || typeof (js as Partial<JetStreamClient>).publish !== "function") {
      throw new TypeError("js must be a JetStream client (jetstream(nc) of @nats-io/jetstream)");
    }
    checkOptions(options);
    this.#js = js;
    this.#name = checkName(options?.name) ?? "jetstream-sink";
    this.#maxInFlight = checkInteger(given(options?.maxInFlight, 256), "options.maxInFlight", 1);
    const timeoutMs = checkInteger(given(options?.timeoutMs, 5000), "options.timeoutMs", 1);
    if (timeoutMs > MAX_TIMEOUT_MS) throw new RangeError(`options.timeoutMs must be at most 2^31-1, got ${timeoutMs}`);
    this.#timeoutMs = timeoutMs;
    this.#maxWaiting = checkLimit(given(options?.maxWaiting, 1000), "options.maxWaiting", 0);
    this.#retryAfterMs = checkDuration(given(options?.retryAfterMs, 1000), "options.retryAfterMs");
    this.#slots = new Semaphore(this.#maxInFlight);
    observe("jetstream-sink", this, options?.name !== undefined);
  }

  /** The sink's name (default "jetstream-sink"). */
  get name(): string {
    return this.#name;
  }

  /** A fresh snapshot of the counters. */
  get stats(): JetStreamSinkStats {
    return {
      name: this.#name,
      maxInFlight: this.#maxInFlight,
      inFlight: this.#inFlight,
      waiting: this.#waiting,
      published: this.#published,
      duplicates: this.#duplicates,
      busy: this.#busy,
      failed: this.#failed,
      aborted: this.#aborted,
      abandoned: this.#abandoned,
    };
  }

  /**
   * Publishes `data` to `subject` and resolves with the server's `PubAck` once the stream stored
   * it (or, with a `msgID` seen within the duplicate window, answered `duplicate: true`).
   *
   * Waits for an in-flight slot while `maxInFlight` publishes are unanswered (FIFO). Rejects
   * with `BusyError` (`retryAfterMs` set) when `maxWaiting` callers already wait, when the
   * stream is full, when no acknowledgement came within `timeoutMs`, or when JetStream is not
   * reachable; with `signal.reason` on abort (an already-aborted signal sends nothing; an abort
   * after sending answers at once, but the message may still be stored: retry with the same
   * `msgID` to be safe); any other error unchanged.
   *
   * @example
   * await sink.publish("jobs", payload, { msgID: `job-${id}`, signal: AbortSignal.timeout(2000) });
   */
  async publish(subject: string, data?: Uint8Array | string, options?: JetStreamPublishOptions): Promise<PubAck> {
    const signal = signalOf(options);
    if (signal?.aborted) {
      this.#aborted++;
      throw signal.reason;
    }
    if (typeof subject !== "string" || subject === "") throw new TypeError("subject must be a non-empty string");
    if (data !== undefined && typeof data !== "string" && !(data instanceof Uint8Array)) {
      throw new TypeError("data must be a Uint8Array or a string");
    }
    const msgID = options?.msgID;
    if (msgID !== undefined && (typeof msgID !== "string" || msgID === "")) {
      throw new TypeError("options.msgID must be a non-empty string");
    }
    await this.#acquire(signal);
    this.#inFlight++;
    const sent = this.#send(subject, data, msgID, options?.headers);
    if (signal === undefined) return sent;
    return raceAbort(sent, signal, () => this.#abandoned++);
  }

  async #acquire(signal: AbortSignal | undefined): Promise<void> {
    if (this.#slots.tryAcquire()) return;
    if (this.#waiting >= this.#maxWaiting) {
      this.#busy++;
      throw new BusyError(`${this.#name}: ${this.#maxInFlight} publishes in flight and ${this.#waiting} callers waiting`, {
        retryAfterMs: this.#retryAfterMs,
      });
    }
    this.#waiting++;
    try {
      await this.#slots.acquire(1, { signal });
    } catch (e) {
      this.#aborted++;
      throw e;
    } finally {
      this.#waiting--;
    }
  }

  async #send(subject: string, data: Uint8Array | string | undefined, msgID: string | undefined, headers: MsgHdrs | undefined): Promise<PubAck> {
    try {
      const ack = await this.#js.publish(subject, data, {
        timeout: this.#timeoutMs,
        ...(msgID !== undefined ? { msgID } : {}),
        ...(headers !== undefined ? { headers } : {}),
      });
      this.#published++;
      if (ack.duplicate) this.#duplicates++;
      return ack;
    } catch (e) {
      if (isStreamFull(e)) {
        this.#busy++;
        throw new BusyError(`${this.#name}: stream full for ${subject}`, { cause: e, retryAfterMs: this.#retryAfterMs });
      }
      if (isUnavailable(e)) {
        this.#busy++;
        throw new BusyError(`${this.#name}: no acknowledgement for ${subject} (${(e as Error).message})`, {
          cause: e,
          retryAfterMs: this.#retryAfterMs,
        });
      }
      this.#failed++;
      throw e;
    } finally {
      this.#inFlight--;
      this.#slots.release();
    }
  }
}

/** `work`'s outcome, or `signal.reason` as soon as it aborts (`work` keeps running; its rejection is observed). */
function raceAbort<T>(work: Promise<T>, signal: AbortSignal, onAbort: () => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const abort = (): void => {
      onAbort();
      reject(signal.reason);
    };
    signal.addEventListener("abort", abort, { once: true });
    work.then(
      (v) => {
        signal.removeEventListener("abort", abort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener("abort", abort);
        reject(e);
      },
    );
  });
}
