/**
 * The sampling of a stage's waits (`WaitSampler`, internal): with the real clock a stage that
 * waits often reads the clock for about one wait per millisecond, and the weights of the timed
 * waits add up to the number of waits, so the figures extrapolated from them are unbiased.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { WaitSampler } from "../../src/pipeline/stage.js";

function drive(sampler: WaitSampler, waits: number, clock: { t: number }, stepMs: number): { weights: number; reads: number } {
  let weights = 0;
  let reads = 0;
  for (let i = 0; i < waits; i++) {
    const w = sampler.take();
    if (w > 0) reads++;
    weights += w;
    clock.t += stepMs;
  }
  return { weights, reads };
}

test("exact (an injected clock): every wait is timed with weight 1", () => {
  const clock = { t: 0 };
  const s = new WaitSampler(() => clock.t, true);
  assert.deepEqual(drive(s, 1000, clock, 0.001), { weights: 1000, reads: 1000 });
});

test("sparse waits (more than 4 ms apart) are all timed", () => {
  const clock = { t: 0 };
  const s = new WaitSampler(() => clock.t, false);
  assert.deepEqual(drive(s, 500, clock, 5), { weights: 500, reads: 500 });
});

test("frequent waits: few clock reads, and the weights add up to the waits", () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 200 }), fc.integer({ min: 50_000, max: 300_000 }), (stepUs, waits) => {
      const clock = { t: 0 };
      const s = new WaitSampler(() => clock.t, false);
      const { weights, reads } = drive(s, waits, clock, stepUs / 1000);
      const spanMs = (waits * stepUs) / 1000;
      // At most about one timed wait per millisecond, or one in 64 waits (the stride stops at 64).
      assert.ok(reads <= Math.max(2 * spanMs, waits / 32) + 20, `${reads} clock reads over ${spanMs} ms and ${waits} waits`);
      assert.ok(weights >= waits && weights - waits < 128, `weights ${weights} for ${waits} waits`); // exact but for the last draw
    }),
    { numRuns: 25 },
  );
});

test("after a dense stretch, waits that became rare are all timed again within 128 waits", () => {
  const clock = { t: 0 };
  const s = new WaitSampler(() => clock.t, false);
  drive(s, 100_000, clock, 0.001); // dense: the stride grows
  // Sparse from here: the next timed wait comes within 2 * 64 waits, and every one after it is timed.
  drive(s, 128, clock, 20);
  assert.deepEqual(drive(s, 50, clock, 20), { weights: 50, reads: 50 });
});
