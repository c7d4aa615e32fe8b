/**
 * Randomized stress of WaitGroup: actors run random `add(n)` (each scheduling its n `done()`s,
 * or `add(-1)`s, at random later turns), `wait()` (awaited or not, with random aborts) and
 * misuse (a counter below zero), against a model counter.
 *
 * Checked: `count` equals the model after every step and never goes below zero; a refused call
 * changes nothing; `wait()` on a zero counter resolves at once without parking; otherwise it
 * parks, and it resolves only after the counter hit zero since it parked (never early), and by
 * the next macrotask turn after that (never late); an abort while it is parked rejects it with
 * the reason; at the end the counter is zero and nothing waits.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { parkedWork, WaitGroup } from "../../../src/index.js";
import { background, checkProperty, delay, delayArb, later, parkedSummary, startRun, TestAbort, watchdog } from "./harness.js";

type AbortPlan = { kind: "none" } | { kind: "pre" } | { kind: "after"; d: number };
type Op =
  | { kind: "add"; pre: number; /** one delay per unit: n = doneDelays.length */ doneDelays: number[]; viaAdd: boolean }
  | { kind: "wait"; pre: number; abort: AbortPlan; awaitIt: boolean }
  | { kind: "misuse"; pre: number };
interface Plan {
  actors: Op[][];
}

const abortArb: fc.Arbitrary<AbortPlan> = fc.oneof(
  { weight: 3, arbitrary: fc.constant({ kind: "none" as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: "pre" as const }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("after" as const), d: delayArb(7) }) },
);

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant("add" as const), pre: delayArb(), doneDelays: fc.array(delayArb(8), { maxLength: 3 }), viaAdd: fc.boolean() }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant("wait" as const), pre: delayArb(), abort: abortArb, awaitIt: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("misuse" as const), pre: delayArb() }) },
);

const planArb: fc.Arbitrary<Plan> = fc.record({
  actors: fc.array(fc.array(opArb, { maxLength: 8 }), { minLength: 1, maxLength: 5 }),
});

interface WaiterRec {
  readonly where: string;
  /** Zero transitions seen before it parked; -1 if it did not park. */
  readonly epoch: number;
  settled: boolean;
  abortedWhileParked: boolean;
}

async function runPlan(plan: Plan): Promise<void> {
  const run = startRun("waitgroup");
  const wg = new WaitGroup({ name: run.name });
  let count = 0; // the model
  let epoch = 0; // how many times the counter went from > 0 to 0
  const waiters: WaiterRec[] = [];
  const pending: Promise<void>[] = [];
  const label = JSON.stringify(run.name);

  const parkedHere = (): number => parkedWork().find((e) => e.boundary.includes(label))?.count ?? 0;

  const check = (where: string): void => {
    assert.ok(wg.count >= 0, `${where}: count ${wg.count} below zero`);
    assert.equal(wg.count, count, `${where}: count`);
    if (count === 0) assert.equal(parkedHere(), 0, `${where}: waiters parked on a zero counter`);
  };

  /** After the counter hit zero: by the next macrotask turn, every earlier waiter has settled. */
  const hitZero = (where: string): void => {
    const e = ++epoch;
    pending.push(
      later(4, () => {
        for (const w of waiters) {
          if (w.epoch >= 0 && w.epoch < e) assert.ok(w.settled, `${w.where}: still waiting a turn after the counter hit zero (${where})`);
        }
      }),
    );
  };

  const decrement = (where: string, viaAdd: boolean): void => {
    if (viaAdd) wg.add(-1);
    else wg.done();
    count--;
    check(where);
    if (count === 0) hitZero(where);
  };

  const actor = async (a: number, ops: Op[]): Promise<void> => {
    for (let k = 0; k < ops.length; k++) {
      const op = ops[k]!;
      const where = `actor ${a} op ${k} (${op.kind})`;
      await delay(op.pre);
      check(where);

      if (op.kind === "misuse") {
        const parked = parkedHere();
        if (count === 0) assert.throws(() => wg.done(), RangeError, `${where}: done() on a zero counter throws`);
        else assert.throws(() => wg.add(-(count + 1)), RangeError, `${where}: add below zero throws`);
        assert.equal(parkedHere(), parked, `${where}: a refused call woke nobody`);
        check(where);
        continue;
      }

      if (op.kind === "add") {
        const n = op.doneDelays.length;
        wg.add(n);
        count += n;
        check(where);
        for (let i = 0; i < n; i++) pending.push(later(op.doneDelays[i]!, () => decrement(`${where} done #${i}`, op.viaAdd)));
        continue;
      }

      const reason = new TestAbort(where);
      let signal: AbortSignal | undefined;
      let controller: AbortController | undefined;
      if (op.abort.kind === "pre") signal = AbortSignal.abort(reason);
      else if (op.abort.kind === "after") signal = (controller = new AbortController()).signal;
      const parkedBefore = parkedHere();
      const pr = wg.wait(signal === undefined ? undefined : { signal });
      const parks = op.abort.kind !== "pre" && count > 0;
      assert.equal(parkedHere(), parkedBefore + (parks ? 1 : 0), `${where}: wait parks iff the counter is not zero`);
      const w: WaiterRec = { where, epoch: parks ? epoch : -1, settled: false, abortedWhileParked: false };
      waiters.push(w);
      if (controller !== undefined && op.abort.kind === "after") {
        const c = controller;
        pending.push(
          later(op.abort.d, () => {
            w.abortedWhileParked = parks && !w.settled && epoch === w.epoch;
            const before = parkedHere();
            c.abort(reason);
            assert.equal(parkedHere(), before - (w.abortedWhileParked ? 1 : 0), `${where}: an aborted wait leaves nothing parked`);
            check(`abort ${where}`);
          }),
        );
      }
      const outcome = pr.then(
        () => {
          w.settled = true;
          assert.ok(op.abort.kind !== "pre", `${where}: an already-aborted wait resolved`);
          assert.ok(!w.abortedWhileParked, `${where}: resolved after its abort while parked`);
          if (parks) assert.ok(epoch > w.epoch, `${where}: resolved before the counter hit zero`);
        },
        (e: unknown) => {
          w.settled = true;
          assert.equal(e, reason, `${where}: rejects only with its abort reason, got ${String(e)}`);
          assert.ok(op.abort.kind === "pre" || w.abortedWhileParked, `${where}: rejected though it was not aborted while parked`);
        },
      );
      if (!parks) {
        // Already settled: its handler runs before this actor's next turn.
        await Promise.resolve();
        assert.ok(w.settled, `${where}: a wait that did not park is already settled`);
      }
      if (op.awaitIt) await outcome;
      else pending.push(background(outcome));
    }
  };

  try {
    await watchdog(
      () => `count ${wg.count} (model ${count}); parked: ${parkedSummary()}`,
      (async () => {
        await Promise.all(plan.actors.map((ops, a) => actor(a, ops)));
        // `pending` grows while earlier entries run (a done schedules a check): drain it.
        for (let i = 0; i < pending.length; i++) await pending[i];
      })(),
    );
  } finally {
    // After a failure, bring the counter down so that whatever still waits is released.
    if (wg.count > 0) wg.add(-wg.count);
  }

  assert.equal(wg.count, 0, "every add was matched by its dones");
  for (const w of waiters) assert.ok(w.settled, `${w.where}: never settled`);
  run.finish();
}

describe("WaitGroup under random schedules", () => {
  it("releases waiters exactly when the counter hits zero, and leaves nothing waiting", async () => {
    await checkProperty("waitgroup stress", fc.asyncProperty(planArb, runPlan), 300);
  });
});
