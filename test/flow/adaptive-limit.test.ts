/**
 * Specification of `AdaptiveLimit` (issue 4, "Adaptive concurrency"): a `ConcurrencyLimit` that
 * learns from the work it admits, with AIMD (client side) and Gradient2 (server side, as Netflix
 * concurrency-limits). Unit rules first, then convergence against a simulated service on a
 * VirtualClock: everything runs in virtual time, with seeded randomness.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { AdaptiveLimit, type AdaptiveLimitOptions } from "../../src/flow/adaptive-limit.js";
import { isConcurrencyLimit, type LimitSample } from "../../src/flow/concurrency-limit.js";
import { VirtualClock } from "../../src/testing/index.js";

/** Per-sample Gradient2 (no windows): each success is one update, so the formula can be checked. */
const PER_SAMPLE = { windowMs: 0, windowSamples: 1 } as const;

function make(options: AdaptiveLimitOptions): { limit: AdaptiveLimit; clock: VirtualClock } {
  const clock = new VirtualClock();
  return { limit: new AdaptiveLimit({ clock, ...options }), clock };
}

/** Starts `n` units that stay in flight (they keep `inflight` high); returns their samples. */
function hold(limit: AdaptiveLimit, n: number): LimitSample[] {
  const samples: LimitSample[] = [];
  for (let i = 0; i < n; i++) samples.push(limit.start());
  return samples;
}

/** One unit that takes `ms` and succeeds. */
function succeed(limit: AdaptiveLimit, clock: VirtualClock, ms: number): void {
  const s = limit.start();
  clock.advance(ms);
  s.success();
}

/** Collects SluiceWarnings emitted while `fn` runs (they are delivered on a later tick). */
async function warningsDuring(fn: () => void): Promise<Error[]> {
  const seen: Error[] = [];
  const onWarning = (w: Error): void => {
    if (w.name === "SluiceWarning") seen.push(w);
  };
  process.on("warning", onWarning);
  try {
    fn();
    for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
  } finally {
    process.off("warning", onWarning);
  }
  return seen;
}

