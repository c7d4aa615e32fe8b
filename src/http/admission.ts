/**
 * Admission: the engine behind sluice's HTTP front doors. It decides, at the entry of a
 * server, whether each request runs now, waits in a bounded queue, or is refused at once with
 * `503` (or `429` over a client's quota) and a `Retry-After`, before its body is read.
 *
 * Invariants:
 *  - `inFlight` counts admitted requests whose slot is held: a slot is taken at admission and
 *    given back only when the handler has settled AND the response has ended or the client
 *    left. `inFlight <= limit` at every admission (a lowered adaptive limit never cancels
 *    running work: it only admits less).
 *  - The queue holds at most `queueSize` visits, linked through `prev`/`next` (O(1) push, pop
 *    at either end, removal from the middle). After every step, if a slot is free then the
 *    queue is empty (`#pump` runs whenever a slot frees or the limit rises).
 *  - A visit's state only moves forward: NEW -> QUEUED -> RUNNING -> DONE, or to REFUSED from
 *    NEW or QUEUED, or to GONE (the client left while queued). Each visit is answered exactly
 *    once: refused (by the engine), or handled (by the door's handler), or not at all because
 *    the client left first.
 *  - Every request that entered is counted once: `received === admitted + queued +
 *    rejected(all reasons) + abandoned`.
 *  - Running visits are linked through the same `prev`/`next` (a list of at most `inFlight`).
 *  - At most one timer is armed per visit through the clock: its queue timeout while queued,
 *    its deadline while running; it is cleared when the visit moves on.
 *  - After `close()`, nothing is admitted from outside; queued visits still run as slots free.
 *    The close promise resolves when the queue is empty and nothing is in flight.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { channel as diagnosticsChannel } from "node:diagnostics_channel";
import { checkClock, systemClock, type Clock } from "../core/clock.js";
import { observe } from "../core/registry.js";
import { checkDuration, checkFunction, checkInteger, checkName, checkNumber, checkOptions, checkSignal, given } from "../core/validate.js";
import { isConcurrencyLimit, type ConcurrencyLimit, type LimitSample } from "../flow/concurrency-limit.js";
import type { KeyedRateLimiter } from "../flow/keyed-rate-limiter.js";
import { Summary, type SummarySnapshot } from "../flow/summary.js";
import { failureProblem, rejectProblem, writeProblem, type Problem, type RejectReason } from "./problem.js";
import { jitteredSeconds, secondsFromDelay } from "./retry-after.js";
import { NODE_DOOR } from "./node-door.js";
import { EXPRESS_DOOR } from "./express-door.js";

export type { RejectReason } from "./problem.js";

/** The order queued requests are admitted in: oldest first, or freshest first. */
export type AdmissionOrder = "fifo" | "lifo";

/** What a `retryAfter` function is told when a request is refused for capacity. */
export interface AdmissionState {
  /** Why this request is refused (never "quota": a quota's Retry-After is its limiter's delay). */
  readonly reason: Exclude<RejectReason, "quota">;
  /** The concurrency now. */
  readonly concurrency: number;
  readonly inFlight: number;
  /** Requests waiting now. */
  readonly queued: number;
  /** The queue's bound. */
  readonly queueSize: number;
  /** Mean service time of the requests handled so far, in ms (0 before the first). */
  readonly meanServiceMs: number;
}

/** A per-client quota: one token of `limiter` per request, under the key `key(req)` returns. */
export interface AdmissionQuota {
  /** One bucket per key; a request takes one token, or is answered 429 with the limiter's delay. */
  readonly limiter: KeyedRateLimiter<string>;
  /**
   * The client's key (an IP, a tenant, an API key). If it throws, the error goes to `onError`
   * and the request counts against the key `""`.
   */
  readonly key: (req: IncomingMessage) => string;
}

