/**
 * The benchmark's workloads and implementations: the one list that the runner (`run.ts`) and
 * the measuring child (`worker.ts`) share. Nothing here imports a peer or sluice, so the runner
 * stays light; each child loads only the module of its own workload.
 */

/**
 * The order in which a channel workload starts its two sides: "cf", consumers first (they wait
 * on an empty channel, so every send hands off to a parked receiver: a service's workers), or
 * "pf", producers first (they fill the buffer; receives mostly find a value).
 */
export type Order = "cf" | "pf";

/** One implementation of a workload, as a row of its table. */
export interface ImplSpec {
  /** Passed to the child on its command line. */
  readonly id: string;
  /** Shown in the table. */
  readonly label: string;
  /** Measured only in these orders (default: every order of the workload). */
  readonly orders?: readonly Order[];
}

/** A workload: one table. */
export interface WorkloadSpec {
  readonly id: string;
  readonly title: string;
  /** Operations in one measured pass (messages or tasks); ns/op divides by this. */
  readonly ops: number;
  /** Operations in each warm-up pass that precedes the measured one in the same process. */
  readonly warmupOps: number;
  /** The floor implementation's id (ratios are taken against it). */
  readonly floor: string | undefined;
  /** A second floor, stricter or looser (channel workloads: the one with a promise-free fast path). */
  readonly strictFloor?: string;
  /** The orders it runs in (channel workloads); one table column group per order. */
  readonly orders?: readonly Order[];
  /** The burst-after-idle workload (W6): the child measures steady state, idles, then a burst. */
  readonly idle?: boolean;
  /** The sluice implementation the "vs sluice" column is taken against. */
  readonly sluice: string | undefined;
  /** Whether peak heap is sampled and shown. */
  readonly heap: boolean;
  /** Whether the table reports a timing (W5 reports memory and counts instead). */
  readonly timed: boolean;
  readonly impls: readonly ImplSpec[];
}

export const W1_MESSAGES = 1_000_000;
export const W2_MESSAGES = 200_000;
export const W3_PRODUCERS = 8;
export const W3_PER_PRODUCER = 125_000;
export const W3_CONSUMERS = 8;
export const CHANNEL_CAPACITY = 64;
export const W4_TASKS = 200_000;
export const W4_CONCURRENCY = 16;
export const W5_DURATION_MS = 3_000;
export const W5_MESSAGE_BYTES = 10 * 1024;
export const W5_QUEUE = 64;
export const W6_BURST = 20_000;
export const W6_IDLE_MS = 300;
/** W5 stops producing when the heap passes this, so that the unbounded run cannot take the machine down. */
export const W7_ITEMS = 1_000_000;
export const W7_BATCH = 100;
export const W7_MAP_ITEMS = 200_000;
export const W7_CONCURRENCY = 16;

export const W5_HEAP_CAP_BYTES = 1024 * 1024 * 1024;

const channelPeers: readonly ImplSpec[] = [
  { id: "async-channel", label: "async-channel 0.2.0" },
  { id: "medium", label: "medium 1.2.0" },
  { id: "ts-chan", label: "ts-chan 0.6.0 (default: yields to macrotasks)" },
  { id: "ts-chan-unsafe", label: "ts-chan 0.6.0 (unsafe: no yield)" },
];

const BOTH: readonly Order[] = ["cf", "pf"];

/** The rows of W1, W2, W3. */
const channelImpls: readonly ImplSpec[] = [
  { id: "floor-strict", label: "strict floor: minimal ring + promise waiters, no promise when it need not wait" },
  { id: "floor", label: "floor: the same, `Promise.resolve` on its fast paths" },
  { id: "floor-result", label: "reference: floor resolving a fresh `{ value, ok }`" },
  { id: "sluice", label: "sluice Channel (await recv loop)" },
  { id: "sluice-iter", label: "sluice Channel (for await)" },
  { id: "floor-select", label: "reference: minimal 2-case select loop (recv ch, recv quit)" },
  { id: "sluice-select", label: "sluice select([recv(ch), recv(done(signal))]) loop" },
  ...channelPeers,
];

function channelWorkload(id: string, title: string, ops: number): WorkloadSpec {
  return {
    id,
    title,
    ops,
    warmupOps: ops / 10,
    floor: "floor",
    strictFloor: "floor-strict",
    sluice: "sluice",
    heap: false,
    timed: true,
    orders: BOTH,
    impls: channelImpls,
  };
}