describe("AdaptiveLimit options", () => {
  it("defaults: gradient2, limit 20 within [1, 200], and is a ConcurrencyLimit", () => {
    const limit = new AdaptiveLimit({ clock: new VirtualClock() });
    assert.ok(isConcurrencyLimit(limit));
    assert.equal(limit.limit, 20);
    assert.equal(limit.inflight, 0);
    const s = limit.stats;
    assert.equal(s.algorithm, "gradient2");
    assert.equal(s.minLimit, 1);
    assert.equal(s.maxLimit, 200);
    assert.equal(s.name, undefined);
    assert.equal(new AdaptiveLimit({ algorithm: "aimd", clock: new VirtualClock() }).stats.algorithm, "aimd");
  });

  it("brings the default initial limit and maximum within the given bounds", () => {
    const clock = new VirtualClock();
    assert.equal(new AdaptiveLimit({ clock, maxLimit: 8 }).limit, 8);
    assert.equal(new AdaptiveLimit({ clock, minLimit: 30 }).limit, 30);
    assert.equal(new AdaptiveLimit({ clock, minLimit: 300 }).stats.maxLimit, 300);
    assert.equal(new AdaptiveLimit({ clock, initialLimit: 500 }).stats.maxLimit, 500);
  });

  it("refuses bad options with TypeError / RangeError naming the option", () => {
    const clock = new VirtualClock();
    const cases: [unknown, ErrorConstructor, RegExp][] = [
      [{ algorithm: "vegas" }, TypeError, /options\.algorithm/],
      [{ algorithm: 1 }, TypeError, /options\.algorithm/],
      [{ initialLimit: "5" }, TypeError, /options\.initialLimit/],
      [{ initialLimit: 0 }, RangeError, /options\.initialLimit/],
      [{ initialLimit: 2.5 }, RangeError, /options\.initialLimit/],
      [{ initialLimit: Infinity }, RangeError, /options\.initialLimit/],
      [{ minLimit: 0 }, RangeError, /options\.minLimit/],
      [{ minLimit: NaN }, RangeError, /options\.minLimit/],
      [{ maxLimit: -1 }, RangeError, /options\.maxLimit/],
      [{ maxLimit: Infinity }, RangeError, /options\.maxLimit/],
      [{ minLimit: 10, maxLimit: 5 }, RangeError, /options\.minLimit/],
      [{ initialLimit: 4, minLimit: 5 }, RangeError, /options\.initialLimit/],
      [{ initialLimit: 50, maxLimit: 40 }, RangeError, /options\.initialLimit/],
      [{ clock: {} }, TypeError, /options\.clock/],
      [{ name: 7 }, TypeError, /options\.name/],
      [{ algorithm: "aimd", backoffRatio: "0.9" }, TypeError, /options\.backoffRatio/],
      [{ algorithm: "aimd", backoffRatio: 0 }, RangeError, /options\.backoffRatio/],
      [{ algorithm: "aimd", backoffRatio: 1 }, RangeError, /options\.backoffRatio/],
      [{ algorithm: "aimd", backoffRatio: NaN }, RangeError, /options\.backoffRatio/],
      [{ algorithm: "aimd", latencyTargetMs: 0 }, RangeError, /options\.latencyTargetMs/],
      [{ algorithm: "aimd", latencyTargetMs: -5 }, RangeError, /options\.latencyTargetMs/],
      [{ algorithm: "aimd", latencyTargetMs: NaN }, RangeError, /options\.latencyTargetMs/],
      [{ algorithm: "aimd", latencyTargetMs: "1s" }, TypeError, /options\.latencyTargetMs/],
      [{ tolerance: 0.9 }, RangeError, /options\.tolerance/],
      [{ tolerance: Infinity }, RangeError, /options\.tolerance/],
      [{ tolerance: "1.5" }, TypeError, /options\.tolerance/],
      [{ smoothing: 0 }, RangeError, /options\.smoothing/],
      [{ smoothing: 1.5 }, RangeError, /options\.smoothing/],
      [{ longWindow: 0 }, RangeError, /options\.longWindow/],
      [{ longWindow: 1.5 }, RangeError, /options\.longWindow/],
      [{ queueSize: -1 }, RangeError, /options\.queueSize/],
      [{ queueSize: NaN }, RangeError, /options\.queueSize/],
      [{ queueSize: Infinity }, RangeError, /options\.queueSize/],
      [{ queueSize: "4" }, TypeError, /options\.queueSize/],
      [{ windowMs: -1 }, RangeError, /options\.windowMs/],
      [{ windowMs: Infinity }, RangeError, /options\.windowMs/],
      [{ windowSamples: 0 }, RangeError, /options\.windowSamples/],
      // An option of the other algorithm is a mistake, not something to ignore.
      [{ algorithm: "gradient2", backoffRatio: 0.5 }, TypeError, /options\.backoffRatio/],
      [{ latencyTargetMs: 100 }, TypeError, /options\.latencyTargetMs/],
      [{ algorithm: "aimd", tolerance: 2 }, TypeError, /options\.tolerance/],
      [{ algorithm: "aimd", queueSize: 2 }, TypeError, /options\.queueSize/],
    ];
    for (const [options, type, message] of cases) {
      assert.throws(() => new AdaptiveLimit({ clock, ...(options as object) } as AdaptiveLimitOptions), (e: unknown) => {
        assert.ok(e instanceof type, `${JSON.stringify(options)}: ${String(e)}`);
        assert.match((e as Error).message, message);
        return true;
      });
    }
    assert.throws(() => new AdaptiveLimit(5 as never), TypeError);
    assert.throws(() => new AdaptiveLimit(null as never), TypeError);
    // Edges that are allowed.
    new AdaptiveLimit({ clock, algorithm: "aimd", latencyTargetMs: Infinity, backoffRatio: 0.5 });
    new AdaptiveLimit({ clock, smoothing: 1, tolerance: 1, queueSize: 0, longWindow: 1, windowMs: 0, windowSamples: 1 });
    new AdaptiveLimit({ clock, minLimit: 7, initialLimit: 7, maxLimit: 7 });
  });

  it("subscribe refuses a non-function listener with TypeError", () => {
    const { limit } = make({});
    assert.throws(() => limit.subscribe("x" as never), TypeError);
  });
});

describe("samples", () => {
  it("start() counts a unit in flight; exactly one end counts, later calls do nothing", () => {
    const { limit, clock } = make({ algorithm: "aimd", initialLimit: 10 });
    const bg = hold(limit, 4);
    const s = limit.start();
    assert.equal(limit.inflight, 5);
    clock.advance(5);
    s.success();
    assert.equal(limit.limit, 11, "5 in flight at its start is half of 10: +1");
    s.success();
    s.dropped();
    s.ignore();
    assert.equal(limit.limit, 11, "later calls change nothing");
    assert.equal(limit.inflight, 4);
    const st = limit.stats;
    assert.deepEqual([st.started, st.successes, st.drops, st.ignored, st.samples], [5, 1, 0, 0, 1]);
    assert.equal(st.lastRttMs, 5);
    const d = limit.start();
    d.dropped();
    d.success();
    assert.equal(limit.limit, 9, "the drop counted (11 * 0.9 floored), the success after it did not");
    for (const b of bg) b.ignore();
    assert.equal(limit.inflight, 0);
    assert.deepEqual([limit.stats.successes, limit.stats.drops, limit.stats.ignored], [1, 1, 4]);
  });

  it("ignore() frees the slot and never moves the limit", () => {
    for (const algorithm of ["aimd", "gradient2"] as const) {
      const { limit, clock } = make({ algorithm, ...(algorithm === "gradient2" ? PER_SAMPLE : {}) });
      const bg = hold(limit, 30);
      let changes = 0;
      limit.subscribe(() => changes++);
      for (let i = 0; i < 20; i++) {
        const s = limit.start();
        clock.advance(1000);
        s.ignore();
      }
      assert.equal(limit.limit, 20, algorithm);
      assert.equal(changes, 0);
      assert.equal(limit.stats.ignored, 20);
      assert.equal(limit.stats.samples, 0);
      for (const b of bg) b.ignore();
    }
  });

  it("a sample ended out of order or after its limit moved on still counts once", () => {
    const { limit, clock } = make({ algorithm: "aimd", initialLimit: 4, minLimit: 1 });
    const a = limit.start();
    const b = limit.start();
    clock.advance(3);
    b.success();
    assert.equal(limit.limit, 5, "b started with 2 of 4 in flight");
    a.success();
    assert.equal(limit.limit, 5, "a started with 1 in flight (< 5 / 2): no increase");
    assert.equal(limit.inflight, 0);
  });

  it("measures the RTT with the real clock when none is injected (sub-millisecond, never negative)", () => {
    const limit = new AdaptiveLimit({ algorithm: "aimd" });
    const s = limit.start();
    s.success();
    const rtt = limit.stats.lastRttMs;
    assert.equal(typeof rtt, "number");
    assert.ok(rtt! >= 0 && rtt! < 1000, String(rtt));
  });
});

