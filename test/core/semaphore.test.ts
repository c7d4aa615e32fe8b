/**
 * Specification of `Semaphore`: weighted, strictly FIFO, like golang.org/x/sync/semaphore
 * (DESIGN.md "Core API contract" and "Settled details"; issue 3 §2).
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { BusyError, Semaphore } from "../../src/index.js";
import { capture, collectWarnings, peek, stillPending, turns, withCode } from "./fixtures/probe.js";

describe("Semaphore construction", () => {
  it("has size units, all available, nobody waiting", () => {
    const s = new Semaphore(3);
    assert.equal(s.size, 3);
    assert.equal(s.available, 3);
    assert.equal(s.waiting, 0);
  });

  for (const bad of [0, -1, 1.5, NaN, Infinity, 2 ** 53]) {
    it(`refuses size ${String(bad)} with RangeError`, () => {
      assert.throws(() => new Semaphore(bad), (e: unknown) => e instanceof RangeError && /size/.test(e.message));
    });
  }

  for (const [label, bad] of [["\"3\"", "3"], ["undefined", undefined], ["null", null]] as const) {
    it(`refuses size ${label} with TypeError`, () => {
      assert.throws(() => new Semaphore(bad as unknown as number), TypeError);
    });
  }

  it("refuses bad options: not an object, name not a string, maxWaiters/warnWaiters not a non-negative integer", () => {
    assert.throws(() => new Semaphore(1, 5 as never), TypeError);
    assert.throws(() => new Semaphore(1, { name: 1 as unknown as string }), TypeError);
    assert.throws(() => new Semaphore(1, { maxWaiters: -1 }), RangeError);
    assert.throws(() => new Semaphore(1, { maxWaiters: 1.5 }), RangeError);
    assert.throws(() => new Semaphore(1, { warnWaiters: NaN }), RangeError);
  });
});

describe("Semaphore acquire / tryAcquire / release", () => {
  it("acquire() takes 1 unit by default and resolves inside the call when units are free", async () => {
    const s = new Semaphore(2);
    const p = s.acquire();
    assert.equal(s.available, 1);
    assert.deepEqual(await peek(p), { status: "fulfilled", value: undefined });
    await s.acquire(1);
    assert.equal(s.available, 0);
  });

  it("acquire(n) waits while n units are not free", async () => {
    const s = new Semaphore(3);
    await s.acquire(2);
    const p = s.acquire(2);
    assert.equal(await stillPending(p), true);
    assert.equal(s.waiting, 1);
    s.release(1);
    await p;
    assert.equal(s.available, 0);
  });

  for (const bad of [0, -1, 1.5, NaN, Infinity]) {
    it(`acquire(${String(bad)}) rejects with RangeError (never throws) and changes nothing`, async () => {
      const s = new Semaphore(2);
      let p: Promise<void> | undefined;
      assert.doesNotThrow(() => {
        p = s.acquire(bad);
      });
      await assert.rejects(p!, (e: unknown) => e instanceof RangeError && /\bn\b/.test(e.message));
      assert.equal(s.available, 2);
      assert.equal(s.waiting, 0);
    });
  }

  it("acquire(\"1\") rejects with TypeError", async () => {
    await assert.rejects(new Semaphore(2).acquire("1" as unknown as number), TypeError);
  });

  it("acquire(n > size) rejects at once with RangeError (Go would wait forever) and changes nothing", async () => {
    const s = new Semaphore(2);
    await s.acquire(1);
    const o = await peek(s.acquire(3));
    assert.equal(o.status, "rejected");
    assert.ok((o as { reason: unknown }).reason instanceof RangeError);
    assert.equal(s.available, 1);
    assert.equal(s.waiting, 0);
  });

  it("acquire with a bad signal rejects with TypeError", async () => {
    await assert.rejects(new Semaphore(1).acquire(1, { signal: {} as AbortSignal }), TypeError);
  });

  it("tryAcquire(n) takes n units if free now and returns true; false otherwise, taking nothing", () => {
    const s = new Semaphore(3);
    assert.equal(s.tryAcquire(), true);
    assert.equal(s.tryAcquire(2), true);
    assert.equal(s.tryAcquire(1), false);
    assert.equal(s.available, 0);
    s.release(2);
    assert.equal(s.tryAcquire(3), false);
    assert.equal(s.available, 2);
  });

  it("tryAcquire(n > size) returns false, as Go does", () => {
    const s = new Semaphore(2);
    assert.equal(s.tryAcquire(3), false);
    assert.equal(s.available, 2);
  });

  it("tryAcquire throws for a bad n: 0, -1, 1.5 -> RangeError; \"1\" -> TypeError", () => {
    const s = new Semaphore(2);
    for (const bad of [0, -1, 1.5, NaN]) assert.throws(() => s.tryAcquire(bad), RangeError);
    assert.throws(() => s.tryAcquire("1" as unknown as number), TypeError);
    assert.equal(s.available, 2);
  });

  it("release(n) gives n units back (1 by default)", () => {
    const s = new Semaphore(3);
    s.tryAcquire(3);
    s.release();
    assert.equal(s.available, 1);
    s.release(2);
    assert.equal(s.available, 3);
  });

  it("release of more than held throws RangeError and releases nothing", () => {
    const s = new Semaphore(3);
    assert.throws(() => s.release(), RangeError);
    s.tryAcquire(2);
    assert.throws(() => s.release(3), RangeError);
    assert.equal(s.available, 1, "nothing was released");
    s.release(2);
    assert.equal(s.available, 3);
  });

  it("release with a bad n throws (0, -1, 1.5 -> RangeError; \"1\" -> TypeError) and releases nothing", () => {
    const s = new Semaphore(3);
    s.tryAcquire(2);
    for (const bad of [0, -1, 1.5, NaN]) assert.throws(() => s.release(bad), RangeError);
    assert.throws(() => s.release("1" as unknown as number), TypeError);
    assert.equal(s.available, 1);
  });

  it("a refused release wakes nobody", async () => {
    const s = new Semaphore(2);
    s.tryAcquire(2);
    const p = s.acquire(2);
    assert.throws(() => s.release(3), RangeError);
    assert.equal(await stillPending(p), true);
    s.release(2);
    await p;
  });
});

describe("Semaphore FIFO", () => {
  it("waiters are served strictly FIFO: a large waiter at the head is not starved by small ones behind it", async () => {
    const s = new Semaphore(3);
    await s.acquire(2);
    const order: string[] = [];
    const big = s.acquire(3).then(() => order.push("big"));
    const small = s.acquire(1).then(() => order.push("small"));
    assert.equal(await stillPending(small), true, "1 unit is free, but the small waiter stays behind the big one");
    assert.equal(s.tryAcquire(1), false, "tryAcquire does not jump the queue either");
    assert.equal(s.available, 1);
    s.release(2);
    await big;
    assert.equal(await stillPending(small), true);
    s.release(3);
    await small;
    assert.deepEqual(order, ["big", "small"]);
  });

  it("a fast acquire does not overtake waiters even when units are free", async () => {
    const s = new Semaphore(3);
    s.tryAcquire(3);
    const head = s.acquire(2);
    s.release(1);
    const late = s.acquire(1);
    assert.equal(await stillPending(late), true);
    s.release(1);
    await head;
    s.release(1);
    await late;
  });

  it("a release wakes, in order, every waiter that now fits", async () => {
    const s = new Semaphore(4);
    s.tryAcquire(4);
    const order: number[] = [];
    const ws = [1, 2, 1, 3].map((n, i) => s.acquire(n).then(() => order.push(i)));
    s.release(4);
    await Promise.all(ws.slice(0, 3));
    assert.deepEqual(order, [0, 1, 2]);
    assert.equal(s.available, 0);
    assert.equal(s.waiting, 1);
    s.release(3);
    await ws[3];
    assert.deepEqual(order, [0, 1, 2, 3]);
  });

  it("an aborted waiter at the head lets the ones behind it proceed", async () => {
    const s = new Semaphore(2);
    s.tryAcquire(1);
    const ac = new AbortController();
    const head = capture(s.acquire(2, { signal: ac.signal }));
    const behind = s.acquire(1);
    assert.equal(await stillPending(behind), true);
    ac.abort();
    assert.equal((await head).status, "rejected");
    await behind;
    assert.equal(s.available, 0);
    assert.equal(s.waiting, 0);
  });

  it("an aborted waiter in the middle is removed; the others keep their order", async () => {
    const s = new Semaphore(1);
    s.tryAcquire(1);
    const ac = new AbortController();
    const order: string[] = [];
    const a = s.acquire(1).then(() => order.push("a"));
    const b = capture(s.acquire(1, { signal: ac.signal }));
    const c = s.acquire(1).then(() => order.push("c"));
    ac.abort();
    assert.equal((await b).status, "rejected");
    assert.equal(s.waiting, 2);
    s.release(1);
    await a;
    s.release(1);
    await c;
    assert.deepEqual(order, ["a", "c"]);
  });
});

describe("Semaphore abort", () => {
  it("an abort while waiting rejects with signal.reason and takes no unit", async () => {
    const s = new Semaphore(1);
    s.tryAcquire(1);
    const ac = new AbortController();
    const reason = new Error("gave up");
    const p = capture(s.acquire(1, { signal: ac.signal }));
    ac.abort(reason);
    assert.deepEqual(await p, { status: "rejected", reason });
    assert.equal(s.waiting, 0);
    s.release(1);
    assert.equal(s.available, 1, "the aborted waiter was not granted later");
  });

  it("an already-aborted signal rejects with its reason and takes nothing, even when units are free", async () => {
    const s = new Semaphore(2);
    const reason = new Error("already");
    assert.deepEqual(await peek(s.acquire(1, { signal: AbortSignal.abort(reason) })), { status: "rejected", reason });
    assert.equal(s.available, 2);
  });

  it("an already-aborted signal wins over every other outcome, even n > size", async () => {
    const s = new Semaphore(2);
    const reason = new Error("already");
    assert.deepEqual(await peek(s.acquire(5, { signal: AbortSignal.abort(reason) })), { status: "rejected", reason });
  });

  it("an abort after the grant changes nothing", async () => {
    const s = new Semaphore(1);
    s.tryAcquire(1);
    const ac = new AbortController();
    const p = s.acquire(1, { signal: ac.signal });
    s.release(1);
    ac.abort();
    await p;
    assert.equal(s.available, 0);
    s.release(1);
  });
});

describe("Semaphore bounds, warnings and stats", () => {
  it("maxWaiters: when that many wait, acquire rejects at once with BusyError and changes nothing", async () => {
    const s = new Semaphore(1, { maxWaiters: 1, name: "db" });
    s.tryAcquire(1);
    const w = s.acquire(1);
    const o = await peek(s.acquire(1));
    assert.equal(o.status, "rejected");
    const e = (o as { reason: unknown }).reason;
    assert.ok(e instanceof BusyError);
    assert.equal(e.code, "ERR_BUSY");
    assert.match(e.message, /db/);
    assert.equal(s.waiting, 1);
    s.release(1);
    await w;
    s.release(1);
  });

  it("warnWaiters: one SLUICE_PARKED_WAITERS warning the first time waiters go above it, naming the semaphore", async () => {
    const w = collectWarnings();
    const ac = new AbortController();
    try {
      const s = new Semaphore(1, { name: "pool-db", warnWaiters: 2 });
      s.tryAcquire(1);
      const ps = [];
      for (let i = 0; i < 2; i++) ps.push(capture(s.acquire(1, { signal: ac.signal })));
      await turns(3);
      assert.equal(withCode(w.warnings, "SLUICE_PARKED_WAITERS").length, 0);
      for (let i = 0; i < 5; i++) ps.push(capture(s.acquire(1, { signal: ac.signal })));
      await turns(3);
      const mine = withCode(w.warnings, "SLUICE_PARKED_WAITERS");
      assert.equal(mine.length, 1);
      assert.match(mine[0]!.message, /pool-db/);
      ac.abort();
      await Promise.all(ps);
    } finally {
      ac.abort();
      w.stop();
    }
  });

  it("stats: a fresh snapshot of size, held, waiting, waited, peakWaiting and rejected", async () => {
    const s = new Semaphore(2);
    const a = s.stats;
    assert.deepEqual(a, { size: 2, held: 0, waiting: 0, waited: 0, peakWaiting: 0, rejected: 0 });
    assert.notEqual(s.stats, a);
    s.tryAcquire(2);
    const w1 = s.acquire(1);
    const w2 = s.acquire(1);
    assert.deepEqual(s.stats, { size: 2, held: 2, waiting: 2, waited: 2, peakWaiting: 2, rejected: 0 });
    s.release(2);
    await Promise.all([w1, w2]);
    assert.deepEqual(s.stats, { size: 2, held: 2, waiting: 0, waited: 2, peakWaiting: 2, rejected: 0 });
    assert.deepEqual(a, { size: 2, held: 0, waiting: 0, waited: 0, peakWaiting: 0, rejected: 0 }, "the old snapshot did not move");
    s.release(2);
  });

  it("never holds more than size, and serves waiters in arrival order, under random schedules (seeded)", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 5 }),
        fc.array(fc.record({ op: fc.constantFrom("acquire", "release", "abort", "try"), n: fc.integer({ min: 1, max: 5 }) }), { maxLength: 40 }),
        async (size, ops) => {
          const s = new Semaphore(size);
          let held = 0;
          const grants: number[] = [];
          const waiting: { id: number; ac: AbortController }[] = [];
          const granted: number[] = [];
          let id = 0;
          for (const { op, n } of ops) {
            const k = Math.min(n, size);
            if (op === "acquire") {
              const me = id++;
              const ac = new AbortController();
              waiting.push({ id: me, ac });
              s.acquire(k, { signal: ac.signal }).then(
                () => {
                  held += k;
                  grants.push(k);
                  granted.push(me);
                },
                () => {},
              );
            } else if (op === "try") {
              if (s.tryAcquire(k)) {
                held += k;
                grants.push(k);
              }
            } else if (op === "release") {
              const g = grants.shift();
              if (g !== undefined) {
                s.release(g);
                held -= g;
              }
            } else {
              waiting.shift()?.ac.abort();
            }
            await turns(1);
            assert.ok(held <= size, `held ${held} > size ${size}`);
            assert.equal(size - s.available, held);
          }
          for (const w of waiting) w.ac.abort();
          await turns(1);
          for (let i = 1; i < granted.length; i++) assert.ok(granted[i - 1]! < granted[i]!, `grant order ${granted.join(",")}`);
          assert.equal(s.waiting, 0);
        },
      ),
      { seed: 424242, numRuns: 150 },
    );
  });
});
