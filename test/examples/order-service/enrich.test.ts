import assert from "node:assert/strict";
import { test } from "node:test";
import { BusyError, RateLimiter, RetryBudget } from "../../../src/flow/index.js";
import { createEnricher } from "../../../examples/order-service/enrich.js";
import { CustomerLookup, LookupUnavailableError, UnknownCustomerError } from "../../../examples/order-service/lookup.js";
import type { Order } from "../../../examples/order-service/order.js";

const order = (customerId: string): Order => ({
  orderId: "o-1",
  customerId,
  currency: "EUR",
  createdAt: "2026-01-01T00:00:00Z",
  items: [{ sku: "A", qty: 2, priceCents: 500 }],
});
const never = new AbortController().signal;
const fast = (failureRate: number): CustomerLookup => new CustomerLookup({ minMs: 0, maxMs: 0, failureRate, customers: 10 });

test("a found customer gives the order its tier, region and totals", async () => {
  const { enrich } = createEnricher({ lookup: fast(0), limiter: new RateLimiter({ rate: Infinity, burst: 1 }), budget: new RetryBudget() });
  const e = await enrich(order("c-3"), never);
  assert.equal(e.orderId, "o-1");
  assert.equal(e.subtotalCents, 1000);
  assert.equal(e.totalCents, e.subtotalCents - e.discountCents);
  assert.ok(["standard", "gold", "platinum"].includes(e.tier));
});

test("transient failures are retried up to `attempts`, then the last one is the error", async () => {
  const lookup = fast(1);
  const enricher = createEnricher({ lookup, limiter: new RateLimiter({ rate: Infinity, burst: 1 }), budget: new RetryBudget(), attempts: 4, baseMs: 0 });
  await assert.rejects(enricher.enrich(order("c-1"), never), LookupUnavailableError);
  assert.equal(lookup.stats.calls, 4);
  assert.equal(enricher.stats.retries, 3);
});

test("an unknown customer is not retried", async () => {
  const lookup = fast(0);
  const { enrich } = createEnricher({ lookup, limiter: new RateLimiter({ rate: Infinity, burst: 1 }), budget: new RetryBudget() });
  await assert.rejects(enrich(order("c-99"), never), UnknownCustomerError);
  assert.equal(lookup.stats.calls, 1);
});

test("the retry budget caps retries across calls", async () => {
  const lookup = fast(1);
  const budget = new RetryBudget({ ratio: 0, minPerSecond: 0 });
  const { enrich } = createEnricher({ lookup, limiter: new RateLimiter({ rate: Infinity, burst: 1 }), budget, baseMs: 0 });
  await assert.rejects(enrich(order("c-1"), never), LookupUnavailableError);
  await assert.rejects(enrich(order("c-2"), never), LookupUnavailableError);
  assert.equal(lookup.stats.calls, 2, "no retry granted");
  assert.equal(budget.stats.refused, 2);
});

test("every attempt takes a rate-limiter token: an empty bucket that never refills refuses the third", async () => {
  const lookup = fast(1);
  const limiter = new RateLimiter({ rate: 0, burst: 2 });
  const { enrich } = createEnricher({ lookup, limiter, budget: new RetryBudget(), attempts: 5, baseMs: 0 });
  await assert.rejects(enrich(order("c-1"), never), BusyError);
  assert.equal(lookup.stats.calls, 2);
});

test("an abort rejects with its reason and leaves no lookup running", { timeout: 5000 }, async () => {
  const lookup = new CustomerLookup({ minMs: 60_000, maxMs: 60_000, failureRate: 0 });
  const { enrich } = createEnricher({ lookup, limiter: new RateLimiter({ rate: Infinity, burst: 1 }), budget: new RetryBudget() });
  const ctl = new AbortController();
  const call = enrich(order("c-1"), ctl.signal);
  await new Promise((r) => setImmediate(r));
  assert.equal(lookup.inFlight, 1);
  const reason = new Error("stop");
  ctl.abort(reason);
  await assert.rejects(call, (e) => e === reason);
  assert.equal(lookup.inFlight, 0);
});
