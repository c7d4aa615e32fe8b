import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import pg from "pg";
import { withStore } from "./helpers.js";
import type { OrderService } from "../../../examples/order-service/service.js";
import { databaseFromEnv } from "../../../examples/order-service/store.js";
import { checkSummary, checkTable, makeLoad, runOnce } from "./scenario.js";

test("a whole load: valid orders persisted once each, the rest dead-lettered by reason, all acked", { timeout: 60_000 }, async () => {
  await withStore("complete", async (store) => {
    const load = makeLoad({ count: 600, seed: 11, invalidRate: 0.1, unknownCustomerRate: 0.05 });
    const s = await runOnce(load, store, { enrichConcurrency: 8, batchSize: 25, lookup: { failureRate: 0.2 } });
    assert.equal(s.outcome, "completed");
    assert.equal(s.error, undefined);
    checkSummary(s);
    await checkTable(load, store);
    const expected = { valid: 0, invalid: 0, "unknown-customer": 0 };
    for (const m of load.messages) expected[m.expected]++;
    assert.equal(s.consumed, 600);
    assert.equal(s.abandoned, 0);
    assert.equal(s.deadLetters.invalid, expected.invalid);
    // An unknown customer is refused at once; a valid order fails only if its retries ran out.
    assert.ok(s.deadLetters.unknownCustomer <= expected["unknown-customer"]);
    assert.equal(s.persisted + s.deadLetters.unknownCustomer + s.deadLetters.enrichFailed, expected.valid + expected["unknown-customer"]);
    assert.ok(s.persisted >= expected.valid - s.deadLetters.enrichFailed);
    assert.ok(s.retries > 0, "transient lookup failures were retried");
    assert.ok(s.peakLookups <= 8, `peak lookups ${s.peakLookups} > 8`);
    assert.equal(load.acks.size, 600);
    assert.deepEqual(
      { acked: load.broker.stats.acked, unacked: load.broker.stats.unacked, drained: load.broker.stats.drained },
      { acked: 600, unacked: 0, drained: true },
    );
  });
});

test("stop in the middle (in-process abort), drained within the deadline: nothing in flight is lost", { timeout: 60_000 }, async () => {
  await withStore("drain", async (store) => {
    const load = makeLoad({ count: 3000, seed: 12 });
    const ctl = new AbortController();
    let commits = 0;
    const s = await runOnce(load, store, {
      signal: ctl.signal,
      drainMs: 30_000,
      batchSize: 20,
      onCommit: () => {
        if (++commits === 3) ctl.abort(new Error("SIGTERM"));
      },
    });
    assert.equal(s.outcome, "drained");
    checkSummary(s);
    await checkTable(load, store);
    assert.ok(s.consumed < 3000, `stopped early (consumed ${s.consumed})`);
    assert.ok(s.persisted > 3 * 20 - 20, "the batches before the stop and those drained after it are in");
    // Only the delivery the intake held when it stopped can be given back.
    assert.ok(s.abandoned <= 1, `abandoned ${s.abandoned}`);
    assert.equal(load.broker.stats.unacked, 0);
    assert.equal(load.broker.stats.requeued, s.abandoned);
    assert.ok(s.shutdownMs !== undefined && s.shutdownMs >= 0);
  });
});

