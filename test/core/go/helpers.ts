/**
 * Shared harness of the Go test ports in this folder (not a test file itself).
 *
 * How Go maps onto the event loop here:
 *  - a goroutine is an async function; `go(f)` starts it on the next microtask (the caller goes
 *    on first, as after Go's `go` statement) and returns its promise, which the test keeps and
 *    awaits at the end;
 *  - `runtime.Gosched()` and short `time.Sleep`s used to let other goroutines run are `turns(n)`:
 *    n turns of the event loop (macrotasks), after which every promise chain that could run has;
 *  - "this goroutine is blocked" (Go: sleep, then check a flag) is `isPending(p)`: still
 *    unsettled after a few turns, a bounded check instead of a real sleep;
 *  - goroutines that Go leaves running forever (generators, sieves, power series) run in a
 *    `Scope`, whose signal every one of their channel operations takes; `scope.cancel()` aborts
 *    it and waits until every one of them has returned, so nothing stays parked.
 */
import assert from "node:assert/strict";
import { parkedWork } from "../../../src/index.js";

/** Starts `fn` on the next microtask, like `go fn()`; returns its promise (never unhandled). */
export function go<T>(fn: () => Promise<T>): Promise<T> {
  const p = Promise.resolve().then(fn);
  p.catch(() => {}); // the test awaits it; this only keeps Node from calling it unhandled meanwhile
  return p;
}

/** Waits `n` turns of the event loop (setImmediate), letting every runnable promise chain run. */
export async function turns(n = 1): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

/** Waits `n` microtask ticks: a finer interleaving point than `turns`. */
export async function ticks(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await Promise.resolve();
}

/** True when `p` is still unsettled after `n` event-loop turns (a bounded "is it blocked?"). */
export async function isPending(p: Promise<unknown>, n = 3): Promise<boolean> {
  let settled = false;
  p.then(
    () => (settled = true),
    () => (settled = true),
  );
  await turns(n);
  return !settled;
}

/** Asserts that no sluice operation is parked anywhere (no sender, receiver or waiter left). */
export function assertNothingParked(): void {
  assert.deepEqual(parkedWork(), [], "operations left parked");
}

/** A small seeded PRNG (mulberry32): uniform in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The seed of a randomized test: `SLUICE_TEST_SEED` when set (to replay), else `fallback`. */
export function testSeed(fallback: number): number {
  const env = process.env.SLUICE_TEST_SEED;
  if (env === undefined || env === "") return fallback;
  const n = Number(env);
  if (!Number.isSafeInteger(n)) throw new RangeError(`SLUICE_TEST_SEED must be an integer, got ${env}`);
  return n;
}

/**
 * Runs `body` with `Math.random` replaced by a generator seeded with `seed` (so select's random
 * choices, and the body's own, replay exactly), restoring it afterwards. On failure the seed is
 * printed, and added to the error message.
 */
export async function withSeededRandom<T>(seed: number, body: (rand: () => number) => Promise<T>): Promise<T> {
  const original = Math.random;
  const rand = mulberry32(seed);
  Math.random = rand;
  try {
    return await body(rand);
  } catch (e) {
    console.error(`failed with seed ${seed} (replay: SLUICE_TEST_SEED=${seed})`);
    if (e instanceof Error) e.message += ` [seed ${seed}]`;
    throw e;
  } finally {
    Math.random = original;
  }
}

/** The reason a `Scope` aborts with; goroutines that end with it ended as asked. */
const STOPPED = new Error("scope cancelled");

/**
 * A set of long-running goroutines sharing one AbortSignal: Go programs that leave goroutines
 * blocked forever (and exit) become goroutines that are told to stop and are waited for.
 * Bounded: a counter, not a list.
 */
export class Scope {
  readonly #controller = new AbortController();
  #running = 0;
  #idle: (() => void) | null = null;
  #failed = false;
  #error: unknown = undefined;

  /** Give this to every channel operation of the scope's goroutines. */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** `go fn()` inside the scope; a failure other than the scope's cancellation is kept. */
  go(fn: (signal: AbortSignal) => Promise<unknown>): void {
    this.#running++;
    go(() => fn(this.signal)).then(
      () => this.#exit(),
      (e: unknown) => {
        if (e !== STOPPED && !this.#failed) {
          this.#failed = true;
          this.#error = e;
        }
        this.#exit();
      },
    );
  }

  /** Aborts the signal, waits for every goroutine to return, and throws the first real failure. */
  async cancel(): Promise<void> {
    this.#controller.abort(STOPPED);
    if (this.#running > 0) await new Promise<void>((resolve) => (this.#idle = resolve));
    if (this.#failed) throw this.#error;
  }

  #exit(): void {
    if (--this.#running === 0 && this.#idle !== null) this.#idle();
  }
}
