import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { jitteredSeconds, MAX_RETRY_AFTER_S, parseRetryAfter, secondsFromDelay } from "../../src/http/retry-after.js";

test("jitteredSeconds: whole seconds in [ceil(base), ceil(base) + spread], never below 1", () => {
  fc.assert(
    fc.property(fc.double({ min: -10, max: 5000, noNaN: true }), fc.double({ min: 0, max: 2, noNaN: true }), fc.double({ min: 0, max: 0.999999, noNaN: true }), (base, jitter, r) => {
      const s = jitteredSeconds(base, jitter, () => r);
      assert.ok(Number.isSafeInteger(s) && s >= 1 && s <= MAX_RETRY_AFTER_S);
      const b = Math.max(1, Math.ceil(base));
      assert.ok(s >= Math.min(b, MAX_RETRY_AFTER_S));
      const spread = jitter === 0 ? 0 : Math.max(1, Math.round(b * jitter));
      assert.ok(s <= b + spread);
    }),
  );
  assert.equal(jitteredSeconds(1, 0.5, () => 0), 1);
  assert.equal(jitteredSeconds(1, 0.5, () => 0.9), 2);
  assert.equal(jitteredSeconds(10, 0.5, () => 0.999), 15);
  assert.equal(jitteredSeconds(3, 0, () => 0.9), 3);
  assert.equal(jitteredSeconds(NaN, 0, Math.random), 1);
});

test("secondsFromDelay rounds a limiter's delay up, at least 1 s", () => {
  assert.equal(secondsFromDelay(0), 1);
  assert.equal(secondsFromDelay(1), 1);
  assert.equal(secondsFromDelay(1000), 1);
  assert.equal(secondsFromDelay(1001), 2);
  assert.equal(secondsFromDelay(Infinity), MAX_RETRY_AFTER_S);
});

test("parseRetryAfter: delta-seconds and HTTP-dates", () => {
  const now = Date.parse("2026-01-01T00:00:00Z");
  assert.equal(parseRetryAfter("3", now), 3000);
  assert.equal(parseRetryAfter(" 0 ", now), 0);
  assert.equal(parseRetryAfter("Thu, 01 Jan 2026 00:00:05 GMT", now), 5000);
  assert.equal(parseRetryAfter("Wed, 31 Dec 2025 23:59:00 GMT", now), 0);
  assert.equal(parseRetryAfter("soon", now), undefined);
  assert.equal(parseRetryAfter(null, now), undefined);
  assert.equal(parseRetryAfter("-1", now), undefined);
});
