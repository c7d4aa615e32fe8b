/**
 * Helpers of the conformance suite: small, bounded, event-driven where an event exists.
 */
import assert from "node:assert/strict";
import { parkedWork } from "../../src/index.js";

/** Resolves after `n` macrotask turns: lets running work make all the progress it can. */
export async function settle(n = 10): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise<void>((r) => setImmediate(r));
}

/**
 * Waits until `cond()` holds, checking after every macrotask turn (then every 5 ms after the
 * first 200 turns, for conditions that wait on I/O); fails with `what` after `timeoutMs`.
 */
export async function until(cond: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (let i = 0; ; i++) {
    if (cond()) return;
    if (performance.now() > deadline) assert.fail(`timed out waiting for: ${what}`);
    await new Promise<void>((r) => (i < 200 ? setImmediate(r) : setTimeout(r, 5)));
  }
}

/** Collects an async iterable (at most `max` items, so a broken implementation cannot grow without bound). */
export async function collect<T>(it: AsyncIterable<T>, max = 100_000): Promise<T[]> {
  const out: T[] = [];
  for await (const v of it) {
    out.push(v);
    if (out.length > max) assert.fail(`more than ${max} items`);
  }
  return out;
}

export function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

/** Nothing is parked anywhere in sluice (the core's `parkedWork()`). */
export function assertNothingParked(where: string): void {
  assert.deepEqual(parkedWork(), [], `${where}: parked work left behind`);
}

/** How many real timers (`Timeout` resources) are alive now. */
export function liveTimers(): number {
  return process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;
}

/** A deferred promise. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((a, b) => {
    resolve = a;
    reject = b;
  });
  return { promise, resolve, reject };
}

/** A sync iterable source that records how many items were pulled and whether `return()` closed it. */
export function countedIterable(n: number): { it: Iterable<number>; pulled: () => number; closed: () => boolean } {
  let pulled = 0;
  let closed = false;
  const it: Iterable<number> = {
    [Symbol.iterator]: () => ({
      next: () => (pulled < n ? { value: pulled++, done: false } : { value: undefined, done: true }),
      return: () => {
        closed = true;
        return { value: undefined, done: true };
      },
    }),
  };
  return { it, pulled: () => pulled, closed: () => closed };
}

/** An async generator source (endless unless `n`), recording pulls and whether its `finally` ran. */
export function countedAsync(n = Infinity): { it: AsyncIterable<number>; pulled: () => number; closed: () => boolean } {
  let pulled = 0;
  let closed = false;
  async function* gen(): AsyncGenerator<number> {
    try {
      while (pulled < n) yield pulled++;
    } finally {
      closed = true;
    }
  }
  return { it: gen(), pulled: () => pulled, closed: () => closed };
}

/** Asserts `fn` throws synchronously an error of class `cls` whose message names `option`. */
export function assertBadOption(fn: () => unknown, cls: typeof RangeError | typeof TypeError, option: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof cls, `expected ${cls.name}, got ${String(e)}`);
    assert.match((e as Error).message, new RegExp(option.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")), `the message must name ${option}`);
    return true;
  });
}

/** Asserts `fn` throws (synchronously) or rejects with a RangeError/TypeError naming `option`. */
export async function assertBadOptionAsync(fn: () => unknown, option: string): Promise<void> {
  let err: unknown;
  try {
    await fn();
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof RangeError || err instanceof TypeError, `expected RangeError/TypeError for ${option}, got ${String(err)}`);
  assert.match((err as Error).message, new RegExp(option.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")), `the message must name ${option}`);
}
