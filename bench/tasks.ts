/**
 * W4 and W4-pool: 200,000 `async () => i` tasks under concurrency 16.
 *
 * sluice is used the way its docs show (an `await` per admission, so nothing piles up ahead of
 * the workers); the peers the way their READMEs show and people write them: every task handed
 * over at once and collected with `Promise.all(items.map(...))`. That is what gives them their
 * heap. The floor is the lazy pool: 16 workers pulling the next index from a shared counter.
 *
 * Every implementation ticks the heap sampler once per task admitted and once per task started,
 * and the run fails unless every task ran exactly once (checked by count, and by value where the
 * implementation hands results back).
 */
import { ErrGroup, Semaphore } from "../src/index.js";
import { Pool } from "../src/flow/index.js";
import pLimit from "p-limit";
import PQueue from "p-queue";
import { Sema } from "async-sema";
import { lazyPool, MiniGroup, MiniMap, MiniSemaphore, MiniSubmitPool } from "./floors.js";
import { tick } from "./heap.js";
import { W4_CONCURRENCY } from "./workloads.js";

let started = 0;

/** The task: `async () => i`, plus the count and the sampler tick. */
async function task(i: number): Promise<number> {
  started++;
  tick();
  return i;
}

function fail(message: string): never {
  throw new Error(`bench: correctness check failed: ${message}`);
}

function checkResults(results: readonly number[], n: number): void {
  if (results.length !== n) fail(`${results.length} results for ${n} tasks`);
  for (let i = 0; i < n; i++) if (results[i] !== i) fail(`result ${i} is ${String(results[i])}`);
}

/** The map rows' source: a generator of 0..n-1 (ticking the heap sampler once per item). */
function* source(n: number): Generator<number> {
  for (let i = 0; i < n; i++) {
    tick();
    yield i;
  }
}

/** The input of the Promise.all implementations (built inside the measured pass: about 1 ms). */
function items(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

type Run = (n: number) => Promise<void>;

const IMPLS: Readonly<Record<string, Run>> = {
  "lazy-pool": (n) => lazyPool(n, W4_CONCURRENCY, task),

  async "mini-semaphore"(n) {
    const sem = new MiniSemaphore(W4_CONCURRENCY);
    const release = (): void => sem.release();
    for (let i = 0; i < n; i++) {
      tick();
      await sem.acquire();
      void task(i).then(release, release);
    }
    for (let k = 0; k < W4_CONCURRENCY; k++) await sem.acquire(); // every task has released its unit
  },

  async "mini-submit"(n) {
    const pool = new MiniSubmitPool(W4_CONCURRENCY);
    for (let i = 0; i < n; i++) {
      tick();
      await pool.submit(() => task(i));
    }
    await pool.drain();
  },

  async "sluice-semaphore"(n) {
    const sem = new Semaphore(W4_CONCURRENCY);
    const release = (): void => sem.release();
    for (let i = 0; i < n; i++) {
      tick();
      await sem.acquire();
      void task(i).then(release, release);
    }
    await sem.acquire(W4_CONCURRENCY); // every task has released its unit
    sem.release(W4_CONCURRENCY);
  },

  async "mini-group"(n) {
    const group = new MiniGroup(W4_CONCURRENCY);
    for (let i = 0; i < n; i++) {
      tick();
      await group.go(() => task(i));
    }
    await group.wait();
  },

  async "sluice-errgroup"(n) {
    const group = new ErrGroup({ limit: W4_CONCURRENCY });
    for (let i = 0; i < n; i++) {
      tick();
      await group.go(() => task(i));
    }
    await group.wait();
  },

  async "p-limit"(n) {
    const limit = pLimit(W4_CONCURRENCY);
    const results = await Promise.all(
      items(n).map((i) => {
        tick();
        return limit(() => task(i));
      }),
    );
    checkResults(results, n);
  },

  async "p-queue"(n) {
    const queue = new PQueue({ concurrency: W4_CONCURRENCY });
    const results = await Promise.all(
      items(n).map((i) => {
        tick();
        return queue.add(() => task(i));
      }),
    );
    checkResults(results, n);
  },

  async "async-sema"(n) {
    const sema = new Sema(W4_CONCURRENCY);
    const work = async (i: number): Promise<number> => {
      tick();
      await sema.acquire();
      try {
        return await task(i);
      } finally {
        sema.release();
      }
    };
    const results = await Promise.all(items(n).map(work));
    checkResults(results, n);
  },

  async "pool-submit"(n) {
    const pool = new Pool({ concurrency: W4_CONCURRENCY });
    for (let i = 0; i < n; i++) {
      tick();
      await pool.submit(() => task(i));
    }
    await pool.drain();
    const s = pool.stats;
    if (s.completed !== n || s.failed !== 0) fail(`pool stats after drain: ${JSON.stringify(s)}`);
  },

  async "lazy-pool-gen"(n) {
    // The floor's workers, pulling from the map rows' generator instead of a counter: what the
    // source alone adds to a map.
    const it = source(n);
    let count = 0;
    const worker = async (): Promise<void> => {
      for (let r = it.next(); r.done !== true; r = it.next()) {
        await task(r.value);
        count++;
      }
    };
    await Promise.all(Array.from({ length: W4_CONCURRENCY }, worker));
    if (count !== n) fail(`the generator-fed workers ran ${count} tasks for ${n}`);
  },

  async "mini-map"(n) {
    let next = 0;
    for await (const r of new MiniMap(source(n), W4_CONCURRENCY, task)) {
      if (r !== next) fail(`the minimal map yielded ${String(r)}, expected ${next}`);
      next++;
    }
    if (next !== n) fail(`the minimal map yielded ${next} results for ${n} tasks`);
  },

  async "pool-map"(n) {
    const pool = new Pool({ concurrency: W4_CONCURRENCY });
    let next = 0;
    for await (const r of pool.map(source(n), (i) => task(i))) {
      if (r !== next) fail(`pool.map yielded ${String(r)}, expected ${next}`);
      next++;
    }
    if (next !== n) fail(`pool.map yielded ${next} results for ${n} tasks`);
  },
};

/** Runs `n` tasks with `impl` and checks that each ran once. */
export async function runTaskWorkload(impl: string, n: number): Promise<void> {
  const run = IMPLS[impl];
  if (run === undefined) throw new Error(`bench: no task implementation ${JSON.stringify(impl)}`);
  started = 0;
  await run(n);
  if (started !== n) fail(`${started} tasks started for ${n}`);
}
