/**
 * jetStreamMessages against the real NATS server: a bounded async iterable (at most `batch`
 * delivered and not taken), usable with pool.map for bounded concurrency; break and abort give
 * untaken messages back at once (nak), never leaving them to ack_wait.
 */
import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { jetStreamMessages } from "../../src/nats/index.js";
import { Pool } from "../../src/flow/index.js";
import { testStream, until } from "./helpers.js";

describe("jetStreamMessages", () => {
  test("yields every message; the loop acks; at most batch delivered and not taken", { timeout: 30_000 }, async () => {
    const s = await testStream("it_all");
    try {
      await s.fill(25);
      const consumer = await s.consumer({ max_ack_pending: 1000 });
      const ac = new AbortController();
      const seen: string[] = [];
      for await (const msg of jetStreamMessages(consumer, { batch: 4, signal: ac.signal, expiresMs: 1000 })) {
        if (seen.length === 2) {
          // Hold the loop: the server must not have delivered more than the batch beyond what we took.
          await new Promise((r) => setTimeout(r, 200));
          const info = await consumer.info();
          assert.ok(info.num_ack_pending <= 2 + 4, `delivered un-acked ${info.num_ack_pending}`);
        }
        seen.push(msg.string());
        msg.ack();
        if (seen.length === 25) ac.abort();
      }
      assert.equal(new Set(seen).size, 25);
      await until(async () => (await s.count()) === 0, "all acked");
    } finally {
      await s.close();
    }
  });

  test("with pool.map: bounded concurrency, every message handled once", { timeout: 30_000 }, async () => {
    const s = await testStream("it_map");
    try {
      await s.fill(40);
      const consumer = await s.consumer();
      const ac = new AbortController();
      const pool = new Pool({ concurrency: 4 });
      let active = 0;
      let maxActive = 0;
      let done = 0;
      const results = pool.map(jetStreamMessages(consumer, { batch: 4, signal: ac.signal, expiresMs: 1000 }), async (msg) => {
        active++;
        maxActive = Math.max(maxActive, active);
        await new Promise((r) => setTimeout(r, 2));
        active--;
        msg.ack();
        if (++done === 40) ac.abort();
        return msg.string();
      }, { ordered: false });
      const got: string[] = [];
      for await (const v of results) got.push(v);
      assert.equal(new Set(got).size, 40);
      assert.ok(maxActive <= 4);
      await until(async () => (await s.count()) === 0, "all acked");
    } finally {
      await s.close();
    }
  });

  test("break: the messages delivered but not taken are nak'ed at once, not left to ack_wait", { timeout: 30_000 }, async () => {
    const s = await testStream("it_break");
    try {
      await s.fill(10);
      const consumer = await s.consumer({ ack_wait: 60e9 }); // a minute: only a nak brings them back in time
      let taken = 0;
      for await (const msg of jetStreamMessages(consumer, { batch: 5 })) {
        msg.ack();
        if (++taken === 2) break;
      }
      // The untaken ones come back at once (nak'ed; they still count as ack-pending until then):
      // a new loop takes all the remaining 8 well before the minute of ack_wait.
      const ac = new AbortController();
      let rest = 0;
      for await (const msg of jetStreamMessages(consumer, { batch: 5, signal: ac.signal, expiresMs: 1000 })) {
        msg.ack();
        if (++rest === 8) ac.abort();
      }
      assert.equal(rest, 8);
    } finally {
      await s.close();
    }
  });

  test("break at random points while messages are being published: nothing the server sent is left to ack_wait", { timeout: 60_000 }, async () => {
    // The server cannot take a pull request back: a fetch closed at the break would lose what
    // the server sends it next (here: messages published while the fetch is open), and those
    // messages would wait out the minute of ack_wait.
    const s = await testStream("it_break_mid");
    try {
      const consumer = await s.consumer({ ack_wait: 60e9 });
      const publishing = (async () => {
        for (let i = 0; i < 1500; i++) await s.js.publish(s.subject, String(i));
      })();
      const seen = new Set<string>();
      for (let round = 0; round < 10; round++) {
        const stopAt = 1 + Math.floor(Math.random() * 120);
        let taken = 0;
        for await (const msg of jetStreamMessages(consumer, { batch: 64 })) {
          seen.add(msg.string());
          msg.ack();
          if (++taken === stopAt) break;
        }
      }
      await publishing;
      const ac = new AbortController();
      const bound = setTimeout(() => ac.abort(), 15_000); // well inside the minute of ack_wait
      for await (const msg of jetStreamMessages(consumer, { batch: 64, signal: ac.signal, expiresMs: 1000 })) {
        seen.add(msg.string());
        msg.ack();
        if (seen.size === 1500) ac.abort();
      }
      clearTimeout(bound);
      assert.equal(seen.size, 1500, `${1500 - seen.size} messages did not come back before ack_wait`);
      await until(async () => (await s.count()) === 0, "all acked");
    } finally {
      await s.close();
    }
  });

  test("an aborted signal yields nothing; bad options are typed errors", { timeout: 30_000 }, async () => {
    const s = await testStream("it_bad");
    try {
      await s.fill(2);
      const consumer = await s.consumer();
      const got: unknown[] = [];
      for await (const m of jetStreamMessages(consumer, { signal: AbortSignal.abort() })) got.push(m);
      assert.equal(got.length, 0);
      assert.equal((await consumer.info()).num_ack_pending, 0);
      await assert.rejects(jetStreamMessages(consumer, { batch: 0 }).next(), /options.batch must be a positive safe integer, got 0/);
      await assert.rejects(jetStreamMessages(consumer, { expiresMs: 5 }).next(), RangeError);
      await assert.rejects(jetStreamMessages({} as never).next(), TypeError);
    } finally {
      await s.close();
    }
  });
});
