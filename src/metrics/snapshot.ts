/**
 * `snapshot()` and `diagnostics()`: every live observed boundary and its counters, read now.
 *
 * Invariants:
 *  - Reading is all that happens: `snapshot()` reads each boundary's `stats` getter once and
 *    copies the result into a fresh entry; nothing is kept between calls but the ids given to
 *    unnamed boundaries (in a `WeakMap`, so they never keep a boundary alive).
 *  - The list is as long as the registry: boundaries created with a `name`, plus every other
 *    one only while `observeAll(true)` (or `SLUICE_OBSERVE=all`) was on when it was created.
 *    Collected boundaries leave on their own (the registry holds them weakly).
 */
import { observed, observingAll, setObserveAll } from "../core/registry.js";
import { configureDiagnostics, parkedWork, type ParkedEntry } from "../core/diagnostics.js";

/** The kinds of boundary sluice's own layers register (others may add more). */
export type BoundaryKind =
  | "channel" | "semaphore" | "errgroup" | "pool" | "rate-limiter" | "keyed-rate-limiter"
  | "adaptive-limit" | "circuit-breaker" | "retry-budget" | "pipeline-stage" | "broadcast" | "admission"
  | (string & {});

/**
 * One live boundary: its kind, its name, whether that name was given (`named: false`: observed
 * only because every boundary is, and named `#<n>` or by its own default such as "pool"), and
 * every field of its `stats`.
 */
export interface SnapshotEntry {
  readonly kind: BoundaryKind;
  readonly name: string;
  readonly named: boolean;
  readonly [stat: string]: unknown;
}

/** What `diagnostics()` returns. */
export interface Diagnostics {
  /** When it was taken (`Date.now()`). */
  readonly at: number;
  /** `snapshot()`. */
  readonly boundaries: SnapshotEntry[];
  /** Every non-empty wait queue and where its operations parked (stacks only with tracing on). */
  readonly parked: ParkedEntry[];
  /** Whether parking records stacks (`SLUICE_TRACE=1` or `configureDiagnostics({ trace: true })`). */
  readonly tracing: boolean;
}

const ids = new WeakMap<object, string>();
let nextId = 1;

function nameOf(boundary: { readonly name: string | undefined }): string {
  const name = boundary.name;
  if (typeof name === "string") return name;
  let id = ids.get(boundary);
  if (id === undefined) ids.set(boundary, (id = `#${nextId++}`));
  return id;
}

/**
 * Every live observed boundary, oldest first, as `{ kind, name, named, ...stats }`. A fresh
 * array of fresh objects; never blocks; costs one `stats` read per boundary. A boundary whose
 * `stats` getter throws is left out (a broken boundary does not break a scrape).
 *
 * @example
 * const jobs = new Channel(64, { name: "jobs" });
 * snapshot(); // [{ kind: "channel", name: "jobs", named: true, capacity: 64, length: 0, ... }]
 */
export function snapshot(): SnapshotEntry[] {
  const out: SnapshotEntry[] = [];
  for (const { kind, named, boundary } of observed()) {
    let stats: object;
    try {
      stats = boundary.stats;
    } catch {
      continue;
    }
    // A boundary may add figures of its own for the exporters (the pool: rejections by reason).
    const extra = (boundary as { readonly rejectedByReason?: object }).rejectedByReason;
    out.push(extra === undefined ? { ...stats, kind, name: nameOf(boundary), named } : { ...stats, rejectedByReason: extra, kind, name: nameOf(boundary), named });
  }
  return out;
}

/**
 * `snapshot()` plus what waits where: `parkedWork()` (every non-empty queue of parked
 * operations, with the stacks where they parked when tracing is on).
 *
 * @example
 * configureDiagnostics({ trace: true });       // or SLUICE_TRACE=1
 * console.log(JSON.stringify(diagnostics().parked, null, 2));
 */
export function diagnostics(): Diagnostics {
  return { at: Date.now(), boundaries: snapshot(), parked: parkedWork(), tracing: configureDiagnostics().trace };
}

/**
 * Turns on (or off) the observation of unnamed boundaries created from now on, and returns the
 * previous setting. Named boundaries are always observed. Default: off, unless the environment
 * has `SLUICE_OBSERVE=all`. Costs nothing per operation either way (a registry entry per
 * boundary created).
 *
 * @example
 * observeAll(true); // every channel, pool, ... created from here on appears in snapshot()
 */
export function observeAll(on = true): boolean {
  if (typeof on !== "boolean") throw new TypeError(`on must be a boolean, got ${typeof on}`);
  const was = observingAll();
  setObserveAll(on);
  return was;
}