/** Options of `new Admission(options)`. */
export interface AdmissionOptions {
  /** Requests handled at once: a positive safe integer, or a `ConcurrencyLimit` such as an `AdaptiveLimit`. */
  concurrency: number | ConcurrencyLimit;
  /** Requests that may wait for a slot: a non-negative safe integer (default 0: refuse when full). */
  queue?: number;
  /** Which waiting request a freed slot goes to: "fifo" (default, oldest) or "lifo" (freshest). */
  order?: AdmissionOrder;
  /** A queued request waiting longer than this (ms) is refused with 503 (default: no limit but the queue's size). */
  queueTimeoutMs?: number;
  /** The handler's signal fires this many ms after admission, and the request counts as timed out (default none). */
  deadlineMs?: number;
  /**
   * `Retry-After` of a 503, in seconds before jitter: a finite number >= 1, or a function of the
   * state (its result is rounded up, at least 1). Default: the mean service time times
   * `(queued + 1) / concurrency`, rounded up, between 1 and 60.
   */
  retryAfter?: number | ((state: AdmissionState) => number);
  /** The jitter added to a 503's `Retry-After`: up to this fraction of it, and at least 1 s when > 0 (default 0.5; 0 for none). */
  retryAfterJitter?: number;
  /** A per-client quota: over it, `429` with `Retry-After` from the limiter's delay. */
  quota?: AdmissionQuota;
  /** Send the IETF `RateLimit-Limit`/`-Remaining`/`-Reset` headers with quota'd requests (default false). */
  rateLimitHeaders?: boolean;
  /**
   * A refused request's declared body up to this many bytes is discarded by Node, keeping the
   * connection alive; a larger or chunked one gets `Connection: close` (default 65 536).
   */
  maxDrainBytes?: number;
  /** Names the boundary in stats, metrics and the problem details. */
  name?: string;
  /** Where time is read and timers are armed (default: the default clock). */
  clock?: Clock;
  /** Uniform numbers in [0, 1) for the jitter (default `Math.random`). */
  random?: () => number;
  /**
   * Where the errors of `handler()` listeners go (default: a `SLUICE_HANDLER_FAILED` warning,
   * at most one a second). The request is answered 500 if nothing was sent yet.
   */
  onError?: (error: unknown, req: IncomingMessage) => void;
}

/** Refusals by reason. */
export interface AdmissionRejections {
  readonly queueFull: number;
  readonly queueTimeout: number;
  readonly quota: number;
  readonly closed: number;
}

/** A fresh snapshot of an admission's counters. */
export interface AdmissionStats {
  readonly name: string | undefined;
  /** The concurrency now (an adaptive limit's current value). */
  readonly concurrency: number;
  readonly queueSize: number;
  /** Requests that entered. */
  readonly received: number;
  /** Requests admitted (started, at once or after waiting). */
  readonly admitted: number;
  /** Requests waiting now. */
  readonly queued: number;
  /** Admitted requests holding a slot now. */
  readonly inFlight: number;
  /** Refused requests, by reason. */
  readonly rejected: AdmissionRejections;
  /** Admitted requests whose deadline passed before their slot was given back. */
  readonly timedOut: number;
  /** Clients that left before their response ended (while queued or in flight). */
  readonly clientAborted: number;
  /** Clients that left while queued (also in `clientAborted`); never admitted. */
  readonly abandoned: number;
  /** Admitted requests whose slot was given back. */
  readonly completed: number;
  /** `handler()` listeners that threw or rejected. */
  readonly failed: number;
  /**
   * From arrival to admission, of admitted requests (ms). With an injected clock every request
   * is timed; with the real clock every queued one and a sample of the others (all of them while
   * they come slower than one a millisecond, about one a millisecond when faster).
   */
  readonly queueWait: SummarySnapshot;
  /** From admission to the slot's release (ms); sampled as `queueWait` is. */
  readonly serviceTime: SummarySnapshot;
  /** Whether `close()` was called. */
  readonly closed: boolean;
}

/** What `sluice:admission-reject` subscribers receive for each refusal. */
export interface AdmissionRejectMessage {
  readonly name: string | undefined;
  readonly reason: RejectReason;
  readonly status: number;
  readonly retryAfterSeconds: number;
}

/**
 * The `node:diagnostics_channel` channel every refusal is published on, as an
 * `AdmissionRejectMessage` (only when it has subscribers: nothing is built otherwise).
 *
 * @example
 * import { subscribe } from "node:diagnostics_channel";
 * subscribe(ADMISSION_REJECT_CHANNEL, (m) => log.warn("refused", m)); // { name, reason, status, retryAfterSeconds }
 */
export const ADMISSION_REJECT_CHANNEL = "sluice:admission-reject";
const rejectChannel = diagnosticsChannel(ADMISSION_REJECT_CHANNEL);

const NEW = 0;
const QUEUED = 1;
const RUNNING = 2;
const DONE = 3;
const REFUSED = 4;
const GONE = 5;

/**
 * @internal How a front door runs an admitted request and answers a refused one. `begin` calls
 * the user's code; a door that sees the handler's promise (`tracksHandler`) reports its end with
 * `handlerSettled`; the others count the handler as settled at once, unless they wrap the
 * framework's handlers and report them (`visit.handlerDone = false` while one runs, then
 * `handlerEnded`), as the Express and Fastify doors do.
 */
export interface Door {
  readonly tracksHandler: boolean;
  /** Runs the user's code; the handler's signal is `signalOf(visit)` (created when first asked for). */
  begin(visit: Visit): void;
  refuse(visit: Visit, problem: Problem, headers: readonly (readonly [string, string])[]): void;
}

