/**
 * Abort fan-in (internal): one native "abort" listener per AbortSignal, however many sluice
 * operations wait on it.
 *
 * Node's EventTarget scans its listener list on every add and remove, and warns past ten
 * listeners per signal; a thousand parked sends sharing one shutdown signal would cost O(n^2)
 * and print a leak warning. Instead each signal gets one `AbortList` (kept in a WeakMap, so it
 * dies with the signal), and parked operations link into it and out of it in O(1).
 *
 * Invariants:
 *  - `a.abortList === l` exactly while `a` is linked into `l`;
 *  - an AbortList's native listener stays registered while its signal lives (one per signal,
 *    never more); when the signal aborts, every linked operation is unlinked, then told, in
 *    the order it linked.
 */

/** Something that waits and must hear of its signal's abort. */
export abstract class Abortable {
  abortPrev: Abortable | null = null;
  abortNext: Abortable | null = null;
  abortList: AbortList | null = null;
  /** Called once, synchronously inside `abort()`, after this was unlinked. */
  abstract onAbort(reason: unknown): void;
}

class AbortList {
  head: Abortable | null = null;
  tail: Abortable | null = null;
  constructor(readonly signal: AbortSignal) {}

  handleEvent(): void {
    const reason = this.signal.reason;
    for (let a = this.head; a !== null; a = this.head) {
      unwatchAbort(a);
      a.onAbort(reason);
    }
  }
}

const lists = new WeakMap<AbortSignal, AbortList>();

/** Links `a` to `signal`: `a.onAbort` runs when it aborts. The signal must not be aborted yet. */
export function watchAbort(signal: AbortSignal, a: Abortable): void {
  let list = lists.get(signal);
  if (list === undefined) {
    list = new AbortList(signal);
    lists.set(signal, list);
    signal.addEventListener("abort", list, { once: true });
  }
  a.abortList = list;
  a.abortPrev = list.tail;
  a.abortNext = null;
  if (list.tail === null) list.head = a;
  else list.tail.abortNext = a;
  list.tail = a;
}

/** Unlinks `a` from its signal, if linked. O(1). */
export function unwatchAbort(a: Abortable): void {
  const list = a.abortList;
  if (list === null) return;
  const { abortPrev: prev, abortNext: next } = a;
  if (prev === null) list.head = next;
  else prev.abortNext = next;
  if (next === null) list.tail = prev;
  else next.abortPrev = prev;
  a.abortPrev = a.abortNext = null;
  a.abortList = null;
}

/**
 * Whether `a` is about to hear of its signal's abort: it is still linked to a signal that has
 * aborted (the abort is being dispatched, and `a`'s turn has not come yet). A queue that wakes
 * waiters must skip such a waiter: its own `onAbort` runs next, in the same `abort()` call, and
 * withdraws it. Granting it first would complete an operation whose signal already aborted.
 */
export function abortPending(a: Abortable): boolean {
  return a.abortList !== null && a.abortList.signal.aborted;
}
