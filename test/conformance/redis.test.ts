/**
 * Conformance: DESIGN.md "sluice/nats, sluice/redis: settled details" (issue 15), the Redis
 * half, against the real Redis on 127.0.0.1:6379 (fails clearly when it is missing).
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { Redis } from "ioredis";
import { BusyError } from "../../src/index.js";
import { Pool } from "../../src/flow/index.js";
import { RedisStreamSink, consumeRedisStream, type RedisStreamEntry } from "../../src/redis/index.js";
import { assertNothingParked, deferred, until } from "./helpers.js";

const T = { timeout: 60_000 };
const HOST = process.env.REDIS_HOST ?? "127.0.0.1";
const PORT = Number(process.env.REDIS_PORT ?? 6379);
const PREFIX = `conf:${process.pid}:${randomBytes(4).toString("hex")}:`;

let redis: Redis;
/** Every source started here is stopped at the end, even when its test failed. */
const controllers: AbortController[] = [];
function stopper(): AbortController {
  const ac = new AbortController();
  controllers.push(ac);
  return ac;
}

before(async () => {
  redis = new Redis({ host: HOST, port: PORT, enableOfflineQueue: false, lazyConnect: true, connectTimeout: 3000, maxRetriesPerRequest: 1 });
  redis.on("error", () => {});
  try {
    await redis.connect();
  } catch (e) {
    redis.disconnect();
    throw new Error(`the Redis conformance tests need Redis on ${HOST}:${PORT}: ${String(e)}`);
  }
});

after(async () => {
  for (const ac of controllers) ac.abort();
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", `${PREFIX}*`, "COUNT", 500);
    cursor = next;
    if (keys.length > 0) await redis.del(...keys);
  } while (cursor !== "0");
  redis.disconnect();
});

let n = 0;
const key = (label: string): string => `${PREFIX}${label}:${n++}`;

/** Polls Redis (bounded) until `cond` holds. */
async function eventually(cond: () => Promise<boolean>, what: string, tries = 500): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (await cond()) return;
    await new Promise<void>((r) => setTimeout(r, 10));
  }
  assert.fail(`timed out waiting for: ${what}`);
}

async function pendingCount(stream: string, group: string): Promise<number> {
  const r = (await redis.xpending(stream, group)) as [number, ...unknown[]];
  return Number(r[0]);
}

describe("`redis` an ioredis client (DESIGN's words): a client made with ioredis' defaults", () => {

  test("new RedisStreamSink(new Redis(), ...) works", T, async () => {
    const plain = new Redis({ host: HOST, port: PORT, lazyConnect: true });
    plain.on("error", () => {});
    try {
      await plain.connect();
      const stream = key("plain");
      const sink = new RedisStreamSink(plain, { stream, maxLength: 2 });
      assert.equal(typeof (await sink.add({ a: 1 })), "string");
    } finally {
      plain.disconnect();
    }
  });

  test("consumeRedisStream(new Redis(), ...) works", T, async () => {
    const plain = new Redis({ host: HOST, port: PORT, lazyConnect: true });
    plain.on("error", () => {});
    try {
      await plain.connect();
      const stream = key("plain-src");
      await redis.xadd(stream, "*", "a", "1");
      const ac = stopper();
      let handled = 0;
      const done = consumeRedisStream(plain, { stream, group: "g", consumer: "c", pool: new Pool({ concurrency: 1 }), signal: ac.signal, handler: () => void handled++ });
      await until(() => handled === 1, "handled");
      ac.abort();
      await done;
    } finally {
      plain.disconnect();
    }
  });
});