describe("AIMD", () => {
  it("adds 1 per success when in flight at the unit's start (itself included) reaches half the limit", () => {
    const { limit, clock } = make({ algorithm: "aimd", initialLimit: 10 });
    const bg = hold(limit, 3);
    succeed(limit, clock, 1); // 4 in flight at start: 8 < 10
    assert.equal(limit.limit, 10);
    bg.push(limit.start()); // now 4 held
    succeed(limit, clock, 1); // 5 in flight at start: 10 >= 10
    assert.equal(limit.limit, 11);
    bg.push(limit.start()); // 5 held: 6 at start, 12 >= 11
    succeed(limit, clock, 1);
    assert.equal(limit.limit, 12);
    assert.equal(limit.stats.increases, 2);
    for (const b of bg) b.ignore();
  });

  it("does not grow while app-limited (fewer than half the limit in flight)", () => {
    const { limit, clock } = make({ algorithm: "aimd", initialLimit: 10 });
    for (let i = 0; i < 50; i++) succeed(limit, clock, 1);
    assert.equal(limit.limit, 10);
    assert.equal(limit.stats.successes, 50);
  });

  it("multiplies by backoffRatio (default 0.9, floored) on each drop, never below minLimit", () => {
    const { limit } = make({ algorithm: "aimd", initialLimit: 20, minLimit: 12 });
    const seen: number[] = [];
    limit.subscribe((n) => seen.push(n));
    for (let i = 0; i < 4; i++) limit.start().dropped();
    assert.deepEqual(seen, [18, 16, 14, 12]);
    limit.start().dropped();
    assert.equal(limit.limit, 12);
    assert.equal(limit.stats.decreases, 4, "a drop at minLimit is not a change");
    assert.equal(limit.stats.drops, 5);

    const half = make({ algorithm: "aimd", initialLimit: 20, backoffRatio: 0.5 }).limit;
    half.start().dropped();
    assert.equal(half.limit, 10);
    half.start().dropped();
    half.start().dropped();
    half.start().dropped();
    half.start().dropped();
    assert.equal(half.limit, 1, "20 -> 10 -> 5 -> 2 -> 1 -> 1 (default minLimit 1)");
  });

  it("backs off once per overload: drops of units already in flight at the last back-off change nothing", () => {
    const { limit } = make({ algorithm: "aimd", initialLimit: 20 });
    const caught = hold(limit, 10); // all in flight when the overload hits
    for (const s of caught) s.dropped();
    assert.equal(limit.limit, 18, "ten drops of one overload: one back-off");
    assert.equal(limit.stats.drops, 10);
    limit.start().dropped(); // started after the back-off: a new signal
    assert.equal(limit.limit, 16);
  });

  it("never grows past maxLimit", () => {
    const { limit, clock } = make({ algorithm: "aimd", initialLimit: 4, maxLimit: 6 });
    const bg = hold(limit, 5);
    for (let i = 0; i < 10; i++) succeed(limit, clock, 1);
    assert.equal(limit.limit, 6);
    assert.equal(limit.stats.increases, 2);
    for (const b of bg) b.ignore();
  });

  it("a success slower than latencyTargetMs backs off as a drop (counted as slow); one at the target grows", () => {
    const { limit, clock } = make({ algorithm: "aimd", initialLimit: 20, latencyTargetMs: 100 });
    const bg = hold(limit, 15);
    succeed(limit, clock, 100);
    assert.equal(limit.limit, 21, "at the target: still a good sample");
    succeed(limit, clock, 101);
    assert.equal(limit.limit, 18, "over the target: 21 * 0.9 floored");
    assert.equal(limit.stats.slow, 1);
    assert.equal(limit.stats.successes, 2, "it still counts as a success");
    assert.equal(limit.stats.drops, 0);
    for (const b of bg) b.ignore();
  });

  it("has no latency target by default (only drops back off)", () => {
    const { limit, clock } = make({ algorithm: "aimd", initialLimit: 20 });
    const bg = hold(limit, 15);
    succeed(limit, clock, 3_600_000);
    assert.equal(limit.limit, 21);
    assert.equal(limit.stats.slow, 0);
    for (const b of bg) b.ignore();
  });
});

