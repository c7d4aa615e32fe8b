/**
 * consumeJetStream: a JetStream pull consumer read into a `Pool`, pulling only what the pool has
 * room for, acknowledging only what is done.
 *
 * Invariants:
 *  - Asked-for never exceeds room: `requested + held <= free slots + free queue` of the pool at
 *    the moment of each fetch, where `requested` counts messages asked for by open fetches and
 *    not yet received, and `held` messages received and not yet settled (waiting for admission,
 *    queued, or running). So the consumer's own `max_ack_pending` is never the only bound, and
 *    this process never holds more messages than the pool can take.
 *  - A fetch is started only when at least a quarter of the pool's capacity (at least 1) is free,
 *    and at most `maxFetches` fetches are open at once.
 *  - Every message received ends in exactly one of: acked (its handler succeeded), nak'ed (a
 *    retryable failure below `maxDeliver`, a dead-letter publish that failed, or received while
 *    stopping and never started), termed (after `maxDeliver`, or a non-retryable error; after
 *    the dead-letter publish succeeded when a `deadLetterSubject` is set). Nothing is left
 *    un-acked by the source itself; only a crash (or a lost connection) leaves messages to the
 *    server's redelivery after `ack_wait`.
 *  - While a message is held longer than `workingMs` (half the consumer's `ack_wait` by default),
 *    `working()` is sent for it, so long tasks are not redelivered under a live consumer.
 *  - Once the signal aborts: no new fetch. An open fetch is left to end by itself (the server
 *    has sent its whole batch, or its `expires` passed) until it has been quiet for `QUIET_MS`,
 *    and only then drained and closed (see `fetch-end.ts`: the server cannot take a pull
 *    request back). A message the server sends after the quiet close is redelivered after
 *    `ack_wait` (at-least-once holds). What a stopping fetch receives, and what was delivered
 *    but not started, is nak'ed; work that settles from then on is acked with confirmation
 *    (`ackAck`); the promise resolves when every held message has settled and the connection
 *    flushed, so the server has applied those acks by then.
 */
import type { Consumer, ConsumerInfo, JetStreamClient, JsMsg } from "@nats-io/jetstream";
import { jetstream } from "@nats-io/jetstream";
import { headers as natsHeaders } from "@nats-io/transport-node";
import type { Pool } from "../flow/pool.js";
import { defaultRetryIf, type Jitter } from "../flow/retry.js";
import { PoolClosedError } from "../flow/errors.js";
import { observe } from "../core/registry.js";
import { isFatal, missingConsumer } from "./fatal.js";
import { closeWhenQuiet, type FetchIter, type QuietCloser } from "./fetch-end.js";
import { checkDuration, checkFunction, checkInteger, checkName, checkOptions, checkSignal, given } from "../core/validate.js";

/** How the delay of a `nak` grows with the delivery count (as `retry`'s backoff does). */
export interface NakBackoff {
  /** The delay after the first failed delivery, in ms (default 100); doubles with each further one. */
  baseMs?: number;
  /** The largest delay, in ms (default 10 000). */
  maxMs?: number;
  /** How the delay is randomised (default `"full"`: uniform in `[0, cap)`); see `retry`. */
  jitter?: Jitter;
}