describe("new RedisStreamSink(redis, { stream, maxLength }).add(fields, { signal })", () => {
  test("at maxLength it rejects with BusyError, atomically (concurrent adds store exactly the room), and never trims", T, async () => {
    const stream = key("sink");
    const sink = new RedisStreamSink(redis, { stream, maxLength: 5 });
    const results = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => sink.add({ i })));
    const ok = results.filter((r) => r.status === "fulfilled") as PromiseFulfilledResult<string>[];
    const refused = results.filter((r) => r.status === "rejected") as PromiseRejectedResult[];
    assert.equal(ok.length, 5);
    assert.equal(refused.length, 15);
    for (const r of refused) {
      assert.ok(r.reason instanceof BusyError, `expected BusyError, got ${String(r.reason)}`);
      assert.equal((r.reason as BusyError).code, "ERR_BUSY");
    }
    assert.equal(await redis.xlen(stream), 5);
    const ids = (await redis.xrange(stream, "-", "+")).map(([id]) => id).sort();
    assert.deepEqual(ids, ok.map((r) => r.value).sort(), "the stored entries are the ones accepted: nothing trimmed");
    assert.equal(typeof ok[0]!.value, "string", "add resolves with the entry id");
  });

  test("entries already in the stream count: at maxLength nothing is added and nothing deleted", T, async () => {
    const stream = key("pre");
    for (let i = 0; i < 3; i++) await redis.xadd(stream, "*", "old", String(i));
    const sink = new RedisStreamSink(redis, { stream, maxLength: 3 });
    await assert.rejects(sink.add({ x: 1 }), BusyError);
    assert.equal(await redis.xlen(stream), 3);
    assert.deepEqual((await redis.xrange(stream, "-", "+")).map(([, f]) => f[1]), ["0", "1", "2"]);
  });

  test("an already-aborted signal rejects with signal.reason and stores nothing", T, async () => {
    const stream = key("abort");
    const sink = new RedisStreamSink(redis, { stream, maxLength: 10 });
    const reason = new Error("no");
    await assert.rejects(sink.add({ x: 1 }, { signal: AbortSignal.abort(reason) }), (e) => e === reason);
    assert.equal(await redis.xlen(stream), 0);
  });

  test("add: bad fields or a bad signal reject with a TypeError/RangeError naming them; nothing stored", T, async () => {
    const stream = key("badfields");
    const sink = new RedisStreamSink(redis, { stream, maxLength: 10 });
    await assert.rejects(sink.add({}), (e) => (e instanceof TypeError || e instanceof RangeError) && /field/.test((e as Error).message));
    await assert.rejects(sink.add({ a: {} as never }), (e) => e instanceof TypeError && /a|field|value/.test((e as Error).message));
    await assert.rejects(sink.add({ a: 1 }, { signal: "soon" as never }), (e) => e instanceof TypeError && /signal/.test((e as Error).message));
    assert.equal(await redis.xlen(stream), 0);
  });

  test("bad options throw RangeError/TypeError naming the option", T, () => {
    for (const v of [0, -1, 1.5, Infinity, NaN]) {
      assert.throws(() => new RedisStreamSink(redis, { stream: "s", maxLength: v }), (e) => e instanceof RangeError && /maxLength/.test((e as Error).message), String(v));
    }
    assert.throws(() => new RedisStreamSink(redis, { stream: "", maxLength: 1 }), (e) => e instanceof TypeError && /stream/.test((e as Error).message));
    assert.throws(() => new RedisStreamSink({} as never, { stream: "s", maxLength: 1 }), TypeError);
  });
});

