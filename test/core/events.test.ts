/**
 * Specification of sluice's `node:diagnostics_channel` events (issue 16): `sluice:reject`,
 * `sluice:drop`, `sluice:parked-warning`, `sluice:breaker-state`, `sluice:limit-change`, each
 * published at the moment it names, with the boundary's kind and name, and only while someone
 * subscribes.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import diagnostics_channel from "node:diagnostics_channel";
import { Channel, EVENT_CHANNELS, Semaphore, select, send, recv } from "../../src/index.js";
import type { RejectEvent } from "../../src/index.js";
import {
  AdaptiveLimit, CircuitBreaker, KeyedRateLimiter, Pool, RateLimiter, RetryBudget,
} from "../../src/flow/index.js";
import { VirtualClock } from "../../src/testing/index.js";

/** Collects what `channel` publishes while `fn` runs (synchronously and through its promise). */
async function collect(channel: string, fn: () => unknown): Promise<Record<string, unknown>[]> {
  const got: Record<string, unknown>[] = [];
  const listener = (message: unknown): void => {
    got.push(message as Record<string, unknown>);
  };
  diagnostics_channel.subscribe(channel, listener);
  try {
    await fn();
  } finally {
    diagnostics_channel.unsubscribe(channel, listener);
  }
  return got;
}

function pick(events: Record<string, unknown>[], ...keys: string[]): Record<string, unknown>[] {
  return events.map((e) => Object.fromEntries(keys.map((k) => [k, e[k]])));
}

describe("sluice:reject", () => {
  it("has the documented channel names", () => {
    assert.deepEqual(Object.values(EVENT_CHANNELS).sort(), [
      "sluice:admission-reject", "sluice:breaker-state", "sluice:drop", "sluice:limit-change",
      "sluice:parked-warning", "sluice:reject",
    ]);
  });

  it("a channel send and receive refused at maxParkedSends / maxParkedRecvs (also in a select)", async () => {
    const ch = new Channel<number>(0, { name: "ev-ch", maxParkedSends: 1, maxParkedRecvs: 1 });
    const events = await collect(EVENT_CHANNELS.reject, async () => {
      const parked = ch.send(1);
      await assert.rejects(ch.send(2), { code: "ERR_BUSY" });
      await assert.rejects(select([send(ch, 3)]), { code: "ERR_BUSY" });
      assert.deepEqual(await ch.recv(), { value: 1, ok: true });
      await parked;
      const waiting = ch.recv();
      await assert.rejects(ch.recv(), { code: "ERR_BUSY" });
      await assert.rejects(select([recv(ch)]), { code: "ERR_BUSY" });
      ch.close();
      await waiting;
    });
    assert.deepEqual(pick(events, "kind", "name", "reason"), [
      { kind: "channel", name: "ev-ch", reason: "maxParkedSends" },
      { kind: "channel", name: "ev-ch", reason: "maxParkedSends" },
      { kind: "channel", name: "ev-ch", reason: "maxParkedRecvs" },
      { kind: "channel", name: "ev-ch", reason: "maxParkedRecvs" },
    ]);
    assert.ok(events.every((e) => e.boundary === ch));
    assert.equal(ch.stats.rejectedSends + ch.stats.rejectedRecvs, events.length, "one event per counted rejection");
  });

  it("a semaphore at maxWaiters, a pool (queue full, maxWaiting, trySubmit, closed)", async () => {
    const sem = new Semaphore(1, { name: "ev-sem", maxWaiters: 0 });
    const full = new Pool({ concurrency: 1, queue: 0, overflow: "reject", name: "ev-pool" });
    const blocking = new Pool({ concurrency: 1, maxWaiting: 0, name: "ev-block" });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const events = await collect(EVENT_CHANNELS.reject, async () => {
      sem.tryAcquire();
      await assert.rejects(sem.acquire(), { code: "ERR_BUSY" });
      await full.submit(() => gate);
      await assert.rejects(full.submit(() => undefined), { code: "ERR_BUSY" });
      assert.equal(full.trySubmit(() => undefined), false);
      await blocking.submit(() => gate);
      await assert.rejects(blocking.submit(() => undefined), { code: "ERR_BUSY" });
      release();
      full.close();
      await assert.rejects(full.submit(() => undefined));
      await assert.rejects(full.run(() => undefined));
    });
    assert.deepEqual(pick(events, "kind", "name", "reason"), [
      { kind: "semaphore", name: "ev-sem", reason: "maxWaiters" },
      { kind: "pool", name: "ev-pool", reason: "queueFull" },
      { kind: "pool", name: "ev-pool", reason: "try" },
      { kind: "pool", name: "ev-block", reason: "maxWaiting" },
      { kind: "pool", name: "ev-pool", reason: "closed" },
      { kind: "pool", name: "ev-pool", reason: "closed" },
    ]);
    assert.equal(full.stats.rejected, 4);
  });

  it("rate limiters' wait, an open breaker, an exhausted retry budget", async () => {
    const clock = new VirtualClock();
    const limiter = new RateLimiter({ rate: 1, burst: 1, clock, name: "ev-rl" });
    const zero = new RateLimiter({ rate: 0, burst: 1, clock, name: "ev-zero" });
    const keyed = new KeyedRateLimiter({ rate: 1, burst: 1, maxKeys: 4, clock, maxWaiters: 0, name: "ev-keyed" });
    const breaker = new CircuitBreaker({ minimumCalls: 1, failureRate: 1, openMs: 1000, clock, name: "ev-br" });
    const budget = new RetryBudget({ minPerSecond: 0, ratio: 0, clock, name: "ev-budget" });
    const events = await collect(EVENT_CHANNELS.reject, async () => {
      assert.ok(limiter.allow());
      await assert.rejects(limiter.wait(1, { maxDelayMs: 10 }), { code: "ERR_BUSY" });
      assert.ok(zero.allow());
      await assert.rejects(zero.wait(1), { code: "ERR_BUSY" });
      assert.ok(keyed.allow("k"));
      await assert.rejects(keyed.wait("k", 1), { code: "ERR_BUSY" });
      await assert.rejects(breaker.run(() => Promise.reject(new Error("fail"))), /fail/);
      await assert.rejects(breaker.run(() => 1), { code: "ERR_BREAKER_OPEN" });
      assert.equal(budget.tryWithdraw(), false);
    });
    assert.deepEqual(pick(events, "kind", "name", "reason"), [
      { kind: "rate-limiter", name: "ev-rl", reason: "maxDelay" },
      { kind: "rate-limiter", name: "ev-zero", reason: "noRate" },
      { kind: "keyed-rate-limiter", name: "ev-keyed", reason: "maxWaiters" },
      { kind: "circuit-breaker", name: "ev-br", reason: "open" },
      { kind: "retry-budget", name: "ev-budget", reason: "exhausted" },
    ]);
  });

  it("publishes nothing and builds nothing while nobody subscribes", async () => {
    const ch = new Channel<number>(0, { maxParkedSends: 0 });
    const channel = diagnostics_channel.channel(EVENT_CHANNELS.reject);
    assert.equal(channel.hasSubscribers, false);
    await assert.rejects(ch.send(1), { code: "ERR_BUSY" });
    // Subscribing afterwards sees only what happens afterwards.
    const events = await collect(EVENT_CHANNELS.reject, async () => {
      await assert.rejects(ch.send(2), { code: "ERR_BUSY" });
    });
    assert.equal(events.length, 1);
    assert.equal((events[0] as unknown as RejectEvent).reason, "maxParkedSends");
    assert.equal(ch.stats.rejectedSends, 2);
  });
});