describe("Gradient2", () => {
  it("grows by queueSize * smoothing per update while latency is flat and the limit is used", () => {
    const { limit, clock } = make({ ...PER_SAMPLE, initialLimit: 20 });
    const bg = hold(limit, 15);
    // estimate = 20 * 0.8 + (20 * 1 + 4) * 0.2 = 20.8, then +0.8 per flat sample
    succeed(limit, clock, 10);
    assert.equal(limit.limit, 20);
    succeed(limit, clock, 10);
    assert.equal(limit.limit, 21);
    for (let i = 0; i < 3; i++) succeed(limit, clock, 10);
    assert.equal(limit.limit, 24);
    assert.equal(limit.stats.shortRttMs, 10);
    assert.equal(limit.stats.longRttMs, 10);
    for (const b of bg) b.ignore();
  });

  it("shrinks by the gradient tolerance * long / short, kept within [0.5, 1], plus queueSize, smoothed", () => {
    const { limit, clock } = make({ ...PER_SAMPLE, initialLimit: 40, maxLimit: 40 });
    const bg = hold(limit, 30);
    for (let i = 0; i < 10; i++) succeed(limit, clock, 10); // warm-up: long = 10; stays at max 40
    assert.equal(limit.limit, 40);
    // short 20: long = 10 + 10 * 2/601; gradient = 1.5 * long / 20 ~ 0.75
    succeed(limit, clock, 20);
    const long = 10 + (10 * 2) / 601;
    const g = (1.5 * long) / 20;
    let est = 40 * 0.8 + (40 * g + 4) * 0.2;
    assert.equal(limit.limit, Math.floor(est));
    assert.ok(Math.abs(limit.stats.longRttMs! - long) < 1e-9);
    // a huge short RTT: the gradient is clamped at 0.5, so est -> 0.9 * est + 0.8
    succeed(limit, clock, 10_000);
    est = est * 0.8 + (est * 0.5 + 4) * 0.2;
    assert.equal(limit.limit, Math.floor(est));
    assert.equal(limit.stats.decreases, 2);
    for (const b of bg) b.ignore();
  });

  it("tolerates latency up to tolerance * long: no shrink at 1.5x with the default", () => {
    const { limit, clock } = make({ ...PER_SAMPLE, initialLimit: 30, maxLimit: 30 });
    const bg = hold(limit, 20);
    for (let i = 0; i < 10; i++) succeed(limit, clock, 10);
    for (let i = 0; i < 5; i++) succeed(limit, clock, 14.9);
    assert.equal(limit.limit, 30);
    assert.equal(limit.stats.decreases, 0);
    for (const b of bg) b.ignore();
  });

  it("does not grow while app-limited (most in flight < half the limit), but may shrink", () => {
    const { limit, clock } = make({ ...PER_SAMPLE, initialLimit: 20 });
    for (let i = 0; i < 30; i++) succeed(limit, clock, 10);
    assert.equal(limit.limit, 20, "one in flight at a time: no growth");
    assert.equal(limit.stats.longRttMs, 10, "the RTTs are still learned");
    succeed(limit, clock, 1000);
    assert.ok(limit.limit < 20, `a latency spike still shrinks it: ${limit.limit}`);
  });

  it("stays within [minLimit, maxLimit]", () => {
    const { limit, clock } = make({ ...PER_SAMPLE, initialLimit: 20, minLimit: 15, maxLimit: 23 });
    const bg = hold(limit, 15);
    for (let i = 0; i < 50; i++) succeed(limit, clock, 10);
    assert.equal(limit.limit, 23);
    for (let i = 0; i < 50; i++) succeed(limit, clock, 10_000);
    assert.equal(limit.limit, 15);
    for (let i = 0; i < 5; i++) limit.start().dropped();
    assert.equal(limit.limit, 15);
    for (const b of bg) b.ignore();
  });

  it("lets the long RTT drift down 5% per update when it exceeds twice the short one (recovery)", () => {
    const { limit, clock } = make({ ...PER_SAMPLE });
    for (let i = 0; i < 10; i++) succeed(limit, clock, 100);
    assert.equal(limit.stats.longRttMs, 100);
    succeed(limit, clock, 60); // 100 - 40 * 2/601: not twice 60, plain average
    const plain = 100 - (40 * 2) / 601;
    assert.ok(Math.abs(limit.stats.longRttMs! - plain) < 1e-9);
    succeed(limit, clock, 10); // average, then * 0.95
    const decayed = (plain + (10 - plain) * (2 / 601)) * 0.95;
    assert.ok(Math.abs(limit.stats.longRttMs! - decayed) < 1e-9, String(limit.stats.longRttMs));
  });

  it("a drop shrinks the estimate at once by smoothing / 2 (10%), once per overload, RTTs untouched", () => {
    const { limit } = make({ initialLimit: 20 });
    const caught = hold(limit, 5);
    for (const s of caught) s.dropped();
    assert.equal(limit.limit, 18, "five drops of one overload: 20 * 0.9 once");
    limit.start().dropped();
    assert.equal(limit.limit, 16, "18 * 0.9 = 16.2");
    assert.equal(limit.stats.longRttMs, undefined);
    assert.equal(limit.stats.samples, 6);
  });

  it("passes the current limit to a queueSize function and grows by what it returns", () => {
    const args: number[] = [];
    const { limit, clock } = make({ ...PER_SAMPLE, initialLimit: 10, queueSize: (l) => (args.push(l), 10) });
    const bg = hold(limit, 10);
    succeed(limit, clock, 5); // 10 * 0.8 + (10 + 10) * 0.2 = 12
    succeed(limit, clock, 5); // 12 * 0.8 + (12 + 10) * 0.2 = 14
    assert.deepEqual(args, [10, 12]);
    assert.equal(limit.limit, 14);
    for (const b of bg) b.ignore();
  });

  it("a queueSize function that throws or returns garbage changes nothing and is reported once", async () => {
    for (const bad of [() => { throw new Error("boom"); }, () => NaN, () => -1]) {
      const { limit, clock } = make({ ...PER_SAMPLE, initialLimit: 10, queueSize: bad, name: "api" });
      const bg = hold(limit, 10);
      const warnings = await warningsDuring(() => {
        succeed(limit, clock, 5);
        succeed(limit, clock, 5);
      });
      assert.equal(limit.limit, 10);
      assert.equal(limit.stats.successes, 2, "the samples still count");
      assert.equal(limit.inflight, 10);
      assert.equal(warnings.length, 1);
      assert.equal((warnings[0] as Error & { code?: string }).code, "SLUICE_CALLBACK_ERROR");
      assert.match(warnings[0]!.message, /queueSize.*"api"/);
      for (const b of bg) b.ignore();
    }
  });

  it("by default updates once per window of at least 1 s and 10 successes, on the window's mean RTT", () => {
    const { limit, clock } = make({ initialLimit: 20 });
    const bg = hold(limit, 15);
    for (let i = 0; i < 20; i++) succeed(limit, clock, 10); // 20 successes, but only 200 ms
    assert.equal(limit.stats.shortRttMs, undefined, "the window is still open");
    assert.equal(limit.limit, 20);
    clock.advance(790);
    succeed(limit, clock, 30); // ends 1000 ms after the window opened: it closes
    assert.equal(limit.stats.shortRttMs, (20 * 10 + 30) / 21);
    assert.equal(limit.stats.longRttMs, (20 * 10 + 30) / 21);
    for (let i = 0; i < 9; i++) {
      clock.advance(490);
      succeed(limit, clock, 10);
    }
    assert.equal(limit.stats.shortRttMs, (20 * 10 + 30) / 21, "9 successes over 4 s are not a window");
    succeed(limit, clock, 10);
    assert.equal(limit.stats.shortRttMs, 10);
    for (const b of bg) b.ignore();
  });
});

