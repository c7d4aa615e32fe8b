/**
 * The dashboard's memory (internal): a bounded history of frames, one per sampling interval,
 * each the view of every boundary at that moment plus the rates of its counters since the
 * frame before.
 *
 * Invariants:
 *  - At most `maxFrames` frames are kept (oldest dropped first), each of at most
 *    `maxBoundaries` boundaries, each name cut to `MAX_NAME` characters: the memory held and
 *    the size of every event sent are bounded whatever the process does.
 *  - A rate is `(counter now - counter in the previous frame) / seconds between them`, for the
 *    same boundary id; `null` in a boundary's first frame, or when its counter went backwards.
 */
import type { SnapshotEntry } from "./snapshot.js";
import { view, type BoundaryView } from "./view.js";

export const MAX_NAME = 80;

/** One boundary in one frame. */
export interface FrameBoundary extends BoundaryView {
  /** `kind/name`, unique within a frame. */
  readonly id: string;
  readonly sentRate: number | null;
  readonly blockedRate: number | null;
  readonly droppedRate: number | null;
  readonly rejectedRate: number | null;
}

/** The state of every boundary at one moment. */
export interface Frame {
  /** Sequence number, from 1. */
  readonly seq: number;
  /** `Date.now()` when it was taken. */
  readonly t: number;
  readonly boundaries: readonly FrameBoundary[];
  /** Boundaries left out of this frame by `maxBoundaries`. */
  readonly omitted: number;
}

const COUNTERS = ["sent", "blocked", "dropped", "rejected"] as const;

function rate(now: number | null, before: number | null | undefined, seconds: number): number | null {
  if (now === null || before === null || before === undefined || seconds <= 0 || now < before) return null;
  return (now - before) / seconds;
}

/** A bounded ring of frames. */
export class History {
  readonly #frames: Frame[] = [];
  #seq = 0;

  constructor(
    readonly maxFrames: number,
    readonly maxBoundaries: number,
  ) {}

  /** The frames kept, oldest first (a copy of the list). */
  get frames(): Frame[] {
    return [...this.#frames];
  }

  /** The latest frame, if any. */
  get last(): Frame | undefined {
    return this.#frames.at(-1);
  }

  /** Adds the frame of `entries` taken at `t`, and returns it. */
  add(entries: readonly SnapshotEntry[], t: number): Frame {
    const prev = this.last;
    const before = new Map<string, FrameBoundary>();
    for (const b of prev?.boundaries ?? []) before.set(b.id, b);
    const seconds = prev === undefined ? 0 : (t - prev.t) / 1000;
    const used = new Set<string>();
    const boundaries: FrameBoundary[] = [];
    for (const e of entries) {
      if (boundaries.length >= this.maxBoundaries) break;
      const v = view(e);
      const name = v.name.length > MAX_NAME ? `${v.name.slice(0, MAX_NAME - 1)}…` : v.name;
      let id = `${v.kind}/${name}`;
      for (let k = 2; used.has(id); k++) id = `${v.kind}/${name} (${k})`;
      used.add(id);
      const was = before.get(id);
      boundaries.push({
        ...v,
        name,
        id,
        sentRate: rate(v.sent, was?.sent, seconds),
        blockedRate: rate(v.blocked, was?.blocked, seconds),
        droppedRate: rate(v.dropped, was?.dropped, seconds),
        rejectedRate: rate(v.rejected, was?.rejected, seconds),
      });
    }
    const frame: Frame = { seq: ++this.#seq, t, boundaries, omitted: entries.length - boundaries.length };
    this.#frames.push(frame);
    if (this.#frames.length > this.maxFrames) this.#frames.shift();
    return frame;
  }
}

export { COUNTERS };
