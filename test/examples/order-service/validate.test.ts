import assert from "node:assert/strict";
import { test } from "node:test";
import { InvalidOrderError, validateOrder } from "../../../examples/order-service/validate.js";

const good = {
  orderId: "o-1",
  customerId: "c-1",
  currency: "EUR",
  createdAt: "2026-01-01T00:00:00.000Z",
  items: [{ sku: "SKU-1", qty: 2, priceCents: 150 }],
};

test("a valid order comes out typed, with only the known fields", () => {
  const o = validateOrder(JSON.stringify({ ...good, extra: "dropped" }));
  assert.deepEqual(o, good);
});

const cases: [string, unknown, RegExp][] = [
  ["not JSON", "{", /not JSON/],
  ["an array", [], /not a JSON object/],
  ["no orderId", { ...good, orderId: undefined }, /orderId/],
  ["a malformed customerId", { ...good, customerId: "c 1" }, /customerId/],
  ["an unknown currency", { ...good, currency: "XYZ" }, /currency must be one of/],
  ["no lines", { ...good, items: [] }, /items must be an array of 1 to 20 lines/],
  ["too many lines", { ...good, items: Array.from({ length: 21 }, () => good.items[0]) }, /items must be/],
  ["qty 0", { ...good, items: [{ sku: "A", qty: 0, priceCents: 1 }] }, /items\[0\]\.qty must be an integer in \[1, 1000\], got 0/],
  ["a fractional price", { ...good, items: [{ sku: "A", qty: 1, priceCents: 1.5 }] }, /items\[0\]\.priceCents/],
  ["a line that is not an object", { ...good, items: [3] }, /items\[0\] is not an object/],
  ["a bad timestamp", { ...good, createdAt: "2026-13-45T00:00:00Z" }, /createdAt/],
];

for (const [what, value, message] of cases) {
  test(`refused: ${what}`, () => {
    const body = typeof value === "string" ? value : JSON.stringify(value);
    assert.throws(
      () => validateOrder(body),
      (e: unknown) => e instanceof InvalidOrderError && e.code === "ERR_INVALID_ORDER" && message.test(e.message),
    );
  });
}
