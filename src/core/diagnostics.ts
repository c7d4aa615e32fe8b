/**
 * Parked-work diagnostics: the list of every wait queue that holds parked operations, the dump
 * of it (`parkedWork()`), and the report printed when the event loop empties while operations
 * are still parked: Node's version of Go's "all goroutines are asleep - deadlock!".
 *
 * Invariants:
 *  - The registry holds a weak reference to every wait queue that has ever parked an operation
 *    (a queue registers once, on its first park: nothing is done per operation afterwards). It
 *    never keeps a queue, or its channel, alive; references to collected queues are pruned
 *    whenever the set has doubled since the last pruning, so it stays within twice the number
 *    of live queues that ever parked.
 *  - The `beforeExit` hook is installed the first time anything parks, never keeps the process
 *    alive (it is an event listener, not a handle), and prints at most one report per process.
 *
 * Environment: `SLUICE_TRACE=1` records the stack where each operation parks (costly: one
 * `Error` per park) and prints it in the report; `SLUICE_REPORT=0` turns the report off.
 */

/** @internal Anything that owns wait queues and can name itself in a report. */
export interface Boundary {
  describe(): string;
}

/** @internal What diagnostics reads of a queue of parked operations (a WaitQueue or a channel's WaitRing). */
export interface ParkedQueue {
  readonly owner: Boundary;
  readonly role: string;
  readonly length: number;
  /** The oldest parked entries, at most `max`. */
  oldest(max: number): object[];
}

/** One non-empty wait queue, as reported by `parkedWork()`. */
export interface ParkedEntry {
  /** The boundary, e.g. `channel "events" (capacity 0)` or `semaphore "db" (size 4)`. */
  readonly boundary: string;
  /** What the parked operations wait to do: "send", "recv", "acquire", "wait", ... */
  readonly role: string;
  /** How many are parked now. */
  readonly count: number;
  /** Where each parked (oldest first, at most 10), when tracing was on as they parked. */
  readonly stacks: readonly string[];
}

/** Options of `configureDiagnostics`. */
export interface DiagnosticsOptions {
  /** Print the exit-time report of parked work (default: on unless `SLUICE_REPORT=0`). */
  report?: boolean;
  /** Record where each operation parks (default: `SLUICE_TRACE` set and not "0"). */
  trace?: boolean;
}

const MAX_STACKS = 10;

function envFlag(name: string, fallback: boolean): boolean {
  const v = process.env[name];
  if (v === undefined || v === "") return fallback;
  return !/^(0|false|off|no)$/i.test(v);
}

let reportOn = envFlag("SLUICE_REPORT", true);
let traceOn = envFlag("SLUICE_TRACE", false);
let hookInstalled = false;
let reported = false;
const registry = new Set<WeakRef<ParkedQueue>>();
let pruneAt = 64;

/**
 * Turns the exit-time report and parking traces on or off for this process. Returns the
 * settings now in force.
 *
 * @example
 * configureDiagnostics({ trace: true }); // stacks of parked operations in the report
 */
export function configureDiagnostics(options: DiagnosticsOptions = {}): Required<DiagnosticsOptions> {
  if (options === null || typeof options !== "object") throw new TypeError("options must be an object");
  if (options.report !== undefined) {
    if (typeof options.report !== "boolean") throw new TypeError("options.report must be a boolean");
    reportOn = options.report;
  }
  if (options.trace !== undefined) {
    if (typeof options.trace !== "boolean") throw new TypeError("options.trace must be a boolean");
    traceOn = options.trace;
  }
  return { report: reportOn, trace: traceOn };
}

/** @internal Called by a queue the first time anything parks on it. */
export function register(q: ParkedQueue): void {
  registry.add(new WeakRef(q));
  if (registry.size >= pruneAt) {
    for (const ref of registry) if (ref.deref() === undefined) registry.delete(ref);
    pruneAt = Math.max(64, registry.size * 2);
  }
  if (!hookInstalled) installHook();
}

/** @internal Whether parking should record a stack (read on every park: a plain binding). */
export { traceOn as tracing };

/** sluice's own source folder (src/ or dist/), as a URL and as a path: its frames are not the user's. */
const OWN_URL = new URL("..", import.meta.url).href;
const OWN_PATH = decodeURIComponent(new URL("..", import.meta.url).pathname);

/** Where each parked operation parked, while tracing is on (weak: it dies with the waiter). */
const stacks = new WeakMap<object, string>();

/** @internal Records where `w` is parking (called only when tracing is on). */
export function recordStack(w: object): void {
  stacks.set(w, captureStack());
}

function captureStack(): string {
  const stack = new Error("parked here").stack ?? "";
  // Drop the "Error" line and every frame of sluice's own files; keep the user's.
  return stack
    .split("\n")
    .slice(1)
    .filter((line) => !line.includes(OWN_URL) && !line.includes(OWN_PATH))
    .join("\n");
}

/**
 * What is parked right now, one entry per non-empty wait queue (every channel's senders and
 * receivers, semaphore and wait-group waiters, pool submitters...). A snapshot: building it
 * does not change anything.
 *
 * @example
 * for (const e of parkedWork()) console.log(`${e.boundary}: ${e.count} ${e.role}`);
 */
export function parkedWork(): ParkedEntry[] {
  const out: ParkedEntry[] = [];
  for (const ref of registry) {
    const q = ref.deref();
    if (q === undefined || q.length === 0) continue;
    const found: string[] = [];
    for (const w of q.oldest(MAX_STACKS)) {
      const at = stacks.get(w);
      if (at !== undefined) found.push(at);
    }
    out.push({ boundary: q.owner.describe(), role: q.role, count: q.length, stacks: found });
  }
  return out;
}

/** @internal The text of the exit-time report, or "" when nothing is parked. */
export function formatReport(entries: readonly ParkedEntry[]): string {
  if (entries.length === 0) return "";
  const total = entries.reduce((n, e) => n + e.count, 0);
  const lines = [
    `sluice: the event loop is empty but ${total} operation${total === 1 ? " is" : "s are"} still parked, ` +
      `and nothing is left that could wake ${total === 1 ? "it" : "them"} (Go would say: all goroutines are asleep - deadlock!):`,
  ];
  for (const e of entries) {
    lines.push(`  ${e.boundary}: ${e.count} parked ${e.role}${e.count === 1 ? "" : "s"}`);
    for (const s of e.stacks) {
      lines.push("    parked at:");
      for (const frame of s.split("\n")) lines.push(`      ${frame.trim()}`);
    }
    if (e.stacks.length > 0 && e.stacks.length < e.count) {
      lines.push(`    ... and ${e.count - e.stacks.length} more`);
    }
  }
  if (!traceOn) lines.push("Run with SLUICE_TRACE=1 to see where each one parked.");
  lines.push("Set SLUICE_REPORT=0 (or configureDiagnostics({ report: false })) to silence this report.");
  return lines.join("\n") + "\n";
}

function installHook(): void {
  hookInstalled = true;
  process.on("beforeExit", () => {
    if (reported || !reportOn) return;
    const entries = parkedWork();
    if (entries.length === 0) return;
    reported = true;
    process.stderr.write(formatReport(entries));
  });
}
