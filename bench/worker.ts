/**
 * One measurement, in a fresh process: `node --expose-gc .bench-build/bench/worker.js <workload> <impl> [cf|pf]`
 * (the runner compiles it first, see `compiled.ts`; from source, `node --import tsx --expose-gc
 * bench/worker.ts ...` measures esbuild's output instead).
 *
 * Timed workloads: four warm-up passes of a tenth of the work each, a forced gc (the base heap is
 * read right after it), two more warm-up passes of a tenth, then three measured passes
 * (`SLUICE_BENCH_PASSES`), sampled for peak heap (the highest over all three); the fastest pass
 * is reported, its wall and CPU time. The machines are shared: another tenant's burst can only
 * add time to a pass, so the fastest of three in one process is the steadiest estimate of that
 * process's cost, and the spread between processes (JIT decisions, the core it ran on) stays in
 * the medians. The passes after the gc are there because a full gc that finds no live instance of
 * a class drops the optimized code that depended on that class's (weakly held) hidden classes
 * ("weak objects" in --trace-deopt): the pass right after it measures re-optimization. That is
 * what W6 measures on purpose: steady state first, then a consumer that starts and waits while
 * the process goes quiet (a full gc and a pause), then a burst timed from its first message, as
 * a service whose workers wait through a quiet period and get busy again.
 * Prints one JSON `Measurement` line on stdout. Any failed correctness check throws: the
 * process exits non-zero.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { collectAndMarkBase, forceGc, startSampling, stopSampling } from "./heap.js";
import { W6_IDLE_MS, workload, type Measurement, type Order } from "./workloads.js";

type Runner = (n: number, pause?: () => Promise<void>) => Promise<Record<string, number> | void>;

async function runnerFor(workloadId: string, impl: string, order: Order): Promise<Runner> {
  switch (workloadId) {
    case "W1":
    case "W1-fast":
    case "W2":
    case "W3":
    case "W6": {
      const { runChannelWorkload } = await import("./channels.js");
      const shape = workloadId === "W6" ? "W1" : workloadId;
      return (n, pause) => runChannelWorkload(shape, impl, n, order, pause);
    }
    case "W4":
    case "W4-pool": {
      const { runTaskWorkload } = await import("./tasks.js");
      return (n) => runTaskWorkload(impl, n);
    }
    case "W5": {
      const { runOverload } = await import("./overload.js");
      return () => runOverload(impl);
    }
    case "W7":
    case "W7-map": {
      const { runPipelineWorkload } = await import("./pipeline.js");
      return (n) => runPipelineWorkload(workloadId, impl, n);
    }
    default:
      throw new Error(`bench: no runner for ${workloadId}`);
  }
}

function emit(m: Measurement): void {
  process.stdout.write(`${JSON.stringify(m)}\n`);
}

/** Times one pass of `n` operations: wall and CPU nanoseconds, and what the run returned. */
async function timed(run: Runner, n: number): Promise<{ ns: number; cpuNs: number; extra: Record<string, number> }> {
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const extra = await run(n);
  const ns = Number(process.hrtime.bigint() - t0);
  const c = process.cpuUsage(c0);
  return { ns, cpuNs: (c.user + c.system) * 1000, extra: extra ?? {} };
}

async function main(): Promise<void> {
  const [workloadId, impl, orderArg = ""] = process.argv.slice(2);
  if (workloadId === undefined || impl === undefined) {
    throw new Error("usage: node --expose-gc .bench-build/bench/worker.js <workload> <impl> [cf|pf]");
  }
  const spec = workload(workloadId);
  if (spec.impls.find((i) => i.id === impl) === undefined) {
    throw new Error(`bench: ${workloadId} has no implementation ${JSON.stringify(impl)}; known: ${spec.impls.map((i) => i.id).join(", ")}`);
  }
  const orders = spec.orders ?? [];
  if (orders.length > 0 && !(orders as readonly string[]).includes(orderArg)) {
    throw new Error(`bench: ${workloadId} runs in the orders ${orders.join(", ")}; got ${JSON.stringify(orderArg)}`);
  }
  const order = (orders.length > 0 ? orderArg : "cf") as Order;
  // The metrics-overhead pairs run each pass longer, so that the exporter scrapes during it.
  const scale = Number(process.env.SLUICE_BENCH_OPS_SCALE ?? "1");
  if (!Number.isSafeInteger(scale) || scale < 1) throw new RangeError(`SLUICE_BENCH_OPS_SCALE must be a positive integer, got ${JSON.stringify(process.env.SLUICE_BENCH_OPS_SCALE)}`);
  const ops = spec.ops * scale;
  const passes = Number(process.env.SLUICE_BENCH_PASSES ?? "3");
  if (!Number.isSafeInteger(passes) || passes < 1) throw new RangeError(`SLUICE_BENCH_PASSES must be a positive integer, got ${JSON.stringify(process.env.SLUICE_BENCH_PASSES)}`);
  const run = await runnerFor(workloadId, impl, order);
  if (spec.timed) for (let i = 0; i < 4; i++) await run(spec.warmupOps);
  collectAndMarkBase();
  if (spec.timed) for (let i = 0; i < 2; i++) await run(spec.warmupOps);
  let steadyNs = 0;
  let m: { ns: number; cpuNs: number; extra: Record<string, number> };
  if (spec.idle === true) {
    steadyNs = (await timed(run, ops)).ns / ops;
    // The consumer starts and waits; the process goes quiet (a full gc, as V8 does when idle,
    // then a pause); then the producer's burst begins, and the clock with it.
    let t0 = 0n;
    let c0 = process.cpuUsage();
    startSampling();
    await run(ops, async () => {
      forceGc();
      await sleep(W6_IDLE_MS);
      c0 = process.cpuUsage();
      t0 = process.hrtime.bigint();
    });
    const ns = Number(process.hrtime.bigint() - t0);
    const c = process.cpuUsage(c0);
    m = { ns, cpuNs: (c.user + c.system) * 1000, extra: {} };
  } else {
    startSampling();
    m = await timed(run, ops);
    // W5 (not timed) runs once: its unbounded row leaves its backlog behind on purpose.
    for (let i = 1; spec.timed && i < passes; i++) {
      const next = await timed(run, ops);
      if (next.ns < m.ns) m = next;
    }
  }
  const { peak, base } = stopSampling();
  const extra = spec.idle === true ? { ...m.extra, steadyNs } : m.extra;
  emit({ workload: workloadId, impl, order: orders.length > 0 ? order : "", ns: m.ns, cpuNs: m.cpuNs, ops, peakHeap: peak, baseHeap: base, extra });
  // W5 leaves the unbounded queue's backlog behind on purpose: do not wait for it.
  if (!spec.timed) process.exit(0);
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
