/**
 * The boundary registry (internal): every live boundary that asked to be observed, held weakly,
 * so that `sluice/metrics` can list, export and chart them without the observed code paying
 * anything per operation.
 *
 * Invariants:
 *  - A boundary is added once, when it is constructed: with a `name`, or (unnamed) only while
 *    `observeAll` is on. Nothing is done per operation: exporters read `stats` when asked.
 *  - Entries hold the boundary through a `WeakRef`: observing never keeps a boundary alive.
 *    A collected boundary's entry is removed by a `FinalizationRegistry` callback, and the
 *    iteration skips entries whose target is gone before that callback ran. So the set holds at
 *    most the live observed boundaries plus those collected but not yet finalized.
 *  - Iteration order is registration order (a `Set`), so listings are stable between calls.
 */

/** What every observable boundary has: a name and a fresh snapshot of its counters. */
export interface Observable {
  readonly name: string | undefined;
  readonly stats: object;
}

/** @internal One observed boundary: its kind ("channel", "pool", ...) and a weak reference. */
export interface RegistryEntry {
  readonly kind: string;
  /** Whether it was given a name (else it is observed only because every boundary is). */
  readonly named: boolean;
  readonly ref: WeakRef<Observable>;
}

const entries = new Set<RegistryEntry>();
const finalizer = new FinalizationRegistry<RegistryEntry>((entry) => {
  entries.delete(entry);
});
let all = process.env.SLUICE_OBSERVE === "all";

/**
 * @internal Called by a boundary's constructor. Registers `boundary` when it was given a name
 * (`named`) or when every boundary is observed; does nothing otherwise.
 */
export function observe(kind: string, boundary: Observable, named: boolean): void {
  if (!named && !all) return;
  const entry: RegistryEntry = { kind, named, ref: new WeakRef(boundary) };
  entries.add(entry);
  finalizer.register(boundary, entry);
}

/** @internal Whether unnamed boundaries are registered too (`SLUICE_OBSERVE=all`, or the switch). */
export function observingAll(): boolean {
  return all;
}

/** @internal Turns registration of unnamed boundaries on or off (affects boundaries created later). */
export function setObserveAll(on: boolean): void {
  all = on;
}

/** @internal The live observed boundaries, oldest first. */
export function* observed(): Generator<{ kind: string; named: boolean; boundary: Observable }> {
  for (const entry of entries) {
    const boundary = entry.ref.deref();
    if (boundary !== undefined) yield { kind: entry.kind, named: entry.named, boundary };
  }
}

/** @internal How many entries the registry holds now (live or awaiting finalization). */
export function registrySize(): number {
  return entries.size;
}