describe("subscribe", () => {
  it("calls listeners after each change with the new limit, in order; unsubscribe stops them", () => {
    const { limit } = make({ algorithm: "aimd", initialLimit: 20 });
    const a: number[] = [];
    const b: number[] = [];
    const order: string[] = [];
    const offA = limit.subscribe((n) => {
      assert.equal(limit.limit, n, "the state is consistent when a listener runs");
      a.push(n);
      order.push("a");
    });
    limit.subscribe((n) => {
      b.push(n);
      order.push("b");
    });
    limit.start().dropped();
    limit.start().ignore();
    assert.deepEqual(a, [18]);
    assert.deepEqual(order, ["a", "b"]);
    offA();
    offA();
    limit.start().dropped();
    assert.deepEqual(a, [18]);
    assert.deepEqual(b, [18, 16]);
  });

  it("the same function subscribed twice is called twice", () => {
    const { limit } = make({ algorithm: "aimd" });
    let calls = 0;
    const fn = (): void => {
      calls++;
    };
    const off1 = limit.subscribe(fn);
    limit.subscribe(fn);
    limit.start().dropped();
    assert.equal(calls, 2);
    off1();
    limit.start().dropped();
    assert.equal(calls, 3);
  });

  it("a listener that throws does not break the limit or the other listeners, and is reported once", async () => {
    const { limit } = make({ algorithm: "aimd", initialLimit: 20, name: "db" });
    const seen: number[] = [];
    limit.subscribe(() => {
      throw new Error("listener bug");
    });
    limit.subscribe((n) => seen.push(n));
    const warnings = await warningsDuring(() => {
      limit.start().dropped();
      limit.start().dropped();
    });
    assert.deepEqual(seen, [18, 16]);
    assert.equal(limit.limit, 16);
    assert.equal(limit.inflight, 0);
    assert.equal(warnings.length, 1);
    assert.equal((warnings[0] as Error & { code?: string }).code, "SLUICE_CALLBACK_ERROR");
    assert.match(warnings[0]!.message, /listener bug/);
  });

  it("a change made by a listener is not nested: the round finishes, then all hear the newest limit", () => {
    const { limit } = make({ algorithm: "aimd", initialLimit: 20 });
    const log: string[] = [];
    let depth = 0;
    let once = true;
    limit.subscribe((n) => {
      depth++;
      log.push(`a${n}@${depth}`);
      if (once) {
        once = false;
        limit.start().dropped(); // 18 -> 16, while listeners are running
      }
      depth--;
    });
    limit.subscribe((n) => log.push(`b${n}`));
    limit.start().dropped();
    assert.deepEqual(log, ["a18@1", "b18", "a16@1", "b16"]);
  });

  it("a listener subscribed during a round is not called for that change", () => {
    const { limit } = make({ algorithm: "aimd", initialLimit: 20 });
    const late: number[] = [];
    let added = false;
    limit.subscribe(() => {
      if (!added) {
        added = true;
        limit.subscribe((n) => late.push(n));
      }
    });
    limit.start().dropped();
    assert.deepEqual(late, []);
    limit.start().dropped();
    assert.deepEqual(late, [16]);
  });
});

