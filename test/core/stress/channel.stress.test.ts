/**
 * Randomized stress of Channel: many producers (`send`, `trySend`) and consumers (`recv`,
 * `tryRecv`, iteration) on a channel of random capacity (0..8), random schedules, random aborts
 * (each operation's own signal, or one of two signals shared by many operations), and a close
 * at a random point after the producers finished (or, in one property, while they still send).
 *
 * Checked at every step an actor observes: `sent - received === length`, `0 <= length <=
 * capacity`, parked receivers only on an empty buffer, parked senders only on a full one, never
 * both, nothing parked once closed; each call completes at once, parks, or changes nothing
 * (already-aborted signal) exactly as the state says. Checked at the end: every value whose
 * send resolved was received exactly once; a send that rejected (abort, close) or a `trySend`
 * that returned false was never received; FIFO per producer in the channel's own take order;
 * FIFO among parked senders and among parked receivers (none served while an earlier one still
 * waited); nothing left parked (`stats` and `parkedWork()`).
 *
 * The take order is recorded exactly: every take happens inside one synchronous call (a
 * receive on a buffered value or a parked sender, or a send handing its value to a parked
 * receiver), and `stats.received` before that call is the take's ordinal.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { Channel, ChannelClosedError } from "../../../src/index.js";
import { checkProperty, delay, delayArb, parkedSummary, startRun, TestAbort, later, watchdog } from "./harness.js";

/** "shared": one of two signals of the run, each shared by several operations, aborted at a random turn. */
type AbortPlan = { kind: "none" } | { kind: "pre" } | { kind: "after"; d: number } | { kind: "shared"; i: number };
interface SendOp { pre: number; kind: "send" | "trySend"; abort: AbortPlan }
interface RecvOp { pre: number; kind: "recv" | "tryRecv" | "next"; abort: AbortPlan }
interface Plan {
  capacity: number;
  producers: SendOp[][];
  consumers: RecvOp[][];
  closeDelay: number;
  /** When each shared signal aborts. */
  shared: number[];
  /** Close without waiting for the producers (their sends may then reject with ChannelClosedError). */
  closeEarly: boolean;
}

const MAX_OPS = 10;

const abortArb: fc.Arbitrary<AbortPlan> = fc.oneof(
  { weight: 4, arbitrary: fc.constant({ kind: "none" as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: "pre" as const }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("after" as const), d: delayArb(7) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("shared" as const), i: fc.nat({ max: 1 }) }) },
);
const sharedArb = fc.array(delayArb(12), { minLength: 2, maxLength: 2 });

const planArb: fc.Arbitrary<Plan> = fc.record({
  capacity: fc.nat({ max: 8 }),
  producers: fc.array(
    fc.array(
      fc.record({ pre: delayArb(), kind: fc.constantFrom("send" as const, "send" as const, "trySend" as const), abort: abortArb }),
      { maxLength: MAX_OPS },
    ),
    { minLength: 1, maxLength: 4 },
  ),
  consumers: fc.array(
    fc.array(
      fc.record({ pre: delayArb(), kind: fc.constantFrom("recv" as const, "recv" as const, "tryRecv" as const, "next" as const), abort: abortArb }),
      { maxLength: MAX_OPS },
    ),
    { minLength: 1, maxLength: 4 },
  ),
  closeDelay: delayArb(8),
  shared: sharedArb,
  closeEarly: fc.constant(false),
});

/** An operation that parked (see `parkedSends` below). */
interface Parked { park: number; leave: number; served: boolean; v: number }

// Per value (producer p, op i => id p * MAX_OPS + i):
// 0: never tried
const PENDING = 1;
const SENT = 2; // send resolved / trySend returned true
const REFUSED = 3; // send rejected / trySend returned false