/** Options of `consumeJetStream(consumer, options)`. */
export interface JetStreamSourceOptions {
  /** Where messages are handled. Its free slots plus free queue decide how many messages are asked for. */
  pool: Pool;
  /** Handles one message; the message is acked when it resolves. `signal` fires if the pool is aborted. */
  handler: (msg: JsMsg, signal: AbortSignal) => unknown;
  /**
   * Deliveries after which a failing message is given up (dead-lettered, then `term`ed): a
   * positive safe integer, at most the consumer's `max_deliver` (when that is set). Default: the
   * consumer's `max_deliver`, or 5 when it has none.
   */
  maxDeliver?: number;
  /** Where a given-up message is published (JetStream, `Nats-Msg-Id` `stream:seq`) before it is `term`ed. */
  deadLetterSubject?: string;
  /** Publishes dead letters (default: a JetStream client on the consumer's own connection). */
  deadLetterClient?: JetStreamClient;
  /** Stops the source: no new fetch, unstarted messages nak'ed, in-flight work drained. */
  signal?: AbortSignal;
  /** The delays of `nak` after a retryable failure. */
  backoff?: NakBackoff;
  /** Whether a failure may be retried (default `defaultRetryIf`); a `false` gives the message up at once. */
  retryIf?: (error: unknown, deliveryCount: number) => boolean;
  /** How long a message may be held before `working()` is sent for it (ms; default half the consumer's `ack_wait`). */
  workingMs?: number;
  /** How long one fetch waits for messages (ms, at least 1000, default 5000). */
  expiresMs?: number;
  /** Fetches open at once, at most (a positive safe integer, default 2). */
  maxFetches?: number;
  /** Wait for the server to confirm each ack (`ackAck`) before freeing the slot (default false). */
  confirmAcks?: boolean;
  /** Named sources are listed by `sluice/metrics` (kind `"jetstream-source"`). */
  name?: string;
  /** A source of uniform numbers in `[0, 1)` for the backoff jitter (default `Math.random`). */
  random?: () => number;
}

/** What the source did: a fresh snapshot (also what `consumeJetStream` resolves with). */
export interface JetStreamSourceStats {
  readonly name: string;
  /** Messages delivered to this source. */
  readonly received: number;
  /** Messages acked after their handler succeeded. */
  readonly acked: number;
  /** Messages nak'ed: retryable failures, failed dead-letter publishes, unstarted at stop. */
  readonly naked: number;
  /** Messages `term`ed (given up), dead-lettered or not. */
  readonly termed: number;
  /** Messages published to the dead-letter subject. */
  readonly deadLettered: number;
  /** Dead-letter publishes that failed (the message was nak'ed instead). */
  readonly deadLetterErrors: number;
  /** Handler calls that threw or rejected. */
  readonly failed: number;
  /** Messages held now: received, not yet settled. */
  readonly inFlight: number;
  /** Messages asked for by open fetches and not yet received. */
  readonly requested: number;
  /** Fetches started. */
  readonly fetches: number;
  /** Fetches that failed (retried after a backoff). */
  readonly fetchErrors: number;
  /** `working()` signals sent for long-held messages. */
  readonly working: number;
  /** Acks, naks, terms or `working()` that could not be sent or confirmed (the server redelivers those messages). */
  readonly replyErrors: number;
  /** The most messages held at once. */
  readonly maxInFlight: number;
}

/** How soon the loop looks at the pool again when nothing of its own will wake it (ms). */
const RECHECK_MS = 25;

interface Held {
  readonly msg: JsMsg;
  touched: number;
}

function connectionOf(consumer: Consumer): unknown {
  return (consumer as unknown as { api?: { nc?: unknown } }).api?.nc;
}

/**
 * Reads a JetStream pull `consumer` into `pool` until `signal` aborts, and resolves with the
 * source's stats once the work in flight has settled.
 *
 * Bounded: never more messages asked for than the pool has room (free slots plus free queue),
 * re-fetching when a quarter of its capacity is free, with at most `maxFetches` fetches open.
 * Each message is acked after `handler(msg, signal)` succeeds; on a retryable failure it is
 * `nak`ed with a growing delay; after `maxDeliver` deliveries (or a non-retryable error) it is
 * published to `deadLetterSubject` (when set) and `term`ed. Delivery is at-least-once: a crash
 * leaves its messages to the server's redelivery after `ack_wait`.
 *
 * Rejects with `signal.reason` when the signal is already aborted (nothing fetched); with a
 * `TypeError`/`RangeError` naming the option for bad options; with the error when the pool is
 * closed under it, the connection closes, or the consumer or stream is deleted (after draining).
 *
 * @example
 * const consumer = await jetstream(nc).consumers.get("ORDERS", "workers");
 * const pool = new Pool({ concurrency: 16, queue: 16 });
 * const stats = await consumeJetStream(consumer, {
 *   pool, handler: (msg, signal) => save(msg.json(), signal),
 *   deadLetterSubject: "dlq.orders", signal: shutdown.signal,
 * });
 */
