import assert from "node:assert/strict";
import { test } from "node:test";
import { generateOrders } from "../../../examples/order-service/generator.js";
import { InvalidOrderError, validateOrder } from "../../../examples/order-service/validate.js";

test("the same seed gives the same messages; another seed gives others", () => {
  const a = [...generateOrders({ count: 50, seed: 9 })];
  const b = [...generateOrders({ count: 50, seed: 9 })];
  const c = [...generateOrders({ count: 50, seed: 10 })];
  assert.deepEqual(a, b);
  assert.notDeepEqual(a.map((m) => m.body), c.map((m) => m.body));
});

test("what a message is meant to become is what validation makes of it", () => {
  const all = [...generateOrders({ count: 2000, seed: 4, invalidRate: 0.2, unknownCustomerRate: 0.1 })];
  const counts = { valid: 0, invalid: 0, "unknown-customer": 0 };
  for (const m of all) {
    counts[m.expected]++;
    if (m.expected === "invalid") {
      assert.throws(() => validateOrder(m.body), InvalidOrderError, m.body);
    } else {
      const o = validateOrder(m.body);
      assert.equal(o.orderId, m.orderId);
      assert.equal(o.customerId.startsWith("c-unknown-"), m.expected === "unknown-customer");
    }
  }
  // Rates are roughly honoured (2000 draws: far from the bounds below).
  assert.ok(counts.invalid > 300 && counts.invalid < 500, `invalid: ${counts.invalid}`);
  assert.ok(counts["unknown-customer"] > 100 && counts["unknown-customer"] < 260, `unknown: ${counts["unknown-customer"]}`);
  assert.equal(new Set(all.filter((m) => m.expected !== "invalid").map((m) => m.orderId)).size, counts.valid + counts["unknown-customer"]);
});

test("rates 0 give only valid orders; the prefix names the ids", () => {
  const all = [...generateOrders({ count: 100, invalidRate: 0, unknownCustomerRate: 0, prefix: "run7" })];
  assert.equal(all.length, 100);
  assert.ok(all.every((m) => m.expected === "valid" && m.orderId === `run7-${m.seq}`));
});

test("bad options are refused with errors naming them", () => {
  assert.throws(() => generateOrders({ count: -1 }).next(), /count must be a non-negative safe integer, got -1/);
  assert.throws(() => generateOrders({ count: 1, invalidRate: 2 }).next(), /invalidRate must be a number in \[0, 1\], got 2/);
  assert.throws(() => generateOrders({ count: 1, prefix: "a b" }).next(), /prefix must be/);
});