async function runPlan(plan: Plan): Promise<void> {
  const cap = plan.capacity;
  const run = startRun("channel");
  const ch = new Channel<number>(cap, { name: run.name });
  const n = plan.producers.length * MAX_OPS;
  const sendState = new Uint8Array(n);
  const recvCount = new Uint8Array(n);
  const ordinalOf = new Int32Array(n).fill(-1); // the take ordinal of each value
  const valueAt = new Int32Array(n).fill(-1); // the value of each take ordinal
  const controllers: AbortController[] = [];
  const aborters: Promise<void>[] = [];
  // Every operation that parked: its park ordinal (`sendsWaited`/`recvsWaited` before it) and
  // when it left the queue, on the clock of takes (`received`; for senders `sent`, which counts
  // the same FIFO sequence): its take ordinal if served, else the clock when it was withdrawn.
  // A parked operation must leave no later than any operation that parked after it is served.
  const parkedSends: Parked[] = [];
  const parkedRecvs: Parked[] = [];
  let closedAt = { sent: -1, received: -1 };

  const check = (where: string): void => {
    const s = ch.stats;
    assert.equal(s.sent - s.received, s.length, `${where}: sent - received === length`);
    assert.ok(s.length >= 0 && s.length <= cap, `${where}: 0 <= length ${s.length} <= capacity ${cap}`);
    assert.equal(s.length, ch.length, `${where}: stats.length === length`);
    if (s.parkedReceivers > 0) assert.equal(s.length, 0, `${where}: receivers park only on an empty buffer`);
    if (s.parkedSenders > 0) assert.equal(s.length, cap, `${where}: senders park only on a full buffer`);
    assert.ok(s.parkedSenders === 0 || s.parkedReceivers === 0, `${where}: senders and receivers parked together`);
    if (s.closed) assert.equal(s.parkedSenders + s.parkedReceivers, 0, `${where}: parked after close`);
  };

  /** Records that the take with ordinal `ord` delivered `v`. */
  const recordTake = (ord: number, v: number, where: string): void => {
    assert.ok(ord >= 0 && ord < n, `${where}: take ordinal ${ord} in range`);
    assert.equal(valueAt[ord], -1, `${where}: take ordinal ${ord} used twice`);
    assert.equal(ordinalOf[v], -1, `${where}: value ${v} taken twice`);
    valueAt[ord] = v;
    ordinalOf[v] = ord;
  };

  const got = (v: unknown, where: string): void => {
    assert.ok(typeof v === "number" && Number.isInteger(v) && v >= 0 && v < n, `${where}: received a value never sent: ${String(v)}`);
    assert.ok(sendState[v] === PENDING || sendState[v] === SENT, `${where}: received ${v} whose send state is ${sendState[v]}`);
    recvCount[v]!++;
    assert.equal(recvCount[v], 1, `${where}: value ${v} received twice`);
  };

  type Sig = { signal?: AbortSignal; reason?: TestAbort; at: { sent: number; received: number } };
  const shared: Sig[] = plan.shared.map((d, i) => {
    const c = new AbortController();
    const sig = { signal: c.signal, reason: new TestAbort(`shared ${i}`), at: { sent: -1, received: -1 } };
    controllers.push(c);
    aborters.push(
      later(d, () => {
        const s = ch.stats;
        sig.at.sent = s.sent;
        sig.at.received = s.received;
        c.abort(sig.reason);
        check(`abort shared ${i}`);
      }),
    );
    return sig;
  });

  /** The signal of one operation; `at` gets the clocks when its abort fires. */
  const signalFor = (plan: AbortPlan, tag: string): Sig => {
    const at = { sent: -1, received: -1 };
    if (plan.kind === "none") return { at };
    if (plan.kind === "shared") return shared[plan.i]!;
    const reason = new TestAbort(tag);
    if (plan.kind === "pre") return { signal: AbortSignal.abort(reason), reason, at };
    const c = new AbortController();
    controllers.push(c);
    aborters.push(
      later(plan.d, () => {
        const s = ch.stats;
        at.sent = s.sent;
        at.received = s.received;
        c.abort(reason);
        check(`abort ${tag}`);
      }),
    );
    return { signal: c.signal, reason, at };
  };

  const producer = async (p: number, ops: SendOp[]): Promise<void> => {
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i]!;
      const v = p * MAX_OPS + i;
      const where = `producer ${p} op ${i} (${op.kind})`;
      await delay(op.pre);
      check(where);
      const before = ch.stats;
      if (op.kind === "trySend") {
        if (before.closed) {
          assert.throws(() => ch.trySend(v), ChannelClosedError, `${where}: trySend on a closed channel throws`);
          sendState[v] = REFUSED;
          continue;
        }
        const ok = ch.trySend(v);
        const after = ch.stats;
        assert.equal(after.sent, before.sent + (ok ? 1 : 0), `${where}: sent counts a successful trySend`);
        assert.equal(ok, before.parkedReceivers > 0 || before.length < cap, `${where}: trySend succeeds iff it can`);
        sendState[v] = ok ? SENT : REFUSED;
        if (after.received === before.received + 1) recordTake(before.received, v, where);
        check(where);
        continue;
      }
      const { signal, reason, at } = signalFor(op.abort, where);
      const preAborted = signal?.aborted === true;
      sendState[v] = PENDING;
      const pr = ch.send(v, signal === undefined ? undefined : { signal });
      const after = ch.stats;
      let parked: Parked | undefined;
      if (preAborted) {
        assert.deepEqual(after, before, `${where}: an already-aborted send changes nothing`);
      } else {
        const immediate = !before.closed && (before.parkedReceivers > 0 || before.length < cap);
        const parks = !before.closed && !immediate;
        assert.equal(after.sent, before.sent + (immediate ? 1 : 0), `${where}: send completes at once iff it can`);
        assert.equal(after.parkedSenders, before.parkedSenders + (parks ? 1 : 0), `${where}: send parks iff it must`);
        if (after.received === before.received + 1) recordTake(before.received, v, where);
        if (parks) parkedSends.push((parked = { park: before.sendsWaited, leave: -1, served: false, v }));
      }
      check(where);
      try {
        await pr;
        sendState[v] = SENT;
        if (parked !== undefined) {
          parked.served = true;
          parked.leave = ordinalOf[v]!; // -1 while still buffered: filled in at the end
        }
      } catch (e) {
        if (e instanceof ChannelClosedError) {
          assert.ok(ch.closed, `${where}: ChannelClosedError from an open channel`);
          if (parked !== undefined) parked.leave = closedAt.sent;
        } else {
          assert.equal(e, reason, `${where}: a send rejects only with its signal's reason, got ${String(e)}`);
          if (parked !== undefined) parked.leave = at.sent;
        }
        assert.equal(recvCount[v], 0, `${where}: a refused send's value was received`);
        assert.equal(ordinalOf[v], -1, `${where}: a refused send's value was taken`);
        sendState[v] = REFUSED;
      }
      check(where);
    }
  };

  const consumer = async (c: number, ops: RecvOp[]): Promise<void> => {
    for (let i = 0; ; i++) {
      const op: RecvOp = ops[i] ?? { pre: 0, kind: "recv", abort: { kind: "none" } };
      const where = `consumer ${c} op ${i} (${op.kind})`;
      await delay(op.pre);
      check(where);
      const before = ch.stats;
      if (op.kind === "tryRecv") {
        const r = ch.tryRecv();
        const after = ch.stats;
        if (r === undefined) {
          assert.ok(!before.closed && before.length === 0 && before.parkedSenders === 0, `${where}: tryRecv gave up while it could receive`);
          assert.deepEqual(after, before, `${where}: a failed tryRecv changes nothing`);
          continue;
        }
        if (!r.ok) {
          assert.ok(before.closed && before.length === 0, `${where}: ok:false only when closed and drained`);
          return;
        }
        assert.equal(after.received, before.received + 1, `${where}: tryRecv counts`);
        recordTake(before.received, r.value, where);
        got(r.value, where);
        check(where);
        continue;
      }
      const { signal, reason, at } = signalFor(op.abort, where);
      const preAborted = signal?.aborted === true;
      const opts = signal === undefined ? undefined : { signal };
      let parked: Parked | undefined;
      const pr: Promise<{ value: number | undefined; ok: boolean }> =
        op.kind === "recv"
          ? ch.recv(opts)
          : ch.values(opts).next().then((r) => (r.done === true ? { value: undefined, ok: false } : { value: r.value, ok: true }));
      const after = ch.stats;
      const took = after.received === before.received + 1;
      if (preAborted) {
        assert.deepEqual(after, before, `${where}: an already-aborted receive changes nothing`);
      } else {
        const immediate = before.length > 0 || before.parkedSenders > 0;
        assert.equal(took, immediate, `${where}: receive completes at once iff it can`);
        const parks = !immediate && !before.closed;
        assert.equal(after.parkedReceivers, before.parkedReceivers + (parks ? 1 : 0), `${where}: receive parks iff it must`);
        if (parks) parkedRecvs.push((parked = { park: before.recvsWaited, leave: -1, served: false, v: -1 }));
      }
      check(where);
      let r: { value: number | undefined; ok: boolean };
      try {
        r = await pr;
      } catch (e) {
        assert.equal(e, reason, `${where}: a receive rejects only with its signal's reason, got ${String(e)}`);
        assert.ok(!took, `${where}: a receive that took a value rejected`);
        if (parked !== undefined) parked.leave = at.received;
        continue;
      }
      if (!r.ok) {
        assert.ok(ch.closed && ch.length === 0, `${where}: ok:false only when closed and drained`);
        assert.ok(!took, `${where}: ok:false after taking a value`);
        if (parked !== undefined) parked.leave = closedAt.received;
        return;
      }
      const v = r.value as number;
      if (took) recordTake(before.received, v, where);
      else assert.notEqual(ordinalOf[v as number] ?? -1, -1, `${where}: value ${v} handed off by no recorded send`);
      if (parked !== undefined) {
        parked.served = true;
        parked.leave = ordinalOf[v]!;
      }
      got(v, where);
      check(where);
    }
  };

  const producers = plan.producers.map((ops, p) => producer(p, ops));
  const consumers = plan.consumers.map((ops, c) => consumer(c, ops));
  const owner = async (): Promise<void> => {
    if (!plan.closeEarly) await Promise.all(producers);
    await delay(plan.closeDelay);
    check("before close");
    closedAt = { sent: ch.stats.sent, received: ch.stats.received };
    ch.close();
    check("after close");
    await assert.rejects(ch.send(-1), ChannelClosedError, "send after close rejects");
    assert.throws(() => ch.trySend(-1), ChannelClosedError, "trySend after close throws");
    const reason = new TestAbort("late");
    await assert.rejects(ch.send(-1, { signal: AbortSignal.abort(reason) }), (e) => e === reason, "an aborted signal wins over closed");
    await Promise.all(producers);
    await Promise.all(consumers);
    await Promise.all(aborters);
  };

  try {
    await watchdog(
      () => `stats ${JSON.stringify(ch.stats)}; parked: ${parkedSummary()}`,
      owner(),
    );
  } finally {
    // After a failure, release whatever is still parked so that later runs start clean.
    for (const c of controllers) c.abort(new TestAbort("cleanup"));
    if (!ch.closed) ch.close();
  }

  const s = ch.stats;
  let sentOk = 0;
  for (let v = 0; v < n; v++) {
    assert.notEqual(sendState[v], PENDING, `value ${v}: send never settled`);
    if (sendState[v] === SENT) {
      sentOk++;
      assert.equal(recvCount[v], 1, `value ${v}: sent but received ${recvCount[v]} times`);
    } else {
      assert.equal(recvCount[v], 0, `value ${v}: not sent (state ${sendState[v]}) but received`);
    }
  }
  assert.equal(s.sent, sentOk, "stats.sent counts the successful sends");
  assert.equal(s.received, sentOk, "stats.received counts the receives");
  assert.equal(s.length, 0);
  assert.equal(s.parkedSenders, 0, "no sender left parked");
  assert.equal(s.parkedReceivers, 0, "no receiver left parked");
  run.finish();
  // FIFO per producer, in the channel's take order.
  const lastSeq = new Int32Array(plan.producers.length).fill(-1);
  for (let ord = 0; ord < sentOk; ord++) {
    const v = valueAt[ord]!;
    assert.notEqual(v, -1, `take ordinal ${ord} not recorded`);
    const p = Math.floor(v / MAX_OPS);
    const seq = v % MAX_OPS;
    assert.ok(seq > lastSeq[p]!, `FIFO: producer ${p} value #${seq} taken after #${lastSeq[p]}`);
    lastSeq[p] = seq;
  }
  // FIFO among parked operations: none was overtaken while it waited.
  for (const q of [parkedSends, parkedRecvs]) {
    for (const x of q) {
      if (x.served && x.leave === -1) x.leave = ordinalOf[x.v]!;
      assert.ok(x.leave >= 0, "every parked operation left its queue at a recorded time");
    }
    for (const a of q) {
      for (const b of q) {
        if (a.park < b.park && b.served) {
          assert.ok(
            b.leave >= a.leave,
            `FIFO: ${q === parkedSends ? "sender" : "receiver"} parked #${b.park} served at ${b.leave} while #${a.park} still waited (left at ${a.leave})`,
          );
        }
      }
    }
  }
}

