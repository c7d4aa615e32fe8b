/**
 * The benchmark's view of `sluice/flow`'s Pool (`src/flow/pool.ts`), loaded at run time so that
 * the benchmark type-checks and runs (skipping the Pool rows with a note) while that module does
 * not exist yet. The interface below is the part of the Pool contract (DESIGN.md, "sluice/flow:
 * settled details") that the benchmark uses.
 */
import { existsSync } from "node:fs";
import { relative, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

/** A Pool task: receives the task's AbortSignal. */
export type PoolTask<R> = (signal: AbortSignal) => R | PromiseLike<R>;

export interface PoolStats {
  readonly queued: number;
  readonly running: number;
  readonly completed: number;
  readonly failed: number;
  readonly rejected: number;
  readonly dropped: number;
  readonly aborted: number;
}

export interface PoolLike {
  /** Resolves once the task is accepted (waits for room with overflow "block"). */
  submit(task: PoolTask<unknown>, options?: { signal?: AbortSignal }): Promise<void>;
  /** Pulls an item only when a slot is free; yields results (in input order by default). */
  map<I, R>(
    source: Iterable<I> | AsyncIterable<I>,
    fn: (item: I, signal: AbortSignal) => R | PromiseLike<R>,
    options?: { ordered?: boolean; signal?: AbortSignal },
  ): AsyncIterable<R>;
  /** Waits for queued, running and waiting work. */
  drain(options?: { signal?: AbortSignal }): Promise<void>;
  close(): void;
  abort(reason?: unknown): void;
  readonly stats: PoolStats;
}

export type PoolConstructor = new (options: {
  concurrency: number;
  queue?: number;
  overflow?: "block" | "reject" | "drop-oldest";
  name?: string;
}) => PoolLike;

/**
 * `BENCH_POOL_MODULE=<path to a .ts file>` points the benchmark at another Pool module (e.g. a
 * work in progress); by default it is `src/flow/pool.ts`.
 */
const override = process.env.BENCH_POOL_MODULE;
const POOL_SOURCE = override ? pathToFileURL(resolve(override)) : new URL("../src/flow/pool.ts", import.meta.url);
const POOL_MODULE = override ? POOL_SOURCE : new URL("../src/flow/pool.js", import.meta.url);

/** Whether `src/flow/pool.ts` exists. */
export function poolAvailable(): boolean {
  return existsSync(fileURLToPath(POOL_SOURCE));
}

/** The note printed in place of the Pool rows while the module is missing. */
export const POOL_MISSING = `${relative(process.cwd(), fileURLToPath(POOL_SOURCE))} does not exist (yet): Pool rows skipped`;

/** Loads the Pool class; undefined while the module does not exist. */
export async function loadPool(): Promise<PoolConstructor | undefined> {
  if (!poolAvailable()) return undefined;
  const mod = (await import(POOL_MODULE.href)) as { Pool?: PoolConstructor };
  if (typeof mod.Pool !== "function") throw new Error("bench: src/flow/pool.ts does not export a Pool class");
  return mod.Pool;
}