describe("consumeRedisStream(redis, { stream, group, consumer, pool, handler, claimIdleMs, maxDeliveries, deadLetterStream, signal })", () => {
  test("handles every entry with handler(entry, signal); removes each once done (XACK+XDEL: XLEN is the backlog); resolves with stats after the abort", T, async () => {
    const stream = key("src");
    for (let i = 0; i < 15; i++) await redis.xadd(stream, "*", "i", String(i));
    const pool = new Pool({ concurrency: 3, queue: 2 });
    const ac = stopper();
    const seen: string[] = [];
    let sawSignal = true;
    const done = consumeRedisStream(redis, {
      stream, group: "g", consumer: "c1", pool, signal: ac.signal,
      handler: async (entry: RedisStreamEntry, signal: AbortSignal) => {
        sawSignal &&= signal instanceof AbortSignal;
        seen.push(entry.fields.i!);
        await new Promise<void>((r) => setImmediate(r));
      },
    });
    await until(() => seen.length === 15, "all handled");
    await eventually(async () => (await redis.xlen(stream)) === 0, "XLEN 0 once all are done");
    assert.equal(await pendingCount(stream, "g"), 0);
    ac.abort();
    const stats = await done;
    assert.equal(typeof stats, "object");
    assert.ok(sawSignal);
    assert.deepEqual([...seen].sort((a, b) => Number(a) - Number(b)), Array.from({ length: 15 }, (_, i) => String(i)));
    assertNothingParked("after consumeRedisStream");
  });

  test("never reads more than the pool has room (pending in the group <= concurrency + queue)", T, async () => {
    const stream = key("room");
    for (let i = 0; i < 30; i++) await redis.xadd(stream, "*", "i", String(i));
    const pool = new Pool({ concurrency: 2, queue: 1 });
    const ac = stopper();
    const gate = deferred();
    let started = 0;
    const done = consumeRedisStream(redis, {
      stream, group: "g", consumer: "c1", pool, signal: ac.signal,
      handler: async () => {
        started++;
        await gate.promise;
      },
    });
    await until(() => started === 2, "two running");
    for (let i = 0; i < 5; i++) {
      const p = await pendingCount(stream, "g");
      assert.ok(p <= 3, `read and not done: ${p} > room 3`);
      await new Promise<void>((r) => setTimeout(r, 20));
    }
    gate.resolve();
    await eventually(async () => (await redis.xlen(stream)) === 0, "all done");
    ac.abort();
    await done;
  });

  test("room is the pool's free room: slots taken by other work are not read for", T, async () => {
    const stream = key("shared");
    for (let i = 0; i < 20; i++) await redis.xadd(stream, "*", "i", String(i));
    const pool = new Pool({ concurrency: 4 });
    const busy = deferred();
    for (let i = 0; i < 3; i++) await pool.submit(() => busy.promise);
    const ac = stopper();
    const gate = deferred();
    let started = 0;
    const done = consumeRedisStream(redis, {
      stream, group: "g", consumer: "c1", pool, signal: ac.signal,
      handler: async () => {
        started++;
        await gate.promise;
      },
    });
    await until(() => started === 1, "one handler in the one free slot");
    for (let i = 0; i < 5; i++) {
      const p = await pendingCount(stream, "g");
      assert.ok(p <= 1, `read ${p} with room for 1`);
      await new Promise<void>((r) => setTimeout(r, 20));
    }
    busy.resolve();
    gate.resolve();
    await eventually(async () => (await redis.xlen(stream)) === 0, "all done");
    ac.abort();
    await done;
  });

  test("room under maxLength comes back as consumers finish; nothing unread (or failed) is deleted", T, async () => {
    const stream = key("backlog");
    const sink = new RedisStreamSink(redis, { stream, maxLength: 2 });
    await sink.add({ job: "ok" });
    await sink.add({ job: "fail" });
    await assert.rejects(sink.add({ job: "third" }), BusyError);
    const ac = stopper();
    let handled = 0;
    const done = consumeRedisStream(redis, {
      stream, group: "g", consumer: "c1", pool: new Pool({ concurrency: 1 }), signal: ac.signal, claimIdleMs: 60_000,
      onError: () => {},
      handler: (entry: RedisStreamEntry) => {
        handled++;
        if (entry.fields.job === "fail") throw new Error("fails");
      },
    });
    await until(() => handled === 2, "both delivered");
    await eventually(async () => (await redis.xlen(stream)) === 1, "the done entry removed");
    const left = await redis.xrange(stream, "-", "+");
    assert.deepEqual(left.map(([, f]) => f[1]), ["fail"], "the failed entry is kept (pending)");
    assert.equal(await pendingCount(stream, "g"), 1);
    assert.equal(typeof (await sink.add({ job: "third" })), "string", "room came back");
    ac.abort();
    await done;
  });

  test("at start, the consumer's own pending entries first, then new ones", T, async () => {
    const stream = key("own");
    await redis.xgroup("CREATE", stream, "g", "0", "MKSTREAM");
    for (let i = 0; i < 4; i++) await redis.xadd(stream, "*", "i", String(i));
    // c1 read two and died before acking them
    await redis.xreadgroup("GROUP", "g", "c1", "COUNT", 2, "STREAMS", stream, ">");
    for (let i = 4; i < 6; i++) await redis.xadd(stream, "*", "i", String(i));
    const order: string[] = [];
    const ac = stopper();
    const done = consumeRedisStream(redis, {
      stream, group: "g", consumer: "c1", pool: new Pool({ concurrency: 1 }), signal: ac.signal,
      handler: (e: RedisStreamEntry) => void order.push(e.fields.i!),
    });
    await until(() => order.length === 6, "all six");
    assert.deepEqual(order.slice(0, 2), ["0", "1"], "own pending first");
    assert.deepEqual([...order].sort(), ["0", "1", "2", "3", "4", "5"]);
    ac.abort();
    await done;
  });

  test("claimIdleMs: entries idle past it, held by a dead consumer, are claimed and handled", T, async () => {
    const stream = key("claim");
    await redis.xgroup("CREATE", stream, "g", "0", "MKSTREAM");
    for (let i = 0; i < 3; i++) await redis.xadd(stream, "*", "i", String(i));
    await redis.xreadgroup("GROUP", "g", "dead", "COUNT", 3, "STREAMS", stream, ">");
    const seen: string[] = [];
    const ac = stopper();
    const done = consumeRedisStream(redis, {
      stream, group: "g", consumer: "live", pool: new Pool({ concurrency: 2 }), signal: ac.signal, claimIdleMs: 100,
      handler: (e: RedisStreamEntry) => void seen.push(e.fields.i!),
    });
    await until(() => seen.length === 3, "claimed from the dead consumer");
    await eventually(async () => (await redis.xlen(stream)) === 0, "removed after handling");
    ac.abort();
    await done;
  });

  test("maxDeliveries + deadLetterStream: an entry that keeps failing moves to the dead-letter stream", T, async () => {
    const stream = key("dl");
    const dead = key("dead");
    await redis.xadd(stream, "*", "job", "poison");
    let attempts = 0;
    const ac = stopper();
    const done = consumeRedisStream(redis, {
      stream, group: "g", consumer: "c1", pool: new Pool({ concurrency: 1 }), signal: ac.signal,
      claimIdleMs: 50, maxDeliveries: 2, deadLetterStream: dead, onError: () => {},
      handler: () => {
        attempts++;
        throw new Error("always");
      },
    });
    await eventually(async () => (await redis.xlen(dead)) === 1, "dead-lettered", 1000);
    assert.equal(await redis.xlen(stream), 0, "left the work stream");
    assert.ok(attempts >= 1 && attempts <= 2, `attempts ${attempts} within maxDeliveries`);
    const [[, fields]] = await redis.xrange(dead, "-", "+");
    assert.ok(fields!.includes("poison"), "the entry's fields travel to the dead-letter stream");
    ac.abort();
    await done;
  });

  test("an abort while handlers run resolves only after the work in flight settled (and it was removed)", T, async () => {
    const stream = key("drain");
    for (let i = 0; i < 5; i++) await redis.xadd(stream, "*", "i", String(i));
    const ac = stopper();
    const release = deferred();
    let started = 0;
    let finished = 0;
    const done = consumeRedisStream(redis, {
      stream, group: "g", consumer: "c1", pool: new Pool({ concurrency: 2 }), signal: ac.signal,
      handler: async () => {
        started++;
        await release.promise;
        finished++;
      },
    });
    await until(() => started === 2, "two in flight");
    ac.abort();
    let settled = false;
    void done.then(() => (settled = true), () => (settled = true));
    await new Promise<void>((r) => setTimeout(r, 50));
    assert.equal(settled, false, "waits for the work in flight");
    release.resolve();
    await done;
    assert.equal(finished, started);
    assert.equal(await pendingCount(stream, "g"), 0, "the finished entries were acked");
    assert.equal(await redis.xlen(stream), 5 - finished, "and deleted; the unread ones kept");
  });

  test("an already-aborted signal rejects with signal.reason and reads nothing", T, async () => {
    const stream = key("pre");
    await redis.xadd(stream, "*", "x", "1");
    const reason = new Error("already");
    let calls = 0;
    await assert.rejects(
      consumeRedisStream(redis, { stream, group: "g", consumer: "c", pool: new Pool({ concurrency: 1 }), signal: AbortSignal.abort(reason), handler: () => void calls++ }),
      (e) => e === reason,
    );
    assert.equal(calls, 0);
    assert.equal(await redis.xlen(stream), 1);
  });

  test("an already-aborted signal wins over bad options (rejects with signal.reason)", T, async () => {
    const reason = new Error("already");
    await assert.rejects(
      consumeRedisStream(redis, { stream: key("pre2"), group: "g", consumer: "c", pool: new Pool({ concurrency: 1 }), signal: AbortSignal.abort(reason), handler: () => {}, claimIdleMs: -1 }),
      (e) => e === reason,
    );
  });

  test("bad options reject with TypeError/RangeError naming the option", T, async () => {
    const base = { stream: key("opts"), group: "g", consumer: "c", pool: new Pool({ concurrency: 1 }), handler: () => {}, signal: AbortSignal.timeout(5000) };
    const cases: [Record<string, unknown>, string][] = [
      [{ ...base, stream: "" }, "stream"],
      [{ ...base, group: 1 }, "group"],
      [{ ...base, consumer: undefined }, "consumer"],
      [{ ...base, pool: {} }, "pool"],
      [{ ...base, handler: "h" }, "handler"],
      [{ ...base, claimIdleMs: 0 }, "claimIdleMs"],
      [{ ...base, claimIdleMs: -5 }, "claimIdleMs"],
      [{ ...base, maxDeliveries: 0 }, "maxDeliveries"],
      [{ ...base, maxDeliveries: 1.5 }, "maxDeliveries"],
    ];
    for (const [opts, name] of cases) {
      await assert.rejects(
        (async () => consumeRedisStream(redis, opts as never))(),
        (e) => (e instanceof TypeError || e instanceof RangeError) && new RegExp(name).test((e as Error).message),
        name,
      );
    }
  });
});