/** @internal One request, from arrival to its answer. */
export class Visit {
  prev: Visit | null = null;
  next: Visit | null = null;
  state = NEW;
  /** Whether this visit's queue wait and service time are measured (see `#sample`). */
  timed = false;
  arrivedAt = 0;
  startedAt = 0;
  timer: unknown = undefined;
  /**
   * The handler's signal's controller, created on first use (`signalOf`): an AbortSignal costs
   * more to create in Node than the rest of the engine's work per request, and most requests end
   * without anyone asking for theirs (Express's `req.signal` and Fastify's `request.signal` are
   * getters; the node:http door asks only for a listener that declares a third parameter).
   */
  controller: AbortController | null = null;
  /** Whether the handler's signal fired (or would have, had it been created), and with what reason. */
  aborted = false;
  abortReason: unknown = undefined;
  sample: LimitSample | null = null;
  cancelQuota: (() => void) | null = null;
  handlerDone = false;
  responseDone = false;
  clientLeft = false;
  timedOut = false;
  failed = false;
  /** RateLimit headers to send with the answer (empty unless enabled). */
  headers: (readonly [string, string])[] = NO_HEADERS;
  readonly onClose: () => void;

  constructor(
    readonly admission: Admission,
    readonly door: Door,
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    /** The door's own context (the listener, `next`, Fastify's reply...). */
    readonly context: unknown,
  ) {
    this.onClose = () => responseClosed(this);
  }
}

const NO_HEADERS: (readonly [string, string])[] = [];

/** @internal Whether a visit was admitted and its slot is still held. */
export function isRunning(visit: Visit): boolean {
  return visit.state === RUNNING;
}

/** @internal The handler's signal of a visit, created on first use (already aborted if it fired before). */
export function signalOf(visit: Visit): AbortSignal {
  let c = visit.controller;
  if (c === null) {
    c = visit.controller = new AbortController();
    if (visit.aborted) c.abort(visit.abortReason);
  }
  return c.signal;
}

/** Fires the handler's signal of a visit once (or records the reason, if nobody asked for it yet). */
function abortVisit(visit: Visit, reason: unknown): void {
  if (visit.aborted) return;
  visit.aborted = true;
  visit.abortReason = reason;
  visit.controller?.abort(reason);
}

let responseClosed: (visit: Visit) => void;
/** @internal Lets a front door hand a request to its admission. */
export let enter: (admission: Admission, visit: Visit) => void;
/** @internal A `tracksHandler` door reports that the handler settled (`failed` with its error). */
export let handlerSettled: (visit: Visit, failed: boolean, error: unknown) => void;
/**
 * @internal A door that learned of the handler's end itself reports it (no failure handling:
 * the framework answers a failed handler), so the slot is released once the response ended too.
 */
export let handlerEnded: (visit: Visit) => void;
/** @internal The `maxDrainBytes` of an admission, for doors that write their own replies. */
export let drainLimit: (admission: Admission) => number;

const perfNow = performance.now.bind(performance);
/** The sampling stride's bound: at least one request in 1024 is timed. */
const MAX_STRIDE = 1024;
const FAIL_WARN_MS = 1000;

function disconnected(): DOMException {
  return new DOMException("the client disconnected before the response ended", "AbortError");
}

function checkConcurrency(value: unknown): number | ConcurrencyLimit {
  if (isConcurrencyLimit(value)) return value;
  if (value === Infinity) {
    throw new RangeError("options.concurrency must be a positive safe integer or a ConcurrencyLimit, got Infinity: sluice admits no unbounded concurrency");
  }
  if (typeof value !== "number") {
    throw new TypeError(`options.concurrency must be a positive safe integer or a ConcurrencyLimit, got ${value === null ? "null" : typeof value}`);
  }
  return checkInteger(value, "options.concurrency", 1);
}

