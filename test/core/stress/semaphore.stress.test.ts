/**
 * Randomized stress of Semaphore against a model: many actors run random `acquire(n)` (with
 * random aborts) and `tryAcquire(n)`, hold what they got for a random time, then release it
 * (sometimes in two parts). A strict-FIFO model of the weighted semaphore (Go's
 * x/sync/semaphore) runs beside it, updated in the same synchronous step as every call.
 *
 * Checked after every call: `available` and `waiting` equal the model's (so a call is granted,
 * parked or refused exactly when the model says), `0 <= held <= size`. Checked when an acquire
 * settles: it resolved only if the model granted it (FIFO: no later waiter is granted before an
 * earlier one still waiting), it rejected only with its own abort reason and only if the model
 * withdrew it. At the end: everyone was granted or rejected, nothing waits, all units are back.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { Semaphore } from "../../../src/index.js";
import { checkProperty, delay, delayArb, macroTurn, parkedSummary, startRun, TestAbort, later, watchdog } from "./harness.js";

/** "shared": one of two signals of the run, each shared by several waiters, aborted at a random turn. */
type AbortPlan = { kind: "none" } | { kind: "pre" } | { kind: "after"; d: number } | { kind: "shared"; i: number };
interface Op {
  kind: "acquire" | "tryAcquire" | "overRelease";
  /** 1..6 is min(n, size); 7 is size + 1 (never fits). */
  n: number;
  pre: number;
  abort: AbortPlan;
  hold: number;
  /** Release in two parts, with a pause between. */
  split: boolean;
}
interface Plan {
  size: number;
  actors: Op[][];
  /** When each shared signal aborts. */
  shared: number[];
}

const abortArb: fc.Arbitrary<AbortPlan> = fc.oneof(
  { weight: 3, arbitrary: fc.constant({ kind: "none" as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: "pre" as const }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("after" as const), d: delayArb(8) }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant("shared" as const), i: fc.nat({ max: 1 }) }) },
);

const planArb: fc.Arbitrary<Plan> = fc.record({
  size: fc.integer({ min: 1, max: 6 }),
  actors: fc.array(
    fc.array(
      fc.record({
        kind: fc.oneof(
          { weight: 6, arbitrary: fc.constant("acquire" as const) },
          { weight: 2, arbitrary: fc.constant("tryAcquire" as const) },
          { weight: 1, arbitrary: fc.constant("overRelease" as const) },
        ),
        n: fc.integer({ min: 1, max: 7 }),
        pre: delayArb(),
        abort: abortArb,
        hold: delayArb(7),
        split: fc.boolean(),
      }),
      { maxLength: 8 },
    ),
    { minLength: 1, maxLength: 6 },
  ),
  shared: fc.array(fc.nat({ max: 14 }), { minLength: 2, maxLength: 2 }),
});

interface Ticket {
  readonly id: number;
  readonly n: number;
  /** The shared signal it waits with, or -1. */
  readonly shared: number;
  state: "waiting" | "granted" | "rejected";
}

/** The reference: a weighted semaphore with a strict FIFO queue. */
class Model {
  held = 0;
  readonly queue: Ticket[] = []; // at most one ticket per actor
  constructor(readonly size: number) {}

  grant(): void {
    while (this.queue.length > 0 && this.held + this.queue[0]!.n <= this.size) {
      const t = this.queue.shift()!;
      this.held += t.n;
      t.state = "granted";
    }
  }

  withdraw(t: Ticket): void {
    if (t.state !== "waiting") return;
    const i = this.queue.indexOf(t);
    this.queue.splice(i, 1);
    t.state = "rejected";
    if (i === 0) this.grant();
  }

  /**
   * A shared signal aborted: every waiter on it leaves, and none of them is granted on the way
   * (its signal is aborted before any of its listeners runs: as Go's Acquire, which returns
   * ctx.Err() when the context is done, even if the tokens became available meanwhile).
   */
  withdrawShared(shared: number): void {
    let head = false;
    for (let i = this.queue.length - 1; i >= 0; i--) {
      const t = this.queue[i]!;
      if (t.shared !== shared) continue;
      if (i === 0) head = true;
      this.queue.splice(i, 1);
      t.state = "rejected";
    }
    if (head) this.grant();
  }
}

