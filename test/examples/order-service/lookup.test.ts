import assert from "node:assert/strict";
import { test } from "node:test";
import { CustomerLookup, LookupUnavailableError, UnknownCustomerError } from "../../../examples/order-service/lookup.js";
import { price } from "../../../examples/order-service/enrich.js";

test("a known customer is found; an unknown one is refused; a failure rate of 1 always fails", async () => {
  const ok = new CustomerLookup({ minMs: 0, maxMs: 1, failureRate: 0, customers: 10 });
  const c = await ok.lookup("c-4");
  assert.equal(c.customerId, "c-4");
  await assert.rejects(ok.lookup("c-11"), UnknownCustomerError);
  await assert.rejects(ok.lookup("c-unknown-3"), UnknownCustomerError);
  const down = new CustomerLookup({ minMs: 0, maxMs: 1, failureRate: 1 });
  await assert.rejects(down.lookup("c-1"), (e: unknown) => e instanceof LookupUnavailableError && e.code === "ERR_LOOKUP_UNAVAILABLE");
  assert.deepEqual([down.stats.calls, down.stats.failures, down.stats.inFlight], [1, 1, 0]);
});

test("an abort rejects at once with the reason and leaves nothing in flight", { timeout: 5000 }, async () => {
  const slow = new CustomerLookup({ minMs: 60_000, maxMs: 60_000, failureRate: 0 });
  const ctl = new AbortController();
  const call = slow.lookup("c-1", ctl.signal);
  assert.equal(slow.inFlight, 1);
  const reason = new Error("gone");
  ctl.abort(reason);
  await assert.rejects(call, (e) => e === reason);
  assert.equal(slow.inFlight, 0);
  await assert.rejects(slow.lookup("c-1", ctl.signal), (e) => e === reason);
  assert.equal(slow.stats.calls, 1);
});

test("price: subtotal, the tier's discount rounded down, total", () => {
  const order = { orderId: "o", customerId: "c-3", currency: "EUR", createdAt: "2026-01-01T00:00:00Z", items: [{ sku: "A", qty: 3, priceCents: 333 }, { sku: "B", qty: 1, priceCents: 1 }] };
  const gold = price(order, { customerId: "c-3", tier: "gold", region: "x" });
  assert.deepEqual([gold.subtotalCents, gold.discountCents, gold.totalCents], [1000, 50, 950]);
  const plat = price(order, { customerId: "c-3", tier: "platinum", region: "x" });
  assert.deepEqual([plat.discountCents, plat.totalCents], [100, 900]);
  const std = price(order, { customerId: "c-3", tier: "standard", region: "x" });
  assert.equal(std.totalCents, 1000);
});
