/**
 * select: wait on several channel operations and perform exactly one (Go's `select`).
 *
 * The algorithm is Go's `selectgo`, without the locks:
 *  1. Poll: find the cases that can complete now (a receive from a channel with a buffered
 *     value, a parked sender or that is closed; a send to a channel with a parked receiver,
 *     buffer room, or that is closed) and pick one uniformly at random (reservoir sampling,
 *     no allocation). Perform it. A `null` channel is never ready, as a nil channel in Go.
 *  2. Otherwise park: put one waiter per case on its channel's queue (in random order, so that
 *     cases sharing a channel are met in random order too), all tied to one
 *     `SelectWaiter`. The first channel operation that matches any of them completes the
 *     select and, in the same step, unlinks every other case's waiter (O(1) each). So exactly
 *     one case fires, and the others leave no trace: no value taken or delivered, no waiter left.
 *
 * A select never matches itself: it only looks for partners while polling, before any of its
 * own waiters are parked.
 */
import { CaseWaiter, Channel, NOTHING, type SelectParent, type WaitOptions } from "./channel.js";
import { unwatchAbort, watchAbort, type Abortable } from "./abort.js";
import { ReceiveOnlyChannel } from "./receive-only.js";
import { signalOf } from "./validate.js";
import { publishReject, rejectChannel } from "./events.js";

const RECV = 0;
const SEND = 1;

/**
 * One case of a `select`, built by `recv(ch)` or `send(ch, value)`. Cases are plain values: one
 * may be reused across selects.
 */
export class SelectCase {
  /** @internal */
  constructor(
    /** @internal */ readonly op: typeof RECV | typeof SEND,
    /** @internal */ readonly ch: Channel<unknown> | null,
    /** @internal */ readonly value: unknown,
  ) {}
}

/** Which case fired: for a receive, `value`/`ok` as in `RecvResult`; for a send, `undefined`/`true`. */
export interface SelectResult {
  readonly index: number;
  readonly value: unknown;
  readonly ok: boolean;
}

function checkChannel(ch: unknown, fn: string): Channel<unknown> | null {
  if (ch !== null && !(ch instanceof Channel)) {
    throw new TypeError(`${fn}(ch): ch must be a Channel or null (a nil channel), got ${typeof ch}`);
  }
  return ch;
}

/**
 * A receive case: ready when `ch` has a buffered value or a parked sender, or is closed (then it
 * fires with `{ value: undefined, ok: false }`). `null` is never ready (Go's nil channel).
 *
 * @example
 * const { index, value, ok } = await select([recv(jobs), recv(quit)]);
 */
export function recv<T>(ch: Channel<T> | null): SelectCase {
  return new SelectCase(RECV, checkChannel(ch, "recv"), undefined);
}

/**
 * A send case: ready when `ch` has a parked receiver or buffer room. A send case on a closed
 * channel counts as ready, and if picked, the select rejects with `ChannelClosedError` (where Go
 * panics). `null` is never ready.
 *
 * @example
 * await select([send(out, v), recv(done(signal))]);
 */
export function send<T>(ch: Channel<T> | null, value: T): SelectCase {
  const c = checkChannel(ch, "send");
  if (c instanceof ReceiveOnlyChannel) throw new TypeError(`send(ch, value): ${c.describe()} is receive-only`);
  return new SelectCase(SEND, c, value);
}

function checkCases(cases: unknown): readonly SelectCase[] {
  if (!Array.isArray(cases)) throw new TypeError("cases must be an array of select cases built by recv() or send()");
  for (let i = 0; i < cases.length; i++) {
    if (!(cases[i] instanceof SelectCase)) {
      throw new TypeError(`cases[${i}] is not a select case: build cases with recv(ch) or send(ch, value)`);
    }
  }
  return cases as readonly SelectCase[];
}

/** Performs one ready case, chosen uniformly at random, or returns undefined if none is ready. */
function poll(cases: readonly SelectCase[]): SelectResult | undefined {
  let chosen = -1;
  let ready = 0;
  for (let i = 0; i < cases.length; i++) {
    const c = cases[i]!;
    const ch = c.ch;
    if (ch === null) continue;
    const canGo =
      c.op === RECV
        ? ch.count > 0 || ch.sendq.length > 0 || ch.isClosed
        : ch.isClosed || ch.recvq.length > 0 || ch.count < ch.capacity;
    if (canGo && (++ready === 1 || Math.random() * ready < 1)) chosen = i;
  }
  if (chosen < 0) return undefined;
  const c = cases[chosen]!;
  const ch = c.ch!;
  if (c.op === RECV) {
    const v = ch.take();
    return v === NOTHING ? { index: chosen, value: undefined, ok: false } : { index: chosen, value: v, ok: true };
  }
  if (ch.isClosed) throw ch.closedError("send on");
  ch.offer(c.value);
  return { index: chosen, value: undefined, ok: true };
}

/**
 * A parked select: owns one CaseWaiter per non-nil case. Flat (it implements Abortable rather
 * than extending it): one is allocated for every select that parks.
 */
class SelectWaiter implements SelectParent, Abortable {
  abortPrev: Abortable | null = null;
  abortNext: Abortable | null = null;
  abortList: Abortable["abortList"] = null;
  /** Its parked cases, linked through `CaseWaiter.nextCase`. */
  cases: CaseWaiter | null = null;
  constructor(
    private readonly resolve: (r: SelectResult) => void,
    private readonly reject: (e: unknown) => void,
  ) {}

