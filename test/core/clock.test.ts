import { test } from "node:test";
import assert from "node:assert/strict";
import { systemClock } from "../../src/index.js";

test("systemClock.now() is Date.now()", () => {
  const before = Date.now();
  const t = systemClock.now();
  assert.ok(t >= before && t <= Date.now());
});

test("systemClock arms delays past Node's 2^31-1 ms limit without firing early or warning", async () => {
  const warnings: Error[] = [];
  const onWarning = (w: Error) => warnings.push(w);
  process.on("warning", onWarning);
  let fired = false;
  const long = systemClock.setTimeout(() => (fired = true), 2 ** 31 + 5);
  try {
    // Node would fire an overflowing timer after 1 ms; give it several times that.
    await new Promise<void>((resolve) => systemClock.setTimeout(resolve, 25));
    await new Promise((r) => setImmediate(r));
    assert.equal(fired, false);
    assert.deepEqual(warnings.filter((w) => w.name === "TimeoutOverflowWarning"), []);
  } finally {
    systemClock.clearTimeout(long);
    process.off("warning", onWarning);
  }
});

test("systemClock.clearTimeout cancels a long timer, and unref() reaches it", () => {
  let fired = false;
  const h = systemClock.setTimeout(() => (fired = true), 2 ** 32) as { unref?: () => unknown };
  assert.equal(typeof h.unref, "function");
  h.unref!();
  systemClock.clearTimeout(h);
  assert.equal(fired, false);
});
