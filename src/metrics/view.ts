/**
 * What a picture of a boundary shows (internal), the same for every kind: depth against
 * capacity, in flight against limit, callers waiting, and four counters whose rates are drawn
 * (sent, blocked, dropped, rejected). Used by the dashboard's history.
 *
 * Invariants: `view()` only reads the entry; a quantity a kind does not have is `null` (not 0),
 * so that the page can leave it out rather than draw a false zero.
 */
import type { SnapshotEntry } from "./snapshot.js";

/** The four counters whose rates are drawn. */
export interface ViewCounters {
  /** Work that went through: values sent, tasks completed, calls made, ... */
  readonly sent: number | null;
  /** Operations that had to wait (park) before they went through. */
  readonly blocked: number | null;
  /** Accepted work dropped without being done. */
  readonly dropped: number | null;
  /** Work refused at the door. */
  readonly rejected: number | null;
}

/** One boundary as drawn. */
export interface BoundaryView extends ViewCounters {
  readonly kind: string;
  readonly name: string;
  /** Items held now (buffer length, queued tasks, ...). */
  readonly depth: number | null;
  /** The bound on `depth`. */
  readonly capacity: number | null;
  /** Work running or held now (running tasks, units held, ...). */
  readonly inFlight: number | null;
  /** The bound on `inFlight` (concurrency, size, limit). */
  readonly limit: number | null;
  /** Callers parked now (senders + receivers, blocked submitters, waiters). */
  readonly waiting: number | null;
  /** A state in words, when the kind has one (a breaker's state). */
  readonly state: string | null;
}

const n = (v: unknown): number | null => (typeof v === "number" && !Number.isNaN(v) ? v : null);
const sum = (...vs: unknown[]): number | null => {
  let total: number | null = null;
  for (const v of vs) {
    const x = n(v);
    if (x !== null) total = (total ?? 0) + x;
  }
  return total;
};
const sumObject = (v: unknown): number | null => {
  if (typeof v === "number") return v;
  if (v === null || typeof v !== "object") return null;
  return sum(...Object.values(v));
};

type Partial = Omit<BoundaryView, "kind" | "name">;
const NONE: Partial = {
  depth: null, capacity: null, inFlight: null, limit: null, waiting: null, state: null,
  sent: null, blocked: null, dropped: null, rejected: null,
};

function byKind(e: SnapshotEntry): Partial {
  switch (e.kind) {
    case "channel":
      return {
        ...NONE,
        depth: n(e.length), capacity: n(e.capacity), waiting: sum(e.parkedSenders, e.parkedReceivers),
        sent: n(e.sent), blocked: n(e.sendsWaited), dropped: null, rejected: sum(e.rejectedSends, e.rejectedRecvs),
        state: e.closed === true ? "closed" : null,
      };
    case "pool":
      return {
        ...NONE,
        depth: n(e.queued), inFlight: n(e.running), limit: n(e.concurrency), waiting: n(e.waiting),
        sent: sum(e.completed, e.failed), blocked: n(e.waited), dropped: n(e.dropped), rejected: n(e.rejected),
      };
    case "semaphore":
      return { ...NONE, inFlight: n(e.held), limit: n(e.size), waiting: n(e.waiting), blocked: n(e.waited), rejected: n(e.rejected) };
    case "errgroup":
      return { ...NONE, inFlight: n(e.running), limit: n(e.limit), waiting: n(e.waiting), sent: n(e.settled), blocked: n(e.waited) };
    case "rate-limiter":
    case "keyed-rate-limiter":
      return {
        ...NONE,
        depth: n(e.tokens), capacity: n(e.burst), waiting: n(e.waiting),
        sent: sum(e.allowed, e.passed, e.reserved), blocked: n(e.waited), rejected: sum(e.refused, e.rejected),
      };
    case "adaptive-limit":
      return { ...NONE, inFlight: n(e.inflight), limit: n(e.limit), sent: n(e.successes), dropped: n(e.drops) };
    case "circuit-breaker":
      return {
        ...NONE,
        inFlight: n(e.running), sent: n(e.calls), rejected: n(e.rejected),
        state: typeof e.state === "string" ? e.state : null,
      };
    case "retry-budget":
      return { ...NONE, depth: n(e.available), sent: n(e.withdrawals), rejected: n(e.refused) };
    case "pipeline-stage":
      return { ...NONE, sent: n(e.out), dropped: n(e.dropped), rejected: n(e.errors) };
    case "broadcast":
      return { ...NONE, waiting: n(e.subscribers), sent: n(e.published), dropped: n(e.dropped) };
    case "admission":
      return {
        ...NONE,
        depth: n(e.queued), capacity: n(e.queueSize), inFlight: n(e.inFlight), limit: n(e.concurrency), sent: n(e.admitted),
        rejected: sumObject(e.rejected),
      };
    case "jetstream-source":
      return { ...NONE, inFlight: n(e.inFlight), sent: n(e.acked), dropped: sum(e.termed, e.deadLettered), rejected: n(e.failed) };
    case "jetstream-sink":
      return { ...NONE, inFlight: n(e.inFlight), limit: n(e.maxInFlight), waiting: n(e.waiting), sent: n(e.published), rejected: n(e.busy) };
    case "redis-stream-sink":
      return { ...NONE, inFlight: n(e.inFlight), sent: n(e.added), rejected: sum(e.refused, e.unavailable) };
    default:
      // A kind this file does not know: the usual field names, where present.
      return {
        ...NONE,
        depth: n(e.length) ?? n(e.queued), capacity: n(e.capacity), inFlight: n(e.running) ?? n(e.inFlight),
        limit: n(e.concurrency) ?? n(e.limit), waiting: n(e.waiting), sent: n(e.sent) ?? n(e.completed) ?? n(e.out),
        dropped: n(e.dropped), rejected: sumObject(e.rejected),
      };
  }
}

/** How one snapshot entry is drawn. */
export function view(entry: SnapshotEntry): BoundaryView {
  return { kind: entry.kind, name: entry.name, ...byKind(entry) };
}
