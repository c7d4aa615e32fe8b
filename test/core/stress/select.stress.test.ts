/**
 * Randomized stress of select: actors run random mixes of `select`, `trySelect` and plain
 * `send`/`recv` over a few channels of random capacity (0..3) and random `maxParkedSends` /
 * `maxParkedRecvs`, with receive and send cases, `null` cases, the same channel more than once
 * in a select, and random aborts (own or shared signals); the owner closes every channel at a
 * random point.
 *
 * Checked at every call: a select that can proceed at once does exactly one operation and
 * parks nothing; one that cannot proceed parks one waiter per non-null case and does nothing
 * else, or, if that would pass a channel's bound, rejects with BusyError having linked nothing;
 * the parked counts never pass the bounds; the result names a non-null case of the right kind; a received value was sent on that
 * very channel. Checked at the end: every value of a send that fired (plain or as a case) was
 * received exactly once, no value of a case that did not fire (or of a rejected select) was
 * ever received, and nothing is left parked.
 *
 * `Math.random` is seeded per run, so a failing schedule replays exactly.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { BusyError, Channel, ChannelClosedError, recv, select, send, trySelect } from "../../../src/index.js";
import type { SelectCase, SelectResult } from "../../../src/index.js";
import { checkProperty, delay, delayArb, macroTurn, parkedSummary, startRun, TestAbort, later, watchdog, withSeededRandom } from "./harness.js";

/** "shared": one of two signals of the run, each shared by several operations, aborted at a random turn. */
type AbortPlan = { kind: "none" } | { kind: "pre" } | { kind: "after"; d: number } | { kind: "shared"; i: number };
/** `ch` -1 is a `null` case. */
interface CaseSpec { op: "recv" | "send"; ch: number }
type Op =
  | { kind: "select"; pre: number; cases: CaseSpec[]; abort: AbortPlan }
  | { kind: "trySelect"; pre: number; cases: CaseSpec[] }
  | { kind: "send" | "recv"; pre: number; ch: number; abort: AbortPlan };
interface Limits {
  sends: number | undefined;
  recvs: number | undefined;
}
interface Plan {
  capacities: number[];
  /** `maxParkedSends` / `maxParkedRecvs` of each channel. */
  limits: Limits[];
  actors: Op[][];
  closeAfter: number;
  random: number;
  /** When each shared signal aborts. */
  shared: number[];
}

const MAX_CHANNELS = 3;
const MAX_OPS = 8;
const MAX_CASES = 4;

const abortArb: fc.Arbitrary<AbortPlan> = fc.oneof(
  { weight: 3, arbitrary: fc.constant({ kind: "none" as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: "pre" as const }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("after" as const), d: delayArb(7) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("shared" as const), i: fc.nat({ max: 1 }) }) },
);

const planArb: fc.Arbitrary<Plan> = fc.integer({ min: 1, max: MAX_CHANNELS }).chain((nch) => {
  const chArb = fc.integer({ min: 0, max: nch - 1 });
  const caseArb: fc.Arbitrary<CaseSpec> = fc.record({
    op: fc.constantFrom("recv" as const, "send" as const),
    ch: fc.oneof({ weight: 5, arbitrary: chArb }, { weight: 1, arbitrary: fc.constant(-1) }),
  });
  const casesArb = fc.array(caseArb, { maxLength: MAX_CASES });
  const opArb: fc.Arbitrary<Op> = fc.oneof(
    { weight: 5, arbitrary: fc.record({ kind: fc.constant("select" as const), pre: delayArb(), cases: casesArb, abort: abortArb }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant("trySelect" as const), pre: delayArb(), cases: casesArb }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constantFrom("send" as const, "recv" as const), pre: delayArb(), ch: chArb, abort: abortArb }) },
  );
  return fc.record({
    capacities: fc.array(fc.nat({ max: 3 }), { minLength: nch, maxLength: nch }),
    limits: fc.array(
      fc.record({
        sends: fc.option(fc.nat({ max: 2 }), { nil: undefined, freq: 2 }),
        recvs: fc.option(fc.nat({ max: 2 }), { nil: undefined, freq: 2 }),
      }),
      { minLength: nch, maxLength: nch },
    ),
    actors: fc.array(fc.array(opArb, { maxLength: MAX_OPS }), { minLength: 1, maxLength: 5 }),
    closeAfter: fc.nat({ max: 40 }),
    random: fc.integer(),
    shared: fc.array(delayArb(12), { minLength: 2, maxLength: 2 }),
  });
});

const UNTRIED = 0;
const PENDING = 1;
const SENT = 2;
const REFUSED = 3;