/**
 * Admission control for an HTTP server: at most `concurrency` requests handled at once, at most
 * `queue` more waiting (FIFO or LIFO), the rest refused at once with `503 Service Unavailable`,
 * a jittered `Retry-After` and an `application/problem+json` body, before their body is read.
 * With a `quota`, a client over its rate gets `429 Too Many Requests` with the limiter's delay
 * as `Retry-After`. Put it in front of a server with one of its doors: `handler(listener)`
 * (node:http), `express()` (Express 5 middleware), or the `fastifyAdmission` plugin.
 *
 * What waits: a request that finds every slot taken waits in the queue, for `queueTimeoutMs` at
 * most, then gets 503. Nothing else waits; the engine never blocks the event loop. What is
 * bounded: requests in flight (`concurrency`), requests waiting (`queue`), a refused request's
 * body that is read (`maxDrainBytes`, then the connection closes), timers (one per request).
 *
 * The handler's signal fires when the client disconnects before the response ended, at
 * `deadlineMs` after admission, and at `close()`'s deadline, never after a normal response. The
 * slot is held until the handler settled and the response ended or the client left (strict,
 * as a `Pool` is), so a handler that ignores its signal still counts against the concurrency.
 *
 * When closed: new requests get 503 (reason "closed"); admitted and queued ones go on.
 *
 * @example
 * import { createServer } from "node:http";
 * import { Admission } from "sluice/http";
 * const admission = new Admission({ concurrency: 64, queue: 256, queueTimeoutMs: 500, deadlineMs: 10_000 });
 * createServer(admission.handler(async (req, res, signal) => {
 *   const body = await render(req.url, { signal }); // stops if the client leaves
 *   res.end(body);
 * })).listen(8080);
 * process.on("SIGTERM", () => admission.close({ signal: AbortSignal.timeout(10_000) }));
 */
export class Admission {
  readonly #name: string | undefined;
  readonly #fixed: number;
  readonly #adaptive: ConcurrencyLimit | null;
  readonly #queueSize: number;
  readonly #lifo: boolean;
  readonly #queueTimeoutMs: number;
  readonly #deadlineMs: number;
  readonly #retryAfter: number | ((state: AdmissionState) => number) | undefined;
  readonly #jitter: number;
  readonly #quota: AdmissionQuota | undefined;
  readonly #rateHeaders: boolean;
  readonly #maxDrain: number;
  readonly #clock: Clock;
  readonly #now: () => number;
  readonly #random: () => number;
  readonly #onError: ((error: unknown, req: IncomingMessage) => void) | undefined;

  #head: Visit | null = null;
  #tail: Visit | null = null;
  #queued = 0;
  #inFlight = 0;
  /** Running visits, linked through `prev`/`next` (a visit is never queued and running at once). */
  #runHead: Visit | null = null;
  /**
   * Time every request (an injected clock: tests want exact figures), or a sample (the real
   * clock: a clock read costs as much as a good part of the engine's work per request): every
   * request while they come slower than one a millisecond, about one a millisecond when faster
   * (a stride of up to 1024). Queued requests are always timed (they waited anyway).
   */
  readonly #timeAll: boolean;
  #countdown = 1;
  #stride = 1;
  #sampledAt = -Infinity;
  #pumping = false;
  #closed = false;
  #closing: Promise<void> | null = null;
  #closeDone: (() => void) | null = null;
  #warnedRetryAfter = false;
  #lastFailWarn = -Infinity;

  #received = 0;
  #admitted = 0;
  #queueFull = 0;
  #queueTimeout = 0;
  #quotaRejected = 0;
  #closedRejected = 0;
  #timedOut = 0;
  #clientAborted = 0;
  #abandoned = 0;
  #completed = 0;
  #failed = 0;
  readonly #queueWait = new Summary();
  readonly #serviceTime = new Summary();

  static {
    responseClosed = (visit) => visit.admission.#responseClosed(visit);
    enter = (admission, visit) => admission.#enter(visit);
    handlerSettled = (visit, failed, error) => visit.admission.#handlerSettled(visit, failed, error);
    handlerEnded = (visit) => visit.admission.#handlerEnded(visit);
    drainLimit = (admission) => admission.#maxDrain;
  }