test("the drain deadline passes: the rest is abandoned and given back; a restart finishes the load, nothing twice", { timeout: 60_000 }, async () => {
  await withStore("deadline", async (store) => {
    const load = makeLoad({ count: 800, seed: 13 }, 128);
    const ctl = new AbortController();
    let commits = 0;
    // Slow lookups and a 0 ms deadline: the stop catches lookups, batches and queued items in flight.
    const first = await runOnce(load, store, {
      signal: ctl.signal,
      drainMs: 0,
      batchSize: 10,
      lookup: { minMs: 20, maxMs: 40, failureRate: 0 },
      onCommit: () => {
        if (++commits === 2) ctl.abort(new Error("SIGTERM"));
      },
    });
    assert.equal(first.outcome, "deadline");
    checkSummary(first);
    assert.ok(first.abandoned > 0, "something was in flight at the deadline");
    await checkTable(load, store);
    assert.equal(load.broker.stats.unacked, 0, "every abandoned delivery was given back");
    assert.equal(load.broker.stats.requeued, first.abandoned);

    const second = await runOnce(load, store, { batchSize: 50, lookup: { failureRate: 0 } });
    assert.equal(second.outcome, "completed");
    checkSummary(second);
    await checkTable(load, store);
    assert.equal(load.broker.stats.redelivered, first.abandoned, "the abandoned messages came back");
    assert.equal(first.persisted + second.persisted + first.deadLettered + second.deadLettered, 800);
    assert.equal(load.acks.size, 800);
    assert.equal(load.broker.stats.acked, 800);
    // No lookup could fail: every valid order is in the table, and nothing else was dead-lettered.
    assert.equal(first.deadLetters.enrichFailed + second.deadLetters.enrichFailed, 0);
    const valid = load.messages.filter((m) => m.expected === "valid").map((m) => m.orderId!).sort();
    assert.deepEqual((await store.rows()).map((r) => r.orderId).sort(), valid);
  });
});

test("a stage fails (the table refuses writes): the run ends, nothing acked that did not commit", { timeout: 60_000 }, async () => {
  await withStore("failure", async (store) => {
    const load = makeLoad({ count: 2000, seed: 14 });
    const admin = new pg.Client(databaseFromEnv());
    await admin.connect();
    try {
      let commits = 0;
      let broken: Promise<unknown> | undefined;
      const s = await runOnce(load, store, {
        batchSize: 20,
        onCommit: () => {
          // After two commits every later row breaks a constraint: a permanent error, not retried.
          if (++commits === 2) broken = admin.query(`alter table ${store.table} add constraint no_more check (total_cents < 0) not valid`);
        },
      });
      await broken;
      assert.equal(s.outcome, "failed");
      assert.equal((s.error as { code?: string }).code, "23514", String(s.error));
      checkSummary(s);
      assert.ok(s.abandoned > 0);
      await checkTable(load, store);
      assert.equal(load.broker.stats.unacked, 0);
    } finally {
      await admin.end();
    }
  });
});

test("randomized: random sizes, concurrencies, failure rates and stop points keep every count and the table right", { timeout: 120_000 }, async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.record({
        count: fc.integer({ min: 0, max: 250 }),
        seed: fc.integer({ min: 1, max: 1_000_000 }),
        enrichConcurrency: fc.integer({ min: 1, max: 8 }),
        batchSize: fc.integer({ min: 1, max: 30 }),
        persistConcurrency: fc.integer({ min: 1, max: 3 }),
        intakeBuffer: fc.integer({ min: 1, max: 16 }),
        maxUnacked: fc.integer({ min: 1, max: 64 }),
        failureRate: fc.double({ min: 0, max: 0.4, noNaN: true }),
        stopAtCommit: fc.option(fc.integer({ min: 1, max: 6 }), { nil: undefined }),
        drainMs: fc.constantFrom(0, 5, 30_000),
      }),
      async (c) => {
        await withStore("prop", async (store) => {
          const load = makeLoad({ count: c.count, seed: c.seed, invalidRate: 0.1 }, c.maxUnacked);
          const ctl = new AbortController();
          let commits = 0;
          const s = await runOnce(load, store, {
            signal: ctl.signal,
            drainMs: c.drainMs,
            enrichConcurrency: c.enrichConcurrency,
            batchSize: c.batchSize,
            persistConcurrency: c.persistConcurrency,
            intakeBuffer: c.intakeBuffer,
            batchWaitMs: 5,
            lookup: { minMs: 0, maxMs: 3, failureRate: c.failureRate },
            onCommit: (p) => {
              // Pull only what there is room for: never more outstanding than the broker allows.
              assert.ok(p.consumed - p.acked <= c.maxUnacked, `${p.consumed - p.acked} outstanding > ${c.maxUnacked}`);
              if (++commits === c.stopAtCommit) ctl.abort();
            },
          });
          assert.notEqual(s.outcome, "failed", String(s.error));
          checkSummary(s);
          await checkTable(load, store);
          assert.ok(s.peakLookups <= c.enrichConcurrency);
          assert.equal(load.broker.stats.unacked, 0);
          if (s.outcome === "completed") assert.equal(s.consumed, c.count);
          if (s.outcome === "drained") assert.ok(s.abandoned <= 1);
        });
      },
    ),
    { numRuns: 12 },
  );
});

