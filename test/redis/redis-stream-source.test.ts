import { test, describe, before, after, afterEach } from "node:test";
import assert from "node:assert/strict";
import { Redis } from "ioredis";
import fc from "fast-check";
import { Pool, PoolClosedError } from "../../src/flow/index.js";
import { consumeRedisStream, RedisStreamSink, BusyError } from "../../src/redis/index.js";
import type { RedisStreamEntry } from "../../src/redis/index.js";
import { cleanup, connect, deferred, prefix, until, REDIS_HOST, REDIS_PORT } from "./helpers.js";
import { observed } from "../../src/core/registry.js";
import { snapshot } from "../../src/metrics/index.js";
import { uncovered } from "../../src/metrics/catalog.js";

/** The group's pending entries: total, and per consumer. */
async function pendingOf(redis: Redis, stream: string, group: string): Promise<{ total: number; byConsumer: Record<string, number> }> {
  const [total, , , consumers] = (await redis.xpending(stream, group)) as [number, string | null, string | null, [string, string][] | null];
  const byConsumer: Record<string, number> = {};
  for (const [name, count] of consumers ?? []) byConsumer[name] = Number(count);
  return { total, byConsumer };
}

async function fill(redis: Redis, stream: string, n: number, from = 0): Promise<void> {
  const pipe = redis.pipeline();
  for (let i = from; i < from + n; i++) pipe.xadd(stream, "*", "n", String(i));
  await pipe.exec();
}

