/**
 * The slow external dependency of the example: a simulated customer directory reached over the
 * network. Each call takes a random latency, fails now and then with a transient
 * `LookupUnavailableError` (a 503 of the real thing), and fails with `UnknownCustomerError` for
 * a customer it does not know. It counts the calls running at once, so a test can check that
 * the service's concurrency limit held.
 *
 * Invariants: a call holds one timer while it waits and stops it when its signal aborts (it
 * then rejects with `signal.reason`); `inFlight` is the number of calls not yet settled, and
 * `peakInFlight` its maximum.
 */
import { recv, select, timer } from "../../src/index.js";
import type { Customer } from "./order.js";

/** The directory is overloaded or unreachable right now: worth retrying. */
export class LookupUnavailableError extends Error {
  readonly code = "ERR_LOOKUP_UNAVAILABLE";
  constructor(customerId: string) {
    super(`customer lookup unavailable for ${customerId}`);
    this.name = "LookupUnavailableError";
  }
}

/** The directory does not know this customer: retrying will not help. */
export class UnknownCustomerError extends Error {
  readonly code = "ERR_UNKNOWN_CUSTOMER";
  constructor(readonly customerId: string) {
    super(`unknown customer ${customerId}`);
    this.name = "UnknownCustomerError";
  }
}

/** Options of `new CustomerLookup(options)`. */
export interface CustomerLookupOptions {
  /** Known customers are `c-1` ... `c-<customers>` (default 500). */
  customers?: number;
  /** Each call takes a uniform latency in `[minMs, maxMs]` (default 2 to 10 ms). */
  minMs?: number;
  maxMs?: number;
  /** Fraction of calls that fail with `LookupUnavailableError`, in [0, 1] (default 0.05). */
  failureRate?: number;
  /** Uniform numbers in [0, 1) (default `Math.random`). */
  random?: () => number;
}

const TIERS: readonly Customer["tier"][] = ["standard", "standard", "standard", "gold", "platinum"];
const REGIONS: readonly string[] = ["eu-west", "eu-central", "us-east", "us-west", "ap-south"];

/**
 * A simulated customer directory.
 *
 * @example
 * const directory = new CustomerLookup({ minMs: 1, maxMs: 5, failureRate: 0.1 });
 * const customer = await directory.lookup("c-42", signal);
 */
export class CustomerLookup {
  readonly #customers: number;
  readonly #minMs: number;
  readonly #maxMs: number;
  readonly #failureRate: number;
  readonly #random: () => number;
  #inFlight = 0;
  #peak = 0;
  #calls = 0;
  #failures = 0;

  constructor(options?: CustomerLookupOptions) {
    this.#customers = options?.customers ?? 500;
    this.#minMs = options?.minMs ?? 2;
    this.#maxMs = options?.maxMs ?? 10;
    this.#failureRate = options?.failureRate ?? 0.05;
    this.#random = options?.random ?? Math.random;
    if (!Number.isSafeInteger(this.#customers) || this.#customers < 1) throw new RangeError(`customers must be a positive safe integer, got ${String(this.#customers)}`);
    if (!(this.#minMs >= 0 && this.#maxMs >= this.#minMs && Number.isFinite(this.#maxMs))) {
      throw new RangeError(`minMs and maxMs must be finite with 0 <= minMs <= maxMs, got ${this.#minMs} and ${this.#maxMs}`);
    }
    if (!(this.#failureRate >= 0 && this.#failureRate <= 1)) throw new RangeError(`failureRate must be in [0, 1], got ${String(this.#failureRate)}`);
  }

  /** Calls running now. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** The most calls that ever ran at once. */
  get peakInFlight(): number {
    return this.#peak;
  }

  /** Calls made, and those that failed with `LookupUnavailableError`. */
  get stats(): { calls: number; failures: number; inFlight: number; peakInFlight: number } {
    return { calls: this.#calls, failures: this.#failures, inFlight: this.#inFlight, peakInFlight: this.#peak };
  }

  /**
   * Looks a customer up. Waits a random latency (one timer); rejects with `signal.reason` at
   * once on abort; with `LookupUnavailableError` at random (transient); with
   * `UnknownCustomerError` for an id outside `c-1` ... `c-<customers>`.
   */
  async lookup(customerId: string, signal?: AbortSignal): Promise<Customer> {
    if (signal?.aborted) throw signal.reason;
    this.#calls++;
    this.#inFlight++;
    if (this.#inFlight > this.#peak) this.#peak = this.#inFlight;
    const ms = this.#minMs + this.#random() * (this.#maxMs - this.#minMs);
    const fails = this.#random() < this.#failureRate;
    // A sluice timer stopped by the signal, raced with it in a select: no listener per call on
    // the shared signal, and no timer left armed after an abort.
    const t = timer(ms, signal === undefined ? undefined : { signal });
    try {
      await select([recv(t.channel)], signal === undefined ? undefined : { signal });
    } finally {
      t.stop();
      this.#inFlight--;
    }
    if (fails) {
      this.#failures++;
      throw new LookupUnavailableError(customerId);
    }
    const n = /^c-(\d+)$/.exec(customerId);
    const k = n === null ? 0 : Number(n[1]);
    if (k < 1 || k > this.#customers) throw new UnknownCustomerError(customerId);
    return { customerId, tier: TIERS[k % TIERS.length]!, region: REGIONS[k % REGIONS.length]! };
  }
}
