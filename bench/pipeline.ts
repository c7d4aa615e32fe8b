/**
 * W7 and W7-map: `sluice/pipeline` against the same pipeline written other ways.
 *
 * W7: n numbers from an async generator (items that arrive asynchronously, as from a broker
 * or a file) through map(x * 2) -> filter(x % 3 !== 0) -> batch(100), into a consumer that
 * counts. Implementations: a hand-written `for await` loop (the floor), Node's
 * `stream.pipeline` with object-mode Transforms, `streaming-iterables`, and sluice.
 *
 * W7-map: n items through an `async (x) => x + 1` function under concurrency 16: sixteen
 * workers pulling from one shared iterator and recording each result (the floor) against
 * `map(fn, { concurrency: 16 })`, consumed with `for await`, or recorded in a `tap` and `run()`,
 * or run alone with `fn` recording its own result; the reference rows write the same shapes by
 * hand (see `handWritten`, `miniWindow` and `miniWindowIter`).
 *
 * Every run checks its output (count and sum) and fails the process otherwise. The source ticks
 * the heap sampler once per item, the same for every implementation.
 */
import { Readable, Transform, Writable } from "node:stream";
import { pipeline as streamPipeline } from "node:stream/promises";
import * as si from "streaming-iterables";
import { batch, filter, map, pipeline, tap } from "../src/pipeline/index.js";
import { Channel } from "../src/index.js";
import { tick } from "./heap.js";
import { W7_BATCH, W7_CONCURRENCY } from "./workloads.js";

function fail(message: string): never {
  throw new Error(`bench: correctness check failed: ${message}`);
}

async function* source(n: number): AsyncGenerator<number> {
  for (let i = 0; i < n; i++) {
    tick();
    yield i;
  }
}

function* syncSource(n: number): Generator<number> {
  for (let i = 0; i < n; i++) {
    tick();
    yield i;
  }
}

const double = (x: number): number => x * 2;
const keep = (x: number): boolean => x % 3 !== 0;

/** What W7 must produce for n: the count and sum of the kept values. */
function expected(n: number): { count: number; sum: number } {
  let count = 0;
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const y = i * 2;
    if (y % 3 !== 0) {
      count++;
      sum += y;
    }
  }
  return { count, sum };
}

class Sink {
  count = 0;
  sum = 0;
  batches = 0;
  add(b: readonly number[]): void {
    if (b.length > W7_BATCH) fail(`a batch of ${b.length}`);
    this.batches++;
    for (const x of b) {
      this.count++;
      this.sum += x;
    }
  }
  check(n: number): Record<string, number> {
    const e = expected(n);
    if (this.count !== e.count || this.sum !== e.sum) fail(`got ${this.count} items (sum ${this.sum}), expected ${e.count} (sum ${e.sum})`);
    return { batches: this.batches };
  }
}

async function loop(n: number, sink: Sink): Promise<void> {
  let b: number[] = [];
  for await (const x of source(n)) {
    const y = double(x);
    if (!keep(y)) continue;
    b.push(y);
    if (b.length === W7_BATCH) {
      sink.add(b);
      b = [];
    }
  }
  if (b.length > 0) sink.add(b);
}

async function nodeStreams(n: number, sink: Sink): Promise<void> {
  let b: number[] = [];
  await streamPipeline(
    Readable.from(source(n)),
    new Transform({
      objectMode: true,
      transform(x: number, _e, cb) {
        cb(null, double(x));
      },
    }),
    new Transform({
      objectMode: true,
      transform(x: number, _e, cb) {
        if (keep(x)) cb(null, x);
        else cb();
      },
    }),
    new Transform({
      objectMode: true,
      transform(x: number, _e, cb) {
        b.push(x);
        if (b.length === W7_BATCH) {
          const full = b;
          b = [];
          cb(null, full);
        } else cb();
      },
      flush(cb) {
        if (b.length > 0) cb(null, b);
        else cb();
      },
    }),
    new Writable({
      objectMode: true,
      write(batch: number[], _e, cb) {
        sink.add(batch);
        cb();
      },
    }),
  );
}

async function streamingIterables(n: number, sink: Sink): Promise<void> {
  const batches = si.batch(W7_BATCH, si.filter(keep, si.map(double, source(n))));
  for await (const b of batches) sink.add(b);
}

async function sluice(n: number, sink: Sink, from: (n: number) => AsyncIterable<number> | Iterable<number>): Promise<void> {
  const p = pipeline(from(n), map(double), filter(keep), batch<number>({ size: W7_BATCH }));
  for await (const b of p) sink.add(b);
}

const work = async (x: number): Promise<number> => x + 1;

