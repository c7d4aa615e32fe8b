/**
 * Peak-heap sampling for the benchmark's child processes.
 *
 * `heapUsed` is read through `v8.getHeapStatistics().used_heap_size`: the same number as
 * `process.memoryUsage().heapUsed`, about ten times cheaper to read (no RSS lookup). It is
 * sampled every 1024 `tick()`s (each workload ticks once per submitted and once per started
 * task, so a synchronous enqueue loop is sampled too), every 5 ms by an unref'd interval, and
 * once at `stop()`. Every implementation of a workload ticks at the same points, so the cost
 * of sampling is the same for all of them.
 */
import v8 from "node:v8";

let peak = 0;
let base = 0;
let ticks = 0;
let interval: NodeJS.Timeout | undefined;

function used(): number {
  return v8.getHeapStatistics().used_heap_size;
}

/** Reads the heap now and keeps the maximum. */
export function sampleHeap(): number {
  const u = used();
  if (u > peak) peak = u;
  return u;
}

/** Counts one operation; samples the heap every 1024. */
export function tick(): void {
  if ((++ticks & 1023) === 0) sampleHeap();
}

/** Forces a full gc (the child runs with `--expose-gc`). */
export function forceGc(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error("bench: run the worker with node --expose-gc");
  gc();
}

/** Collects garbage and records the base heap (`heapUsed` right after it). */
export function collectAndMarkBase(): void {
  forceGc();
  base = used();
}

/** Starts sampling: the peak restarts from the heap in use now. */
export function startSampling(): void {
  peak = used();
  ticks = 0;
  interval = setInterval(sampleHeap, 5);
  interval.unref();
}

/** Stops sampling; returns the peak and the base `heapUsed` in bytes. */
export function stopSampling(): { peak: number; base: number } {
  sampleHeap();
  if (interval !== undefined) clearInterval(interval);
  interval = undefined;
  return { peak, base };
}
