/**
 * Randomized schedules against a Pool: random concurrency, queue and overflow policy, random
 * submit / trySubmit / run calls with random caller aborts (before admission, while queued,
 * while running), tasks that succeed or fail after a random number of turns, and sometimes a
 * pool.abort() in the middle. Checks, for every schedule:
 *  - at no moment do more than `concurrency` user functions run;
 *  - every task function runs at most once, and only if its task was accepted;
 *  - the counters are exact: completed + failed + rejected + dropped + aborted equals the tasks
 *    handed to the pool; completed/failed equal what the functions did;
 *  - nothing is left queued, running, waiting or parked at the end.
 * fast-check prints the seed and a shrunk schedule on failure; SLUICE_SEED replays one.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { Pool } from "../../src/flow/index.js";
import { parkedWork } from "../../src/index.js";

const seed = process.env.SLUICE_SEED === undefined ? Date.now() % 2 ** 31 : Number(process.env.SLUICE_SEED);

async function turns(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
}

const op = fc.record({
  verb: fc.constantFrom("submit", "trySubmit", "run"),
  pre: fc.integer({ min: 0, max: 2 }),
  work: fc.integer({ min: 0, max: 3 }),
  fail: fc.boolean(),
  abortAt: fc.option(fc.integer({ min: 0, max: 4 }), { nil: undefined }),
});

const schedule = fc.record({
  concurrency: fc.integer({ min: 1, max: 4 }),
  queue: fc.integer({ min: 0, max: 4 }),
  overflow: fc.constantFrom("block" as const, "reject" as const, "drop-oldest" as const),
  ops: fc.array(op, { minLength: 1, maxLength: 40 }),
  poolAbortAt: fc.option(fc.integer({ min: 0, max: 40 }), { nil: undefined }),
});

test("Pool under random schedules and aborts: concurrency bound and exact counters", async () => {
  await fc.assert(
    fc.asyncProperty(schedule, async (s) => {
      const failures: unknown[] = [];
      const pool = new Pool({ concurrency: s.concurrency, queue: s.queue, overflow: s.overflow, onError: (e) => failures.push(e) });
      let running = 0;
      let peak = 0;
      let fulfilled = 0;
      let rejectedByTask = 0;
      const ranTimes = new Map<number, number>();
      const calls: Promise<unknown>[] = [];
      const timers: Promise<void>[] = [];

      for (let i = 0; i < s.ops.length; i++) {
        const o = s.ops[i]!;
        await turns(o.pre);
        if (s.poolAbortAt === i) pool.abort(new Error("pool abort"));
        const ac = new AbortController();
        const task = async (signal: AbortSignal) => {
          ranTimes.set(i, (ranTimes.get(i) ?? 0) + 1);
          running++;
          peak = Math.max(peak, running);
          try {
            for (let k = 0; k < o.work && !signal.aborted; k++) await turns(1);
            if (o.fail) {
              rejectedByTask++;
              throw new Error(`task ${i} failed`);
            }
            fulfilled++;
          } finally {
            running--;
          }
        };
        const opts = { signal: ac.signal };
        if (o.verb === "trySubmit") pool.trySubmit(task);
        else if (o.verb === "submit") calls.push(pool.submit(task, opts).catch(() => {}));
        else calls.push(pool.run(task, opts).catch(() => {}));
        if (o.abortAt !== undefined) timers.push(turns(o.abortAt).then(() => ac.abort(new Error(`abort ${i}`))));
      }
      await Promise.all(timers);
      await Promise.all(calls);
      await pool.drain();

      const st = pool.stats;
      assert.ok(peak <= s.concurrency, `peak ${peak} > concurrency ${s.concurrency}`);
      for (const [i, n] of ranTimes) assert.equal(n, 1, `task ${i} ran ${n} times`);
      assert.equal(st.completed, fulfilled, "completed counts fulfilled functions");
      assert.equal(st.failed, rejectedByTask, "failed counts failed functions");
      assert.equal(st.completed + st.failed, ranTimes.size, "every function that ran settled once");
      assert.equal(st.completed + st.failed + st.rejected + st.dropped + st.aborted, s.ops.length, "every task has exactly one outcome");
      assert.deepEqual([st.queued, st.running, st.waiting], [0, 0, 0]);
      assert.deepEqual(parkedWork(), []);
      assert.ok(failures.length <= st.failed, "onError hears only failures");
      pool.close();
    }),
    { seed, numRuns: 150, endOnFailure: true },
  );
});

test("Pool.map under random sources and consumers: order, bound and completeness", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 1, max: 4 }),
      fc.array(fc.integer({ min: 0, max: 3 }), { maxLength: 30 }),
      fc.boolean(),
      fc.integer({ min: 0, max: 2 }),
      fc.boolean(),
      fc.array(fc.integer({ min: 0, max: 3 }), { maxLength: 6 }),
      async (concurrency, works, ordered, consumerTurns, syncSource, others) => {
        const pool = new Pool({ concurrency });
        let pulled = 0;
        let consumed = 0;
        let maxAhead = 0;
        let running = 0;
        let peak = 0;
        let otherRunning = 0;
        const pull = (i: number): number => {
          pulled++;
          maxAhead = Math.max(maxAhead, pulled - consumed);
          return i;
        };
        function* syncItems() {
          for (let i = 0; i < works.length; i++) yield pull(i);
        }
        async function* asyncItems() {
          for (let i = 0; i < works.length; i++) yield pull(i);
        }
        // Submitted tasks compete for the same slots, so some steps wait for admission.
        const submitted = Promise.all(others.map((t) => pool.submit(async () => {
          otherRunning++;
          peak = Math.max(peak, running + otherRunning);
          await turns(t);
          otherRunning--;
        })));
        const out: number[] = [];
        for await (const v of pool.map(syncSource ? syncItems() : asyncItems(), async (i) => {
          running++;
          peak = Math.max(peak, running + otherRunning);
          await turns(works[i]!);
          running--;
          return i;
        }, { ordered })) {
          out.push(v);
          consumed++;
          await turns(consumerTurns);
        }
        await submitted;
        await pool.drain();
        const expected = works.map((_, i) => i);
        assert.deepEqual(ordered ? out : [...out].sort((a, b) => a - b), expected);
        assert.ok(maxAhead <= concurrency, `pulled ${maxAhead} ahead of the consumer, concurrency ${concurrency}`);
        assert.ok(peak <= concurrency, `peak ${peak} running, concurrency ${concurrency}`);
        assert.equal(pool.stats.completed, works.length + others.length);
        assert.deepEqual(parkedWork(), []);
      },
    ),
    { seed, numRuns: 150, endOnFailure: true },
  );
});