export async function consumeJetStream(consumer: Consumer, options: JetStreamSourceOptions): Promise<JetStreamSourceStats> {
  if (options === null || typeof options !== "object") throw new TypeError("options must be an object with a pool and a handler");
  const signal = checkSignal(options.signal);
  if (signal?.aborted) throw signal.reason;
  const source = new JetStreamSource(consumer, options);
  const info = await consumer.info(true);
  source.configure(info);
  return source.run(signal);
}

/** @internal The state of one running `consumeJetStream`. */
class JetStreamSource {
  readonly #consumer: Consumer;
  readonly #pool: Pool;
  readonly #handler: (msg: JsMsg, signal: AbortSignal) => unknown;
  readonly #name: string;
  readonly #deadLetterSubject: string | undefined;
  #deadLetterClient: JetStreamClient | undefined;
  readonly #retryIf: (error: unknown, deliveryCount: number) => boolean;
  readonly #baseMs: number;
  readonly #maxMs: number;
  readonly #jitter: Jitter;
  readonly #random: () => number;
  readonly #expiresMs: number;
  readonly #maxFetches: number;
  readonly #confirmAcks: boolean;
  readonly #options: JetStreamSourceOptions;
  #maxDeliver = 5;
  #workingMs = 15_000;

  readonly #held = new Set<Held>();
  readonly #open = new Map<FetchIter, QuietCloser | undefined>();
  #requested = 0;
  #openFetches = 0;
  #stopping = false;
  #fatal: unknown = undefined;
  #resolveStopped!: () => void;
  /** Resolves when the source starts stopping (ends a fetch's retry backoff early). */
  readonly #stopped = new Promise<void>((resolve) => (this.#resolveStopped = resolve));
  #fetchFailures = 0;
  #wake: (() => void) | undefined;

  #received = 0;
  #acked = 0;
  #naked = 0;
  #termed = 0;
  #deadLettered = 0;
  #deadLetterErrors = 0;
  #failed = 0;
  #fetches = 0;
  #fetchErrors = 0;
  #working = 0;
  #replyErrors = 0;
  #maxInFlight = 0;