async function runPlan(plan: Plan): Promise<void> {
  const size = plan.size;
  const run = startRun("semaphore");
  const sem = new Semaphore(size, { name: run.name });
  const model = new Model(size);
  const controllers: AbortController[] = [];
  const aborters: Promise<void>[] = [];
  const tickets: Ticket[] = [];
  let nextId = 0;
  const shared = plan.shared.map((d, i) => {
    const c = new AbortController();
    const reason = new TestAbort(`shared ${i}`);
    controllers.push(c);
    aborters.push(
      later(d, () => {
        model.withdrawShared(i);
        c.abort(reason);
        check(`abort shared ${i}`);
      }),
    );
    return { signal: c.signal, reason };
  });

  const check = (where: string): void => {
    const held = size - sem.available;
    assert.ok(held >= 0 && held <= size, `${where}: 0 <= held ${held} <= size ${size}`);
    assert.equal(held, model.held, `${where}: held`);
    assert.equal(sem.waiting, model.queue.length, `${where}: waiting`);
    assert.equal(sem.stats.held, held, `${where}: stats.held`);
    assert.equal(sem.stats.waiting, sem.waiting, `${where}: stats.waiting`);
  };

  const hold = async (n: number, op: Op, where: string): Promise<void> => {
    await delay(op.hold);
    const first = op.split && n > 1 ? Math.floor(n / 2) : n;
    sem.release(first);
    model.held -= first;
    model.grant();
    check(`${where} release(${first})`);
    if (first < n) {
      await delay(op.hold);
      sem.release(n - first);
      model.held -= n - first;
      model.grant();
      check(`${where} release(${n - first})`);
    }
  };

  const actor = async (a: number, ops: Op[]): Promise<void> => {
    for (let k = 0; k < ops.length; k++) {
      const op = ops[k]!;
      const n = op.n === 7 ? size + 1 : Math.min(op.n, size);
      const where = `actor ${a} op ${k} (${op.kind}(${n}))`;
      await delay(op.pre);
      check(where);

      if (op.kind === "overRelease") {
        const before = sem.stats;
        assert.throws(() => sem.release(model.held + 1), RangeError, `${where}: releasing more than held throws`);
        assert.deepEqual(sem.stats, before, `${where}: a refused release changes nothing`);
        continue;
      }

      if (op.kind === "tryAcquire") {
        const expected = n <= size && model.queue.length === 0 && model.held + n <= size;
        const ok = sem.tryAcquire(n);
        assert.equal(ok, expected, `${where}: tryAcquire succeeds iff nobody waits and n fits`);
        if (ok) model.held += n;
        check(where);
        if (ok) await hold(n, op, where);
        continue;
      }

      let reason: unknown = new TestAbort(where);
      let signal: AbortSignal | undefined;
      const ref: { t?: Ticket } = {};
      if (op.abort.kind === "pre") signal = AbortSignal.abort(reason);
      else if (op.abort.kind === "shared") ({ signal, reason } = shared[op.abort.i]!);
      else if (op.abort.kind === "after") {
        const c = new AbortController();
        controllers.push(c);
        signal = c.signal;
        aborters.push(
          later(op.abort.d, () => {
            if (ref.t !== undefined) model.withdraw(ref.t);
            c.abort(reason);
            check(`abort ${where}`);
          }),
        );
      }
      const before = sem.stats;
      const pr = sem.acquire(n, signal === undefined ? undefined : { signal });
      if (signal?.aborted === true || n > size) {
        assert.deepEqual(sem.stats, before, `${where}: a refused acquire changes nothing`);
        const preAborted = signal?.aborted === true;
        await assert.rejects(
          pr,
          (e) => (preAborted ? e === reason : e instanceof RangeError),
          `${where}: an already-aborted signal wins, then n > size is a RangeError`,
        );
        continue;
      }
      const t: Ticket = { id: nextId++, n, shared: op.abort.kind === "shared" ? op.abort.i : -1, state: "waiting" };
      tickets.push(t);
      ref.t = t;
      if (model.queue.length === 0 && model.held + n <= size) {
        model.held += n;
        t.state = "granted";
      } else {
        model.queue.push(t);
      }
      check(where);
      try {
        await pr;
      } catch (e) {
        assert.equal(t.state, "rejected", `${where}: ticket ${t.id} rejected but the model says ${t.state}`);
        assert.equal(e, reason, `${where}: rejects only with its own abort reason, got ${String(e)}`);
        continue;
      }
      assert.equal(
        t.state,
        "granted",
        `${where}: ticket ${t.id} granted while the model says ${t.state} (queue: ${model.queue.map((q) => `#${q.id}:${q.n}`).join(" ")})`,
      );
      await hold(n, op, where);
    }
  };

  try {
    await watchdog(
      () => `held ${size - sem.available}/${size}, waiting ${sem.waiting}; model ${JSON.stringify(model)}; parked: ${parkedSummary()}`,
      (async () => {
        await Promise.all(plan.actors.map((ops, a) => actor(a, ops)));
        await Promise.all(aborters);
      })(),
    );
  } finally {
    // After a failure, let whatever still waits through, so that later runs start clean.
    for (const c of controllers) c.abort(new TestAbort("cleanup"));
    for (let i = 0; i < 50 && sem.waiting > 0; i++) {
      if (sem.available < size) sem.release(size - sem.available);
      await macroTurn();
    }
  }

  for (const t of tickets) assert.notEqual(t.state, "waiting", `ticket ${t.id} still waiting`);
  assert.equal(sem.waiting, 0, "nothing left waiting");
  assert.equal(sem.available, size, "every unit given back");
  run.finish();
}

describe("Semaphore under random schedules", () => {
  it("matches a strict-FIFO model: never over-grants, never lets a later waiter pass, leaves nothing waiting", async () => {
    await checkProperty("semaphore stress", fc.asyncProperty(planArb, runPlan), 300);
  });

  // Found by the property above (shrunk, then written out). Fails until the core is fixed.
  it("does not grant a waiter whose signal aborted in the same abort() that withdrew the head", async () => {
    const sem = new Semaphore(2, { name: "shared-abort" });
    await sem.acquire(2);
    const ac = new AbortController();
    const reason = new TestAbort("shared");
    const head = sem.acquire(2, { signal: ac.signal }); // cannot fit
    const behind = sem.acquire(1, { signal: ac.signal }); // would fit, but waits behind the head
    sem.release(1);
    assert.equal(sem.waiting, 2);
    ac.abort(reason); // both signals are aborted before either listener runs
    const [h, b] = await Promise.allSettled([head, behind]);
    assert.deepEqual(h, { status: "rejected", reason });
    try {
      assert.deepEqual(b, { status: "rejected", reason }, "its signal was aborted before it was granted");
      assert.equal(sem.available, 1, "the aborted waiter holds nothing");
    } finally {
      if (b.status === "fulfilled") sem.release(1);
      sem.release(1);
    }
    assert.equal(sem.waiting, 0);
  });
});