  constructor(options: AdmissionOptions) {
    if (options === null || typeof options !== "object") throw new TypeError("options must be an object with a concurrency");
    this.#name = checkName(options.name);
    const c = checkConcurrency(options.concurrency);
    this.#adaptive = typeof c === "number" ? null : c;
    this.#fixed = typeof c === "number" ? c : 0;
    if (options.queue === Infinity) throw new RangeError("options.queue must be a non-negative safe integer, got Infinity: sluice has no unbounded queue");
    this.#queueSize = checkInteger(given(options.queue, 0), "options.queue", 0);
    const order = given(options.order, "fifo");
    if (order !== "fifo" && order !== "lifo") throw new TypeError(`options.order must be "fifo" or "lifo", got ${JSON.stringify(order)}`);
    this.#lifo = order === "lifo";
    this.#queueTimeoutMs = options.queueTimeoutMs === undefined ? Infinity : checkDuration(options.queueTimeoutMs, "options.queueTimeoutMs");
    this.#deadlineMs = options.deadlineMs === undefined ? Infinity : checkDuration(options.deadlineMs, "options.deadlineMs");
    const ra = options.retryAfter;
    if (typeof ra === "function") this.#retryAfter = ra;
    else if (ra === undefined) this.#retryAfter = undefined;
    else {
      checkNumber(ra, "options.retryAfter");
      if (!Number.isFinite(ra) || ra < 1) throw new RangeError(`options.retryAfter must be a finite number of seconds >= 1 or a function, got ${ra}`);
      this.#retryAfter = ra;
    }
    const jitter = checkNumber(given(options.retryAfterJitter, 0.5), "options.retryAfterJitter");
    if (!(jitter >= 0 && jitter <= 10)) throw new RangeError(`options.retryAfterJitter must be a number in [0, 10], got ${jitter}`);
    this.#jitter = jitter;
    const quota = options.quota;
    if (quota !== undefined) {
      checkOptions(quota, "options.quota");
      const l = quota.limiter as Partial<KeyedRateLimiter<string>> | undefined;
      if (l === null || typeof l !== "object" || typeof l.reserve !== "function" || typeof l.tokens !== "function") {
        throw new TypeError("options.quota.limiter must be a KeyedRateLimiter");
      }
      checkFunction(quota.key, "options.quota.key");
    }
    this.#quota = quota;
    if (options.rateLimitHeaders !== undefined && typeof options.rateLimitHeaders !== "boolean") {
      throw new TypeError(`options.rateLimitHeaders must be a boolean, got ${typeof options.rateLimitHeaders}`);
    }
    this.#rateHeaders = options.rateLimitHeaders === true && quota !== undefined;
    this.#maxDrain = checkInteger(given(options.maxDrainBytes, 65_536), "options.maxDrainBytes", 0);
    this.#clock = checkClock(options.clock);
    this.#timeAll = this.#clock !== systemClock;
    this.#now = this.#timeAll ? () => this.#clock.now() : perfNow;
    this.#random = checkFunction(given(options.random, Math.random), "options.random");
    this.#onError = options.onError === undefined ? undefined : checkFunction(options.onError, "options.onError");
    if (this.#adaptive !== null) this.#adaptive.subscribe(() => this.#pump());
    observe("admission", this, this.#name !== undefined);
  }

  /** The name given in the options. */
  get name(): string | undefined {
    return this.#name;
  }

  /** The concurrency now (for an adaptive limit, its current value). */
  get concurrency(): number {
    return this.#adaptive !== null ? this.#adaptive.limit : this.#fixed;
  }

  /** Admitted requests holding a slot now. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** Requests waiting for a slot now. */
  get queued(): number {
    return this.#queued;
  }

  /** Whether `close()` was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** A fresh snapshot of the counters. */
  get stats(): AdmissionStats {
    return {
      name: this.#name,
      concurrency: this.concurrency,
      queueSize: this.#queueSize,
      received: this.#received,
      admitted: this.#admitted,
      queued: this.#queued,
      inFlight: this.#inFlight,
      rejected: {
        queueFull: this.#queueFull,
        queueTimeout: this.#queueTimeout,
        quota: this.#quotaRejected,
        closed: this.#closedRejected,
      },
      timedOut: this.#timedOut,
      clientAborted: this.#clientAborted,
      abandoned: this.#abandoned,
      completed: this.#completed,
      failed: this.#failed,
      queueWait: this.#queueWait.snapshot(),
      serviceTime: this.#serviceTime.snapshot(),
      closed: this.#closed,
    };
  }

  /**
   * A `node:http` request listener that admits each request before calling
   * `listener(req, res, signal)`. The slot is held until the listener's returned promise (if
   * any) settles and the response ended or the client left. If the listener throws or rejects
   * and nothing was sent yet, the request is answered `500` (a problem body); if headers were
   * sent, the response is destroyed. If it settles at or after the deadline without answering,
   * the request is answered `503` (deadline exceeded).
   *
   * @example
   * const server = createServer(admission.handler(async (req, res, signal) => {
   *   res.end(JSON.stringify(await db.query(sql, { signal })));
   * }));
   */
  handler(listener: (req: IncomingMessage, res: ServerResponse, signal: AbortSignal) => unknown): (req: IncomingMessage, res: ServerResponse) => void {
    checkFunction(listener, "listener");
    return (req, res) => this.#enter(new Visit(this, NODE_DOOR, req, res, listener));
  }

  /**
   * Express 5 middleware: admits each request, sets `req.signal` (the handler's signal) and
   * calls `next()`; refused requests are answered here and never reach the routes. Express does
   * not tell middleware when a route's handler settles, so the slot follows the response: it is
   * given back when the response ended or the client left.
   *
   * @example
   * const app = express();
   * app.use(admission.express());
   * app.get("/report", async (req, res) => res.json(await build({ signal: req.signal })));
   */
  express(): (req: IncomingMessage & { signal?: AbortSignal }, res: ServerResponse, next: (error?: unknown) => void) => void {
    return (req, res, next) => this.#enter(new Visit(this, EXPRESS_DOOR, req, res, next));
  }

  /**
   * Stops admitting: new requests get 503 (reason "closed") at once; admitted and queued ones go
   * on. When `signal` aborts, queued requests are refused (503, "closed") and the handlers still
   * running have their signals fired with `signal.reason`. Resolves when nothing is queued or in
   * flight (handlers that ignore their signal are still waited for: their slot is theirs until
   * they settle). Calling it again adds the new signal and returns the same promise.
   *
   * @example
   * process.once("SIGTERM", async () => {
   *   await admission.close({ signal: AbortSignal.timeout(10_000) });
   *   server.close();
   * });
   */
  close(options?: { signal?: AbortSignal }): Promise<void> {
    let signal: AbortSignal | undefined;
    try {
      signal = checkSignal(checkOptions(options)?.signal);
    } catch (e) {
      return Promise.reject(e);
    }
    if (this.#closing === null) {
      this.#closed = true;
      this.#closing = new Promise<void>((resolve) => {
        this.#closeDone = resolve;
      });
      this.#checkDrained();
    }
    if (signal !== undefined && this.#closeDone !== null) {
      if (signal.aborted) this.#abortAll(signal.reason);
      else {
        const onAbort = (): void => this.#abortAll(signal.reason);
        signal.addEventListener("abort", onAbort, { once: true });
        void this.#closing.then(() => signal.removeEventListener("abort", onAbort));
      }
    }
    return this.#closing;
  }

