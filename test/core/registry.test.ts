/**
 * Specification of boundary registration (issue 16): every core and flow boundary created with a
 * `name` registers itself, once, with its kind; an unnamed one only while every boundary is
 * observed; each has `name` and `stats` getters. (Weakness under GC: test/metrics/registry-gc.)
 */
import { describe, it, afterEach } from "node:test";
import assert from "node:assert/strict";
import { Channel, ErrGroup, Semaphore } from "../../src/index.js";
import {
  AdaptiveLimit, CircuitBreaker, KeyedRateLimiter, Pool, RateLimiter, RetryBudget,
} from "../../src/flow/index.js";
import { observed, observingAll, setObserveAll } from "../../src/core/registry.js";

const suffix = Math.random().toString(36).slice(2, 8);

interface Made {
  kind: string;
  make(name: string | undefined): { name: string | undefined; stats: object };
}

const KINDS: Made[] = [
  { kind: "channel", make: (name) => new Channel(4, name === undefined ? undefined : { name }) },
  { kind: "semaphore", make: (name) => new Semaphore(3, name === undefined ? undefined : { name }) },
  { kind: "errgroup", make: (name) => new ErrGroup({ limit: 2, name }) },
  { kind: "pool", make: (name) => new Pool({ concurrency: 2, queue: 1, name }) },
  { kind: "rate-limiter", make: (name) => new RateLimiter({ rate: 10, burst: 5, name }) },
  { kind: "keyed-rate-limiter", make: (name) => new KeyedRateLimiter({ rate: 10, burst: 5, maxKeys: 8, name }) },
  { kind: "adaptive-limit", make: (name) => new AdaptiveLimit({ name }) },
  { kind: "circuit-breaker", make: (name) => new CircuitBreaker({ name }) },
  { kind: "retry-budget", make: (name) => new RetryBudget({ name }) },
];

function entriesOf(boundary: object): string[] {
  const kinds: string[] = [];
  for (const e of observed()) if (e.boundary === boundary) kinds.push(e.kind);
  return kinds;
}

describe("boundary registration", () => {
  const wasAll = observingAll();
  afterEach(() => setObserveAll(wasAll));

  for (const { kind, make } of KINDS) {
    it(`a named ${kind} registers once, with kind "${kind}", its name and a stats object`, () => {
      const name = `${kind}-${suffix}`;
      const b = make(name);
      assert.deepEqual(entriesOf(b), [kind]);
      assert.equal(b.name, name);
      assert.equal(typeof b.stats, "object");
      assert.notEqual(b.stats, b.stats, "stats is a fresh snapshot each time");
    });

    it(`an unnamed ${kind} is registered only while every boundary is observed`, () => {
      setObserveAll(false);
      const quiet = make(undefined);
      assert.deepEqual(entriesOf(quiet), []);
      setObserveAll(true);
      const seen = make(undefined);
      assert.deepEqual(entriesOf(seen), [kind]);
    });
  }

  it("lists boundaries in registration order", () => {
    const a = new Channel(1, { name: `order-a-${suffix}` });
    const b = new Semaphore(1, { name: `order-b-${suffix}` });
    const c = new Pool({ concurrency: 1, name: `order-c-${suffix}` });
    const mine = [...observed()].map((e) => e.boundary).filter((x) => x === a || x === b || x === c);
    assert.deepEqual(mine, [a, b, c]);
  });
});

describe("stats added for the registry", () => {
  it("ErrGroup.stats counts accepted, settled, failed, waiting and aborted tasks", async () => {
    const g = new ErrGroup({ limit: 1, name: `eg-${suffix}` });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    await g.go(() => gate);
    const ac = new AbortController();
    const waiting = g.go(() => undefined, { signal: ac.signal });
    const third = g.go(() => Promise.reject(new Error("boom")));
    assert.deepEqual(
      { running: g.stats.running, waiting: g.stats.waiting, accepted: g.stats.accepted, settled: g.stats.settled },
      { running: 1, waiting: 2, accepted: 3, settled: 0 },
    );
    ac.abort(new Error("gone"));
    await assert.rejects(waiting, /gone/);
    release();
    await third;
    await assert.rejects(g.wait(), /boom/);
    const s = g.stats;
    assert.equal(s.name, `eg-${suffix}`);
    assert.equal(s.limit, 1);
    assert.equal(s.accepted, 3);
    assert.equal(s.aborted, 1);
    assert.equal(s.settled, 2);
    assert.equal(s.failed, 1);
    assert.equal(s.running, 0);
    assert.equal(s.waiting, 0);
    assert.equal(s.waited, 2);
    assert.equal(s.peakWaiting, 2);
    assert.equal(s.hasFailed, true);
  });

  it("Semaphore has a name getter; its stats count acquires refused at maxWaiters", async () => {
    const sem = new Semaphore(1, { name: `sem-${suffix}`, maxWaiters: 1 });
    sem.tryAcquire();
    const parked = sem.acquire();
    await assert.rejects(sem.acquire(), { code: "ERR_BUSY" });
    assert.equal(sem.name, `sem-${suffix}`);
    assert.equal(sem.stats.rejected, 1);
    sem.release();
    await parked;
    assert.equal(sem.stats.rejected, 1);
  });
});