describe("consumeRedisStream (real Redis on 127.0.0.1:6379)", { timeout: 60_000 }, () => {
  let redis: Redis;
  const keys = prefix("source");
  let k = 0;
  const names = (): { stream: string; group: string; dead: string } => {
    const base = `${keys}${k++}`;
    return { stream: `${base}:s`, group: "g", dead: `${base}:dead` };
  };

  before(async () => {
    redis = await connect();
  });
  // Every source a test starts is stopped after it, even when the test failed half-way.
  const controllers: AbortController[] = [];
  const track = (): AbortController => {
    const ac = new AbortController();
    controllers.push(ac);
    return ac;
  };
  const runs: Promise<unknown>[] = [];
  const consume: typeof consumeRedisStream = (client, options) => {
    const p = consumeRedisStream(client, options);
    runs.push(p.catch(() => {}));
    return p;
  };
  afterEach(async () => {
    for (const ac of controllers.splice(0)) ac.abort();
    await Promise.all(runs.splice(0));
  });
  after(async () => {
    await cleanup(redis, keys);
    redis.disconnect();
  });

  test("handles every entry once, removes it (XACK + XDEL) when done, and resolves with the stats after the abort", async () => {
    const { stream, group } = names();
    await fill(redis, stream, 30);
    const pool = new Pool({ concurrency: 4 });
    const ac = track();
    const seen: string[] = [];
    const run = consume(redis, {
      stream, group, consumer: "c1", pool, signal: ac.signal, blockMs: 50,
      handler: (entry) => {
        seen.push(entry.fields.n as string);
        assert.equal(entry.deliveries, 1);
        assert.equal(entry.stream, stream);
      },
    });
    await until(async () => seen.length === 30 && (await redis.xlen(stream)) === 0, "all 30 handled and removed");
    ac.abort();
    const stats = await run;
    assert.deepEqual(seen.map(Number).sort((a, b) => a - b), Array.from({ length: 30 }, (_, i) => i));
    assert.equal(stats.read, 30);
    assert.equal(stats.completed, 30);
    assert.equal(stats.failed, 0);
    assert.equal(stats.inFlight, 0);
    assert.equal((await pendingOf(redis, stream, group)).total, 0);
  });

  test("never holds more entries than the pool has room for (free slots + free queue), counted on the server", async () => {
    const { stream, group } = names();
    await fill(redis, stream, 40);
    const pool = new Pool({ concurrency: 3, queue: 2 });
    const ac = track();
    const gates: Array<() => void> = [];
    let running = 0;
    let peak = 0;
    let released = 0;
    const run = consume(redis, {
      stream, group, consumer: "c1", pool, signal: ac.signal, blockMs: 50,
      handler: async () => {
        running++;
        peak = Math.max(peak, running);
        await new Promise<void>((r) => gates.push(r));
        running--;
      },
    });
    let maxPending = 0;
    while (released < 40) {
      await until(() => gates.length > 0, "a handler waiting");
      const { total } = await pendingOf(redis, stream, group);
      maxPending = Math.max(maxPending, total);
      assert.ok(total <= 5, `delivered and not done: ${total}, room is 5`);
      const batch = gates.splice(0, Math.floor(Math.random() * gates.length) + 1);
      released += batch.length;
      batch.forEach((g) => g());
    }
    await until(async () => (await redis.xlen(stream)) === 0, "all removed");
    ac.abort();
    const stats = await run;
    assert.equal(peak, 3, "the pool's concurrency is used");
    assert.equal(maxPending, 5, "the room (3 slots + 2 queue) was filled, never more");
    assert.equal(stats.completed, 40);
    assert.equal(await redis.xlen(stream), 0);
  });

  test("on start it first handles its own pending entries (from id 0), counted as a new delivery", async () => {
    const { stream, group } = names();
    await redis.xgroup("CREATE", stream, group, "0", "MKSTREAM");
    await fill(redis, stream, 5);
    // consumer c1 took 3 entries and "crashed" before finishing them
    await redis.xreadgroup("GROUP", group, "c1", "COUNT", 3, "STREAMS", stream, ">");
    const pool = new Pool({ concurrency: 1 });
    const ac = track();
    const order: Array<[string, number]> = [];
    const run = consume(redis, {
      stream, group, consumer: "c1", pool, signal: ac.signal, blockMs: 50,
      handler: (entry) => void order.push([entry.fields.n as string, entry.deliveries]),
    });
    await until(() => order.length === 5, "5 handled");
    ac.abort();
    const stats = await run;
    assert.deepEqual(order, [["0", 2], ["1", 2], ["2", 2], ["3", 1], ["4", 1]]);
    assert.equal(stats.recovered, 3);
    assert.equal(stats.read, 2);
    assert.equal(await redis.xlen(stream), 0);
  });

  test("XAUTOCLAIM: entries of a consumer that died are taken over once idle past claimIdleMs", async () => {
    const { stream, group } = names();
    await redis.xgroup("CREATE", stream, group, "0", "MKSTREAM");
    await fill(redis, stream, 6);
    await redis.xreadgroup("GROUP", group, "dead", "COUNT", 4, "STREAMS", stream, ">");
    const pool = new Pool({ concurrency: 2 });
    const ac = track();
    const seen = new Map<string, number>();
    const run = consume(redis, {
      stream, group, consumer: "alive", pool, signal: ac.signal, blockMs: 50, claimIdleMs: 100,
      handler: (entry) => void seen.set(entry.fields.n as string, entry.deliveries),
    });
    await until(() => seen.size === 6, "all 6 handled");
    ac.abort();
    const stats = await run;
    for (const n of ["0", "1", "2", "3"]) assert.equal(seen.get(n), 2, `entry ${n} was claimed: its second delivery`);
    for (const n of ["4", "5"]) assert.equal(seen.get(n), 1);
    assert.equal(stats.claimed, 4);
    assert.equal(stats.read, 2);
    assert.deepEqual(await pendingOf(redis, stream, group), { total: 0, byConsumer: {} });
    assert.equal(await redis.xlen(stream), 0);
  });

  test("dead consumers are pruned from the group once their entries were claimed (the consumer list stays bounded)", async () => {
    const { stream, group } = names();
    await redis.xgroup("CREATE", stream, group, "0", "MKSTREAM");
    await fill(redis, stream, 3);
    await redis.xreadgroup("GROUP", group, "holder", "COUNT", 2, "STREAMS", stream, ">"); // died holding 2
    await redis.call("XGROUP", "CREATECONSUMER", stream, group, "ghost"); // died holding nothing
    const consumersOf = async (): Promise<string[]> =>
      ((await redis.xinfo("CONSUMERS", stream, group)) as string[][]).map((c) => c[c.indexOf("name") + 1] as string).sort();
    assert.deepEqual(await consumersOf(), ["ghost", "holder"]);
    const ac = track();
    const seen = new Set<string>();
    const run = consume(redis, {
      stream, group, consumer: "c1", pool: new Pool({ concurrency: 2 }), signal: ac.signal, blockMs: 20, claimIdleMs: 60,
      handler: (entry) => void seen.add(entry.fields.n as string),
    });
    await until(async () => seen.size === 3 && (await consumersOf()).join() === "c1", "the holder's entries claimed and both dead consumers pruned");
    ac.abort();
    const stats = await run;
    assert.equal(stats.claimed, 2);
    assert.equal(stats.pruned, 2);
    assert.equal(await redis.xlen(stream), 0);
  });

  test("a live consumer's long task is touched, so another consumer does not claim it", async () => {
    const { stream, group } = names();
    await fill(redis, stream, 1);
    const claimIdleMs = 150;
    const calls: string[] = [];
    const slowStarted = deferred();
    const release = deferred();
    const ac = track();
    const slow = consume(redis, {
      stream, group, consumer: "slow", pool: new Pool({ concurrency: 1 }), signal: ac.signal, blockMs: 50, claimIdleMs,
      handler: async () => {
        calls.push("slow");
        slowStarted.resolve();
        await release.promise;
      },
    });
    await slowStarted.promise;
    const thief = consume(redis, {
      stream, group, consumer: "thief", pool: new Pool({ concurrency: 1 }), signal: ac.signal, blockMs: 50, claimIdleMs,
      handler: () => void calls.push("thief"),
    });
    // The task outlives claimIdleMs several times over: without touches it would be claimed.
    // (The wait is the subject of the test, not a synchronisation.)
    await new Promise((r) => setTimeout(r, claimIdleMs * 6));
    const idle = (await redis.xpending(stream, group, "IDLE", 0, "-", "+", 10)) as [string, string, number, number][];
    assert.equal(idle.length, 1);
    assert.equal(idle[0]?.[1], "slow", "still the slow consumer's");
    assert.ok((idle[0]?.[2] as number) < claimIdleMs, `idle ${idle[0]?.[2]} ms: reset by the touches`);
    release.resolve();
    await until(async () => (await redis.xlen(stream)) === 0, "the entry removed");
    ac.abort();
    const [s1, s2] = await Promise.all([slow, thief]);
    assert.deepEqual(calls, ["slow"]);
    assert.equal(s2.claimed, 0);
    assert.equal(s1.completed, 1);
  });

  test("a failed entry is delivered again after claimIdleMs and dead-lettered after maxDeliveries (copied, acked, deleted)", async () => {
    const { stream, group, dead } = names();
    await fill(redis, stream, 2);
    const deliveries: Array<[string, number]> = [];
    const errors: unknown[] = [];
    const ac = track();
    const run = consume(redis, {
      stream, group, consumer: "c1", pool: new Pool({ concurrency: 2 }), signal: ac.signal, blockMs: 50,
      claimIdleMs: 60, maxDeliveries: 3, deadLetterStream: dead,
      onError: (e, entry) => void (entry !== undefined && errors.push(e)),
      handler: (entry: RedisStreamEntry) => {
        deliveries.push([entry.fields.n as string, entry.deliveries]);
        if (entry.fields.n === "0") throw new Error("poison");
      },
    });
    await until(async () => (await redis.xlen(dead)) === 1 && (await redis.xlen(stream)) === 0, "the poison entry dead-lettered");
    ac.abort();
    const stats = await run;
    assert.deepEqual(deliveries.filter(([n]) => n === "0").map(([, d]) => d), [1, 2, 3], "exactly maxDeliveries attempts");
    assert.deepEqual(deliveries.filter(([n]) => n === "1"), [["1", 1]]);
    assert.equal(errors.length, 3);
    const [[, fields]] = (await redis.xrange(dead, "-", "+")) as [[string, string[]]];
    const f: Record<string, string> = {};
    for (let i = 0; i < fields.length; i += 2) f[fields[i] as string] = fields[i + 1] as string;
    assert.equal(f.n, "0");
    assert.equal(f["sluice-stream"], stream);
    assert.equal(f["sluice-group"], group);
    assert.equal(f["sluice-deliveries"], "3");
    assert.match(f["sluice-reason"] as string, /poison/);
    assert.match(f["sluice-id"] as string, /^\d+-\d+$/);
    assert.equal(stats.deadLettered, 1);
    assert.equal(stats.failed, 3);
    assert.equal(stats.completed, 1);
    assert.equal((await pendingOf(redis, stream, group)).total, 0);
  });

  test("entries past maxDeliveries found by a claim (a consumer that kept crashing) are dead-lettered without a handler call", async () => {
    const { stream, group, dead } = names();
    await redis.xgroup("CREATE", stream, group, "0", "MKSTREAM");
    await fill(redis, stream, 1);
    for (let i = 0; i < 2; i++) await redis.xreadgroup("GROUP", group, "crashy", "COUNT", 1, "STREAMS", stream, "0");
    await redis.xreadgroup("GROUP", group, "crashy", "COUNT", 1, "STREAMS", stream, ">");
    await redis.xreadgroup("GROUP", group, "crashy", "COUNT", 1, "STREAMS", stream, "0"); // 2 deliveries so far
    const ac = track();
    let calls = 0;
    const run = consume(redis, {
      stream, group, consumer: "c2", pool: new Pool({ concurrency: 1 }), signal: ac.signal, blockMs: 50,
      claimIdleMs: 30, maxDeliveries: 2, deadLetterStream: dead,
      handler: () => void calls++,
    });
    await until(async () => (await redis.xlen(dead)) === 1, "dead-lettered by the claim");
    ac.abort();
    const stats = await run;
    assert.equal(calls, 0);
    assert.equal(stats.deadLettered, 1);
    assert.equal(await redis.xlen(stream), 0);
  });

  test("the abort stops a blocked read at once and waits for the work in flight, which is then acked", async () => {
    const { stream, group } = names();
    await fill(redis, stream, 1);
    const started = deferred();
    const release = deferred();
    const ac = track();
    let settled = false;
    const run = consume(redis, {
      stream, group, consumer: "c1", pool: new Pool({ concurrency: 2 }), signal: ac.signal,
      blockMs: 600_000, // a read that would block for ten minutes: the abort must unblock it
      handler: async () => {
        started.resolve();
        await release.promise;
      },
    }).then((s) => {
      settled = true;
      return s;
    });
    await started.promise;
    // wait until the loop is blocked in XREADGROUP on its own connection
    await until(async () => ((await redis.call("CLIENT", "LIST")) as string).split("\n").some((l) => l.includes("cmd=xreadgroup") && l.includes("flags=b")), "the blocked read");
    ac.abort();
    await new Promise((r) => setImmediate(r));
    assert.equal(settled, false, "still draining the entry in flight");
    release.resolve();
    const stats = await run;
    assert.equal(stats.completed, 1);
    assert.equal(await redis.xlen(stream), 0);
  });

  test("a sink and a source together: producers see BusyError at maxLength, every entry arrives once", async () => {
    const { stream, group } = names();
    const sink = new RedisStreamSink(redis, { stream, maxLength: 8, retryAfterMs: 5 });
    const got = new Set<string>();
    const ac = track();
    const run = consume(redis, {
      stream, group, consumer: "c1", pool: new Pool({ concurrency: 2 }), signal: ac.signal, blockMs: 20,
      handler: async (entry) => {
        await new Promise((r) => setTimeout(r, 1));
        got.add(entry.fields.n as string);
      },
    });
    let busy = 0;
    let maxLen = 0;
    for (let i = 0; i < 200; i++) {
      for (;;) {
        try {
          await sink.add({ n: String(i) });
          break;
        } catch (e) {
          if (!(e instanceof BusyError)) throw e;
          busy++;
          maxLen = Math.max(maxLen, await redis.xlen(stream));
          await new Promise((r) => setTimeout(r, e.retryAfterMs));
        }
      }
    }
    await until(() => got.size === 200, "all 200 consumed");
    ac.abort();
    const stats = await run;
    assert.ok(busy > 0, "the producer was faster and was refused");
    assert.ok(maxLen <= 8, `XLEN ${maxLen} stayed within maxLength`);
    assert.equal(stats.completed, 200);
    assert.equal(stats.duplicates, 0);
  });

  test("randomized: pool sizes, failures and dead letters: every entry done or dead-lettered once, the room never exceeded", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 0, max: 3 }),
        fc.array(fc.constantFrom("ok", "fail-once", "poison"), { minLength: 1, maxLength: 25 }),
        async (concurrency, queue, kinds) => {
          const { stream, group, dead } = names();
          const pipe = redis.pipeline();
          kinds.forEach((kind, i) => pipe.xadd(stream, "*", "n", String(i), "kind", kind));
          await pipe.exec();
          const ac = track();
          let running = 0;
          let peak = 0;
          let maxPending = 0;
          const done = new Map<string, number>();
          // failed entries wait in the group (pending, not in the pool) until redelivered
          const awaiting = new Set<string>();
          let peakAwaiting = 0;
          const run = consume(redis, {
            stream, group, consumer: "c", pool: new Pool({ concurrency, queue }), signal: ac.signal,
            blockMs: 20, claimIdleMs: 40, maxDeliveries: 2, deadLetterStream: dead, onError: () => {},
            handler: async (entry) => {
              running++;
              peak = Math.max(peak, running);
              awaiting.delete(entry.id);
              try {
                const { total } = await pendingOf(redis, stream, group);
                maxPending = Math.max(maxPending, total);
                const kind = entry.fields.kind;
                if (kind === "poison" || (kind === "fail-once" && entry.deliveries === 1)) {
                  if (entry.deliveries < 2) awaiting.add(entry.id);
                  peakAwaiting = Math.max(peakAwaiting, awaiting.size);
                  throw new Error(kind);
                }
                done.set(entry.fields.n as string, (done.get(entry.fields.n as string) ?? 0) + 1);
              } finally {
                running--;
              }
            },
          });
          await until(async () => (await redis.xlen(stream)) === 0, "the stream emptied", 20_000);
          ac.abort();
          const stats = await run;
          const poison = kinds.filter((k) => k === "poison").length;
          assert.ok(peak <= concurrency, `peak ${peak} <= concurrency ${concurrency}`);
          assert.ok(maxPending <= concurrency + queue + peakAwaiting, `pending ${maxPending} <= room ${concurrency + queue} + failed awaiting redelivery ${peakAwaiting}`);
          assert.equal(done.size, kinds.length - poison);
          for (const count of done.values()) assert.equal(count, 1);
          assert.equal(await redis.xlen(dead), poison);
          assert.equal(stats.deadLettered, poison);
          assert.equal((await pendingOf(redis, stream, group)).total, 0);
        },
      ),
      { numRuns: 8 },
    );
  });

  test("a named source is listed for sluice/metrics while it runs, with its stats", async () => {
    const { stream, group } = names();
    await fill(redis, stream, 3);
    const ac = track();
    let handled = 0;
    const run = consume(redis, { stream, group, consumer: "c", pool: new Pool({ concurrency: 1 }), signal: ac.signal, blockMs: 20, name: "jobs-source", handler: () => void handled++ });
    await until(() => handled === 3, "3 handled");
    const listed = [...observed()].find((o) => o.boundary.name === "jobs-source");
    assert.equal(listed?.kind, "redis-stream-source");
    await until(() => (listed?.boundary.stats as { completed: number }).completed === 3, "stats read live");
    const entry = snapshot().find((e) => e.name === "jobs-source");
    assert.equal(entry?.kind, "redis-stream-source");
    assert.deepEqual(uncovered(entry!), [], "every numeric stat has a metric of its own");
    ac.abort();
    await run;
    await assert.rejects(consumeRedisStream(redis, { stream, group, consumer: "c", pool: new Pool({ concurrency: 1 }), signal: new AbortController().signal, name: 1 as unknown as string, handler: () => {} }), /TypeError: options.name/);
  });

  test("a pool closed under the source: it stops reading, lets the work in flight finish, and rejects with PoolClosedError", async () => {
    const { stream, group } = names();
    await fill(redis, stream, 5);
    const ac = track();
    const pool = new Pool({ concurrency: 1 });
    const started = deferred();
    const release = deferred();
    let handled = 0;
    const run = consume(redis, {
      stream, group, consumer: "c", pool, signal: ac.signal, blockMs: 20,
      handler: async () => {
        started.resolve();
        await release.promise;
        handled++;
      },
    });
    await started.promise;
    pool.close();
    release.resolve();
    await assert.rejects(run, PoolClosedError);
    assert.equal(handled, 1, "the entry in flight finished; nothing more was read");
    assert.equal(await redis.xlen(stream), 4, "the unread entries stay in the stream");
    assert.equal((await pendingOf(redis, stream, group)).total, 0);
  });

  test("a lazyConnect client that has not connected yet is connected by the source", async () => {
    const { stream, group } = names();
    await fill(redis, stream, 2);
    const lazy = new Redis({ host: REDIS_HOST, port: REDIS_PORT, enableOfflineQueue: false, lazyConnect: true });
    lazy.on("error", () => {});
    try {
      assert.equal(lazy.status, "wait");
      const ac = track();
      let handled = 0;
      const run = consume(lazy, { stream, group, consumer: "c", pool: new Pool({ concurrency: 1 }), signal: ac.signal, blockMs: 20, handler: () => void handled++ });
      await until(() => handled === 2, "both handled");
      ac.abort();
      assert.equal((await run).completed, 2);
    } finally {
      lazy.disconnect();
    }
  });

  test("a stream with a second consumer group is refused (it is consumed as a work queue)", async () => {
    const { stream, group } = names();
    await redis.xgroup("CREATE", stream, group, "0", "MKSTREAM");
    await redis.xgroup("CREATE", stream, "other", "0");
    const ac = track();
    await assert.rejects(
      consume(redis, { stream, group, consumer: "c", pool: new Pool({ concurrency: 1 }), signal: ac.signal, handler: () => {} }),
      /2 consumer groups/,
    );
  });

  test("a missing group with createGroup: false is refused", async () => {
    const { stream, group } = names();
    await fill(redis, stream, 1);
    await assert.rejects(
      consume(redis, { stream, group, consumer: "c", pool: new Pool({ concurrency: 1 }), signal: new AbortController().signal, createGroup: false, handler: () => {} }),
      /no group "g"/,
    );
  });

  test("an already-aborted signal rejects with its reason and reads nothing", async () => {
    const { stream, group } = names();
    await fill(redis, stream, 1);
    const reason = new Error("already");
    let calls = 0;
    await assert.rejects(
      consume(redis, { stream, group, consumer: "c", pool: new Pool({ concurrency: 1 }), signal: AbortSignal.abort(reason), handler: () => void calls++ }),
      (e) => e === reason,
    );
    assert.equal(calls, 0);
    assert.equal(await redis.exists(stream), 1);
    assert.equal(((await redis.xinfo("GROUPS", stream)) as unknown[]).length, 0, "no group created");
  });

  test("bad options reject with TypeError/RangeError naming the option; an offline-queue client is refused", async () => {
    const base = { stream: "s", group: "g", consumer: "c", pool: new Pool({ concurrency: 1 }), signal: new AbortController().signal, handler: () => {} };
    const bad: Array<[Record<string, unknown>, RegExp]> = [
      [{ stream: "" }, /TypeError: options.stream/],
      [{ group: 1 }, /TypeError: options.group/],
      [{ consumer: undefined }, /TypeError: options.consumer/],
      [{ pool: {} }, /TypeError: options.pool/],
      [{ handler: "x" }, /TypeError: options.handler/],
      [{ signal: undefined }, /TypeError: options.signal is required/],
      [{ claimIdleMs: 0 }, /RangeError: options.claimIdleMs must be a positive safe integer, got 0/],
      [{ maxDeliveries: 0, deadLetterStream: "d" }, /RangeError: options.maxDeliveries/],
      [{ maxDeliveries: 3 }, /TypeError: options.deadLetterStream is required/],
      [{ deadLetterStream: "d" }, /TypeError: options.deadLetterStream needs a finite options.maxDeliveries/],
      [{ maxDeliveries: 3, deadLetterStream: "s" }, /RangeError: options.deadLetterStream must differ/],
      [{ blockMs: -1 }, /RangeError: options.blockMs/],
      [{ createGroup: "yes" }, /TypeError: options.createGroup/],
      [{ onError: 1 }, /TypeError: options.onError/],
    ];
    for (const [patch, re] of bad) {
      await assert.rejects(consume(redis, { ...base, ...patch } as never), (e: Error) => re.test(`${e.name}: ${e.message}`), `${JSON.stringify(patch)} -> ${re}`);
    }
  });
});