  constructor(consumer: Consumer, options: JetStreamSourceOptions) {
    if (consumer === null || typeof consumer !== "object" || typeof consumer.fetch !== "function" || typeof consumer.info !== "function") {
      throw new TypeError("consumer must be a JetStream pull Consumer (js.consumers.get(stream, name))");
    }
    const pool = options.pool as Partial<Pool> | null | undefined;
    if (pool === null || typeof pool !== "object" || typeof pool.submit !== "function" || typeof pool.queueSize !== "number") {
      throw new TypeError("options.pool must be a Pool of sluice/flow");
    }
    this.#consumer = consumer;
    this.#pool = options.pool;
    this.#options = options;
    this.#handler = checkFunction(options.handler, "options.handler");
    this.#name = checkName(options.name) ?? "jetstream-source";
    const dl = options.deadLetterSubject;
    if (dl !== undefined && (typeof dl !== "string" || dl === "")) throw new TypeError("options.deadLetterSubject must be a non-empty string");
    this.#deadLetterSubject = dl;
    const client = options.deadLetterClient;
    if (client !== undefined && (client === null || typeof client !== "object" || typeof client.publish !== "function")) {
      throw new TypeError("options.deadLetterClient must be a JetStream client (jetstream(nc))");
    }
    this.#deadLetterClient = client;
    this.#retryIf = checkFunction(given(options.retryIf, defaultRetryIf), "options.retryIf");
    const backoff = checkOptions(options.backoff, "options.backoff");
    this.#baseMs = checkDuration(given(backoff?.baseMs, 100), "options.backoff.baseMs");
    this.#maxMs = checkDuration(given(backoff?.maxMs, 10_000), "options.backoff.maxMs");
    if (this.#maxMs < this.#baseMs) throw new RangeError(`options.backoff.maxMs (${this.#maxMs}) must be >= options.backoff.baseMs (${this.#baseMs})`);
    const jitter = given(backoff?.jitter, "full");
    if (jitter !== "full" && jitter !== "equal" && jitter !== "none") {
      throw new RangeError(`options.backoff.jitter must be "full", "equal" or "none", got ${JSON.stringify(jitter)}`);
    }
    this.#jitter = jitter;
    this.#random = checkFunction(given(options.random, Math.random), "options.random");
    this.#expiresMs = checkInteger(given(options.expiresMs, 5000), "options.expiresMs", 1000);
    this.#maxFetches = checkInteger(given(options.maxFetches, 2), "options.maxFetches", 1);
    const confirm = given(options.confirmAcks, false);
    if (typeof confirm !== "boolean") throw new TypeError("options.confirmAcks must be a boolean");
    this.#confirmAcks = confirm;
    if (options.workingMs !== undefined) checkInteger(options.workingMs, "options.workingMs", 1);
    if (options.maxDeliver !== undefined) checkInteger(options.maxDeliver, "options.maxDeliver", 1);
    observe("jetstream-source", this, options.name !== undefined);
  }

  /** Settles the options that depend on the consumer's configuration. */
  configure(info: ConsumerInfo): void {
    const serverMax = info.config.max_deliver ?? -1;
    const limit = serverMax > 0 ? serverMax : Infinity;
    const maxDeliver = given(this.#options.maxDeliver, limit === Infinity ? 5 : limit);
    if (maxDeliver > limit) {
      throw new RangeError(`options.maxDeliver (${maxDeliver}) must be at most the consumer's max_deliver (${limit})`);
    }
    this.#maxDeliver = maxDeliver;
    const ackWaitMs = (info.config.ack_wait ?? 30e9) / 1e6;
    this.#workingMs = given(this.#options.workingMs, Math.max(1, Math.floor(ackWaitMs / 2)));
  }

  get name(): string {
    return this.#name;
  }

  get stats(): JetStreamSourceStats {
    return {
      name: this.#name,
      received: this.#received,
      acked: this.#acked,
      naked: this.#naked,
      termed: this.#termed,
      deadLettered: this.#deadLettered,
      deadLetterErrors: this.#deadLetterErrors,
      failed: this.#failed,
      inFlight: this.#held.size,
      requested: this.#requested,
      fetches: this.#fetches,
      fetchErrors: this.#fetchErrors,
      working: this.#working,
      replyErrors: this.#replyErrors,
      maxInFlight: this.#maxInFlight,
    };
  }

  async run(signal: AbortSignal | undefined): Promise<JetStreamSourceStats> {
    const onAbort = (): void => this.#stop();
    signal?.addEventListener("abort", onAbort, { once: true });
    const period = Math.max(1, Math.floor(this.#workingMs / 2));
    const ticker = setInterval(() => this.#touch(), period);
    ticker.unref();
    try {
      while (!this.#stopping) {
        this.#fill();
        if (this.#stopping) break;
        // Nothing of ours open or held: no settlement will wake the loop, yet other work may free
        // the pool's slots. Check again shortly.
        const idle = this.#openFetches === 0 && this.#held.size === 0;
        const recheck = idle ? setTimeout(() => this.#kick(), RECHECK_MS) : undefined;
        await new Promise<void>((resolve) => (this.#wake = resolve));
        this.#wake = undefined;
        clearTimeout(recheck);
      }
      // Stopping: wait for open fetches to end (their late messages are nak'ed) and held work.
      while (this.#openFetches > 0 || this.#held.size > 0) {
        await new Promise<void>((resolve) => (this.#wake = resolve));
        this.#wake = undefined;
      }
      await this.#flush();
    } finally {
      clearInterval(ticker);
      signal?.removeEventListener("abort", onAbort);
    }
    if (this.#fatal !== undefined) throw this.#fatal;
    return this.stats;
  }

  /** Sends what the connection buffered (the last acks and naks) before the source resolves; best effort. */
  async #flush(): Promise<void> {
    const nc = connectionOf(this.#consumer) as { flush?: () => Promise<void>; isClosed?: () => boolean } | undefined;
    if (typeof nc?.flush !== "function" || nc.isClosed?.() === true) return;
    await nc.flush().catch(() => undefined);
  }

  /**
   * Wakes the loop on the next turn of the event loop (coalesced), after the pool has counted
   * the settlement that caused the kick: a microtask would read the pool's counters too early.
   */
  #kick(): void {
    if (this.#kickPending) return;
    this.#kickPending = true;
    setImmediate(() => {
      this.#kickPending = false;
      const wake = this.#wake;
      if (wake !== undefined) {
        this.#wake = undefined;
        wake();
      }
    });
  }

  #kickPending = false;

  #stop(reason?: unknown): void {
    if (reason !== undefined && this.#fatal === undefined) this.#fatal = reason;
    if (this.#stopping) return;
    this.#stopping = true;
    this.#resolveStopped();
    for (const iter of this.#open.keys()) this.#open.set(iter, closeWhenQuiet(iter));
    this.#kick();
  }

  /** Room in the pool for messages not yet asked for: free slots plus free queue, minus what is asked for or held. */
  #room(): number {
    const pool = this.#pool;
    const free = Math.max(0, pool.concurrency - pool.running) + Math.max(0, pool.queueSize - pool.queued);
    // Held messages already admitted are counted by the pool; those not yet admitted are not.
    return free - this.#requested - this.#unadmitted;
  }

  #unadmitted = 0;

  #fill(): void {
    const pool = this.#pool;
    if (pool.closed) {
      this.#stop(new PoolClosedError(`${this.#name}: the pool was closed while the source was running`));
      return;
    }
    const capacity = pool.concurrency + pool.queueSize;
    const threshold = Math.max(1, Math.ceil(capacity / 4));
    while (this.#openFetches < this.#maxFetches) {
      const room = this.#room();
      if (room < threshold) return;
      void this.#fetch(room);
    }
  }

  async #fetch(n: number): Promise<void> {
    this.#openFetches++;
    this.#requested += n;
    this.#fetches++;
    let left = n;
    let iter: (AsyncIterable<JsMsg> & FetchIter) | undefined;
    try {
      iter = await this.#consumer.fetch({ max_messages: n, expires: this.#expiresMs });
      this.#open.set(iter, this.#stopping ? closeWhenQuiet(iter) : undefined);
      for await (const msg of iter) {
        this.#open.get(iter)?.touch();
        if (left > 0) {
          left--;
          this.#requested--;
        }
        this.#receive(msg);
      }
      this.#fetchFailures = 0;
    } catch (e) {
      this.#fetchErrors++;
      const fatal = isFatal(e) ? e : this.#stopping ? undefined : await missingConsumer(this.#consumer);
      if (fatal !== undefined) {
        this.#stop(fatal);
      } else if (!this.#stopping) {
        // A transient failure (a reconnect, missed heartbeats): wait before the next fetch.
        const delay = Math.min(this.#maxMs, this.#baseMs * 2 ** Math.min(this.#fetchFailures++, 20));
        let timer: ReturnType<typeof setTimeout> | undefined;
        await Promise.race([new Promise<void>((resolve) => (timer = setTimeout(resolve, Math.max(delay, 50)))), this.#stopped]);
        clearTimeout(timer);
      }
    } finally {
      if (iter !== undefined) {
        this.#open.get(iter)?.cancel();
        this.#open.delete(iter);
      }
      this.#requested -= left;
      this.#openFetches--;
      this.#kick();
    }
  }

  #receive(msg: JsMsg): void {
    this.#received++;
    if (this.#stopping) {
      this.#reply(msg, "nak");
      return;
    }
    const held: Held = { msg, touched: performance.now() };
    this.#held.add(held);
    if (this.#held.size > this.#maxInFlight) this.#maxInFlight = this.#held.size;
    const task = (signal: AbortSignal): Promise<void> => this.#handle(held, signal);
    if (this.#pool.trySubmit(task)) return;
    // Someone else filled the pool: wait for admission (the message is held, `working()` covers it).
    this.#unadmitted++;
    this.#pool.submit(task).then(
      () => {
        this.#unadmitted--;
      },
      () => {
        this.#unadmitted--;
        this.#reply(msg, "nak");
        this.#release(held);
      },
    );
  }

  async #handle(held: Held, signal: AbortSignal): Promise<void> {
    const msg = held.msg;
    try {
      let failure: unknown;
      let ok = true;
      try {
        await this.#handler(msg, signal);
      } catch (e) {
        ok = false;
        failure = e;
      }
      if (ok) {
        // Once stopping, acks are confirmed: when the promise resolves, the server has applied
        // them (and, in order, every ack this connection sent before them).
        if (this.#confirmAcks || this.#stopping) {
          try {
            await msg.ackAck();
            this.#acked++;
          } catch {
            this.#replyErrors++; // not confirmed: the server may redeliver it (at-least-once)
          }
        } else {
          this.#reply(msg, "ack");
        }
      } else {
        this.#failed++;
        await this.#fail(msg, failure);
      }
    } finally {
      this.#release(held);
    }
  }

  /**
   * Sends an ack, nak (with `delayMs`) or term, and counts it. A reply that cannot be sent (the
   * connection is closed) is counted in `replyErrors`: the server redelivers after `ack_wait`.
   */
  #reply(msg: JsMsg, kind: "ack" | "nak" | "term", delayMs?: number): void {
    try {
      if (kind === "ack") {
        msg.ack();
        this.#acked++;
      } else if (kind === "nak") {
        msg.nak(delayMs);
        this.#naked++;
      } else {
        // No reason string: servers before 2.10.4 ignore a "+TERM reason" (the message would stay pending).
        msg.term();
        this.#termed++;
      }
    } catch {
      this.#replyErrors++;
    }
  }

  #release(held: Held): void {
    if (this.#held.delete(held)) this.#kick();
  }

  async #fail(msg: JsMsg, error: unknown): Promise<void> {
    const count = msg.info.deliveryCount;
    let retryable: boolean;
    try {
      retryable = this.#retryIf(error, count);
    } catch {
      retryable = true;
    }
    if (retryable && count < this.#maxDeliver) {
      this.#reply(msg, "nak", this.#delay(count));
      return;
    }
    if (this.#deadLetterSubject !== undefined) {
      try {
        await this.#deadLetter(msg, error, this.#deadLetterSubject);
        this.#deadLettered++;
      } catch {
        this.#deadLetterErrors++;
        this.#reply(msg, "nak", this.#delay(count));
        return;
      }
    }
    this.#reply(msg, "term");
  }

  async #deadLetter(msg: JsMsg, error: unknown, subject: string): Promise<void> {
    if (this.#deadLetterClient === undefined) {
      const nc = connectionOf(this.#consumer);
      if (nc === undefined) throw new TypeError("options.deadLetterClient is needed: the consumer's connection is not reachable");
      this.#deadLetterClient = jetstream(nc as Parameters<typeof jetstream>[0]);
    }
    const h = natsHeaders();
    if (msg.headers !== undefined) for (const [k, v] of msg.headers) for (const one of v) h.append(k, one);
    h.set("Sluice-Dead-Subject", msg.subject);
    h.set("Sluice-Dead-Stream", msg.info.stream);
    h.set("Sluice-Dead-Sequence", String(msg.seq));
    h.set("Sluice-Dead-Deliveries", String(msg.info.deliveryCount));
    h.set("Sluice-Dead-Error", (error instanceof Error ? error.message : String(error)).replace(/[\r\n]+/g, " ").slice(0, 500));
    h.delete("Nats-Msg-Id");
    await this.#deadLetterClient.publish(subject, msg.data, { msgID: `${msg.info.stream}:${msg.seq}`, headers: h });
  }

  /** The nak delay after delivery `count` failed: `min(maxMs, baseMs * 2^(count-1))`, jittered. */
  #delay(count: number): number {
    const cap = Math.min(this.#maxMs, this.#baseMs * 2 ** Math.min(Math.max(count - 1, 0), 1000));
    let d: number;
    if (this.#jitter === "none") d = cap;
    else if (this.#jitter === "equal") d = cap / 2 + this.#random() * (cap / 2);
    else d = this.#random() * cap;
    return Math.floor(d);
  }

  /** Sends `working()` for messages held longer than `workingMs`. */
  #touch(): void {
    const now = performance.now();
    for (const held of this.#held) {
      if (now - held.touched >= this.#workingMs) {
        held.touched = now;
        try {
          held.msg.working();
          this.#working++;
        } catch {
          this.#replyErrors++;
        }
      }
    }
  }
}