test("backpressure through the database: a locked table stalls the chain back to the broker, which keeps the rest", { timeout: 60_000 }, async () => {
  await withStore("locked", async (store) => {
    const maxUnacked = 40;
    // Only valid orders and no lookup failures: while the table is locked nothing can be acked
    // (no dead letters free a credit), so the chain fills and stays full.
    const load = makeLoad({ count: 3000, seed: 15, invalidRate: 0, unknownCustomerRate: 0 }, maxUnacked);
    const admin = new pg.Client(databaseFromEnv());
    await admin.connect();
    try {
      let service: OrderService | undefined;
      let locked: Promise<unknown> | undefined;
      let commits = 0;
      const running = runOnce(load, store, {
        batchSize: 10,
        persistConcurrency: 1,
        lookup: { failureRate: 0 },
        onCommit: () => {
          if (++commits === 1) locked = admin.query("begin").then(() => admin.query(`lock table ${store.table} in exclusive mode`));
        },
      }, (s) => (service = s));
      // No event says "stalled": poll, for at most 20 s each (so that a failure still reaches the
      // clean-up below: the commit that frees the lock, then the drop of the table).
      const until = async (what: string, ok: () => boolean | Promise<boolean>): Promise<void> => {
        const end = Date.now() + 20_000;
        while (!(await ok())) {
          if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
          await new Promise((r) => setTimeout(r, 10));
        }
      };
      const full = (): Promise<void> => until("every credit taken", () => load.broker.stats.unacked >= maxUnacked);
      await until("the first commit", () => locked !== undefined);
      await locked;
      // The one persist slot blocked on the lock: every ack of an earlier batch has been made
      // (the slot acks its batch before it takes the next), so from here on nothing is acked.
      const blocked = async (): Promise<number> =>
        Number((await admin.query<{ n: string }>("select count(*) as n from pg_locks where relation = $1::regclass and not granted", [store.table])).rows[0]!.n);
      await until("the persist slot blocked on the lock", async () => (await blocked()) >= 1);
      await full();
      const stalled = { ...service!.progress, unacked: load.broker.stats.unacked, published: load.broker.stats.published };
      // Full, and it stays full: nothing more is taken from the broker while the table is locked
      // (what is checked is an absence, so a time has to pass).
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(load.broker.stats.published, stalled.published, "the broker kept the rest while the database was stuck");
      assert.equal(load.broker.stats.unacked, maxUnacked);
      assert.equal(stalled.consumed - stalled.acked, maxUnacked);
      assert.ok(stalled.consumed < 3000);
      await admin.query("commit");
      const s = await running;
      assert.equal(s.outcome, "completed");
      checkSummary(s);
      await checkTable(load, store);
      assert.equal(s.consumed, 3000);
    } finally {
      await admin.query("rollback").catch(() => {});
      await admin.end();
    }
  });
});

test("a slow directory gets fewer concurrent lookups: the enrich stage's adaptive limit backs off", { timeout: 60_000 }, async () => {
  await withStore("adaptive", async (store) => {
    const load = makeLoad({ count: 120, seed: 16, invalidRate: 0, unknownCustomerRate: 0 });
    const s = await runOnce(load, store, { enrichConcurrency: 16, enrichTargetMs: 20, lookup: { minMs: 30, maxMs: 40, failureRate: 0 } });
    assert.equal(s.outcome, "completed");
    checkSummary(s);
    await checkTable(load, store);
    assert.equal(s.persisted, 120);
    assert.ok(s.enrichLimitLowest < 16, `the limit backed off (lowest ${s.enrichLimitLowest})`);
    assert.ok(s.enrichLimitLowest >= 4, "never below a quarter of the ceiling");
    assert.ok(s.peakLookups <= 16);
  });
});