describe("invariants under random use (seeded)", () => {
  it("limit in bounds and integral; started = successes + drops + ignored + inflight; one notification per change", () => {
    type Op = { kind: "start" } | { kind: "end"; pick: number; how: 0 | 1 | 2 } | { kind: "wait"; ms: number };
    const op: fc.Arbitrary<Op> = fc.oneof(
      fc.constant<Op>({ kind: "start" }),
      fc.record({ kind: fc.constant("end" as const), pick: fc.nat(), how: fc.constantFrom<0 | 1 | 2>(0, 0, 0, 1, 2) }),
      fc.record({ kind: fc.constant("wait" as const), ms: fc.integer({ min: 0, max: 400 }) }),
    );
    const config = fc.oneof(
      fc.record({
        algorithm: fc.constant("aimd" as const),
        backoffRatio: fc.constantFrom(0.5, 0.9),
        latencyTargetMs: fc.constantFrom(50, 200, Infinity),
      }),
      fc.record({
        algorithm: fc.constant("gradient2" as const),
        windowMs: fc.constantFrom(0, 100, 1000),
        windowSamples: fc.constantFrom(1, 3, 10),
        longWindow: fc.constantFrom(1, 20, 600),
        smoothing: fc.constantFrom(0.2, 1),
      }),
    );
    fc.assert(
      fc.property(config, fc.integer({ min: 1, max: 5 }), fc.integer({ min: 0, max: 20 }), fc.array(op, { maxLength: 300 }),
        (cfg, min, span, ops) => {
          const clock = new VirtualClock();
          const max = min + span;
          const limit = new AdaptiveLimit({ ...cfg, clock, minLimit: min, maxLimit: max, initialLimit: min + (span >> 1) });
          let notified = 0;
          let last = limit.limit;
          limit.subscribe((n) => {
            notified++;
            assert.notEqual(n, last, "notified without a change");
            last = n;
          });
          const open: LimitSample[] = []; // bounded by ops.length
          for (const o of ops) {
            const before = limit.limit;
            if (o.kind === "start") {
              open.push(limit.start());
              assert.equal(limit.limit, before, "start() never moves the limit");
            } else if (o.kind === "wait") {
              clock.advance(o.ms);
            } else if (open.length > 0) {
              const [s] = open.splice(o.pick % open.length, 1);
              if (o.how === 0) s!.success();
              else if (o.how === 1) s!.dropped();
              else {
                s!.ignore();
                assert.equal(limit.limit, before, "ignore() never moves the limit");
              }
            }
            const st = limit.stats;
            assert.ok(Number.isSafeInteger(st.limit) && st.limit >= min && st.limit <= max, `limit ${st.limit}`);
            assert.equal(st.inflight, open.length);
            assert.equal(st.started, st.successes + st.drops + st.ignored + st.inflight);
            assert.equal(st.samples, st.successes + st.drops);
            assert.equal(notified, st.increases + st.decreases);
            assert.equal(last, st.limit);
          }
        }),
      { seed: 20240604, numRuns: 150 },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Convergence against a simulated service.

/** Deterministic PRNG (mulberry32). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A service with `knee` workers, simulated in virtual time. Each call needs about `baseMs` of
 * work (uniform within ±20%, seeded). Up to `knee` calls run at full speed, so latency is flat;
 * past the knee they share the workers and contention costs extra (`thrash` per unit of
 * relative overload), so latency rises steeply: x2.2 at 1.2x the knee, x4.5 at 1.5x. Calls past
 * `capacity` (if set) are refused at once, as an overloaded server's admission control would.
 * Holds at most one job per call in flight and one timer.
 */
class SimulatedService {
  knee: number;
  capacity = Infinity;
  readonly #clock: VirtualClock;
  readonly #baseMs: number;
  readonly #thrash: number;
  readonly #rand: () => number;
  readonly #jobs = new Set<{ left: number; done: (ok: boolean) => void }>();
  #last = 0;
  #timer: unknown;

  constructor(clock: VirtualClock, knee: number, baseMs: number, thrash: number, seed: number) {
    this.#clock = clock;
    this.knee = knee;
    this.#baseMs = baseMs;
    this.#thrash = thrash;
    this.#rand = prng(seed);
  }

  call(done: (ok: boolean) => void): void {
    this.#progress();
    if (this.#jobs.size >= this.capacity) {
      this.#clock.setTimeout(() => done(false), 1);
      return;
    }
    this.#jobs.add({ left: this.#baseMs * (0.8 + 0.4 * this.#rand()), done });
    this.#schedule();
  }

  #speed(n: number): number {
    if (n <= this.knee) return 1;
    return this.knee / n / (1 + (this.#thrash * (n - this.knee)) / this.knee);
  }

  #progress(): void {
    const now = this.#clock.now();
    const work = (now - this.#last) * this.#speed(this.#jobs.size);
    this.#last = now;
    if (work > 0) for (const j of this.#jobs) j.left -= work;
  }

  #schedule(): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#jobs.size === 0) return;
    let next = Infinity;
    for (const j of this.#jobs) next = Math.min(next, j.left);
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = undefined;
      this.#progress();
      const finished = [...this.#jobs].filter((j) => j.left <= 1e-6);
      for (const j of finished) this.#jobs.delete(j);
      this.#schedule();
      for (const j of finished) j.done(true);
    }, Math.max(0, next / this.#speed(this.#jobs.size)));
  }
}

/**
 * A closed-loop load generator, as a saturated Pool would be: keeps `limit.limit` calls in
 * flight, topping up when a call ends and when the limit moves (through `subscribe`).
 */
function saturate(limit: AdaptiveLimit, service: SimulatedService): void {
  const pump = (): void => {
    while (limit.inflight < limit.limit) {
      const sample = limit.start();
      service.call((ok) => {
        if (ok) sample.success();
        else sample.dropped();
        pump();
      });
    }
  };
  limit.subscribe(pump);
  pump();
}

interface Observed {
  min: number;
  max: number;
  mean: number;
}

/** Runs for `ms` of virtual time; observes the limit every 100 ms over the second half. */
function observe(clock: VirtualClock, limit: AdaptiveLimit, ms: number): Observed {
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  let n = 0;
  for (let t = 0; t < ms; t += 100) {
    clock.advance(100);
    if (t < ms / 2) continue;
    const l = limit.limit;
    min = Math.min(min, l);
    max = Math.max(max, l);
    sum += l;
    n++;
  }
  return { min, max, mean: sum / n };
}

function show(o: Observed): string {
  return `${o.min}..${o.max} (mean ${o.mean.toFixed(1)})`;
}

const KNEE = 30;
const BASE_MS = 50;

/**
 * Healthy (knee 30) for 120 s, degraded (knee 15: half the workers lost) for 60 s, healthy
 * again for 120 s. Asserts the limit settles near the knee (every observation over the second
 * half of a healthy phase within knee x [0.5, 1.5]), falls when the service degrades (below the
 * old knee, mean within the new knee x [0.5, 1.5]), and rises again when it recovers.
 */
function assertConverges(
  t: { diagnostic(msg: string): void },
  label: string,
  limit: AdaptiveLimit,
  clock: VirtualClock,
  service: SimulatedService,
  degrade: () => void,
  restore: () => void,
): void {
  saturate(limit, service);
  const healthy = observe(clock, limit, 120_000);
  degrade();
  const degraded = observe(clock, limit, 60_000);
  restore();
  const recovered = observe(clock, limit, 120_000);
  t.diagnostic(`${label}: healthy ${show(healthy)}, degraded ${show(degraded)}, recovered ${show(recovered)}, ` +
    `${limit.stats.samples} samples`);
  assert.ok(healthy.min >= KNEE * 0.5 && healthy.max <= KNEE * 1.5, `healthy: ${show(healthy)}`);
  assert.ok(degraded.max < KNEE, `degraded: ${show(degraded)} should fall below the old knee`);
  assert.ok(degraded.mean >= (KNEE / 2) * 0.5 && degraded.mean <= (KNEE / 2) * 1.5, `degraded: ${show(degraded)}`);
  assert.ok(recovered.min > degraded.mean, `recovered: ${show(recovered)} should rise above ${show(degraded)}`);
  assert.ok(recovered.min >= KNEE * 0.5 && recovered.max <= KNEE * 1.5, `recovered: ${show(recovered)}`);
}

describe("convergence against a simulated service (virtual time, seeded)", () => {
  it("Gradient2 (all defaults) settles near the knee, falls when the service degrades, recovers", (t) => {
    const clock = new VirtualClock();
    const limit = new AdaptiveLimit({ clock });
    const service = new SimulatedService(clock, KNEE, BASE_MS, 4, 1);
    assertConverges(t, "gradient2", limit, clock, service, () => (service.knee = KNEE / 2), () => (service.knee = KNEE));
    assert.equal(limit.stats.drops, 0);
  });

  it("AIMD with a latency target (1.5x the no-load latency) settles near the knee and recovers", (t) => {
    const clock = new VirtualClock();
    const limit = new AdaptiveLimit({ algorithm: "aimd", latencyTargetMs: BASE_MS * 1.5, clock });
    const service = new SimulatedService(clock, KNEE, BASE_MS, 4, 2);
    assertConverges(t, "aimd/latency", limit, clock, service, () => (service.knee = KNEE / 2), () => (service.knee = KNEE));
    assert.ok(limit.stats.slow > 0);
  });

  it("AIMD on drops alone (the server refuses past its capacity) settles near it and recovers", (t) => {
    const clock = new VirtualClock();
    const limit = new AdaptiveLimit({ algorithm: "aimd", clock });
    const service = new SimulatedService(clock, Infinity, BASE_MS, 0, 3);
    service.capacity = KNEE;
    assertConverges(t, "aimd/drops", limit, clock, service, () => (service.capacity = KNEE / 2), () => (service.capacity = KNEE));
    assert.ok(limit.stats.drops > 0);
    assert.equal(limit.stats.slow, 0);
  });

  it("AIMD started far above the knee comes down to it", (t) => {
    const clock = new VirtualClock();
    const limit = new AdaptiveLimit({ algorithm: "aimd", initialLimit: 150, latencyTargetMs: BASE_MS * 1.5, clock });
    const service = new SimulatedService(clock, KNEE, BASE_MS, 4, 4);
    saturate(limit, service);
    const o = observe(clock, limit, 60_000);
    t.diagnostic(`aimd from 150: ${show(o)}`);
    assert.ok(o.min >= KNEE * 0.5 && o.max <= KNEE * 1.5, show(o));
  });

  it("does not grow while the load stays below half the limit (app-limited), then finds the knee", (t) => {
    for (const options of [{}, { algorithm: "aimd", latencyTargetMs: BASE_MS * 1.5 }] as AdaptiveLimitOptions[]) {
      const clock = new VirtualClock();
      const limit = new AdaptiveLimit({ ...options, clock });
      const service = new SimulatedService(clock, KNEE, BASE_MS, 4, 5);
      let offered = 5;
      const pump = (): void => {
        while (limit.inflight < Math.min(offered, limit.limit)) {
          const sample = limit.start();
          service.call(() => {
            sample.success();
            pump();
          });
        }
      };
      limit.subscribe(pump);
      pump();
      const light = observe(clock, limit, 60_000);
      assert.equal(light.max, 20, `${limit.stats.algorithm} light load: ${show(light)}`);
      offered = Infinity;
      pump();
      const heavy = observe(clock, limit, 120_000);
      t.diagnostic(`${limit.stats.algorithm}: light load ${show(light)}, then saturated ${show(heavy)}`);
      assert.ok(heavy.min >= KNEE * 0.5 && heavy.max <= KNEE * 1.5, show(heavy));
    }
  });
});

it("subscribe: more than 100 listeners emit one SLUICE_LIMIT_LISTENERS warning (a subscribe-per-call leak)", async () => {
  const warnings: Error[] = [];
  const onWarning = (w: Error) => warnings.push(w);
  process.on("warning", onWarning);
  const limit = new AdaptiveLimit({ algorithm: "aimd", name: "upstream" });
  const offs: (() => void)[] = [];
  try {
    for (let i = 0; i < 102; i++) offs.push(limit.subscribe(() => {}));
    await new Promise((r) => setImmediate(r));
    const ours = warnings.filter((w) => (w as { code?: string }).code === "SLUICE_LIMIT_LISTENERS");
    assert.equal(ours.length, 1);
    assert.match(ours[0]!.message, /upstream/);
  } finally {
    for (const off of offs) off();
    process.off("warning", onWarning);
  }
});
