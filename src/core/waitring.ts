/**
 * WaitRing: a channel's FIFO of parked operations (internal), its `sendq` or its `recvq`, the
 * analogue of a `waitq` of sudogs in Go's `runtime/chan.go`.
 *
 * Why a ring and not the intrusive list of waitq.ts: on a channel every hand-off to a waiting
 * consumer costs one park, so the park must cost no more than its promise. A plain operation
 * (no signal, not a select) is parked as bare slots: a receive as its promise's resolve
 * function, a send as its resolve function, its value and its reject function. Nothing else is
 * allocated for it (an intrusive node per park measured ~90 bytes and ~12% more time per
 * message with a consumer already waiting). An operation that can be withdrawn before it is
 * served (one with a signal, a case of a select) parks as a `Parked` object that knows its slot.
 *
 * Layout: entry k of the ring occupies `s[3k]` (a resolve function, or a `Parked` object),
 * `s[3k + 1]` (the value of a send; for a receive, `ITER` when it is an iterator's `next()`)
 * and `s[3k + 2]` (the reject function of a bare send).
 *
 * Invariants:
 *  - The entries are k = head, head + 1, ..., head + used - 1 (mod `cap`), oldest first; `cap`
 *    is 0 until the first park, then a power of two (4, 8, ...); every slot outside them is
 *    undefined, so nothing taken or withdrawn is retained.
 *  - An entry is live, or a hole (`s[3k] === undefined`, left by `withdraw`). `length` counts
 *    the live entries; `used - length` are holes; `shift` skips holes, so the oldest entry is
 *    live. A withdrawal that leaves at least 16 holes, more than there are live entries, lays
 *    the ring out again without them (amortized O(1) per withdrawal): holes never outnumber
 *    16 or the live entries at the last withdrawal, so operations that are withdrawn (timed
 *    out, aborted, a select's other cases) cannot make the ring grow without bound.
 *  - A `Parked` object is in at most one ring, and `p.ring === r` exactly while it is live in
 *    `r`, with `p.slot` its entry (every re-layout updates it). So "still parked?" is one
 *    comparison, and withdrawal is O(1).
 *  - The ring registers itself (weakly) with diagnostics the first time anything parks on it,
 *    and warns once when `length` first passes `warnAt` (see waitq.ts: the same rules). A ring
 *    never refuses: the bound is the channel's decision, made before it parks anything.
 */
import { register, recordStack, tracing, type Boundary, type ParkedQueue } from "./diagnostics.js";
import { warnParked } from "./waitq.js";

/** A parked operation that can be withdrawn before it is served: it knows where it is. */
export interface Parked {
  /** The ring it is parked in, or null once served or withdrawn. */
  ring: WaitRing | null;
  /** Its entry in that ring (valid while `ring` is set). */
  slot: number;
}

/** What a ring holds in an entry's first slot. */
export type Entry = ((value: any) => void) | Parked;

/** In a receive's value slot: the bare entry is an iterator's `next()` (resolve an IteratorResult). */
export const ITER: unique symbol = Symbol("iter");

const INITIAL = 4;
const NONE: unknown[] = [];
const MIN_HOLES = 16;

export class WaitRing implements ParkedQueue {
  /** The entries, three slots each (see the layout above); none until something parks. */
  private s: unknown[] = NONE;
  private mask = -1;
  private head = 0;
  private used = 0;
  /** Live entries. */
  length = 0;
  /** High-water mark of `length`. */
  peak = 0;
  /** How many operations ever parked here. */
  parkedTotal = 0;
  /**
   * The value and reject slots of the entry `shift()` last returned. A sender's caller clears
   * them once read (they hold a user value); a receiver's value slot only ever holds ITER.
   */
  value: unknown = undefined;
  reject: ((error: unknown) => void) | undefined = undefined;
  private registered = false;
  private warned = false;

  constructor(
    /** The channel this ring belongs to (named in warnings and reports). */
    readonly owner: Boundary,
    /** "send" or "recv". */
    readonly role: string,
    /** Warn once when length passes this (Infinity: never). */
    readonly warnAt: number,
    /** The warning's code, e.g. "SLUICE_PARKED_SENDS". */
    readonly warnCode: string,
  ) {}

  /** Appends a bare entry: a resolve function, the send's value (or ITER), a bare send's reject. */
  push(fn: (value: any) => void, value: unknown, reject: ((error: unknown) => void) | undefined): void {
    const k = this.append();
    const s = this.s;
    s[k] = fn;
    s[k + 1] = value;
    s[k + 2] = reject;
    this.parked(fn);
  }

