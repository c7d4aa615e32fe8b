/**
 * Enrichment: an order plus its customer (from the slow `CustomerLookup`) and its totals.
 *
 * Each lookup attempt first takes a token from a shared `RateLimiter` (the directory's quota),
 * and transient failures (`LookupUnavailableError`) are retried by `retry` with backoff, under a
 * `RetryBudget` shared by every call, so that an outage of the directory costs at most a tenth
 * more calls instead of `attempts` times as many. How many enrichments run at once is the
 * pipeline stage's concurrency, not this file's.
 */
import { retry, type RateLimiter, type RetryBudget } from "../../src/flow/index.js";
import { LookupUnavailableError, type CustomerLookup } from "./lookup.js";
import type { Customer, EnrichedOrder, Order } from "./order.js";

/** Discount per tier, in per mille of the subtotal. */
const DISCOUNT_PER_MILLE: Readonly<Record<Customer["tier"], number>> = { standard: 0, gold: 50, platinum: 100 };

/** Options of `createEnricher`. */
export interface EnricherOptions {
  readonly lookup: CustomerLookup;
  /** The directory's quota: one token per lookup attempt. */
  readonly limiter: RateLimiter;
  /** Shared by every enrichment: limits retries to a share of recent successes. */
  readonly budget: RetryBudget;
  /** Attempts per lookup, the first included (default 4). */
  readonly attempts?: number;
  /** Backoff before the first retry, in ms (default 10; doubles each retry, full jitter, at most 200). */
  readonly baseMs?: number;
  /** A rate-limiter token further away than this is refused (`BusyError`) instead of waited for (default 5000). */
  readonly maxDelayMs?: number;
}

/** Counters of an enricher (a fresh snapshot). */
export interface EnricherStats {
  /** Retries made (after a transient failure). */
  readonly retries: number;
}

/** An order's totals with its customer's discount. */
export function price(order: Order, customer: Customer): EnrichedOrder {
  let subtotalCents = 0;
  for (const l of order.items) subtotalCents += l.qty * l.priceCents;
  const discountCents = Math.floor((subtotalCents * DISCOUNT_PER_MILLE[customer.tier]) / 1000);
  return { ...order, tier: customer.tier, region: customer.region, subtotalCents, discountCents, totalCents: subtotalCents - discountCents };
}

/**
 * Returns `enrich(order, signal)` and its counters. `enrich` waits for a rate-limiter token
 * and the lookup, retrying transient failures; it rejects with `signal.reason` on abort (no
 * further attempt starts), with `UnknownCustomerError` at once (not retried), and with the last
 * `LookupUnavailableError` once attempts or the budget run out.
 *
 * @example
 * const { enrich } = createEnricher({ lookup, limiter: new RateLimiter({ rate: 500, burst: 50 }), budget: new RetryBudget() });
 * const row = await enrich(order, signal);
 */
export function createEnricher(options: EnricherOptions): {
  enrich: (order: Order, signal: AbortSignal) => Promise<EnrichedOrder>;
  readonly stats: EnricherStats;
} {
  const { lookup, limiter, budget } = options;
  const attempts = options.attempts ?? 4;
  const baseMs = options.baseMs ?? 10;
  const maxDelayMs = options.maxDelayMs ?? 5000;
  let retries = 0;
  const retryIf = (e: unknown): boolean => e instanceof LookupUnavailableError;
  const onRetry = (): void => {
    retries++;
  };
  const enrich = async (order: Order, signal: AbortSignal): Promise<EnrichedOrder> => {
    const customer = await retry(
      async (s) => {
        await limiter.wait(1, { signal: s, maxDelayMs });
        return lookup.lookup(order.customerId, s);
      },
      { attempts, baseMs, maxMs: Math.max(baseMs, 200), budget, retryIf, onRetry, signal },
    );
    return price(order, customer);
  };
  return {
    enrich,
    get stats(): EnricherStats {
      return { retries };
    },
  };
}
