/**
 * Conformance: DESIGN.md "sluice/nats, sluice/redis: settled details" (issue 15), the NATS half,
 * against the real NATS JetStream server on 127.0.0.1:4222 (fails clearly when it is missing).
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import {
  AckPolicy, DiscardPolicy, RetentionPolicy, StorageType, jetstream, jetstreamManager,
  type Consumer, type JetStreamClient, type JetStreamManager,
} from "@nats-io/jetstream";
import { BusyError } from "../../src/index.js";
import { Pool } from "../../src/flow/index.js";
import { JetStreamSink, consumeJetStream } from "../../src/nats/index.js";
import { assertNothingParked, deferred, settle, until } from "./helpers.js";

const T = { timeout: 60_000 };
const URL = process.env.NATS_URL ?? "127.0.0.1:4222";

let nc: NatsConnection;
let js: JetStreamClient;
let jsm: JetStreamManager;
const streams: string[] = [];
/** Every source started here is stopped at the end, even when its test failed. */
const controllers: AbortController[] = [];
function stopper(): AbortController {
  const ac = new AbortController();
  controllers.push(ac);
  return ac;
}

before(async () => {
  try {
    nc = await connect({ servers: URL, timeout: 3000 });
  } catch (e) {
    throw new Error(`the NATS conformance tests need NATS with JetStream on ${URL} (nats-server -js): ${(e as Error).message}`);
  }
  js = jetstream(nc);
  jsm = await jetstreamManager(nc);
});

after(async () => {
  for (const ac of controllers) ac.abort();
  for (const s of streams) await jsm.streams.delete(s).catch(() => undefined);
  await nc?.close();
});