  /** @internal For warnings and errors. */
  describe(): string {
    return this.#name === undefined ? "an admission" : `admission "${this.#name}"`;
  }

  // ---- entry ----

  #limit(): number {
    return this.#adaptive !== null ? this.#adaptive.limit : this.#fixed;
  }

  #enter(visit: Visit): void {
    this.#received++;
    if (this.#closed) return this.#refuse(visit, "closed", 0);
    if (this.#quota !== undefined && !this.#takeQuota(visit)) return;
    if (this.#inFlight < this.#limit()) {
      visit.res.on("close", visit.onClose);
      if (this.#sample()) {
        visit.timed = true;
        visit.arrivedAt = this.#now();
      }
      this.#start(visit);
    } else if (this.#queued < this.#queueSize) {
      visit.res.on("close", visit.onClose);
      this.#enqueue(visit);
    } else {
      visit.cancelQuota?.();
      this.#refuse(visit, "queueFull", 0);
    }
  }

  /** Takes one token of the client's quota; refuses the visit (429) and returns false when there is none. */
  #takeQuota(visit: Visit): boolean {
    const q = this.#quota!;
    let key: string;
    try {
      key = q.key(visit.req);
    } catch (e) {
      this.#reportError(e, visit.req);
      key = "";
    }
    const r = q.limiter.reserve(key, 1, { maxDelayMs: 0 });
    if (this.#rateHeaders) visit.headers = this.#rateLimitHeaders(key);
    if (!r.ok) {
      this.#refuse(visit, "quota", r.delayMs);
      return false;
    }
    visit.cancelQuota = () => r.cancel();
    return true;
  }

  #rateLimitHeaders(key: string): (readonly [string, string])[] {
    const l = this.#quota!.limiter;
    const tokens = l.tokens(key);
    const missing = l.burst - Math.max(0, tokens);
    const reset = l.rate === Infinity || missing <= 0 ? 0 : l.rate === 0 ? 86_400 : Math.ceil(missing / l.rate);
    return [
      ["ratelimit-limit", String(l.burst)],
      ["ratelimit-remaining", String(Math.max(0, Math.floor(tokens)))],
      ["ratelimit-reset", String(reset)],
    ];
  }

  // ---- the queue ----

  /** Whether to time the next request admitted without waiting (see `#timeAll`). */
  #sample(): boolean {
    if (this.#timeAll) return true;
    if (--this.#countdown > 0) return false;
    const now = perfNow();
    if (now - this.#sampledAt < 1) this.#stride = Math.min(MAX_STRIDE, this.#stride * 2);
    else if (this.#stride > 1) this.#stride >>= 1;
    this.#sampledAt = now;
    this.#countdown = this.#stride;
    return true;
  }

  #enqueue(visit: Visit): void {
    visit.state = QUEUED;
    visit.timed = true;
    visit.arrivedAt = this.#now();
    visit.prev = this.#tail;
    visit.next = null;
    if (this.#tail === null) this.#head = visit;
    else this.#tail.next = visit;
    this.#tail = visit;
    this.#queued++;
    if (this.#queueTimeoutMs !== Infinity) {
      visit.timer = this.#clock.setTimeout(() => this.#queueTimedOut(visit), this.#queueTimeoutMs);
    }
  }

  #unlink(visit: Visit): void {
    const { prev, next } = visit;
    if (prev === null) this.#head = next;
    else prev.next = next;
    if (next === null) this.#tail = prev;
    else next.prev = prev;
    visit.prev = visit.next = null;
    this.#queued--;
    if (visit.timer !== undefined) {
      this.#clock.clearTimeout(visit.timer);
      visit.timer = undefined;
    }
  }

  #queueTimedOut(visit: Visit): void {
    visit.timer = undefined;
    if (visit.state !== QUEUED) return;
    this.#unlink(visit);
    visit.res.removeListener("close", visit.onClose);
    this.#refuse(visit, "queueTimeout", 0);
    this.#checkDrained();
  }

  /** Starts queued visits while slots are free. */
  #pump(): void {
    if (this.#pumping) return;
    this.#pumping = true;
    try {
      while (this.#queued > 0 && this.#inFlight < this.#limit()) {
        const visit = this.#lifo ? this.#tail! : this.#head!;
        this.#unlink(visit);
        this.#start(visit);
      }
    } finally {
      this.#pumping = false;
    }
  }

  // ---- running ----

  #start(visit: Visit): void {
    visit.state = RUNNING;
    this.#inFlight++;
    this.#admitted++;
    visit.next = this.#runHead;
    if (this.#runHead !== null) this.#runHead.prev = visit;
    this.#runHead = visit;
    if (visit.timed) {
      const now = this.#now();
      visit.startedAt = now;
      this.#queueWait.record(now - visit.arrivedAt);
    }
    if (this.#adaptive !== null) visit.sample = this.#adaptive.start();
    if (this.#deadlineMs !== Infinity) {
      visit.timer = this.#clock.setTimeout(() => this.#deadline(visit), this.#deadlineMs);
    }
    if (!visit.door.tracksHandler) visit.handlerDone = true;
    for (const [k, v] of visit.headers) visit.res.setHeader(k, v);
    visit.door.begin(visit);
  }

  #deadline(visit: Visit): void {
    visit.timer = undefined;
    if (visit.state !== RUNNING) return;
    visit.timedOut = true;
    this.#timedOut++;
    abortVisit(visit, new DOMException(`the request's deadline (${this.#deadlineMs} ms) passed`, "TimeoutError"));
    if (visit.door.tracksHandler && visit.handlerDone) this.#answerDeadline(visit);
  }

  #answerDeadline(visit: Visit): void {
    if (visit.res.headersSent || visit.clientLeft) return;
    const p = failureProblem(503, "deadline-exceeded", "Deadline exceeded", `the request was not answered within ${this.#deadlineMs} ms`);
    writeProblem(visit.req, visit.res, p, this.#maxDrain);
  }

  #responseClosed(visit: Visit): void {
    if (visit.state === QUEUED) {
      // The client left while waiting: it is never admitted, and nobody is answered.
      this.#unlink(visit);
      visit.state = GONE;
      this.#abandoned++;
      this.#clientAborted++;
      this.#checkDrained();
      return;
    }
    if (visit.state !== RUNNING) return;
    visit.responseDone = true;
    if (!visit.res.writableFinished) {
      visit.clientLeft = true;
      this.#clientAborted++;
      abortVisit(visit, disconnected());
    }
    this.#maybeRelease(visit);
  }

  #handlerEnded(visit: Visit): void {
    if (visit.handlerDone) return;
    visit.handlerDone = true;
    this.#maybeRelease(visit);
  }

  #handlerSettled(visit: Visit, failed: boolean, error: unknown): void {
    if (visit.handlerDone) return;
    visit.handlerDone = true;
    if (failed) {
      visit.failed = true;
      this.#failed++;
      this.#reportError(error, visit.req);
      const res = visit.res;
      if (!res.headersSent && !visit.clientLeft) {
        const p = failureProblem(500, "handler-failed", "Internal Server Error", "the request's handler failed");
        writeProblem(visit.req, res, p, this.#maxDrain);
      } else if (!res.writableEnded) {
        res.destroy();
      }
    } else if (visit.timedOut) {
      this.#answerDeadline(visit);
    }
    this.#maybeRelease(visit);
  }

  #maybeRelease(visit: Visit): void {
    if (!visit.handlerDone || !visit.responseDone || visit.state !== RUNNING) return;
    visit.state = DONE;
    if (visit.timer !== undefined) {
      this.#clock.clearTimeout(visit.timer);
      visit.timer = undefined;
    }
    const { prev, next } = visit;
    if (prev === null) this.#runHead = next;
    else prev.next = next;
    if (next !== null) next.prev = prev;
    visit.prev = visit.next = null;
    this.#inFlight--;
    this.#completed++;
    if (visit.timed) this.#serviceTime.record(this.#now() - visit.startedAt);
    const sample = visit.sample;
    if (sample !== null) {
      visit.sample = null;
      if (visit.timedOut || visit.res.statusCode >= 500) sample.dropped();
      else if (visit.clientLeft) sample.ignore();
      else sample.success();
    }
    this.#pump();
    this.#checkDrained();
  }

  // ---- refusals ----

  #refuse(visit: Visit, reason: RejectReason, quotaDelayMs: number): void {
    visit.state = REFUSED;
    let seconds: number;
    let detail: string;
    const who = this.#name === undefined ? "the server" : `"${this.#name}"`;
    switch (reason) {
      case "quota":
        this.#quotaRejected++;
        seconds = secondsFromDelay(quotaDelayMs);
        detail = `this client is over its request quota at ${who}; retry after ${seconds} s`;
        break;
      case "queueFull":
        this.#queueFull++;
        seconds = this.#retrySeconds(reason);
        detail = `${who} is handling ${this.#inFlight} requests with ${this.#queued} waiting, its limit; retry after ${seconds} s`;
        break;
      case "queueTimeout":
        this.#queueTimeout++;
        seconds = this.#retrySeconds(reason);
        detail = `the request waited ${this.#queueTimeoutMs} ms for capacity at ${who}; retry after ${seconds} s`;
        break;
      case "closed":
        this.#closedRejected++;
        seconds = this.#retrySeconds(reason);
        detail = `${who} is shutting down; retry after ${seconds} s (elsewhere, or once it is back)`;
        break;
    }
    const problem = rejectProblem(reason, seconds, detail);
    if (rejectChannel.hasSubscribers) {
      const message: AdmissionRejectMessage = { name: this.#name, reason, status: problem.status, retryAfterSeconds: seconds };
      rejectChannel.publish(message);
    }
    visit.door.refuse(visit, problem, visit.headers);
  }

  #retrySeconds(reason: Exclude<RejectReason, "quota">): number {
    let base: number;
    const ra = this.#retryAfter;
    if (typeof ra === "number") base = ra;
    else {
      const concurrency = this.#limit();
      const meanServiceMs = this.#serviceTime.mean;
      if (ra === undefined) {
        base = Math.min(60, Math.ceil((meanServiceMs * (this.#queued + 1)) / Math.max(1, concurrency) / 1000));
      } else {
        try {
          base = ra({ reason, concurrency, inFlight: this.#inFlight, queued: this.#queued, queueSize: this.#queueSize, meanServiceMs });
          if (typeof base !== "number" || !Number.isFinite(base)) throw new TypeError(`options.retryAfter returned ${String(base)}, not a finite number`);
        } catch (e) {
          this.#warnRetryAfter(e);
          base = 1;
        }
      }
    }
    return jitteredSeconds(base, this.#jitter, this.#random);
  }

  #warnRetryAfter(error: unknown): void {
    if (this.#warnedRetryAfter) return;
    this.#warnedRetryAfter = true;
    process.emitWarning(`options.retryAfter of ${this.describe()} failed; Retry-After falls back to 1 s (reported once)`, {
      type: "SluiceWarning",
      code: "SLUICE_CALLBACK_ERROR",
      detail: error instanceof Error ? (error.stack ?? String(error)) : String(error),
    });
  }

  #reportError(error: unknown, req: IncomingMessage): void {
    if (this.#onError !== undefined) {
      try {
        this.#onError(error, req);
        return;
      } catch (e) {
        error = e;
      }
    }
    const now = Date.now();
    if (now - this.#lastFailWarn < FAIL_WARN_MS) return;
    this.#lastFailWarn = now;
    process.emitWarning(`a request handler behind ${this.describe()} failed; pass options.onError to handle failures`, {
      type: "SluiceWarning",
      code: "SLUICE_HANDLER_FAILED",
      detail: error instanceof Error ? (error.stack ?? String(error)) : String(error),
    });
  }

  // ---- shutdown ----

  #abortAll(reason: unknown): void {
    while (this.#head !== null) {
      const visit = this.#head;
      this.#unlink(visit);
      visit.res.removeListener("close", visit.onClose);
      this.#refuse(visit, "closed", 0);
    }
    const running: Visit[] = [];
    for (let v = this.#runHead; v !== null; v = v.next) running.push(v);
    for (const visit of running) abortVisit(visit, reason);
    this.#checkDrained();
  }

  #checkDrained(): void {
    if (this.#closeDone === null || this.#queued > 0 || this.#inFlight > 0) return;
    const done = this.#closeDone;
    this.#closeDone = null;
    done();
  }
}
