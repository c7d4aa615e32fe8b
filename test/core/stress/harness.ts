/**
 * Shared harness of the stress tests (not a test file itself).
 *
 * - One seed per process: `SLUICE_SEED` when set, else a fresh one. Every property prints it
 *   when it fails (fast-check adds the shrunk counterexample and a `path` to replay it);
 *   `SLUICE_RUNS=<n>` overrides the number of runs of every property (for a long soak).
 * - Schedules are data: a "delay" is a small integer chosen by the generator, turned into
 *   microtask turns (1..3) or `setImmediate` macrotask turns (4.. => 1..) between operations.
 *   Node runs both queues deterministically, so a seed replays the same interleaving.
 *   Replay the shrunk case with `SLUICE_SEED=.. SLUICE_PROPERTY=.. SLUICE_PATH=..` as printed.
 * - `seededRandom` replaces `Math.random` for the duration of a run (select's uniform choice
 *   reads it), so select schedules replay too.
 * - `watchdog` fails a run that does not finish within a budget of turns (a lost wake-up would
 *   otherwise hang the file).
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { parkedWork } from "../../../src/index.js";

function envInt(name: string): number | undefined {
  const v = process.env[name];
  if (v === undefined || v === "") return undefined;
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw new RangeError(`${name} must be an integer, got ${JSON.stringify(v)}`);
  return n;
}

/** The seed of every property in this process. */
export const SEED: number = envInt("SLUICE_SEED") ?? (Date.now() ^ (Math.random() * 0x100000000)) | 0;
const PATH: string | undefined = process.env.SLUICE_PATH || undefined;
const PROPERTY: string | undefined = process.env.SLUICE_PROPERTY || undefined;
const RUNS: number | undefined = envInt("SLUICE_RUNS");

/**
 * Runs an async property with the process seed; on failure, rethrows with the seed, the
 * assertion that failed and the environment that replays the shrunk counterexample
 * (`SLUICE_PATH` applies only to the property named by `SLUICE_PROPERTY`).
 */
export async function checkProperty<Ts extends [unknown, ...unknown[]]>(
  name: string,
  property: fc.IAsyncPropertyWithHooks<Ts>,
  numRuns: number,
): Promise<void> {
  const params: fc.Parameters<Ts> = { seed: SEED, numRuns: RUNS ?? numRuns };
  if (PATH !== undefined && PROPERTY === name) params.path = PATH;
  try {
    await fc.assert(property, params);
  } catch (e) {
    const message = String((e as Error).message);
    const path = /path: "([^"]*)"/.exec(message)?.[1];
    const replay = `SLUICE_SEED=${SEED}` + (path === undefined ? "" : ` SLUICE_PROPERTY=${JSON.stringify(name)} SLUICE_PATH=${path}`);
    process.stderr.write(`\n[stress] ${name} failed with seed ${SEED}; replay with: ${replay}\n`);
    if (e instanceof Error) {
      const cause = e.cause instanceof Error ? e.cause.message : undefined;
      const extra = cause !== undefined && !message.includes(cause) ? `\nCause: ${cause}` : "";
      e.message = `${name} (replay: ${replay})\n${message}${extra}`;
    }
    throw e;
  }
}

const MICRO_MAX = 3;

/** The generator of one delay: 0 (none), 1..3 microtask turns, 4..max => 1.. macrotask turns. */
export function delayArb(max = 6): fc.Arbitrary<number> {
  return fc.nat({ max });
}

/** Waits `d` turns as encoded by `delayArb`. */
export async function delay(d: number): Promise<void> {
  if (d <= MICRO_MAX) {
    for (let i = 0; i < d; i++) await Promise.resolve();
    return;
  }
  for (let i = MICRO_MAX; i < d; i++) await new Promise<void>((r) => setImmediate(r));
}

/** Runs `fn` after `d` turns (as `delay`), in the background: see `background`. */
export function later(d: number, fn: () => void): Promise<void> {
  return background(
    (async () => {
      await delay(d);
      fn();
    })(),
  );
}

/** One macrotask turn: every microtask queued before it has run. */
export function macroTurn(): Promise<void> {
  return new Promise<void>((r) => setImmediate(r));
}

/** mulberry32: a small seeded PRNG in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed | 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Runs `body` with `Math.random` replaced by a PRNG seeded with `seed`. */
export async function withSeededRandom<T>(seed: number, body: () => Promise<T>): Promise<T> {
  const original = Math.random;
  Math.random = seededRandom(seed);
  try {
    return await body();
  } finally {
    Math.random = original;
  }
}

/**
 * Races `run` against a budget of macrotask turns (not of real time, so that a loaded machine
 * does not fail a healthy run): the schedules here advance only by turns, so a run still
 * pending after `maxTurns` turns has lost a wake-up. Then it rejects with `describe()` (the
 * state of the run), so that the property fails (and shrinks) instead of hanging the file.
 */
export async function watchdog<T>(describe: () => string, run: Promise<T>, maxTurns = 2000): Promise<T> {
  let settled = false;
  const guarded = run.finally(() => {
    settled = true;
  });
  const expired = (async (): Promise<T> => {
    for (let t = 0; t < maxTurns && !settled; t++) await macroTurn();
    if (!settled) throw new Error(`stuck: not done after ${maxTurns} macrotask turns: ${describe()}`);
    return guarded;
  })();
  return Promise.race([guarded, expired]);
}

/**
 * Marks a background promise (an aborter, an actor) as handled and returns it: if the run
 * already failed elsewhere, its later failure must not surface as an unhandled rejection
 * (outside fast-check, unshrunk); the run awaits it when it gets that far.
 */
export function background<T>(p: Promise<T>): Promise<T> {
  p.catch(() => {});
  return p;
}

/** A text of what is parked anywhere in sluice now ("" when nothing). */
export function parkedSummary(): string {
  return parkedWork()
    .map((e) => `${e.boundary}: ${e.count} ${e.role}`)
    .join("; ");
}

let runs = 0;

/**
 * Starts the bookkeeping of one run: a fresh boundary name (`${kind}-<n>`, used in the names
 * of the run's channels, semaphores...) and whether nothing was parked anywhere when it began.
 * `finish()` then asserts that nothing is parked anywhere; if an earlier run failed and left
 * work parked that no cleanup could release, it asserts only that nothing of this run is
 * parked, so that shrinking is not misled by the leftovers of the failure it is shrinking.
 */
export function startRun(kind: string): { name: string; finish(): void } {
  const name = `${kind}-${++runs}`;
  const clean = parkedWork().length === 0;
  return {
    name,
    finish(): void {
      if (clean) {
        assert.deepEqual(parkedWork(), [], `nothing parked anywhere: ${parkedSummary()}`);
        return;
      }
      const mine = parkedWork().filter((e) => e.boundary.includes(JSON.stringify(name)) || e.boundary.includes(`"${name}.`));
      assert.deepEqual(mine, [], `nothing of this run left parked: ${parkedSummary()}`);
    },
  };
}

/** A fresh, recognisable abort reason. */
export class TestAbort extends Error {
  constructor(readonly tag: string) {
    super(`test abort ${tag}`);
    this.name = "TestAbort";
  }
}