  /** Appends a withdrawable operation (with a send's value, or undefined). */
  pushParked(p: Parked, value: unknown): void {
    const k = this.append();
    this.s[k] = p;
    this.s[k + 1] = value;
    p.ring = this;
    p.slot = k;
    this.parked(p);
  }

  /**
   * Removes the oldest live entry and returns its first slot (undefined when empty); its value
   * and reject slots are left in `value` and `reject` for the caller, who must clear them. A
   * returned `Parked` is no longer in the ring (`ring` is null).
   */
  shift(): Entry | undefined {
    const s = this.s;
    while (this.used > 0) {
      const k = 3 * this.head;
      const e = s[k] as Entry | undefined;
      this.head = (this.head + 1) & this.mask;
      this.used--;
      if (e === undefined) continue; // a hole: its slots are already clear
      this.value = s[k + 1];
      this.reject = s[k + 2] as ((error: unknown) => void) | undefined;
      s[k] = s[k + 1] = s[k + 2] = undefined;
      this.length--;
      if (typeof e === "object") e.ring = null;
      return e;
    }
    return undefined;
  }

  /** @internal Entries in use, live or holes (for the tests of the bound). */
  get slotsInUse(): number {
    return this.used;
  }

  /** Withdraws `p` if it is live here (leaving a hole); false when it was not. O(1) amortized. */
  withdraw(p: Parked): boolean {
    if (p.ring !== this) return false;
    const s = this.s;
    const k = p.slot;
    s[k] = s[k + 1] = s[k + 2] = undefined;
    p.ring = null;
    this.length--;
    const holes = this.used - this.length;
    if (holes >= MIN_HOLES && holes > this.length) this.squeeze();
    return true;
  }

  /**
   * Withdraws the bare entry whose first slot is `fn`, if it is still live here (leaving a
   * hole); false when it was already served. O(length): for rare calls only (an iterator's
   * `return()` while its `next()` waits), never on a hot path.
   */
  withdrawBare(fn: (value: any) => void): boolean {
    const s = this.s;
    for (let j = 0; j < this.used; j++) {
      const k = 3 * ((this.head + j) & this.mask);
      if (s[k] !== fn) continue;
      s[k] = s[k + 1] = s[k + 2] = undefined;
      this.length--;
      const holes = this.used - this.length;
      if (holes >= MIN_HOLES && holes > this.length) this.squeeze();
      return true;
    }
    return false;
  }

  /** The oldest live entries (at most `max`): for diagnostics. */
  oldest(max: number): object[] {
    const out: object[] = [];
    for (let j = 0; j < this.used && out.length < max; j++) {
      const e = this.s[3 * ((this.head + j) & this.mask)];
      if (e !== undefined) out.push(e as object);
    }
    return out;
  }

  /** Makes room for one more entry and returns its first slot's index. */
  private append(): number {
    if (this.used > this.mask) this.relayout(Math.max(INITIAL, 2 * (this.mask + 1)));
    return 3 * ((this.head + this.used++) & this.mask);
  }

  /** Moves the live entries up over the holes, in place and in order (no allocation). */
  private squeeze(): void {
    const s = this.s;
    const mask = this.mask;
    let n = 0;
    for (let j = 0; j < this.used; j++) {
      const k = 3 * ((this.head + j) & mask);
      const e = s[k];
      if (e === undefined) continue;
      const m = 3 * ((this.head + n++) & mask);
      if (m !== k) {
        s[m] = e;
        s[m + 1] = s[k + 1];
        s[m + 2] = s[k + 2];
        s[k] = s[k + 1] = s[k + 2] = undefined;
        if (typeof e === "object") (e as Parked).slot = m;
      }
    }
    this.used = n;
  }

  /** Lays the live entries out again from entry 0, without holes, in a ring of `cap` entries. */
  private relayout(cap: number): void {
    const old = this.s;
    const oldMask = this.mask;
    const next: unknown[] = new Array(3 * cap).fill(undefined);
    let n = 0;
    for (let j = 0; j < this.used; j++) {
      const k = 3 * ((this.head + j) & oldMask);
      const e = old[k];
      if (e === undefined) continue;
      const m = 3 * n++;
      next[m] = e;
      next[m + 1] = old[k + 1];
      next[m + 2] = old[k + 2];
      if (typeof e === "object") (e as Parked).slot = m;
    }
    this.s = next;
    this.mask = cap - 1;
    this.head = 0;
    this.used = n;
  }

  private parked(e: object): void {
    const n = ++this.length;
    this.parkedTotal++;
    if (n > this.peak) this.peak = n;
    if (tracing) recordStack(e);
    if (!this.registered) {
      this.registered = true;
      register(this);
    }
    if (n > this.warnAt && !this.warned) {
      this.warned = true;
      warnParked(this);
    }
  }
}
