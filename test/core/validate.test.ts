import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Channel, ErrGroup, Semaphore } from "../../src/index.js";
import { AdaptiveLimit, CircuitBreaker, Pool, RateLimiter, RetryBudget, retry } from "../../src/flow/index.js";
import { Broadcast, map, partition, pipeline, toReadable, toReadableStream } from "../../src/pipeline/index.js";
import { Admission, fetchWithRetry } from "../../src/http/index.js";
import { createDashboard, serveDashboard } from "../../src/metrics/index.js";

const T = { timeout: 10_000 };

/** Whether `e` is the typed error of a bad option that names it. */
function names(option: string): (e: unknown) => boolean {
  return (e) => (e instanceof TypeError || e instanceof RangeError) && e.message.includes(option);
}

// `null` for an option with a default is a bad value, not a left-out option: read as "left out"
// it would silently mean the default (for a limit, no limit at all).
const constructed: [option: string, make: (value: null) => unknown][] = [
  ["options.maxParkedSends", (v) => new Channel(1, { maxParkedSends: v as never })],
  ["options.maxParkedRecvs", (v) => new Channel(1, { maxParkedRecvs: v as never })],
  ["options.warnParkedSends", (v) => new Channel(1, { warnParkedSends: v as never })],
  ["options.warnParkedRecvs", (v) => new Channel(1, { warnParkedRecvs: v as never })],
  ["options.maxWaiters", (v) => new Semaphore(1, { maxWaiters: v as never })],
  ["options.warnWaiters", (v) => new Semaphore(1, { warnWaiters: v as never })],
  ["options.limit", (v) => new ErrGroup({ limit: v as never })],
  ["options.queue", (v) => new Pool({ concurrency: 1, queue: v as never })],
  ["options.overflow", (v) => new Pool({ concurrency: 1, overflow: v as never })],
  ["options.maxWaiting", (v) => new Pool({ concurrency: 1, maxWaiting: v as never })],
  ["options.warnWaiting", (v) => new Pool({ concurrency: 1, warnWaiting: v as never })],
  ["options.idleMs", (v) => new Pool({ concurrency: 1, idleMs: v as never })],
  ["options.lowWater", (v) => new Pool({ concurrency: 1, queue: 8, highWater: 4, lowWater: v as never })],
  ["options.ordered", (v) => new Pool({ concurrency: 1 }).map([1], (x) => x, { ordered: v as never })],
  ["options.maxWaiters", (v) => new RateLimiter({ rate: 1, burst: 1, maxWaiters: v as never })],
  ["options.warnWaiters", (v) => new RateLimiter({ rate: 1, burst: 1, warnWaiters: v as never })],
  ["options.algorithm", (v) => new AdaptiveLimit({ algorithm: v as never })],
  ["options.failureRate", (v) => new CircuitBreaker({ failureRate: v as never })],
  ["options.minimumCalls", (v) => new CircuitBreaker({ minimumCalls: v as never })],
  ["options.openMs", (v) => new CircuitBreaker({ openMs: v as never })],
  ["options.halfOpenProbes", (v) => new CircuitBreaker({ halfOpenProbes: v as never })],
  ["options.ratio", (v) => new RetryBudget({ ratio: v as never })],
  ["options.minPerSecond", (v) => new RetryBudget({ minPerSecond: v as never })],
  ["options.windowMs", (v) => new RetryBudget({ windowMs: v as never })],
  ["options.concurrency", (v) => map((x: number) => x, { concurrency: v as never })],
  ["options.ordered", (v) => map((x: number) => x, { concurrency: 2, ordered: v as never })],
  ["options.buffer", (v) => map((x: number) => x, { buffer: v as never })],
  ["options.sourceBuffer", (v) => pipeline([1], { sourceBuffer: v as never })],
  ["options.buffer", (v) => partition([1], (x: number) => x, 2, { buffer: v as never })],
  ["options.maxSubscribers", (v) => new Broadcast({ maxSubscribers: v as never })],
  ["options.warnSubscribers", (v) => new Broadcast({ warnSubscribers: v as never })],
  ["options.buffer", (v) => new Broadcast().subscribe({ buffer: v as never })],
  ["options.policy", (v) => new Broadcast().subscribe({ policy: v as never })],
  ["options.highWaterMark", (v) => toReadable([1], { highWaterMark: v as never })],
  ["options.highWaterMark", (v) => toReadableStream([1], { highWaterMark: v as never })],
  ["options.queue", (v) => new Admission({ concurrency: 1, queue: v as never })],
  ["options.order", (v) => new Admission({ concurrency: 1, order: v as never })],
  ["options.retryAfterJitter", (v) => new Admission({ concurrency: 1, retryAfterJitter: v as never })],
  ["options.maxDrainBytes", (v) => new Admission({ concurrency: 1, maxDrainBytes: v as never })],
  ["options.random", (v) => new Admission({ concurrency: 1, random: v as never })],
  ["options.title", (v) => createDashboard({ title: v as never })],
];

const called: [option: string, call: (value: null) => Promise<unknown>][] = [
  ["options.attempts", (v) => retry(() => 1, { attempts: v as never })],
  ["options.baseMs", (v) => retry(() => 1, { baseMs: v as never })],
  ["options.maxMs", (v) => retry(() => 1, { maxMs: v as never })],
  ["options.jitter", (v) => retry(() => 1, { jitter: v as never })],
  ["options.retryIf", (v) => retry(() => 1, { retryIf: v as never })],
  ["options.random", (v) => retry(() => 1, { random: v as never })],
  ["options.fetch", (v) => fetchWithRetry("http://127.0.0.1:1/", undefined, { fetch: v as never })],
  ["options.retryOn", (v) => fetchWithRetry("http://127.0.0.1:1/", undefined, { retryOn: v as never })],
  ["options.retryAfterJitter", (v) => fetchWithRetry("http://127.0.0.1:1/", undefined, { retryAfterJitter: v as never })],
  ["options.random", (v) => fetchWithRetry("http://127.0.0.1:1/", undefined, { random: v as never })],
  ["options.port", (v) => serveDashboard({ port: v as never })],
  ["options.host", (v) => serveDashboard({ host: v as never })],
];

describe("options", () => {
  test("null is a bad value for every option with a default, not a left-out option: a typed error naming it", T, async () => {
    for (const [option, make] of constructed) {
      assert.throws(() => make(null), names(option), `${option} = null was accepted`);
    }
    for (const [option, call] of called) {
      await assert.rejects(call(null), names(option), `${option} = null was accepted`);
    }
  });

  test("left out (undefined), the same options take their defaults", T, () => {
    const ch = new Channel<number>(1, { maxParkedSends: undefined, warnParkedSends: undefined });
    assert.equal(ch.maxParkedSends, Infinity);
    const g = new ErrGroup({ limit: undefined });
    assert.equal(g.stats.limit, Infinity);
    const b = new Broadcast<number>({ maxSubscribers: undefined });
    const s = b.subscribe({ buffer: undefined, policy: undefined });
    assert.deepEqual([s.stats.buffer, s.stats.policy], [16, "block"]);
    s.unsubscribe();
  });
});