describe("Channel under random schedules", () => {
  it("delivers every sent value exactly once, in per-producer FIFO order, and leaves nothing parked", async () => {
    await checkProperty("channel stress", fc.asyncProperty(planArb, runPlan), 250);
  });

  it("stays consistent with capacity 0 and many aborts (focused)", async () => {
    const focused = fc.record({
      capacity: fc.constantFrom(0, 1),
      producers: fc.array(
        fc.array(fc.record({ pre: delayArb(5), kind: fc.constant("send" as const), abort: abortArb }), { minLength: 1, maxLength: MAX_OPS }),
        { minLength: 2, maxLength: 4 },
      ),
      consumers: fc.array(
        fc.array(fc.record({ pre: delayArb(5), kind: fc.constantFrom("recv" as const, "next" as const), abort: abortArb }), { minLength: 1, maxLength: MAX_OPS }),
        { minLength: 2, maxLength: 4 },
      ),
      closeDelay: delayArb(8),
      shared: sharedArb,
      closeEarly: fc.constant(false),
    });
    await checkProperty("channel stress (unbuffered, aborts)", fc.asyncProperty(focused, runPlan), 150);
  });

  it("refuses, never loses or duplicates, when closed while producers still send", async () => {
    const early = planArb.map((p) => ({ ...p, closeEarly: true }));
    await checkProperty("channel stress (close under producers)", fc.asyncProperty(early, runPlan), 150);
  });
});