export const WORKLOADS: readonly WorkloadSpec[] = [
  channelWorkload("W1", `W1 SPSC: ${W1_MESSAGES.toLocaleString("en")} numbers through capacity ${CHANNEL_CAPACITY}, await send / await recv`, W1_MESSAGES),
  {
    id: "W1-fast",
    title: `W1 fast path: ${(10 * W1_MESSAGES).toLocaleString("en")} numbers (W1's million, ten times over, to time more than a few ms) through capacity ${CHANNEL_CAPACITY}, trySend until full / tryRecv until empty`,
    ops: 10 * W1_MESSAGES,
    warmupOps: W1_MESSAGES,
    floor: "sync-ring",
    sluice: "sluice-try",
    heap: false,
    timed: true,
    impls: [
      { id: "sync-ring", label: "floor: synchronous array ring" },
      { id: "sluice-try", label: "sluice trySend / tryRecv" },
    ],
  },
  channelWorkload("W2", `W2 rendezvous: ${W2_MESSAGES.toLocaleString("en")} numbers through capacity 0, await send / await recv`, W2_MESSAGES),
  channelWorkload(
    "W3",
    `W3 MPMC: ${W3_PRODUCERS} producers x ${W3_PER_PRODUCER.toLocaleString("en")}, ${W3_CONSUMERS} consumers, capacity ${CHANNEL_CAPACITY}, exactly-once checked`,
    W3_PRODUCERS * W3_PER_PRODUCER,
  ),
  {
    id: "W4",
    title: `W4: ${W4_TASKS.toLocaleString("en")} \`async () => i\` tasks under concurrency ${W4_CONCURRENCY}`,
    ops: W4_TASKS,
    warmupOps: W4_TASKS / 10,
    floor: "lazy-pool",
    sluice: "sluice-semaphore",
    heap: true,
    timed: true,
    impls: [
      { id: "lazy-pool", label: `floor: lazy pool (${W4_CONCURRENCY} pulling workers)` },
      { id: "mini-semaphore", label: "reference: minimal semaphore, same await-acquire loop" },
      { id: "sluice-semaphore", label: "sluice Semaphore (await acquire loop)" },
      { id: "mini-group", label: "reference: minimal errgroup, same await-go loop (a closure per task)" },
      { id: "sluice-errgroup", label: "sluice ErrGroup({ limit }) (await go loop)" },
      { id: "p-limit", label: "p-limit 7.3.3 (Promise.all of all tasks)" },
      { id: "p-queue", label: "p-queue 9.3.5 (Promise.all of all adds)" },
      { id: "async-sema", label: "async-sema 3.1.1 (Promise.all, README style)" },
    ],
  },
  {
    id: "W4-pool",
    title: `W4-pool: ${W4_TASKS.toLocaleString("en")} \`async () => i\` tasks through sluice/flow Pool({ concurrency: ${W4_CONCURRENCY} })`,
    ops: W4_TASKS,
    warmupOps: W4_TASKS / 10,
    floor: "lazy-pool",
    sluice: "pool-submit",
    heap: true,
    timed: true,
    impls: [
      { id: "lazy-pool", label: `floor: lazy pool (${W4_CONCURRENCY} pulling workers)` },
      { id: "mini-submit", label: "reference: minimal submit pool, same await-submit loop" },
      { id: "pool-submit", label: "Pool: await submit loop + drain()" },
      { id: "lazy-pool-gen", label: `reference: the floor's ${W4_CONCURRENCY} workers pulling from the map rows' generator` },
      { id: "mini-map", label: `reference: minimal ordered map (a window of ${W4_CONCURRENCY} calls, a generator source, for await)` },
      { id: "pool-map", label: "Pool: for await of pool.map(generator, fn)" },
    ],
  },
  {
    id: "W5",
    title: `W5 overload: ${W5_MESSAGE_BYTES / 1024} KB messages as fast as possible into a 1 ms consumer for ${W5_DURATION_MS / 1000} s`,
    ops: 0,
    warmupOps: 0,
    floor: undefined,
    sluice: "pool-bounded",
    heap: true,
    timed: false,
    impls: [
      { id: "p-queue", label: "p-queue 9.3.5: un-awaited add, concurrency 1 (unbounded)" },
      { id: "pool-bounded", label: `Pool({ concurrency: 1, queue: ${W5_QUEUE} }): await submit` },
    ],
  },
  {
    id: "W6",
    title:
      `W6 burst after idle: W1 consumer first, warmed up; then the consumer waits through a full gc and ${W6_IDLE_MS} ms ` +
      `of quiet (a service's idle worker), then a burst of ${W6_BURST.toLocaleString("en")} messages, timed from its first message`,
    ops: W6_BURST,
    warmupOps: W1_MESSAGES / 10,
    floor: "floor",
    strictFloor: "floor-strict",
    sluice: "sluice",
    heap: false,
    timed: true,
    idle: true,
    orders: ["cf"],
    impls: [
      { id: "floor-strict", label: "strict floor" },
      { id: "floor", label: "floor (`Promise.resolve` fast paths)" },
      { id: "sluice", label: "sluice Channel (await recv loop)" },
      { id: "sluice-iter", label: "sluice Channel (for await)" },
      { id: "sluice-select", label: "sluice select loop" },
    ],
  },
  {
    id: "W7",
    title: `W7 pipeline: ${W7_ITEMS.toLocaleString("en")} numbers from an async generator through map -> filter -> batch(${W7_BATCH}) into a counting consumer`,
    ops: W7_ITEMS,
    warmupOps: W7_ITEMS / 10,
    floor: "loop",
    sluice: "sluice",
    heap: true,
    timed: true,
    impls: [
      { id: "loop", label: "floor: hand-written for await loop" },
      { id: "node-streams", label: "Node stream.pipeline, object-mode Transforms" },
      { id: "streaming-iterables", label: "streaming-iterables 8.0.1 (map, filter, batch)" },
      { id: "sluice", label: "sluice pipeline(source, map, filter, batch)" },
      { id: "sluice-sync", label: "sluice, the same from a sync generator" },
    ],
  },
  {
    id: "W7-map",
    title: `W7-map: ${W7_MAP_ITEMS.toLocaleString("en")} items through \`async (x) => x + 1\` under concurrency ${W7_CONCURRENCY}`,
    ops: W7_MAP_ITEMS,
    warmupOps: W7_MAP_ITEMS / 10,
    floor: "workers",
    sluice: "sluice-map",
    heap: true,
    timed: true,
    impls: [
      { id: "workers", label: `floor: ${W7_CONCURRENCY} workers pulling from one iterator` },
      { id: "workers-out", label: `reference: the floor's workers sending into a Channel(16) read by for await (hand-written)` },
      { id: "pump-workers-out", label: `reference: a pump into a Channel(16), ${W7_CONCURRENCY} workers, a Channel(16), for await (a pipeline's hops, hand-written)` },
      { id: "mini-window", label: `reference: a minimal ordered window of ${W7_CONCURRENCY} calls, a settle callback per slot, results recorded at the head (map + run()'s shape, hand-written)` },
      { id: "mini-window-iter", label: `reference: the same minimal window read by a minimal async iterator with for await (map + for await's shape, hand-written)` },
      { id: "sluice-map", label: `sluice map(fn, { concurrency: ${W7_CONCURRENCY} }) (ordered)` },
      { id: "sluice-map-unordered", label: `sluice map(fn, { concurrency: ${W7_CONCURRENCY}, ordered: false })` },
      { id: "sluice-map-run", label: `sluice map(fn, { concurrency: ${W7_CONCURRENCY} }), tap(record), run()` },
      { id: "sluice-map-run-unordered", label: `sluice map(fn, { concurrency: ${W7_CONCURRENCY}, ordered: false }), tap(record), run()` },
      { id: "sluice-map-run-only", label: `sluice map(fn, { concurrency: ${W7_CONCURRENCY} }) alone, run() (fn records its result)` },
    ],
  },
];

/** The workload with this id; throws for an unknown one. */
export function workload(id: string): WorkloadSpec {
  const w = WORKLOADS.find((x) => x.id === id);
  if (w === undefined) throw new Error(`unknown workload ${JSON.stringify(id)}; known: ${WORKLOADS.map((x) => x.id).join(", ")}`);
  return w;
}

/** What a child prints (one JSON line on stdout) for one measurement. */
export interface Measurement {
  readonly workload: string;
  readonly impl: string;
  /** The order of a channel workload ("cf", "pf"), or "" for the others. */
  readonly order: Order | "";
  /** Wall time of the measured pass in nanoseconds. */
  readonly ns: number;
  /** CPU time (user + system, all threads of the process) of the measured pass in nanoseconds. */
  readonly cpuNs: number;
  readonly ops: number;
  /** Peak `heapUsed` during the measured pass, in bytes. */
  readonly peakHeap: number;
  /** `heapUsed` right after the forced gc that precedes the last two warm-up passes, in bytes. */
  readonly baseHeap: number;
  /** Workload-specific counts (W5: produced, processed, pending, capped; W6: steadyNs, the same process's steady ns/op before it idled). */
  readonly extra: Readonly<Record<string, number>>;
}
