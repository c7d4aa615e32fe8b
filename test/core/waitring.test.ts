/**
 * WaitRing, the parked-operation queue of a channel: FIFO over bare entries and withdrawable
 * `Parked` objects, holes left by withdrawals skipped and squeezed out, nothing retained, and
 * the bound on slots in use, checked against a plain-array model over random command sequences.
 */
import { describe, it } from "node:test";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import assert from "node:assert/strict";
import fc from "fast-check";
import { WaitRing, type Parked } from "../../src/core/waitring.js";
import { checkProperty } from "./stress/harness.js";

const owner = { describe: () => "channel \"test\" (capacity 0)" };
const ring = (): WaitRing => new WaitRing(owner, "recv", Infinity, "SLUICE_TEST");

class P implements Parked {
  ring: WaitRing | null = null;
  slot = 0;
  constructor(readonly id: number) {}
}

/** A bare entry: a function standing for a resolve, identified by its id. */
const bare = (id: number): ((v: unknown) => void) & { id: number } => Object.assign(() => {}, { id });

type Cmd = { op: "bare" } | { op: "parked" } | { op: "shift" } | { op: "withdraw"; pick: number } | { op: "withdrawStale" };
const cmdArb: fc.Arbitrary<Cmd> = fc.oneof(
  { weight: 3, arbitrary: fc.constant({ op: "bare" as const }) },
  { weight: 4, arbitrary: fc.constant({ op: "parked" as const }) },
  { weight: 3, arbitrary: fc.constant({ op: "shift" as const }) },
  { weight: 5, arbitrary: fc.record({ op: fc.constant("withdraw" as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.constant({ op: "withdrawStale" as const }) },
);

describe("WaitRing", () => {
  it("keeps FIFO order, skips withdrawn entries, and stays within 16 holes or as many as live entries", async () => {
    await checkProperty(
      "WaitRing model",
      fc.asyncProperty(fc.array(cmdArb, { maxLength: 400 }), async (cmds) => {
        const r = ring();
        const model: { id: number; entry: object; value: number }[] = [];
        const stale: P[] = [];
        let next = 0;
        let liveAtLastWithdraw = 0;
        for (const c of cmds) {
          switch (c.op) {
            case "bare": {
              const f = bare(next);
              r.push(f, next, undefined);
              model.push({ id: next, entry: f, value: next });
              next++;
              break;
            }
            case "parked": {
              const p = new P(next);
              r.pushParked(p, next);
              assert.equal(p.ring, r);
              model.push({ id: next, entry: p, value: next });
              next++;
              break;
            }
            case "shift": {
              const e = r.shift();
              const m = model.shift();
              assert.equal(e, m?.entry, "shift returns the oldest live entry");
              if (m !== undefined) {
                assert.equal(r.value, m.value, "its value slot");
                if (e instanceof P) {
                  assert.equal(e.ring, null, "a shifted Parked is out of the ring");
                  stale.push(e);
                }
              }
              break;
            }
            case "withdraw": {
              const parked = model.filter((m) => m.entry instanceof P);
              if (parked.length === 0) break;
              const m = parked[c.pick % parked.length]!;
              assert.equal(r.withdraw(m.entry as P), true);
              assert.equal((m.entry as P).ring, null);
              model.splice(model.indexOf(m), 1);
              stale.push(m.entry as P);
              liveAtLastWithdraw = model.length;
              break;
            }
            case "withdrawStale": {
              const p = stale[stale.length - 1];
              if (p !== undefined) assert.equal(r.withdraw(p), false, "a served or withdrawn entry is not withdrawn again");
              break;
            }
          }
          assert.equal(r.length, model.length, "length counts the live entries");
          const holes = r.slotsInUse - r.length;
          assert.ok(holes < 16 || holes <= Math.max(liveAtLastWithdraw, r.length), `holes ${holes}, live ${r.length}`);
          assert.deepEqual(r.oldest(5), model.slice(0, 5).map((m) => m.entry), "oldest() lists the live entries in order");
        }
        for (const m of model) assert.equal(r.shift(), m.entry);
        assert.equal(r.shift(), undefined);
        assert.equal(r.length, 0);
      }),
      200,
    );
  });

  it("does not grow when operations park and are withdrawn behind one that waits forever", () => {
    const r = ring();
    r.push(bare(-1), undefined, undefined); // the head never leaves
    for (let i = 0; i < 10_000; i++) {
      const p = new P(i);
      r.pushParked(p, { payload: i });
      assert.equal(r.withdraw(p), true);
    }
    assert.equal(r.length, 1);
    assert.ok(r.slotsInUse <= 17, `slots in use: ${r.slotsInUse}`);
    assert.equal(r.parkedTotal, 10_001);
    assert.equal(r.peak, 2);
  });

  it("retains no value once an entry is shifted or withdrawn", async () => {
    const r = ring();
    let collected = false;
    const registry = new FinalizationRegistry(() => (collected = true));
    (() => {
      const value = { big: new Array(1000).fill(0) };
      registry.register(value, "v");
      const p = new P(0);
      r.pushParked(p, value);
      r.withdraw(p);
      r.push(bare(1), value, undefined);
      r.shift();
      r.value = undefined; // the caller's duty after reading a sender's value
    })();
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as () => void;
    assert.deepEqual(r.oldest(10), []);
    for (let i = 0; i < 10 && !collected; i++) {
      gc();
      await new Promise((resolve) => setImmediate(resolve));
    }
    assert.equal(collected, true);
  });
});