async function pullingWorkers(n: number): Promise<Record<string, number>> {
  const it = syncSource(n)[Symbol.iterator]();
  let count = 0;
  let sum = 0;
  const worker = async (): Promise<void> => {
    for (let r = it.next(); r.done !== true; r = it.next()) {
      const v = await work(r.value);
      count++;
      sum += v;
    }
  };
  await Promise.all(Array.from({ length: W7_CONCURRENCY }, worker));
  return checkMap(n, count, sum);
}

/**
 * Reference rows: the same work hand-written with sluice's `Channel` and the hops a pipeline
 * has, so the cost of the shape is told apart from the cost of `sluice/pipeline`. `out`: the
 * floor's 16 workers send their results into a channel (capacity 16) that a `for await` loop
 * consumes. `pumped`: a pump feeds the items into a channel (capacity 16) first, as a
 * pipeline's source link does.
 */
async function handWritten(n: number, pumped: boolean): Promise<Record<string, number>> {
  const out = new Channel<number>(16);
  let live = W7_CONCURRENCY;
  let take: () => Promise<IteratorResult<number>> | IteratorResult<number>;
  let pump: Promise<void> = Promise.resolve();
  if (pumped) {
    const link = new Channel<number>(16);
    pump = (async () => {
      for (const x of syncSource(n)) if (!link.trySend(x)) await link.send(x);
      link.close();
    })();
    const done: IteratorResult<number> = { value: undefined, done: true };
    take = () => {
      const r = link.tryRecv();
      if (r !== undefined) return r.ok ? { value: r.value, done: false } : done;
      return link.recv().then((v) => (v.ok ? { value: v.value, done: false } : done));
    };
  } else {
    const it = syncSource(n)[Symbol.iterator]();
    take = () => it.next();
  }
  const worker = async (): Promise<void> => {
    for (;;) {
      let r = take();
      if (r instanceof Promise) r = await r;
      if ((r as IteratorResult<number>).done === true) break;
      const v = await work((r as IteratorYieldResult<number>).value);
      if (!out.trySend(v)) await out.send(v);
    }
    if (--live === 0) out.close();
  };
  const workers = Promise.all([pump, ...Array.from({ length: W7_CONCURRENCY }, worker)]);
  let count = 0;
  let sum = 0;
  for await (const v of out) {
    count++;
    sum += v;
  }
  await workers;
  return checkMap(n, count, sum);
}

/**
 * Reference row: the shape of `map(fn, { concurrency: 16 })` under `run()` with the least code.
 * A window of 16 slots: an item's call starts wherever room appears (at the start, and each
 * time a result leaves the head), its settle callback (one per slot, made once) records the
 * result in its slot, and results leave from the head in input order, recorded as they go.
 * No counters, no signal, no failure handling, no links: what sluice's window adds is its own.
 */
function miniWindow(n: number): Promise<Record<string, number>> {
  const W = W7_CONCURRENCY;
  const it = syncSource(n)[Symbol.iterator]();
  const vals = new Array<number>(W).fill(0);
  const ready = new Uint8Array(W);
  let nextSeq = 0;
  let nextOut = 0;
  let ended = false;
  let count = 0;
  let sum = 0;
  return new Promise((resolve, reject) => {
    const fill = (): void => {
      while (!ended && nextSeq - nextOut < W) {
        const r = it.next();
        if (r.done === true) {
          ended = true;
          break;
        }
        work(r.value).then(settle[nextSeq++ % W], reject);
      }
    };
    const emit = (): void => {
      for (let k = nextOut % W; ready[k] === 1; k = nextOut % W) {
        ready[k] = 0;
        count++;
        sum += vals[k]!;
        nextOut++;
        fill();
      }
      if (ended && nextOut === nextSeq) resolve(checkMap(n, count, sum));
    };
    const settle = Array.from({ length: W }, (_, k) => (v: number): void => {
      vals[k] = v;
      ready[k] = 1;
      emit();
    });
    fill();
  });
}

/**
 * Reference row: the shape of `map(fn, { concurrency: 16 })` consumed with `for await`, with the
 * least code. The same window as `miniWindow`, read by a minimal async iterator: `next()` takes
 * the head's result when it is ready (and starts the next call in its place), else parks the
 * consumer until the head settles. What a `for await` consumer costs on top of the window.
 */