describe("sluice:drop", () => {
  it("a pool's drop-oldest drop, one event per dropped task", async () => {
    const pool = new Pool({ concurrency: 1, queue: 1, overflow: "drop-oldest", name: "ev-drop" });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const events = await collect(EVENT_CHANNELS.drop, async () => {
      await pool.submit(() => gate);
      const dropped = pool.run(() => 1);
      await pool.submit(() => 2);
      await assert.rejects(dropped, { code: "ERR_DROPPED" });
      await pool.submit(() => 3);
      release();
      await pool.drain();
    });
    assert.deepEqual(pick(events, "kind", "name", "reason"), [
      { kind: "pool", name: "ev-drop", reason: "drop-oldest" },
      { kind: "pool", name: "ev-drop", reason: "drop-oldest" },
    ]);
    assert.equal(pool.stats.dropped, 2);
  });
});

describe("sluice:parked-warning", () => {
  it("is published with the warning, once, when parked senders pass the threshold", async () => {
    const ch = new Channel<number>(0, { name: "ev-park", warnParkedSends: 2 });
    const warnings: Error[] = [];
    const onWarning = (w: Error): void => {
      warnings.push(w);
    };
    process.on("warning", onWarning);
    try {
      const events = await collect(EVENT_CHANNELS.parkedWarning, () => {
        for (let i = 0; i < 5; i++) void ch.send(i);
      });
      assert.deepEqual(pick(events, "name", "role", "parked", "threshold", "code"), [
        { name: "ev-park", role: "send", parked: 3, threshold: 2, code: "SLUICE_PARKED_SENDS" },
      ]);
      assert.equal(events[0]!.boundary, ch);
      assert.match(String(events[0]!.description), /channel "ev-park"/);
    } finally {
      for (let i = 0; i < 5; i++) await ch.recv();
      await new Promise((r) => setImmediate(r)); // the warning event is emitted on nextTick
      process.off("warning", onWarning);
    }
    assert.equal(warnings.filter((w) => (w as Error & { code?: string }).code === "SLUICE_PARKED_SENDS").length, 1);
  });
});

describe("sluice:breaker-state", () => {
  it("each transition closed → open → half-open → closed, with from, to and the clock", async () => {
    const clock = new VirtualClock();
    const breaker = new CircuitBreaker({ minimumCalls: 1, failureRate: 1, openMs: 100, clock, name: "ev-states" });
    const events = await collect(EVENT_CHANNELS.breakerState, async () => {
      await assert.rejects(breaker.run(() => Promise.reject(new Error("x"))));
      clock.advance(100);
      await breaker.run(() => "probe");
    });
    assert.deepEqual(pick(events, "kind", "name", "from", "to", "at"), [
      { kind: "circuit-breaker", name: "ev-states", from: "closed", to: "open", at: 0 },
      { kind: "circuit-breaker", name: "ev-states", from: "open", to: "half-open", at: 100 },
      { kind: "circuit-breaker", name: "ev-states", from: "half-open", to: "closed", at: 100 },
    ]);
  });
});

describe("sluice:limit-change", () => {
  it("an AIMD limit's back-off and growth, with from and to matching the limit", async () => {
    const limit = new AdaptiveLimit({ algorithm: "aimd", initialLimit: 10, name: "ev-limit" });
    const events = await collect(EVENT_CHANNELS.limitChange, () => {
      limit.start().dropped();
    });
    assert.equal(events.length, 1);
    const e = events[0]!;
    assert.deepEqual({ kind: e.kind, name: e.name, from: e.from, to: e.to }, { kind: "adaptive-limit", name: "ev-limit", from: 10, to: limit.limit });
    assert.ok((e.to as number) < 10);
    assert.equal(e.boundary, limit);
  });
});