async function runPlan(plan: Plan): Promise<void> {
  const run = startRun("select");
  const chans = plan.capacities.map(
    (cap, i) => new Channel<number>(cap, { name: `${run.name}.${i}`, maxParkedSends: plan.limits[i]!.sends, maxParkedRecvs: plan.limits[i]!.recvs }),
  );
  const maxSends = plan.limits.map((l) => l.sends ?? Infinity);
  const maxRecvs = plan.limits.map((l) => l.recvs ?? Infinity);
  const n = plan.actors.length * MAX_OPS * MAX_CASES;
  const sendState = new Uint8Array(n);
  const target = new Int8Array(n).fill(-1); // the channel each value was sent on
  const recvCount = new Uint8Array(n);
  const controllers: AbortController[] = [];
  const aborters: Promise<void>[] = [];
  let actorsDone = 0;

  const check = (where: string): void => {
    for (let c = 0; c < chans.length; c++) {
      const s = chans[c]!.stats;
      assert.ok(s.parkedSenders <= maxSends[c]!, `${where}: ${s.name}: ${s.parkedSenders} senders parked, max ${maxSends[c]}`);
      assert.ok(s.parkedReceivers <= maxRecvs[c]!, `${where}: ${s.name}: ${s.parkedReceivers} receivers parked, max ${maxRecvs[c]}`);
      assert.equal(s.sent - s.received, s.length, `${where}: ${s.name}: sent - received === length`);
      assert.ok(s.length >= 0 && s.length <= s.capacity, `${where}: ${s.name}: 0 <= length <= capacity`);
      if (s.parkedReceivers > 0) assert.equal(s.length, 0, `${where}: ${s.name}: receivers park only on an empty buffer`);
      if (s.parkedSenders > 0) assert.equal(s.length, s.capacity, `${where}: ${s.name}: senders park only on a full buffer`);
      if (s.closed) assert.equal(s.parkedSenders + s.parkedReceivers, 0, `${where}: ${s.name}: parked after close`);
    }
  };

  const got = (v: unknown, c: number, where: string): void => {
    assert.ok(typeof v === "number" && Number.isInteger(v) && v >= 0 && v < n, `${where}: received a value never sent: ${String(v)}`);
    assert.ok(sendState[v] === PENDING || sendState[v] === SENT, `${where}: received ${v} whose send state is ${sendState[v]}`);
    assert.equal(target[v], c, `${where}: value ${v} sent on channel ${target[v]} but received from ${c}`);
    recvCount[v]!++;
    assert.equal(recvCount[v], 1, `${where}: value ${v} received twice`);
  };

  const refuse = (v: number, where: string): void => {
    assert.equal(recvCount[v], 0, `${where}: value ${v} of a send that did not happen was received`);
    sendState[v] = REFUSED;
  };

  const shared = plan.shared.map((d, i) => {
    const c = new AbortController();
    const reason = new TestAbort(`shared ${i}`);
    controllers.push(c);
    aborters.push(
      later(d, () => {
        c.abort(reason);
        check(`abort shared ${i}`);
      }),
    );
    return { signal: c.signal, reason };
  });

  const signalFor = (abort: AbortPlan, tag: string): { signal?: AbortSignal; reason?: TestAbort } => {
    if (abort.kind === "none") return {};
    if (abort.kind === "shared") return shared[abort.i]!;
    const reason = new TestAbort(tag);
    if (abort.kind === "pre") return { signal: AbortSignal.abort(reason), reason };
    const c = new AbortController();
    controllers.push(c);
    aborters.push(
      later(abort.d, () => {
        c.abort(reason);
        check(`abort ${tag}`);
      }),
    );
    return { signal: c.signal, reason };
  };

  /** Whether the case could proceed now (the readiness select polls for). */
  const ready = (spec: CaseSpec): boolean => {
    if (spec.ch < 0) return false;
    const s = chans[spec.ch]!.stats;
    return spec.op === "recv"
      ? s.length > 0 || s.parkedSenders > 0 || s.closed
      : s.closed || s.parkedReceivers > 0 || s.length < s.capacity;
  };

  const totals = (): { moved: number; parkedTotal: number; refused: number } => {
    let moved = 0;
    let parkedTotal = 0;
    let refused = 0;
    for (const ch of chans) {
      const s = ch.stats;
      moved += s.sent + s.received;
      parkedTotal += s.sendsWaited + s.recvsWaited;
      refused += s.rejectedSends + s.rejectedRecvs;
    }
    return { moved, parkedTotal, refused };
  };

  /** Whether parking all these cases would pass a channel's maxParkedSends / maxParkedRecvs. */
  const tooMany = (cases: CaseSpec[]): boolean =>
    chans.some((ch, c) => {
      const s = ch.stats;
      const sends = cases.filter((x) => x.ch === c && x.op === "send").length;
      const recvs = cases.filter((x) => x.ch === c && x.op === "recv").length;
      return (sends > 0 && s.parkedSenders + sends > maxSends[c]!) || (recvs > 0 && s.parkedReceivers + recvs > maxRecvs[c]!);
    });

  /** Checks one select's outcome and updates the bitmap. `ids[i]` is case i's value. */
  const settle = (cases: CaseSpec[], ids: number[], outcome: { r: SelectResult } | { e: unknown }, reason: unknown, busy: boolean, where: string): void => {
    if ("e" in outcome) {
      if (outcome.e instanceof BusyError) {
        assert.ok(busy, `${where}: BusyError though parking would pass no limit`);
      } else if (outcome.e instanceof ChannelClosedError) {
        assert.ok(
          cases.some((c) => c.op === "send" && c.ch >= 0 && chans[c.ch]!.closed),
          `${where}: ChannelClosedError without a send case on a closed channel`,
        );
      } else {
        assert.equal(outcome.e, reason, `${where}: a select rejects only with its signal's reason, got ${String(outcome.e)}`);
      }
      for (let i = 0; i < cases.length; i++) if (cases[i]!.op === "send") refuse(ids[i]!, where);
      return;
    }
    const { index, value, ok } = outcome.r;
    assert.ok(Number.isInteger(index) && index >= 0 && index < cases.length, `${where}: index ${index} out of range`);
    const fired = cases[index]!;
    assert.ok(fired.ch >= 0, `${where}: a null case fired`);
    if (fired.op === "recv") {
      if (ok) got(value, fired.ch, where);
      else {
        assert.equal(value, undefined, `${where}: ok:false carries no value`);
        assert.ok(chans[fired.ch]!.closed, `${where}: ok:false from an open channel`);
      }
    } else {
      assert.equal(value, undefined, `${where}: a send case's value is undefined`);
      assert.equal(ok, true, `${where}: a send case's ok is true`);
      sendState[ids[index]!] = SENT;
    }
    for (let i = 0; i < cases.length; i++) if (i !== index && cases[i]!.op === "send") refuse(ids[i]!, where);
  };

  const actor = async (a: number, ops: Op[]): Promise<void> => {
    for (let k = 0; k < ops.length; k++) {
      const op = ops[k]!;
      const where = `actor ${a} op ${k} (${op.kind})`;
      const idOf = (i: number): number => (a * MAX_OPS + k) * MAX_CASES + i;
      await delay(op.pre);
      check(where);

      if (op.kind !== "select" && op.kind !== "trySelect") {
        const ch = chans[op.ch]!;
        const { signal, reason } = signalFor(op.abort, where);
        const opts = signal === undefined ? undefined : { signal };
        const spec: CaseSpec = { op: op.kind, ch: op.ch };
        const busy = signal?.aborted !== true && !ready(spec) && !ch.closed && tooMany([spec]);
        if (op.kind === "send") {
          const v = idOf(0);
          target[v] = op.ch;
          sendState[v] = PENDING;
          try {
            await ch.send(v, opts);
            sendState[v] = SENT;
          } catch (e) {
            if (e instanceof ChannelClosedError) assert.ok(ch.closed, `${where}: ChannelClosedError from an open channel`);
            else if (e instanceof BusyError) assert.ok(busy, `${where}: BusyError below maxParkedSends`);
            else assert.equal(e, reason, `${where}: a send rejects only with its signal's reason, got ${String(e)}`);
            refuse(v, where);
          }
        } else {
          try {
            const r = await ch.recv(opts);
            if (r.ok) got(r.value, op.ch, where);
            else assert.ok(ch.closed, `${where}: ok:false from an open channel`);
          } catch (e) {
            if (e instanceof BusyError) assert.ok(busy, `${where}: BusyError below maxParkedRecvs`);
            else assert.equal(e, reason, `${where}: a receive rejects only with its signal's reason, got ${String(e)}`);
          }
        }
        check(where);
        continue;
      }

      const cases: SelectCase[] = [];
      const ids: number[] = [];
      for (let i = 0; i < op.cases.length; i++) {
        const spec = op.cases[i]!;
        const ch = spec.ch < 0 ? null : chans[spec.ch]!;
        const v = idOf(i);
        ids.push(v);
        if (spec.op === "send") {
          target[v] = spec.ch;
          sendState[v] = PENDING;
          cases.push(send(ch, v));
        } else {
          cases.push(recv(ch));
        }
      }
      const anyReady = op.cases.some(ready);
      const closedSendReady = op.cases.some((c) => c.op === "send" && c.ch >= 0 && chans[c.ch]!.closed);
      const before = totals();

      if (op.kind === "trySelect") {
        let outcome: { r: SelectResult } | { e: unknown };
        try {
          const r = trySelect(cases);
          const after = totals();
          if (r === undefined) {
            assert.ok(!anyReady, `${where}: trySelect gave up with a ready case`);
            assert.deepEqual(after, before, `${where}: a trySelect that gave up changed nothing`);
            for (let i = 0; i < op.cases.length; i++) if (op.cases[i]!.op === "send") refuse(ids[i]!, where);
            continue;
          }
          assert.ok(anyReady, `${where}: trySelect fired with no ready case`);
          assert.equal(after.parkedTotal, before.parkedTotal, `${where}: trySelect parked`);
          assert.ok(after.moved - before.moved >= 1 || (op.cases[r.index]!.op === "recv" && !r.ok), `${where}: trySelect did nothing`);
          outcome = { r };
        } catch (e) {
          assert.ok(closedSendReady, `${where}: trySelect threw ${String(e)}`);
          assert.deepEqual(totals(), before, `${where}: a trySelect that threw changed nothing`);
          outcome = { e };
        }
        settle(op.cases, ids, outcome, undefined, false, where);
        check(where);
        continue;
      }

      // An all-null select would never settle: give it a signal that fires.
      const live = op.cases.some((c) => c.ch >= 0);
      const abort: AbortPlan = live || op.abort.kind !== "none" ? op.abort : { kind: "after", d: 5 };
      const { signal, reason } = signalFor(abort, where);
      const preAborted = signal?.aborted === true;
      const busy = !preAborted && !anyReady && tooMany(op.cases);
      const pr = select(cases, signal === undefined ? undefined : { signal });
      const after = totals();
      if (preAborted) {
        assert.deepEqual(after, before, `${where}: an already-aborted select changes nothing`);
      } else if (anyReady) {
        assert.equal(after.parkedTotal, before.parkedTotal, `${where}: a select with a ready case parked`);
        assert.ok(after.moved - before.moved <= 2, `${where}: a select did more than one operation`);
      } else if (busy) {
        assert.deepEqual(after, { ...before, refused: before.refused + 1 }, `${where}: a select refused as busy links nothing and counts one refusal`);
      } else {
        const nonNull = op.cases.filter((c) => c.ch >= 0).length;
        assert.equal(after.parkedTotal - before.parkedTotal, nonNull, `${where}: a parked select parks one waiter per non-null case`);
        assert.equal(after.moved, before.moved, `${where}: a parked select did something`);
      }
      check(where);
      let outcome: { r: SelectResult } | { e: unknown };
      try {
        outcome = { r: await pr };
      } catch (e) {
        outcome = { e };
      }
      settle(op.cases, ids, outcome, reason, busy, where);
      check(where);
    }
  };

  const actors = plan.actors.map((ops, a) =>
    actor(a, ops).finally(() => {
      actorsDone++;
    }),
  );
  const owner = async (): Promise<void> => {
    for (let t = 0; t < plan.closeAfter && actorsDone < actors.length; t++) await macroTurn();
    for (const ch of chans) {
      ch.close();
      check(`close ${ch.name}`);
    }
    await Promise.all(actors);
    await Promise.all(aborters);
    // Drain what is still buffered.
    for (let c = 0; c < chans.length; c++) {
      for (let r = chans[c]!.tryRecv(); r !== undefined && r.ok; r = chans[c]!.tryRecv()) got(r.value, c, "drain");
    }
  };

  try {
    await watchdog(
      () => `${JSON.stringify(chans.map((c) => c.stats))}; parked: ${parkedSummary()}`,
      withSeededRandom(plan.random, owner),
    );
  } finally {
    for (const c of controllers) c.abort(new TestAbort("cleanup"));
    for (const ch of chans) if (!ch.closed) ch.close();
  }

  for (let v = 0; v < n; v++) {
    assert.notEqual(sendState[v], PENDING, `value ${v}: send never settled`);
    if (sendState[v] === SENT) assert.equal(recvCount[v], 1, `value ${v}: sent but received ${recvCount[v]} times`);
    else assert.equal(recvCount[v], 0, `value ${v}: not sent (state ${sendState[v] === UNTRIED ? "untried" : "refused"}) but received`);
  }
  for (const ch of chans) {
    const s = ch.stats;
    assert.equal(s.sent, s.received, `${s.name}: everything sent was received`);
    assert.equal(s.parkedSenders + s.parkedReceivers, 0, `${s.name}: nothing left parked`);
  }
  run.finish();
}

describe("select under random schedules", () => {
  it("fires exactly one case per select, never loses or duplicates a value, and leaves no waiter", async () => {
    await checkProperty("select stress", fc.asyncProperty(planArb, runPlan), 250);
  });
});