function miniWindowIter(n: number): AsyncIterableIterator<number> {
  const W = W7_CONCURRENCY;
  const it = syncSource(n)[Symbol.iterator]();
  const vals = new Array<number>(W).fill(0);
  const ready = new Uint8Array(W);
  let nextSeq = 0;
  let nextOut = 0;
  let ended = false;
  let failure: { error: unknown } | null = null;
  let consumer: { resolve: (r: IteratorResult<number>) => void; reject: (e: unknown) => void } | null = null;
  const fill = (): void => {
    while (!ended && nextSeq - nextOut < W) {
      const r = it.next();
      if (r.done === true) {
        ended = true;
        break;
      }
      work(r.value).then(settle[nextSeq++ % W], failed);
    }
  };
  const take = (k: number): number => {
    ready[k] = 0;
    nextOut++;
    fill();
    return vals[k]!;
  };
  const settle = Array.from({ length: W }, (_, k) => (v: number): void => {
    vals[k] = v;
    ready[k] = 1;
    const c = consumer;
    if (c !== null && k === nextOut % W) {
      consumer = null;
      c.resolve({ value: take(k), done: false });
    }
  });
  const failed = (e: unknown): void => {
    failure ??= { error: e };
    consumer?.reject(e);
    consumer = null;
  };
  fill();
  const iter: AsyncIterableIterator<number> = {
    next() {
      if (failure !== null) return Promise.reject(failure.error);
      const k = nextOut % W;
      if (ready[k] === 1) return Promise.resolve({ value: take(k), done: false });
      if (ended && nextOut === nextSeq) return Promise.resolve({ value: undefined, done: true });
      return new Promise((resolve, reject) => (consumer = { resolve, reject }));
    },
    [Symbol.asyncIterator]: () => iter,
  };
  return iter;
}

async function miniWindowIterated(n: number): Promise<Record<string, number>> {
  let count = 0;
  let sum = 0;
  for await (const v of miniWindowIter(n)) {
    count++;
    sum += v;
  }
  return checkMap(n, count, sum);
}

/** `map` alone, run to the end (its results discarded): `fn` records what it returns, as a job handler does its effect. */
async function sluiceMapRunOnly(n: number): Promise<Record<string, number>> {
  let count = 0;
  let sum = 0;
  const handle = async (x: number): Promise<number> => {
    const v = x + 1; // work's own body, then the record: one async call per item, as in the floor
    count++;
    sum += v;
    return v;
  };
  await pipeline(syncSource(n), map(handle, { concurrency: W7_CONCURRENCY })).run();
  return checkMap(n, count, sum);
}

async function sluiceMap(n: number, ordered: boolean): Promise<Record<string, number>> {
  let count = 0;
  let sum = 0;
  for await (const v of pipeline(syncSource(n), map(work, { concurrency: W7_CONCURRENCY, ordered }))) {
    count++;
    sum += v;
  }
  return checkMap(n, count, sum);
}

/** The same with the results recorded in a `tap` and the pipeline run to the end (no `for await` hop per item). */
async function sluiceMapRun(n: number, ordered: boolean): Promise<Record<string, number>> {
  let count = 0;
  let sum = 0;
  const record = (v: number): void => {
    count++;
    sum += v;
  };
  await pipeline(syncSource(n), map(work, { concurrency: W7_CONCURRENCY, ordered }), tap(record)).run();
  return checkMap(n, count, sum);
}

function checkMap(n: number, count: number, sum: number): Record<string, number> {
  const want = (n * (n - 1)) / 2 + n;
  if (count !== n || sum !== want) fail(`map: ${count} results (sum ${sum}), expected ${n} (sum ${want})`);
  return {};
}

/** Runs one pass of `impl` over `n` items. */
export async function runPipelineWorkload(workloadId: string, impl: string, n: number): Promise<Record<string, number>> {
  if (workloadId === "W7-map") {
    switch (impl) {
      case "workers":
        return pullingWorkers(n);
      case "workers-out":
        return handWritten(n, false);
      case "pump-workers-out":
        return handWritten(n, true);
      case "mini-window":
        return miniWindow(n);
      case "mini-window-iter":
        return miniWindowIterated(n);
      case "sluice-map":
        return sluiceMap(n, true);
      case "sluice-map-unordered":
        return sluiceMap(n, false);
      case "sluice-map-run":
        return sluiceMapRun(n, true);
      case "sluice-map-run-unordered":
        return sluiceMapRun(n, false);
      case "sluice-map-run-only":
        return sluiceMapRunOnly(n);
      default:
        throw new Error(`bench: W7-map has no implementation ${impl}`);
    }
  }
  const sink = new Sink();
  switch (impl) {
    case "loop":
      await loop(n, sink);
      break;
    case "node-streams":
      await nodeStreams(n, sink);
      break;
    case "streaming-iterables":
      await streamingIterables(n, sink);
      break;
    case "sluice":
      await sluice(n, sink, source);
      break;
    case "sluice-sync":
      await sluice(n, sink, syncSource);
      break;
    default:
      throw new Error(`bench: W7 has no implementation ${impl}`);
  }
  return sink.check(n);
}
