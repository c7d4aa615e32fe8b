import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { Redis } from "ioredis";
import fc from "fast-check";
import { RedisStreamSink, BusyError } from "../../src/redis/index.js";
import { BusyError as CoreBusyError } from "../../src/index.js";
import { cleanup, connect, prefix } from "./helpers.js";

describe("RedisStreamSink (real Redis on 127.0.0.1:6379)", { timeout: 60_000 }, () => {
  let redis: Redis;
  const keys = prefix("sink");
  let n = 0;
  const key = (): string => `${keys}${n++}`;

  before(async () => {
    redis = await connect();
  });
  after(async () => {
    await cleanup(redis, keys);
    redis.disconnect();
  });

  test("add stores the fields and resolves with the entry's id", async () => {
    const stream = key();
    const sink = new RedisStreamSink(redis, { stream, maxLength: 10 });
    const id = await sink.add({ a: "1", b: 2, c: Buffer.from("x") });
    assert.match(id, /^\d+-\d+$/);
    const entries = await redis.xrange(stream, "-", "+");
    assert.deepEqual(entries, [[id, ["a", "1", "b", "2", "c", "x"]]]);
    assert.equal(sink.stats.added, 1);
    assert.equal(sink.stats.inFlight, 0);
  });

  test("at maxLength it refuses with BusyError (retryAfterMs), stores nothing and trims nothing", async () => {
    const stream = key();
    const sink = new RedisStreamSink(redis, { stream, maxLength: 3, retryAfterMs: 150 });
    const ids = [await sink.add({ i: 0 }), await sink.add({ i: 1 }), await sink.add({ i: 2 })];
    const err = await sink.add({ i: 3 }).then(() => null, (e: unknown) => e);
    assert.ok(err instanceof BusyError, `expected BusyError, got ${String(err)}`);
    assert.ok(err instanceof CoreBusyError, "the one BusyError class of sluice");
    assert.equal(err.code, "ERR_BUSY");
    assert.equal(err.retryAfterMs, 150);
    const stored = await redis.xrange(stream, "-", "+");
    assert.deepEqual(stored.map(([id]) => id), ids, "the oldest entries are still there: nothing trimmed");
    assert.equal(sink.stats.refused, 1);
    assert.equal(sink.stats.added, 3);
  });

  test("room comes back when an entry is removed", async () => {
    const stream = key();
    const sink = new RedisStreamSink(redis, { stream, maxLength: 1 });
    const id = await sink.add({ x: 1 });
    await assert.rejects(sink.add({ x: 2 }), BusyError);
    await redis.xdel(stream, id);
    await sink.add({ x: 3 });
    assert.equal(await redis.xlen(stream), 1);
  });

  test("20 concurrent adds at room 5 store exactly 5 (the check and the add are one atomic step)", async () => {
    const stream = key();
    const sink = new RedisStreamSink(redis, { stream, maxLength: 5 });
    // a second client, so the adds also race across connections
    const other = await connect();
    try {
      const sink2 = new RedisStreamSink(other, { stream, maxLength: 5 });
      const results = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? sink : sink2).add({ i })));
      const ok = results.filter((r) => r.status === "fulfilled").length;
      const busy = results.filter((r) => r.status === "rejected" && r.reason instanceof BusyError).length;
      assert.equal(ok, 5);
      assert.equal(busy, 15);
      assert.equal(await redis.xlen(stream), 5);
    } finally {
      other.disconnect();
    }
  });

  test("randomized: concurrent adds never overshoot maxLength, and every refusal is a BusyError", async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 12 }), fc.integer({ min: 0, max: 8 }), fc.integer({ min: 1, max: 40 }), async (maxLength, prefill, adds) => {
        const stream = key();
        const sink = new RedisStreamSink(redis, { stream, maxLength });
        const pre = Math.min(prefill, maxLength);
        for (let i = 0; i < pre; i++) await sink.add({ pre: i });
        const results = await Promise.allSettled(Array.from({ length: adds }, (_, i) => sink.add({ i })));
        const ok = results.filter((r) => r.status === "fulfilled").length;
        for (const r of results) if (r.status === "rejected") assert.ok(r.reason instanceof BusyError);
        assert.equal(ok, Math.min(adds, maxLength - pre));
        assert.equal(await redis.xlen(stream), Math.min(maxLength, pre + adds));
        await redis.del(stream);
      }),
      { numRuns: 25 },
    );
  });

  test("an already-aborted signal rejects with its reason and sends nothing", async () => {
    const stream = key();
    const sink = new RedisStreamSink(redis, { stream, maxLength: 5 });
    const reason = new Error("stop");
    await assert.rejects(sink.add({ a: 1 }, { signal: AbortSignal.abort(reason) }), (e) => e === reason);
    assert.equal(await redis.exists(stream), 0);
    assert.equal(sink.stats.added + sink.stats.refused, 0);
  });

  test("an abort during the round trip rejects with the reason", async () => {
    const stream = key();
    const sink = new RedisStreamSink(redis, { stream, maxLength: 5 });
    const ac = new AbortController();
    const p = sink.add({ a: 1 }, { signal: ac.signal });
    const reason = new Error("gone");
    ac.abort(reason);
    await assert.rejects(p, (e) => e === reason);
  });

  test("many adds sharing one signal: all stored, one abort listener (no listener-leak warning)", async () => {
    const stream = key();
    const sink = new RedisStreamSink(redis, { stream, maxLength: 100 });
    const warnings: Error[] = [];
    const onWarning = (w: Error): void => void warnings.push(w);
    process.on("warning", onWarning);
    try {
      const ac = new AbortController();
      const ids = await Promise.all(Array.from({ length: 50 }, (_, i) => sink.add({ i }, { signal: ac.signal })));
      assert.equal(new Set(ids).size, 50);
      await new Promise((r) => setImmediate(r));
      assert.deepEqual(warnings.map((w) => w.message), []);
      assert.equal(await redis.xlen(stream), 50);
    } finally {
      process.off("warning", onWarning);
    }
  });

  test("Redis unreachable: the add is refused at once with BusyError (cause attached), nothing buffered", async () => {
    // A real client pointed at a port where nothing listens (no mock): with the offline queue
    // off, a command issued while disconnected fails at once instead of waiting in memory.
    const down = new Redis({ host: "127.0.0.1", port: 1, enableOfflineQueue: false, lazyConnect: true, retryStrategy: () => null });
    down.on("error", () => {});
    try {
      const sink = new RedisStreamSink(down, { stream: key(), maxLength: 5, retryAfterMs: 500 });
      const err = await sink.add({ a: 1 }).then(() => null, (e: unknown) => e);
      assert.ok(err instanceof BusyError, `expected BusyError, got ${String(err)}`);
      assert.equal(err.retryAfterMs, 500);
      assert.ok(err.cause instanceof Error);
      assert.equal(sink.stats.unavailable, 1);
      assert.equal(sink.stats.inFlight, 0);
    } finally {
      down.disconnect();
    }
  });

  test("a reply error that is not an outage is rethrown unchanged (WRONGTYPE)", async () => {
    const stream = key();
    await redis.set(stream, "not a stream");
    const sink = new RedisStreamSink(redis, { stream, maxLength: 5 });
    await assert.rejects(sink.add({ a: 1 }), (e: Error) => !(e instanceof BusyError) && /WRONGTYPE/.test(e.message));
    assert.equal(sink.stats.failed, 1);
  });

  test("a client with the offline queue on (ioredis's default) works, and never buffers: an outage is BusyError at once", async () => {
    const plain = new Redis({ host: "127.0.0.1", port: 6379, lazyConnect: true }); // enableOfflineQueue left on
    try {
      const stream = key();
      const sink = new RedisStreamSink(plain, { stream, maxLength: 2 });
      await sink.add({ a: 1 }); // a lazy client is connected first
      await sink.add({ a: 2 });
      await assert.rejects(sink.add({ a: 3 }), BusyError);
      assert.equal(await redis.xlen(stream), 2);
    } finally {
      plain.disconnect();
    }
    // A fresh client (connecting now): adds issued at once wait for it (one wait, however many adds).
    const fresh = new Redis({ host: "127.0.0.1", port: 6379 });
    try {
      const stream = key();
      const sink = new RedisStreamSink(fresh, { stream, maxLength: 30 });
      assert.notEqual(fresh.status, "ready");
      const ids = await Promise.all(Array.from({ length: 30 }, (_, i) => sink.add({ i })));
      assert.equal(new Set(ids).size, 30);
      assert.ok(fresh.listenerCount("ready") <= 1, `ready listeners: ${fresh.listenerCount("ready")}`);
      assert.equal(await redis.xlen(stream), 30);
    } finally {
      fresh.disconnect();
    }
    // Nothing listens on port 1 and the client keeps reconnecting: with its offline queue on, a
    // command sent now would wait in memory for as long as the outage lasts.
    const down = new Redis({ host: "127.0.0.1", port: 1, lazyConnect: true, retryStrategy: () => 100 });
    down.on("error", () => {});
    try {
      const sink = new RedisStreamSink(down, { stream: key(), maxLength: 5 });
      const results = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => sink.add({ i })));
      assert.ok(results.every((r) => r.status === "rejected" && r.reason instanceof BusyError), "every add refused");
      assert.equal((down as unknown as { offlineQueue: { length: number } }).offlineQueue.length, 0, "nothing waits in ioredis's offline queue");
      assert.equal(sink.stats.unavailable, 20);
    } finally {
      down.disconnect();
    }
  });

  test("bad options and bad fields: TypeError/RangeError naming them, nothing stored", async () => {
    assert.throws(() => new RedisStreamSink(redis, { stream: "s", maxLength: 0 }), /RangeError: options.maxLength must be a positive safe integer, got 0/);
    assert.throws(() => new RedisStreamSink(redis, { stream: "s", maxLength: Infinity }), RangeError);
    assert.throws(() => new RedisStreamSink(redis, { stream: "s", maxLength: 1.5 }), RangeError);
    assert.throws(() => new RedisStreamSink(redis, { stream: "s", maxLength: "3" as unknown as number }), TypeError);
    assert.throws(() => new RedisStreamSink(redis, { stream: "", maxLength: 3 }), /options.stream/);
    assert.throws(() => new RedisStreamSink(redis, { stream: "s", maxLength: 3, retryAfterMs: -1 }), /options.retryAfterMs/);
    assert.throws(() => new RedisStreamSink({} as Redis, { stream: "s", maxLength: 3 }), TypeError);
    const stream = key();
    const sink = new RedisStreamSink(redis, { stream, maxLength: 3 });
    await assert.rejects(sink.add({}), RangeError);
    await assert.rejects(sink.add({ a: null as unknown as string }), /TypeError: fields.a must be/);
    await assert.rejects(sink.add({ a: NaN }), TypeError);
    await assert.rejects(sink.add([] as unknown as Record<string, string>), TypeError);
    await assert.rejects(sink.add({ a: 1 }, { signal: "x" as unknown as AbortSignal }), TypeError);
    assert.equal(await redis.exists(stream), 0);
  });
});