  complete(w: CaseWaiter, value: unknown, ok: boolean): void {
    this.release();
    this.resolve({ index: w.index, value, ok });
  }

  fail(_w: CaseWaiter, error: unknown): void {
    this.release();
    this.reject(error);
  }

  onAbort(reason: unknown): void {
    this.release();
    this.reject(reason);
  }

  /** Withdraws every case still parked (the one that fired is already out of its ring). */
  private release(): void {
    if (this.abortList !== null) unwatchAbort(this);
    for (let n = this.cases; n !== null; n = n.nextCase) n.ring?.withdraw(n);
  }
}

/** How many cases before `i` park on the same queue as case `i` (duplicates within one select). */
function sameQueueBefore(cases: readonly SelectCase[], i: number): number {
  let n = 0;
  const { op, ch } = cases[i]!;
  for (let j = 0; j < i; j++) if (cases[j]!.ch === ch && cases[j]!.op === op) n++;
  return n;
}

/** 0..n-1 in uniformly random order (Fisher-Yates). */
function shuffledIndices(n: number): number[] {
  const order = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const j = Math.floor(Math.random() * (i + 1));
    order[i] = order[j]!;
    order[j] = i;
  }
  return order;
}

function parkCase(sw: SelectWaiter, c: SelectCase, i: number): void {
  const ch = c.ch;
  if (ch === null) return;
  const n = new CaseWaiter(sw, i);
  n.nextCase = sw.cases;
  sw.cases = n;
  if (c.op === SEND) ch.sendq.pushParked(n, c.value);
  else ch.recvq.pushParked(n, undefined);
}

function park(cases: readonly SelectCase[], signal: AbortSignal | undefined): Promise<SelectResult> {
  // Bounds first, so that a refused select has linked nothing.
  let duplicates = false;
  for (let i = 0; i < cases.length; i++) {
    const { op, ch } = cases[i]!;
    if (ch === null) continue;
    const before = sameQueueBefore(cases, i);
    if (before > 0) duplicates = true;
    if (op === SEND ? ch.sendq.length + before >= ch.maxParkedSends
                    : ch.recvq.length + before >= ch.maxParkedRecvs) {
      if (op === SEND) ch.rejectedSends++;
      else ch.rejectedRecvs++;
      if (rejectChannel.hasSubscribers) publishReject("channel", ch, op === SEND ? "maxParkedSends" : "maxParkedRecvs");
      return Promise.reject(ch.busyError(op === SEND ? "send" : "recv"));
    }
  }
  // When several cases wait on the same channel, which one a later partner meets first must be
  // uniformly random too: park them in a random order, as Go's lock order does. Without such
  // duplicates (the usual select) the order makes no difference, and costs nothing.
  return new Promise<SelectResult>((resolve, reject) => {
    const sw = new SelectWaiter(resolve, reject);
    if (duplicates) {
      for (const i of shuffledIndices(cases.length)) parkCase(sw, cases[i]!, i);
    } else {
      for (let i = 0; i < cases.length; i++) parkCase(sw, cases[i]!, i);
    }
    if (signal !== undefined) watchAbort(signal, sw);
  });
}

/**
 * Waits until one of `cases` can proceed, performs exactly that one, and resolves with its
 * `index` (and, for a receive, `value`/`ok`). Among cases ready at once the choice is uniformly
 * random. Cases that did not fire leave no trace. If a case is ready now, the returned promise
 * is already settled.
 *
 * Blocks: until a case is ready, or `signal` aborts (then it rejects with `signal.reason` and
 * nothing was done). `select([])` with no signal never settles (Go's `select {}`).
 * Rejects with `ChannelClosedError` if it picks a send case on a closed channel, `BusyError` if
 * parking would pass a channel's `maxParkedSends`/`maxParkedRecvs`, `TypeError` for a non-case.
 *
 * @example
 * for (;;) {
 *   const r = await select([recv(jobs), recv(after(1000))]);
 *   if (r.index === 1) { console.log("idle"); continue; }
 *   if (!r.ok) break; // jobs closed
 *   handle(r.value as Job);
 * }
 */
export function select(cases: readonly SelectCase[], options?: WaitOptions): Promise<SelectResult> {
  let signal: AbortSignal | undefined;
  try {
    if (options !== undefined) signal = signalOf(options);
    if (signal?.aborted) return Promise.reject(signal.reason); // an aborted signal wins over everything
    checkCases(cases);
  } catch (e) {
    return Promise.reject(e);
  }
  let result: SelectResult | undefined;
  try {
    result = poll(cases);
  } catch (e) {
    return Promise.reject(e);
  }
  if (result !== undefined) return Promise.resolve(result);
  return park(cases, signal);
}

/**
 * Performs one ready case, chosen uniformly at random, and returns its result; returns
 * `undefined` if no case is ready (Go's `select` with a `default` case). Never waits.
 *
 * @throws ChannelClosedError if it picks a send case on a closed channel; TypeError for a non-case.
 *
 * @example
 * if (trySelect([send(out, v)]) === undefined) dropped++;
 */
export function trySelect(cases: readonly SelectCase[]): SelectResult | undefined {
  return poll(checkCases(cases));
}
