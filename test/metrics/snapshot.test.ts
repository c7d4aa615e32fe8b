/**
 * Specification of `snapshot()`, `diagnostics()` and `observeAll()` (issue 16, "Registry and
 * diagnostics"): one entry per live observed boundary, `{ kind, name, named, ...stats }`, whose
 * values match the boundary's own `stats` under load.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { Channel, Semaphore, configureDiagnostics } from "../../src/index.js";
import { Pool } from "../../src/flow/index.js";
import { diagnostics, observeAll, snapshot, type SnapshotEntry } from "../../src/metrics/index.js";

const tag = Math.random().toString(36).slice(2, 8);
const find = (name: string, kind?: string): SnapshotEntry[] =>
  snapshot().filter((e) => e.name === name && (kind === undefined || e.kind === kind));

describe("snapshot()", () => {
  it("has one entry per named boundary: kind, name, named and every stat", () => {
    const ch = new Channel<number>(8, { name: `snap-ch-${tag}` });
    ch.trySend(1);
    ch.trySend(2);
    const [e] = find(`snap-ch-${tag}`);
    assert.ok(e !== undefined);
    assert.equal(e.kind, "channel");
    assert.equal(e.named, true);
    const { kind, named, ...rest } = e;
    assert.equal(kind, "channel");
    assert.equal(named, true);
    assert.deepEqual(rest, { ...ch.stats });
    assert.equal(e.length, 2);
    assert.equal(e.capacity, 8);
  });

  it("is fresh every call and never changes the boundary", () => {
    const sem = new Semaphore(2, { name: `snap-sem-${tag}` });
    const a = find(`snap-sem-${tag}`)[0]!;
    sem.tryAcquire();
    const b = find(`snap-sem-${tag}`)[0]!;
    assert.notEqual(a, b);
    assert.equal(a.held, 0);
    assert.equal(b.held, 1);
    assert.equal(sem.available, 1);
  });

  it("shows unnamed boundaries only when created under observeAll, with a stable #id", () => {
    const was = observeAll(false);
    try {
      const before = snapshot().length;
      const hidden = new Semaphore(1);
      assert.equal(snapshot().length, before);
      observeAll(true);
      const shown = new Semaphore(1);
      const entries = snapshot().filter((e) => e.kind === "semaphore" && !e.named);
      assert.ok(entries.length >= 1);
      const id = entries.at(-1)!.name;
      assert.match(id, /^#\d+$/);
      assert.equal(snapshot().filter((e) => e.kind === "semaphore" && !e.named).at(-1)!.name, id, "same id next time");
      void hidden;
      void shown;
    } finally {
      observeAll(was);
    }
    assert.throws(() => observeAll("yes" as unknown as boolean), TypeError);
  });

  it("matches each boundary's stats under a random concurrent load (channel + pool)", { timeout: 30_000 }, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 4 }),
        fc.integer({ min: 1, max: 4 }),
        fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 1, maxLength: 40 }),
        async (capacity, concurrency, delays) => {
          const id = Math.random().toString(36).slice(2);
          const ch = new Channel<number>(capacity, { name: `load-ch-${id}` });
          const pool = new Pool({ concurrency, queue: 2, name: `load-pool-${id}` });
          const check = (): void => {
            const c = find(`load-ch-${id}`, "channel")[0]!;
            const p = find(`load-pool-${id}`, "pool")[0]!;
            const cs = ch.stats;
            const ps = pool.stats;
            assert.equal(c.length, cs.length);
            assert.equal(c.sent, cs.sent);
            assert.equal(c.received, cs.received);
            assert.equal(c.parkedSenders, cs.parkedSenders);
            assert.equal(p.running, ps.running);
            assert.equal(p.queued, ps.queued);
            assert.equal(p.waiting, ps.waiting);
            assert.equal(p.completed, ps.completed);
          };
          const consumer = (async () => {
            for await (const v of ch) {
              check();
              await new Promise((r) => setTimeout(r, v));
            }
          })();
          const producers = delays.map(async (d) => {
            await pool.submit(async () => {
              await ch.send(d);
            });
            check();
          });
          await Promise.all(producers);
          check();
          await pool.drain();
          ch.close();
          await consumer;
          pool.close();
          check();
          const p = find(`load-pool-${id}`, "pool")[0]!;
          assert.equal(p.completed, delays.length);
          const c = find(`load-ch-${id}`, "channel")[0]!;
          assert.equal(c.sent, delays.length);
          assert.equal(c.received, delays.length);
        },
      ),
      { numRuns: 15, seed: 16 },
    );
  });
});

describe("diagnostics()", () => {
  it("adds the parked operations, with where they parked when tracing is on", async () => {
    const before = configureDiagnostics();
    configureDiagnostics({ trace: true });
    const ch = new Channel<number>(0, { name: `diag-${tag}` });
    const parked = ch.send(1); // PARKED-HERE
    try {
      const d = diagnostics();
      assert.equal(d.tracing, true);
      assert.ok(d.boundaries.some((e) => e.name === `diag-${tag}` && e.parkedSenders === 1));
      const entry = d.parked.find((p) => p.boundary.includes(`diag-${tag}`));
      assert.ok(entry !== undefined, "the parked send is listed");
      assert.equal(entry.role, "send");
      assert.equal(entry.count, 1);
      assert.match(entry.stacks[0] ?? "", /snapshot\.test\.ts/);
      assert.equal(typeof d.at, "number");
    } finally {
      configureDiagnostics({ trace: before.trace });
      await ch.recv();
      await parked;
    }
  });
});
