/**
 * An intrusive FIFO of parked operations (internal): sluice's analogue of the `waitq` of sudogs
 * in Go's `runtime/chan.go`. Channels keep two (senders, receivers); the semaphore, the wait
 * group and the pool keep one each.
 *
 * Invariants:
 *  - A waiter is linked into at most one queue, and `w.queue === q` exactly while it is linked
 *    into `q` (null otherwise). So "is this waiter still parked?" is one comparison.
 *  - `length` counts the linked waiters; `head` and `tail` are null exactly when it is 0.
 *  - `push`, `shift` and `remove` are O(1): nothing is scanned or spliced, and a removed
 *    waiter's links are cleared so it retains nothing.
 *  - A queue registers itself (weakly) with diagnostics the first time anything parks on it;
 *    that is how the exit-time report and `parkedWork()` find parked work. Nothing is done for
 *    diagnostics per operation after that, beyond a stack capture when tracing is on.
 *  - The first time `length` passes `warnAt`, one process warning is emitted (never again for
 *    this queue). The bound itself (refusing to park) is the owner's decision, made before
 *    `push` is called; a queue never refuses.
 */
import { Abortable, unwatchAbort, watchAbort } from "./abort.js";
import { register, recordStack, tracing, type Boundary, type ParkedQueue } from "./diagnostics.js";
import { parkedWarningChannel, type ParkedWarningEvent } from "./events.js";

/** What a wait that need not wait returns: one settled promise, shared by every such call (nothing to allocate). */
export const RESOLVED: Promise<void> = Promise.resolve();

/** What a `WaitQueue` links: a node of at most one queue (see the invariants above). */
export interface QueueNode {
  prev: QueueNode | null;
  next: QueueNode | null;
  queue: WaitQueue<QueueNode> | null;
}

/**
 * A parked operation: a node of at most one `WaitQueue`, and (through `Abortable`) of at most
 * one signal's abort list. Subclasses say what waking it means.
 *
 * The waiters of the hot paths (RecvWaiter, SendWaiter, CaseWaiter, SemWaiter, GoWaiter, PoolTask) do not extend this
 * class: they implement it, repeating its six link fields. That is deliberate and measured: one
 * is allocated for every operation that parks, and constructing through even one base class
 * made the channel benchmarks 15-20% slower (W2 ~243 vs ~283 ns, W3 ~275 vs ~330 ns per
 * message, alternating builds on one machine). Waiters of rare operations extend it.
 */
export abstract class Waiter extends Abortable implements QueueNode {
  prev: QueueNode | null = null;
  next: QueueNode | null = null;
  queue: WaitQueue<QueueNode> | null = null;
}

/** A FIFO of parked waiters owned by one boundary (see the invariants at the top of this file). */
export class WaitQueue<W extends QueueNode> implements ParkedQueue {
  head: W | null = null;
  tail: W | null = null;
  length = 0;
  /** High-water mark of `length`. */
  peak = 0;
  /** How many operations ever parked here. */
  parkedTotal = 0;
  /** Registered with diagnostics (on the first park). */
  registered = false;
  warned = false;

  constructor(
    /** The boundary this queue belongs to (named in warnings and reports). */
    readonly owner: Boundary,
    /** What a parked operation here is doing: "send", "recv", "acquire", "wait", ... */
    readonly role: string,
    /** Warn once when length passes this (Infinity: never). */
    readonly warnAt: number,
    /** The warning's code, e.g. "SLUICE_PARKED_SENDS". */
    readonly warnCode: string,
  ) {}

  push(w: W): void {
    w.queue = this as WaitQueue<QueueNode>;
    w.prev = this.tail;
    w.next = null;
    if (this.tail === null) this.head = w;
    else this.tail.next = w;
    this.tail = w;
    const n = ++this.length;
    this.parkedTotal++;
    if (n > this.peak) this.peak = n;
    if (tracing) recordStack(w);
    if (!this.registered) {
      this.registered = true;
      register(this as WaitQueue<QueueNode>);
    }
    if (n > this.warnAt && !this.warned) {
      this.warned = true;
      warnParked(this);
    }
  }

  /** Unlinks and returns the oldest waiter, or null. */
  shift(): W | null {
    const w = this.head;
    if (w !== null) this.unlink(w);
    return w;
  }

  /** Unlinks `w` if it is in this queue; false when it was not (already woken or removed). */
  remove(w: W): boolean {
    if (w.queue !== (this as WaitQueue<QueueNode>)) return false;
    this.unlink(w);
    return true;
  }

  private unlink(w: W): void {
    const prev = w.prev as W | null;
    const next = w.next as W | null;
    if (prev === null) this.head = next;
    else prev.next = next;
    if (next === null) this.tail = prev;
    else next.prev = prev;
    w.prev = w.next = null;
    w.queue = null;
    this.length--;
  }

  /** The oldest waiters (at most `max`): for diagnostics. */
  oldest(max: number): object[] {
    const out: object[] = [];
    for (let w = this.head; w !== null && out.length < max; w = w.next as W | null) out.push(w);
    return out;
  }
}

/**
 * Emits the one-time warning of a queue (or a channel's ring) whose parked operations passed
 * its `warnAt` threshold.
 */
export function warnParked(q: ParkedQueue & { readonly warnAt: number; readonly warnCode: string }): void {
  const what = q.role === "send" ? "senders" : q.role === "recv" ? "receivers" : `${q.role} callers`;
  process.emitWarning(
    `${q.length} ${what} parked on ${q.owner.describe()} (threshold ${q.warnAt}). ` +
      `Each parked operation holds its promise${q.role === "send" ? " and its value" : ""} in memory, ` +
      `and nothing bounds how many more can park: bound the producers, or set a limit ` +
      `(e.g. maxParkedSends) so that the boundary rejects with BusyError instead.`,
    { type: "SluiceWarning", code: q.warnCode },
  );
  if (parkedWarningChannel.hasSubscribers) {
    const owner = q.owner as Boundary & { readonly name?: unknown };
    const e: ParkedWarningEvent = {
      description: owner.describe(),
      name: typeof owner.name === "string" ? owner.name : undefined,
      boundary: owner,
      role: q.role,
      parked: q.length,
      threshold: q.warnAt,
      code: q.warnCode,
    };
    parkedWarningChannel.publish(e);
  }
}

/** A caller that only waits to be woken (`WaitGroup.wait`, `Pool.drain`). */
class WakeWaiter extends Waiter {
  constructor(
    readonly resolve: () => void,
    readonly reject: (e: unknown) => void,
  ) {
    super();
  }

  onAbort(reason: unknown): void {
    this.queue?.remove(this);
    this.reject(reason);
  }
}

/** A queue of callers waiting to be woken all at once. */
export type WakeQueue = WaitQueue<WakeWaiter>;

/**
 * Parks a caller on `q` until `wakeAll(q)`. An abort of `signal` withdraws it (O(1)) and rejects
 * with the reason. The signal must not be aborted yet: callers check that first.
 */
export function parkUntilWoken(q: WakeQueue, signal: AbortSignal | undefined): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const w = new WakeWaiter(resolve, reject);
    q.push(w);
    if (signal !== undefined) watchAbort(signal, w);
  });
}

/** Resolves every caller parked on `q`, oldest first. */
export function wakeAll(q: WakeQueue): void {
  for (let w = q.shift(); w !== null; w = q.shift()) {
    unwatchAbort(w);
    w.resolve();
  }
}

