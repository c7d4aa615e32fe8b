/**
 * consumeJetStream against the real NATS server: every message handled and acked, never more
 * asked for than the pool has room, nak with backoff and redelivery, dead letter after
 * maxDeliver, working() for long tasks, a clean stop on abort, typed errors for bad options, and
 * a randomized run checking the bound and that nothing is lost.
 */
import { test, describe } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import type { JsMsg } from "@nats-io/jetstream";
import { consumeJetStream } from "../../src/nats/index.js";
import { Pool, PoolClosedError } from "../../src/flow/index.js";
import { deferred, testStream, unique, until } from "./helpers.js";
import { snapshot } from "../../src/metrics/index.js";
import { uncovered } from "../../src/metrics/catalog.js";

describe("consumeJetStream", () => {
  test("handles every message, acks it, and resolves with the stats once aborted", { timeout: 30_000 }, async () => {
    const s = await testStream("src_all");
    try {
      await s.fill(50);
      const consumer = await s.consumer();
      const pool = new Pool({ concurrency: 4, queue: 4 });
      const seen = new Set<string>();
      const ac = new AbortController();
      const all = deferred();
      const run = consumeJetStream(consumer, {
        pool,
        signal: ac.signal,
        name: "src-all",
        handler: (msg) => {
          seen.add(msg.string());
          if (seen.size === 50) all.resolve();
        },
      });
      await all.promise;
      const entry = snapshot().find((e) => e.name === "src-all");
      assert.equal(entry?.kind, "jetstream-source");
      assert.deepEqual(uncovered(entry!), [], "every numeric stat has a metric of its own");
      await until(async () => (await s.count()) === 0, "the work queue is empty (every message acked)");
      ac.abort();
      const stats = await run;
      assert.equal(seen.size, 50);
      assert.equal(stats.received, 50);
      assert.equal(stats.acked, 50);
      assert.equal(stats.naked + stats.termed, 0);
      assert.equal(stats.inFlight, 0);
      assert.ok(stats.maxInFlight <= 8, `maxInFlight ${stats.maxInFlight}`);
      const info = await consumer.info();
      assert.equal(info.num_ack_pending, 0);
    } finally {
      await s.close();
    }
  });

  test("never asks for more than the pool's free slots plus free queue (max_ack_pending is not the bound)", { timeout: 30_000 }, async () => {
    const s = await testStream("src_bound");
    try {
      await s.fill(40);
      const consumer = await s.consumer({ max_ack_pending: 1000 });
      const pool = new Pool({ concurrency: 3, queue: 2 });
      const gate = deferred();
      const ac = new AbortController();
      const run = consumeJetStream(consumer, {
        pool,
        signal: ac.signal,
        handler: () => gate.promise,
      });
      // 3 running + 2 queued: the pool is full; the server must have delivered exactly 5.
      await until(async () => (await consumer.info()).num_ack_pending === 5, "5 delivered");
      await new Promise<void>((r) => setTimeout(r, 300)); // give a wrong implementation time to over-fetch
      const info = await consumer.info();
      assert.equal(info.num_ack_pending, 5, "delivered but unacked: exactly the pool's capacity");
      assert.equal(info.num_pending, 35);
      assert.equal(info.num_waiting, 0, "no pull request is open while the pool is full");
      assert.equal(pool.running, 3);
      assert.equal(pool.queued, 2);
      gate.resolve();
      await until(async () => (await s.count()) === 0, "all acked");
      ac.abort();
      const stats = await run;
      assert.equal(stats.acked, 40);
      assert.equal(stats.maxInFlight, 5);
    } finally {
      await s.close();
    }
  });

  test("a failure naks with a growing delay; the redelivery succeeds and is acked", { timeout: 30_000 }, async () => {
    const s = await testStream("src_nak");
    try {
      await s.fill(1);
      const consumer = await s.consumer({ max_deliver: 10 });
      const pool = new Pool({ concurrency: 1 });
      const deliveries: number[] = [];
      const times: number[] = [];
      const done = deferred();
      const ac = new AbortController();
      const run = consumeJetStream(consumer, {
        pool,
        signal: ac.signal,
        backoff: { baseMs: 200, maxMs: 1000, jitter: "none" },
        handler: (msg: JsMsg) => {
          deliveries.push(msg.info.deliveryCount);
          times.push(performance.now());
          if (msg.info.deliveryCount < 3) throw new Error("transient");
          done.resolve();
        },
      });
      await done.promise;
      await until(async () => (await s.count()) === 0, "acked");
      ac.abort();
      const stats = await run;
      assert.deepEqual(deliveries, [1, 2, 3]);
      assert.equal(stats.failed, 2);
      assert.equal(stats.naked, 2);
      assert.equal(stats.acked, 1);
      // jitter "none": 200 ms after the first failure, 400 ms after the second (the server waits at least that).
      assert.ok(times[1]! - times[0]! >= 180, `first nak delay ${times[1]! - times[0]!}`);
      assert.ok(times[2]! - times[1]! >= 380, `second nak delay ${times[2]! - times[1]!}`);
    } finally {
      await s.close();
    }
  });

  test("after maxDeliver failures: published to the dead-letter subject (msgID stream:seq), then termed", { timeout: 30_000 }, async () => {
    const s = await testStream("src_dlq");
    try {
      const dlq = unique("dlq");
      await s.extra({ name: dlq, subjects: [`${dlq}.>`] });
      await s.js.publish(s.subject, "poison");
      await s.fill(3);
      const consumer = await s.consumer({ max_deliver: -1 });
      const pool = new Pool({ concurrency: 2 });
      const ac = new AbortController();
      let ok = 0;
      const run = consumeJetStream(consumer, {
        pool,
        signal: ac.signal,
        maxDeliver: 3,
        deadLetterSubject: `${dlq}.orders`,
        backoff: { baseMs: 10, maxMs: 20 },
        handler: (msg: JsMsg) => {
          if (msg.string() === "poison") throw new Error("cannot parse");
          ok++;
        },
      });
      await until(async () => (await s.jsm.streams.info(dlq)).state.messages === 1 && (await s.count()) === 0, "dead-lettered and queue empty");
      ac.abort();
      const stats = await run;
      assert.equal(ok, 3);
      assert.equal(stats.deadLettered, 1);
      assert.equal(stats.termed, 1);
      assert.equal(stats.failed, 3);
      assert.equal(stats.naked, 2);
      const dead = await s.jsm.streams.getMessage(dlq, { seq: 1 });
      assert.ok(dead !== null);
      assert.equal(dead.string(), "poison");
      assert.equal(dead.header.get("Nats-Msg-Id"), `${s.name}:1`);
      assert.equal(dead.header.get("Sluice-Dead-Subject"), s.subject);
      assert.equal(dead.header.get("Sluice-Dead-Deliveries"), "3");
      assert.equal(dead.header.get("Sluice-Dead-Error"), "cannot parse");
    } finally {
      await s.close();
    }
  });

  test("a non-retryable error (retryIf false) is given up at once; a failed dead-letter publish naks instead", { timeout: 30_000 }, async () => {
    const s = await testStream("src_dlfail");
    try {
      await s.fill(1);
      const consumer = await s.consumer({ max_deliver: -1 });
      const pool = new Pool({ concurrency: 1 });
      const ac = new AbortController();
      let calls = 0;
      const twice = deferred();
      const run = consumeJetStream(consumer, {
        pool,
        signal: ac.signal,
        deadLetterSubject: unique("nowhere") + ".dead", // no stream: the publish fails
        backoff: { baseMs: 10, maxMs: 10 },
        retryIf: () => false,
        handler: () => {
          if (++calls === 2) twice.resolve();
          throw new Error("bad");
        },
      });
      await twice.promise;
      ac.abort();
      const stats = await run;
      assert.ok(stats.deadLetterErrors >= 1);
      assert.equal(stats.deadLettered, 0);
      assert.equal(stats.termed, 0, "not termed: the message is kept for a later attempt");
      assert.equal(await s.count(), 1);
    } finally {
      await s.close();
    }
  });

  test("maxDeliver defaults to the consumer's max_deliver and may not exceed it", { timeout: 30_000 }, async () => {
    const s = await testStream("src_maxd");
    try {
      const consumer = await s.consumer({ max_deliver: 2 });
      const pool = new Pool({ concurrency: 1 });
      await assert.rejects(
        consumeJetStream(consumer, { pool, handler: () => undefined, maxDeliver: 3 }),
        /maxDeliver \(3\) must be at most the consumer's max_deliver \(2\)/,
      );
      await s.js.publish(s.subject, "x");
      const ac = new AbortController();
      const run = consumeJetStream(consumer, {
        pool,
        signal: ac.signal,
        backoff: { baseMs: 10, maxMs: 10 },
        handler: () => {
          throw new Error("always");
        },
      });
      await until(async () => (await s.count()) === 0, "termed after 2 deliveries (term removes it from the work queue)");
      ac.abort();
      const stats = await run;
      assert.equal(stats.failed, 2);
      assert.equal(stats.termed, 1);
    } finally {
      await s.close();
    }
  });

  test("working() keeps a task longer than ack_wait from being redelivered", { timeout: 30_000 }, async () => {
    const s = await testStream("src_wip");
    try {
      await s.fill(1);
      const consumer = await s.consumer({ ack_wait: 1_000_000_000, max_deliver: -1 }); // 1 s
      const pool = new Pool({ concurrency: 2 });
      const ac = new AbortController();
      let calls = 0;
      const done = deferred();
      const run = consumeJetStream(consumer, {
        pool,
        signal: ac.signal,
        handler: async () => {
          calls++;
          await new Promise((r) => setTimeout(r, 2500)); // the work itself: 2.5 ack_waits
          done.resolve();
        },
      });
      await done.promise;
      await until(async () => (await s.count()) === 0, "acked");
      ac.abort();
      const stats = await run;
      assert.equal(calls, 1, "not redelivered while it ran");
      assert.ok(stats.working >= 2, `working sent ${stats.working} times`);
      assert.equal(stats.acked, 1);
    } finally {
      await s.close();
    }
  });

  test("abort: no new fetch, in-flight work drains and is acked, nothing is left pending by the source", { timeout: 30_000 }, async () => {
    const s = await testStream("src_stop");
    try {
      await s.fill(30);
      const consumer = await s.consumer();
      const pool = new Pool({ concurrency: 4, queue: 4 });
      const gate = deferred();
      const started = deferred();
      let n = 0;
      const ac = new AbortController();
      const run = consumeJetStream(consumer, {
        pool,
        signal: ac.signal,
        handler: async () => {
          if (++n === 4) started.resolve();
          await gate.promise;
        },
      });
      await started.promise;
      ac.abort(new Error("shutdown"));
      let settled = false;
      void run.then(() => (settled = true));
      await new Promise<void>((r) => setTimeout(r, 100));
      assert.equal(settled, false, "waits for the running work");
      gate.resolve();
      const stats = await run;
      assert.equal(stats.inFlight, 0);
      assert.equal(stats.received, stats.acked + stats.naked);
      assert.ok(stats.acked >= 4);
      // Acks are not confirmed (confirmAcks off): wait for the server to have applied them.
      await until(async () => (await consumer.info()).num_ack_pending <= stats.naked, "only the nak'ed ones still count as ack-pending");
      // Acked messages are gone from the work queue; the rest are available again, none lost.
      assert.equal(await s.count(), 30 - stats.acked);
      assert.equal(pool.running + pool.queued, 0);
    } finally {
      await s.close();
    }
  });

  test("abort at random points mid-stream: every message the server delivered reached the source (none left to ack_wait)", { timeout: 60_000 }, async () => {
    // The server cannot take a pull request back: a fetch closed at once loses what the server
    // sends it next, and those messages would stay ack-pending for ack_wait (30 s here).
    const s = await testStream("src_stop_mid");
    try {
      await s.fill(4000);
      const consumer = await s.consumer();
      let receivedSoFar = 0;
      for (let round = 0; round < 12; round++) {
        const pool = new Pool({ concurrency: 32, queue: 64 });
        const ac = new AbortController();
        const stopAt = 20 + Math.floor(Math.random() * 150);
        let n = 0;
        const stats = await consumeJetStream(consumer, {
          pool,
          signal: ac.signal,
          handler: async () => {
            if (++n === stopAt) ac.abort();
            await new Promise((r) => setImmediate(r));
          },
        });
        assert.equal(stats.received, stats.acked + stats.naked, `round ${round}`);
        receivedSoFar += stats.received;
        const info = await consumer.info();
        assert.equal(info.delivered.consumer_seq, receivedSoFar, `round ${round}: the server delivered ${info.delivered.consumer_seq}, the source received ${receivedSoFar}`);
        // A nak'ed message counts as ack-pending until the server redelivers it; nothing else may.
        await until(async () => (await consumer.info()).num_ack_pending <= stats.naked, `round ${round}: only the nak'ed are ack-pending`, 5000);
      }
    } finally {
      await s.close();
    }
  });

  test("confirmAcks: each ack is confirmed by the server before its slot frees", { timeout: 30_000 }, async () => {
    const s = await testStream("src_ackack");
    try {
      await s.fill(20);
      const consumer = await s.consumer();
      const pool = new Pool({ concurrency: 2, queue: 2 });
      const ac = new AbortController();
      let n = 0;
      const all = deferred();
      const run = consumeJetStream(consumer, {
        pool,
        signal: ac.signal,
        confirmAcks: true,
        handler: () => {
          if (++n === 20) all.resolve();
        },
      });
      await all.promise;
      await until(() => pool.running === 0, "the last confirmations");
      // Confirmed: the server has removed them all already, no polling needed.
      assert.equal(await s.count(), 0);
      ac.abort();
      const stats = await run;
      assert.equal(stats.acked, 20);
      assert.equal(stats.replyErrors, 0);
    } finally {
      await s.close();
    }
  });

  test("a pool shared with other work: messages wait for admission, still held within what was asked", { timeout: 30_000 }, async () => {
    const s = await testStream("src_shared");
    try {
      await s.fill(30);
      const consumer = await s.consumer();
      const pool = new Pool({ concurrency: 2, queue: 2 });
      const ac = new AbortController();
      let n = 0;
      const all = deferred();
      // Other work keeps taking the pool's slots while the source runs.
      let others = 0;
      const other = async (): Promise<void> => {
        while (!ac.signal.aborted && others < 40) {
          others++;
          await pool.submit(() => new Promise((r) => setTimeout(r, 2)));
        }
      };
      const run = consumeJetStream(consumer, {
        pool,
        signal: ac.signal,
        handler: async () => {
          await new Promise((r) => setTimeout(r, 1));
          if (++n === 30) all.resolve();
        },
      });
      const busy = other();
      await all.promise;
      ac.abort();
      await busy;
      const stats = await run;
      assert.equal(stats.acked, 30);
      assert.ok(stats.maxInFlight <= 4, `held ${stats.maxInFlight}`);
    } finally {
      await s.close();
    }
  });

  test("a pool closed under the source: it stops, drains, and rejects with PoolClosedError", { timeout: 30_000 }, async () => {
    const s = await testStream("src_closed");
    try {
      await s.fill(10);
      const consumer = await s.consumer();
      const pool = new Pool({ concurrency: 1 });
      let n = 0;
      const first = deferred();
      const run = consumeJetStream(consumer, {
        pool,
        handler: () => {
          if (++n === 1) first.resolve();
        },
      });
      await first.promise;
      pool.close();
      await assert.rejects(run, (e: unknown) => e instanceof PoolClosedError);
    } finally {
      await s.close();
    }
  });

  test("the consumer deleted under the source: it drains and rejects with the server's error", { timeout: 30_000 }, async () => {
    const s = await testStream("src_gone");
    try {
      await s.fill(3);
      const consumer = await s.consumer();
      let n = 0;
      const three = deferred();
      const run = consumeJetStream(consumer, {
        pool: new Pool({ concurrency: 2 }),
        expiresMs: 1000,
        backoff: { baseMs: 10, maxMs: 50 },
        handler: () => {
          if (++n === 3) three.resolve();
        },
      });
      await three.promise;
      await s.jsm.consumers.delete(s.name, "c0");
      await assert.rejects(run, (e: unknown) => e instanceof Error && /consumer (deleted|not found)/.test(e.message));
    } finally {
      await s.close();
    }
  });

  test("an already-aborted signal rejects with its reason and fetches nothing", { timeout: 30_000 }, async () => {
    const s = await testStream("src_pre");
    try {
      await s.fill(3);
      const consumer = await s.consumer();
      const reason = new Error("already");
      await assert.rejects(consumeJetStream(consumer, { pool: new Pool({ concurrency: 1 }), handler: () => undefined, signal: AbortSignal.abort(reason) }), (e) => e === reason);
      assert.equal((await consumer.info()).num_ack_pending, 0);
    } finally {
      await s.close();
    }
  });

  test("bad options are typed errors naming the option", { timeout: 30_000 }, async () => {
    const s = await testStream("src_bad");
    try {
      const consumer = await s.consumer();
      const pool = new Pool({ concurrency: 1 });
      const h = (): undefined => undefined;
      await assert.rejects(consumeJetStream(consumer, null as never), TypeError);
      await assert.rejects(consumeJetStream({} as never, { pool, handler: h }), /consumer must be a JetStream pull Consumer/);
      await assert.rejects(consumeJetStream(consumer, { pool: {} as never, handler: h }), /options.pool must be a Pool/);
      await assert.rejects(consumeJetStream(consumer, { pool, handler: 1 as never }), /options.handler must be a function/);
      await assert.rejects(consumeJetStream(consumer, { pool, handler: h, maxDeliver: 0 }), /options.maxDeliver must be a positive safe integer, got 0/);
      await assert.rejects(consumeJetStream(consumer, { pool, handler: h, expiresMs: 10 }), /options.expiresMs must be a safe integer >= 1000/);
      await assert.rejects(consumeJetStream(consumer, { pool, handler: h, backoff: { baseMs: 10, maxMs: 5 } }), RangeError);
      await assert.rejects(consumeJetStream(consumer, { pool, handler: h, deadLetterSubject: "" }), TypeError);
      await assert.rejects(consumeJetStream(consumer, { pool, handler: h, signal: "x" as never }), TypeError);
    } finally {
      await s.close();
    }
  });

  test("randomized: pool sizes, message counts and failures; nothing lost, held never above capacity", { timeout: 120_000 }, async () => {
    const s = await testStream("src_prop");
    try {
      let round = 0;
      await fc.assert(
        fc.asyncProperty(
          fc.integer({ min: 1, max: 6 }),
          fc.integer({ min: 0, max: 6 }),
          fc.integer({ min: 1, max: 60 }),
          fc.array(fc.boolean(), { minLength: 1, maxLength: 8 }),
          fc.integer({ min: 0, max: 3 }),
          async (concurrency, queue, count, failPattern, delayMs) => {
            const subject = `${s.name}.r${round++}`;
            await s.fill(count, subject);
            const consumer = await s.consumer({ filter_subject: subject, max_deliver: -1 });
            const pool = new Pool({ concurrency, queue });
            const done = new Set<string>();
            const attempts = new Map<string, number>();
            const all = deferred();
            let active = 0;
            let maxActive = 0;
            const ac = new AbortController();
            const run = consumeJetStream(consumer, {
              pool,
              signal: ac.signal,
              backoff: { baseMs: 1, maxMs: 5 },
              handler: async (msg: JsMsg) => {
                active++;
                maxActive = Math.max(maxActive, active);
                try {
                  const id = msg.string();
                  const k = attempts.get(id) ?? 0;
                  attempts.set(id, k + 1);
                  if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
                  if (failPattern[(Number(id) + k) % failPattern.length]! && k < 2) throw new Error("flaky");
                  done.add(id);
                  if (done.size === count) all.resolve();
                } finally {
                  active--;
                }
              },
            });
            await all.promise;
            await until(async () => (await consumer.info()).num_pending + (await consumer.info()).num_ack_pending === 0, "all acked");
            ac.abort();
            const stats = await run;
            assert.equal(done.size, count);
            assert.ok(stats.maxInFlight <= concurrency + queue, `held ${stats.maxInFlight} > ${concurrency + queue}`);
            assert.ok(maxActive <= concurrency);
            assert.equal(stats.acked, count);
            assert.equal(stats.received, stats.acked + stats.naked + stats.termed);
            await consumer.delete();
          },
        ),
        { numRuns: 12 },
      );
    } finally {
      await s.close();
    }
  });
});
