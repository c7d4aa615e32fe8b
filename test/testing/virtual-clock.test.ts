/**
 * Specification of `VirtualClock` and `useClock` (`sluice/testing`): the clock seam of DESIGN.md
 * principle 7, driven by tests.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { after, systemClock } from "../../src/index.js";
import { VirtualClock, useClock } from "../../src/testing/index.js";

function sleep(clock: VirtualClock, ms: number): Promise<void> {
  return new Promise((resolve) => clock.setTimeout(resolve, ms));
}

describe("VirtualClock time", () => {
  it("starts at 0, or at the given start", () => {
    assert.equal(new VirtualClock().now(), 0);
    assert.equal(new VirtualClock(1_700_000_000_000).now(), 1_700_000_000_000);
  });

  it("refuses a start that is not a finite number", () => {
    for (const bad of [NaN, Infinity, "0", null]) assert.throws(() => new VirtualClock(bad as number), TypeError);
  });

  it("moves only when advanced", () => {
    const clock = new VirtualClock(10);
    assert.equal(clock.now(), 10);
    clock.advance(5);
    assert.equal(clock.now(), 15);
    clock.advance(0);
    assert.equal(clock.now(), 15);
  });

  it("refuses to advance by a negative, NaN or infinite amount (time never goes backwards)", async () => {
    const clock = new VirtualClock(10);
    for (const bad of [-1, NaN, Infinity]) {
      assert.throws(() => clock.advance(bad), RangeError);
      await assert.rejects(clock.advanceAsync(bad), RangeError);
    }
    assert.equal(clock.now(), 10);
  });
});

describe("VirtualClock timers", () => {
  it("fires a timer when time reaches its due instant, not before, with now() at that instant", () => {
    const clock = new VirtualClock(0);
    const seen: number[] = [];
    clock.setTimeout(() => seen.push(clock.now()), 10);
    clock.advance(9);
    assert.deepEqual(seen, []);
    clock.advance(5);
    assert.deepEqual(seen, [10], "now() during the callback is the due instant");
    assert.equal(clock.now(), 14, "then time stands at the target");
  });

  it("fires due timers in due order", () => {
    const clock = new VirtualClock(0);
    const order: string[] = [];
    clock.setTimeout(() => order.push("c"), 30);
    clock.setTimeout(() => order.push("a"), 10);
    clock.setTimeout(() => order.push("b"), 20);
    clock.advance(100);
    assert.deepEqual(order, ["a", "b", "c"]);
  });

  it("fires timers due at the same instant in the order they were armed", () => {
    const clock = new VirtualClock(0);
    const order: number[] = [];
    for (let i = 0; i < 20; i++) clock.setTimeout(() => order.push(i), 5);
    clock.advance(5);
    clock.setTimeout(() => order.push(100), 5); // due 10
    clock.advance(0);
    const late = new VirtualClock(0);
    const order2: string[] = [];
    late.setTimeout(() => order2.push("armed first, delay 10"), 10);
    late.advance(5);
    late.setTimeout(() => order2.push("armed second, delay 5"), 5);
    late.advance(5);
    assert.deepEqual(order, Array.from({ length: 20 }, (_, i) => i));
    assert.deepEqual(order2, ["armed first, delay 10", "armed second, delay 5"]);
  });

  it("treats a negative or NaN delay as 0: due now, fired on the next advance", () => {
    const clock = new VirtualClock(0);
    let n = 0;
    clock.setTimeout(() => n++, -5);
    clock.setTimeout(() => n++, NaN);
    assert.equal(n, 0, "never inside setTimeout");
    clock.advance(0);
    assert.equal(n, 2);
  });

  it("refuses a callback that is not a function", () => {
    assert.throws(() => new VirtualClock().setTimeout("x" as never, 1), TypeError);
  });

  it("clearTimeout stops a timer from firing; clearing twice, a fired handle, or junk does nothing", () => {
    const clock = new VirtualClock(0);
    let fired = 0;
    const h = clock.setTimeout(() => fired++, 10);
    const other = clock.setTimeout(() => fired++, 10);
    assert.equal(clock.pending, 2);
    clock.clearTimeout(h);
    clock.clearTimeout(h);
    assert.equal(clock.pending, 1);
    clock.advance(10);
    assert.equal(fired, 1);
    clock.clearTimeout(other);
    clock.clearTimeout(undefined);
    clock.clearTimeout(null);
    clock.clearTimeout(42);
    clock.clearTimeout({});
    assert.equal(clock.pending, 0);
  });

  it("a timer can clear another timer due at the same instant", () => {
    const clock = new VirtualClock(0);
    let second = 0;
    // eslint-disable-next-line prefer-const -- assigned after the first timer is armed
    let h: unknown;
    clock.setTimeout(() => clock.clearTimeout(h), 5);
    h = clock.setTimeout(() => second++, 5);
    clock.advance(5);
    assert.equal(second, 0);
  });

  it("pending counts armed timers not yet fired or cleared", () => {
    const clock = new VirtualClock(0);
    assert.equal(clock.pending, 0);
    clock.setTimeout(() => {}, 1);
    clock.setTimeout(() => {}, 2);
    assert.equal(clock.pending, 2);
    clock.advance(1);
    assert.equal(clock.pending, 1);
    clock.advance(1);
    assert.equal(clock.pending, 0);
  });

  it("nextDue() is the due time of the next armed timer, skipping cleared ones, or undefined", () => {
    const clock = new VirtualClock(100);
    assert.equal(clock.nextDue(), undefined);
    const h = clock.setTimeout(() => {}, 5);
    clock.setTimeout(() => {}, 9);
    assert.equal(clock.nextDue(), 105);
    clock.clearTimeout(h);
    assert.equal(clock.nextDue(), 109);
  });

  it("timers armed by callbacks during advance fire in the same call if due by its target", () => {
    const clock = new VirtualClock(0);
    const seen: number[] = [];
    const chain = (): void => {
      seen.push(clock.now());
      if (seen.length < 5) clock.setTimeout(chain, 10);
    };
    clock.setTimeout(chain, 10);
    clock.advance(35);
    assert.deepEqual(seen, [10, 20, 30]);
    assert.equal(clock.now(), 35);
    clock.advance(100);
    assert.deepEqual(seen, [10, 20, 30, 40, 50]);
  });

  it("runNext() fires the next timer whatever its due time, moving time to it; false when none", () => {
    const clock = new VirtualClock(0);
    let fired = 0;
    clock.setTimeout(() => fired++, 1000);
    assert.equal(clock.runNext(), true);
    assert.equal(fired, 1);
    assert.equal(clock.now(), 1000);
    assert.equal(clock.runNext(), false);
  });

  it("arming and clearing many timers keeps exactly the live ones, in order (seeded)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ delay: fc.integer({ min: 0, max: 50 }), clear: fc.boolean() }), { maxLength: 200 }),
        (specs) => {
          const clock = new VirtualClock(0);
          const fired: number[] = [];
          const handles = specs.map((s, i) => clock.setTimeout(() => fired.push(i), s.delay));
          specs.forEach((s, i) => {
            if (s.clear) clock.clearTimeout(handles[i]);
          });
          const live = specs.map((s, i) => ({ ...s, i })).filter((s) => !s.clear);
          assert.equal(clock.pending, live.length);
          clock.advance(50);
          const expected = live.sort((a, b) => a.delay - b.delay || a.i - b.i).map((s) => s.i);
          assert.deepEqual(fired, expected);
          assert.equal(clock.pending, 0);
        },
      ),
      { seed: 7, numRuns: 200 },
    );
  });
});

describe("VirtualClock advance vs advanceAsync", () => {
  it("advance() does not run promise reactions between timers: async code cannot re-arm within it", async () => {
    const clock = new VirtualClock(0);
    let laps = 0;
    const loop = (async () => {
      for (let i = 0; i < 3; i++) {
        await sleep(clock, 10);
        laps++;
      }
    })();
    clock.advance(30);
    assert.equal(laps, 0, "the reaction to the first timer runs only after advance() returns");
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(laps, 1, "one lap: the timer re-armed after the await was not fired by advance(30)");
    assert.equal(clock.nextDue(), 40, "re-armed from where time stood (30)");
    await clock.advanceAsync(20);
    await loop;
    assert.equal(laps, 3);
  });

  it("advanceAsync() lets async code woken by one timer arm the next within the same call", async () => {
    const clock = new VirtualClock(0);
    const seen: number[] = [];
    const loop = (async () => {
      for (let i = 0; i < 3; i++) {
        await sleep(clock, 10);
        seen.push(clock.now());
      }
    })();
    await clock.advanceAsync(30);
    await loop;
    assert.deepEqual(seen, [10, 20, 30]);
    assert.equal(clock.now(), 30);
  });

  it("advanceAsync() stops at its target: a re-armed timer past it waits", async () => {
    const clock = new VirtualClock(0);
    const seen: number[] = [];
    void (async () => {
      for (let i = 0; i < 5; i++) {
        await sleep(clock, 10);
        seen.push(clock.now());
      }
    })();
    await clock.advanceAsync(25);
    assert.deepEqual(seen, [10, 20]);
    assert.equal(clock.now(), 25);
    assert.equal(clock.pending, 1);
    await clock.advanceAsync(100);
    assert.deepEqual(seen, [10, 20, 30, 40, 50]);
  });
});

describe("useClock", () => {
  it("installs a clock as the default of sluice's timers and returns a function that restores the previous one", () => {
    const clock = new VirtualClock(0);
    const restore = useClock(clock);
    try {
      after(10);
      assert.equal(clock.pending, 1);
    } finally {
      restore();
    }
    after(10, { clock: new VirtualClock() }); // the default is the system clock again: no armed virtual timer
    const ac = new AbortController();
    after(1_000_000, { signal: ac.signal });
    assert.equal(clock.pending, 1, "timers made after restore do not use the virtual clock");
    ac.abort();
  });

  it("nests: each restore puts back the clock that was in force before it", () => {
    const a = new VirtualClock(0);
    const b = new VirtualClock(0);
    const ra = useClock(a);
    const rb = useClock(b);
    after(1);
    assert.equal(b.pending, 1);
    rb();
    after(1);
    assert.equal(a.pending, 1);
    ra();
  });

  it("restore is idempotent", () => {
    const a = new VirtualClock(0);
    const b = new VirtualClock(0);
    const ra = useClock(a);
    const rb = useClock(b);
    rb();
    rb(); // must not restore a second time
    after(1);
    assert.equal(a.pending, 1, "a is still the default after a repeated restore of b");
    ra();
  });

  it("refuses something that is not a Clock with TypeError", () => {
    assert.throws(() => useClock({} as never), TypeError);
    assert.throws(() => useClock(null as never), TypeError);
    assert.throws(() => useClock({ now: () => 0, setTimeout: () => 0 } as never), TypeError);
  });

  it("systemClock reads Date.now() and arms real timers", async () => {
    const t0 = Date.now();
    assert.ok(Math.abs(systemClock.now() - t0) < 1000);
    await new Promise<void>((resolve) => systemClock.setTimeout(resolve, 1));
    let fired = false;
    const h = systemClock.setTimeout(() => {
      fired = true;
    }, 1);
    systemClock.clearTimeout(h);
    await new Promise<void>((resolve) => setTimeout(resolve, 5));
    assert.equal(fired, false);
  });
});