function uniq(p: string): string {
  return `conf_${p}_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
}

/** A work-queue stream (discard new) with a durable pull consumer. */
async function workQueue(p: string, maxMsgs = -1, consumerCfg: Record<string, unknown> = {}): Promise<{ name: string; subject: string; consumer: Consumer; durable: string }> {
  const name = uniq(p);
  streams.push(name);
  await jsm.streams.add({ name, subjects: [`${name}.>`], retention: RetentionPolicy.Workqueue, storage: StorageType.Memory, discard: DiscardPolicy.New, max_msgs: maxMsgs });
  const durable = "workers";
  await jsm.consumers.add(name, { durable_name: durable, ack_policy: AckPolicy.Explicit, ack_wait: 30_000_000_000, ...consumerCfg });
  return { name, subject: `${name}.job`, consumer: await js.consumers.get(name, durable), durable };
}

/** Polls the server (bounded) until `cond` holds. */
async function eventually(cond: () => Promise<boolean>, what: string, tries = 300): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (await cond()) return;
    await new Promise<void>((r) => setTimeout(r, 10));
  }
  assert.fail(`timed out waiting for: ${what}`);
}

async function publishN(subject: string, n: number): Promise<void> {
  for (let i = 0; i < n; i++) await js.publish(subject, String(i));
}

describe("consumeJetStream(consumer, { pool, handler, maxDeliver, deadLetterSubject, signal })", () => {
  test("handles every message with handler(msg, signal), acks it; resolves with the stats once signal aborted and work settled", T, async () => {
    const q = await workQueue("all");
    await publishN(q.subject, 20);
    const pool = new Pool({ concurrency: 4, queue: 4 });
    const ac = stopper();
    const seen = new Set<string>();
    let sawSignal = true;
    const done = consumeJetStream(q.consumer, {
      pool,
      signal: ac.signal,
      handler: async (msg, signal) => {
        sawSignal &&= signal instanceof AbortSignal;
        seen.add(msg.string());
        await new Promise<void>((r) => setImmediate(r));
      },
    });
    assert.ok(done instanceof Promise);
    await until(() => seen.size === 20, "all 20 handled");
    await until(() => pool.stats.running === 0 && pool.stats.queued === 0, "pool idle");
    ac.abort();
    const stats = await done;
    assert.equal(typeof stats, "object");
    assert.ok(sawSignal, "the handler got an AbortSignal");
    assert.equal(stats.acked, 20, "stats: acked");
    // Acks are not confirmed by default: the server applies them a few ms later.
    await eventually(async () => (await jsm.consumers.info(q.name, q.durable)).num_ack_pending === 0, "everything acked on the server");
    await eventually(async () => (await jsm.streams.info(q.name)).state.messages === 0, "acked messages left the work-queue stream");
    assertNothingParked("after consumeJetStream");
  });

  test("never more messages asked for than the pool has room (concurrency + queue)", T, async () => {
    const q = await workQueue("room");
    await publishN(q.subject, 40);
    const pool = new Pool({ concurrency: 2, queue: 1 });
    const ac = stopper();
    const gate = deferred();
    let started = 0;
    const done = consumeJetStream(q.consumer, {
      pool,
      signal: ac.signal,
      handler: async () => {
        started++;
        await gate.promise;
      },
    });
    await until(() => started === 2, "two handlers running");
    // Let fetches come and go for a while; the server must never have delivered more than 3.
    for (let i = 0; i < 5; i++) {
      const info = await jsm.consumers.info(q.name, q.durable);
      assert.ok(info.num_ack_pending <= 3, `delivered and unacked: ${info.num_ack_pending} > room 3`);
      assert.ok(info.delivered.consumer_seq <= 3, `delivered ${info.delivered.consumer_seq} > room 3`);
      await new Promise<void>((r) => setTimeout(r, 20));
    }
    assert.equal(started, 2);
    gate.resolve();
    await until(() => pool.stats.completed >= 40, "all 40 handled");
    ac.abort();
    await done;
  });

  test("room is the pool's free room: slots taken by other work are not asked for", T, async () => {
    const q = await workQueue("shared");
    await publishN(q.subject, 20);
    const pool = new Pool({ concurrency: 4 });
    const busy = deferred();
    for (let i = 0; i < 3; i++) await pool.submit(() => busy.promise); // 3 of 4 slots taken by other work
    const ac = stopper();
    const gate = deferred();
    let started = 0;
    const done = consumeJetStream(q.consumer, {
      pool,
      signal: ac.signal,
      handler: async () => {
        started++;
        await gate.promise;
      },
    });
    await until(() => started === 1, "one handler in the one free slot");
    for (let i = 0; i < 5; i++) {
      const info = await jsm.consumers.info(q.name, q.durable);
      assert.ok(info.delivered.consumer_seq <= 1, `delivered ${info.delivered.consumer_seq} with room for 1`);
      await new Promise<void>((r) => setTimeout(r, 20));
    }
    busy.resolve();
    gate.resolve();
    await until(() => pool.stats.completed >= 23, "all handled");
    ac.abort();
    await done;
  });

  test("an abort while handlers run resolves only after the work in flight settled", T, async () => {
    const q = await workQueue("drain");
    await publishN(q.subject, 5);
    const pool = new Pool({ concurrency: 2 });
    const ac = stopper();
    let running = 0;
    let started = 0;
    const release = deferred();
    const done = consumeJetStream(q.consumer, {
      pool,
      signal: ac.signal,
      handler: async () => {
        running++;
        started++;
        await release.promise;
        running--;
      },
    });
    await until(() => started === 2, "two in flight");
    ac.abort();
    let settled = false;
    void done.then(() => (settled = true), () => (settled = true));
    await new Promise<void>((r) => setTimeout(r, 30));
    assert.equal(settled, false, "waits for the work in flight");
    release.resolve();
    await done;
    assert.equal(running, 0);
    await eventually(async () => (await jsm.consumers.info(q.name, q.durable)).num_ack_pending === 0, "in-flight messages acked, none left by the source");
  });

  test("a long task is kept with working(): no redelivery past ack_wait while its handler runs (issue 15)", T, async () => {
    const q = await workQueue("working", -1, { ack_wait: 1_000_000_000 }); // 1 s
    await js.publish(q.subject, "long");
    const ac = stopper();
    const deliveries: number[] = [];
    let finished = 0;
    const done = consumeJetStream(q.consumer, {
      pool: new Pool({ concurrency: 2 }),
      signal: ac.signal,
      handler: async (msg) => {
        deliveries.push(msg.info.deliveryCount);
        await new Promise<void>((r) => setTimeout(r, 2500));
        finished++;
      },
    });
    await until(() => finished === 1, "the long task finished", 20_000);
    assert.deepEqual(deliveries, [1], "delivered once, not again after ack_wait");
    await eventually(async () => (await jsm.consumers.info(q.name, q.durable)).num_ack_pending === 0, "acked");
    assert.equal((await jsm.consumers.info(q.name, q.durable)).num_redelivered, 0);
    ac.abort();
    await done;
  });

  test("an already-aborted signal rejects with signal.reason and fetches nothing", T, async () => {
    const q = await workQueue("pre");
    await publishN(q.subject, 3);
    const reason = new Error("already");
    let calls = 0;
    await assert.rejects(
      consumeJetStream(q.consumer, { pool: new Pool({ concurrency: 1 }), signal: AbortSignal.abort(reason), handler: () => void calls++ }),
      (e) => e === reason,
    );
    assert.equal(calls, 0);
    const info = await jsm.consumers.info(q.name, q.durable);
    assert.equal(info.delivered.consumer_seq, 0);
  });

  test("after maxDeliver deliveries a failing message goes to deadLetterSubject (and leaves the stream)", T, async () => {
    const q = await workQueue("dlq");
    const dlq = uniq("dead");
    streams.push(dlq);
    await jsm.streams.add({ name: dlq, subjects: [`${dlq}.>`], storage: StorageType.Memory });
    await js.publish(q.subject, "poison");
    const pool = new Pool({ concurrency: 1 });
    const ac = stopper();
    let attempts = 0;
    const done = consumeJetStream(q.consumer, {
      pool,
      signal: ac.signal,
      maxDeliver: 2,
      deadLetterSubject: `${dlq}.orders`,
      handler: () => {
        attempts++;
        throw new Error("always fails");
      },
    });
    await until(() => attempts >= 2, "two deliveries");
    let dead = 0;
    for (let i = 0; i < 200 && dead === 0; i++) {
      dead = (await jsm.streams.info(dlq)).state.messages;
      if (dead === 0) await new Promise<void>((r) => setTimeout(r, 10));
    }
    assert.equal(dead, 1, "dead-lettered once");
    const m = await jsm.streams.getMessage(dlq, { seq: 1 });
    assert.equal(m?.string(), "poison");
    assert.equal(attempts, 2, "maxDeliver deliveries");
    ac.abort();
    await done;
    assert.equal((await jsm.streams.info(q.name)).state.messages, 0, "termed: not redelivered");
  });

  test("bad options throw/reject with TypeError/RangeError naming the option", T, async () => {
    const q = await workQueue("opts");
    const base = { pool: new Pool({ concurrency: 1 }), handler: () => {}, signal: AbortSignal.timeout(5000) };
    const cases: [Record<string, unknown>, string][] = [
      [{ ...base, pool: undefined }, "pool"],
      [{ ...base, handler: 42 }, "handler"],
      [{ ...base, maxDeliver: 0 }, "maxDeliver"],
      [{ ...base, maxDeliver: 1.5 }, "maxDeliver"],
      [{ ...base, deadLetterSubject: 42 }, "deadLetterSubject"],
      [{ ...base, signal: "soon" }, "signal"],
    ];
    for (const [opts, name] of cases) {
      await assert.rejects(
        (async () => consumeJetStream(q.consumer, opts as never))(),
        (e) => (e instanceof TypeError || e instanceof RangeError) && new RegExp(name).test((e as Error).message),
        name,
      );
    }
  });
});

describe("new JetStreamSink(js, { maxInFlight, timeoutMs }).publish(subject, data, { msgID, signal })", () => {
  test("publish resolves once stored; a full stream rejects with BusyError (ERR_BUSY, retryAfterMs)", T, async () => {
    const q = await workQueue("full", 2);
    const sink = new JetStreamSink(js, { maxInFlight: 4, timeoutMs: 2000 });
    await sink.publish(q.subject, "a");
    await sink.publish(q.subject, "b");
    await assert.rejects(sink.publish(q.subject, "c"), (e) => {
      assert.ok(e instanceof BusyError, `expected BusyError, got ${String(e)}`);
      assert.equal((e as BusyError).code, "ERR_BUSY");
      assert.equal(typeof (e as BusyError).retryAfterMs, "number", "a retryAfterMs hint");
      return true;
    });
    assert.equal((await jsm.streams.info(q.name)).state.messages, 2, "nothing trimmed");
  });

  test("a publish timeout rejects with BusyError (retryAfterMs)", T, async () => {
    const subject = uniq("silent");
    const sub = nc.subscribe(subject); // a responder that never answers
    try {
      const sink = new JetStreamSink(js, { timeoutMs: 200 });
      await assert.rejects(sink.publish(subject, "x"), (e) => e instanceof BusyError && typeof (e as BusyError).retryAfterMs === "number");
    } finally {
      sub.unsubscribe();
    }
  });

  test("msgID: a retried publish with the same id is stored once", T, async () => {
    const q = await workQueue("dedup");
    const sink = new JetStreamSink(js);
    const a = await sink.publish(q.subject, "once", { msgID: "order-1" });
    const b = await sink.publish(q.subject, "once", { msgID: "order-1" });
    assert.equal(a.seq, b.seq);
    assert.equal(b.duplicate, true);
    assert.equal((await jsm.streams.info(q.name)).state.messages, 1);
  });

  test("maxInFlight bounds unacknowledged publishes; others wait (nothing lost)", T, async () => {
    const q = await workQueue("inflight");
    const sink = new JetStreamSink(js, { maxInFlight: 2 });
    const all = Array.from({ length: 10 }, (_, i) => sink.publish(q.subject, String(i)));
    assert.ok(sink.stats.inFlight <= 2, `in flight ${sink.stats.inFlight}`);
    await Promise.all(all);
    assert.equal((await jsm.streams.info(q.name)).state.messages, 10);
  });

  test("signal: an already-aborted signal rejects with signal.reason and sends nothing", T, async () => {
    const q = await workQueue("abort");
    const sink = new JetStreamSink(js);
    const reason = new Error("no");
    await assert.rejects(sink.publish(q.subject, "x", { signal: AbortSignal.abort(reason) }), (e) => e === reason);
    assert.equal((await jsm.streams.info(q.name)).state.messages, 0);
  });

  test("an abort while waiting for an in-flight slot rejects with signal.reason and leaves nothing parked", T, async () => {
    const subject = uniq("slow");
    const sub = nc.subscribe(subject); // never answers: the first publish holds the only slot until its timeout
    try {
      const sink = new JetStreamSink(js, { maxInFlight: 1, timeoutMs: 1500 });
      const first = sink.publish(subject, "a").catch((e: unknown) => e);
      const ac = new AbortController();
      const reason = new Error("gave up waiting");
      const second = sink.publish(subject, "b", { signal: ac.signal });
      await settle();
      ac.abort(reason);
      await assert.rejects(second, (e) => e === reason);
      assertNothingParked("after an aborted wait for a slot");
      assert.ok((await first) instanceof BusyError, "the first one timed out as BusyError");
      assert.ok(Object.values(sink.stats).some((v) => v === 0), "stats readable");
      assert.equal(sink.stats.inFlight, 0);
    } finally {
      sub.unsubscribe();
    }
  });

  test("publish: bad input rejects with a TypeError naming it", T, async () => {
    const sink = new JetStreamSink(js);
    await assert.rejects(sink.publish("" as string, "x"), (e) => e instanceof TypeError && /subject/.test((e as Error).message));
    await assert.rejects(sink.publish("a.b", 42 as never), (e) => e instanceof TypeError && /data/.test((e as Error).message));
    await assert.rejects(sink.publish("a.b", "x", { msgID: 7 as never }), (e) => e instanceof TypeError && /msgID/.test((e as Error).message));
  });

  test("bad options throw RangeError/TypeError naming the option", T, () => {
    for (const v of [0, -1, 1.5, Infinity]) assert.throws(() => new JetStreamSink(js, { maxInFlight: v }), (e) => e instanceof RangeError && /maxInFlight/.test((e as Error).message));
    for (const v of [0, -1, NaN]) assert.throws(() => new JetStreamSink(js, { timeoutMs: v }), (e) => e instanceof RangeError && /timeoutMs/.test((e as Error).message));
    assert.throws(() => new JetStreamSink({} as never), TypeError);
  });
});
