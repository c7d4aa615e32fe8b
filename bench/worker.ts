/**
 * One measurement, in a fresh process: `node --import tsx --expose-gc bench/worker.ts <workload> <impl>`.
 *
 * Timed workloads: four warm-up passes of a tenth of the work each, a forced gc (the base heap is
 * read right after it), two more warm-up passes of a tenth, then the measured pass, sampled for
 * peak heap. The passes after the gc are needed: a full gc that finds no live instance of a class
 * drops the optimized code that depended on that class's (weakly held) hidden classes ("weak
 * objects" in --trace-deopt), and the pass right after it measures re-optimization instead of
 * steady state (sluice's W2 ran 1.5x slower that way, the floor 1.1x). Prints one JSON
 * `Measurement` line on stdout. Any failed correctness check throws: the process exits non-zero.
 */
import { collectAndMarkBase, startSampling, stopSampling } from "./heap.js";
import { poolAvailable, POOL_MISSING } from "./pool-api.js";
import { workload, type Measurement } from "./workloads.js";

type Runner = (n: number) => Promise<Record<string, number> | void>;

async function runnerFor(workloadId: string, impl: string): Promise<Runner> {
  switch (workloadId) {
    case "W1":
    case "W1-fast":
    case "W2":
    case "W3": {
      const { runChannelWorkload } = await import("./channels.js");
      return (n) => runChannelWorkload(workloadId, impl, n);
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
    default:
      throw new Error(`bench: no runner for ${workloadId}`);
  }
}

function emit(m: Measurement): void {
  process.stdout.write(`${JSON.stringify(m)}\n`);
}

async function main(): Promise<void> {
  const [workloadId, impl] = process.argv.slice(2);
  if (workloadId === undefined || impl === undefined) {
    throw new Error("usage: node --import tsx --expose-gc bench/worker.ts <workload> <impl>");
  }
  const spec = workload(workloadId);
  const implSpec = spec.impls.find((i) => i.id === impl);
  if (implSpec === undefined) {
    throw new Error(`bench: ${workloadId} has no implementation ${JSON.stringify(impl)}; known: ${spec.impls.map((i) => i.id).join(", ")}`);
  }
  if (implSpec.needsPool === true && !poolAvailable()) {
    emit({ workload: workloadId, impl, skipped: POOL_MISSING, ns: 0, cpuNs: 0, ops: 0, peakHeap: 0, baseHeap: 0, extra: {} });
    return;
  }
  const run = await runnerFor(workloadId, impl);
  if (spec.timed) for (let i = 0; i < 4; i++) await run(spec.warmupOps);
  collectAndMarkBase();
  if (spec.timed) for (let i = 0; i < 2; i++) await run(spec.warmupOps);
  startSampling();
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const extra = await run(spec.ops);
  const ns = Number(process.hrtime.bigint() - t0);
  const c = process.cpuUsage(c0);
  const { peak, base } = stopSampling();
  const cpuNs = (c.user + c.system) * 1000;
  emit({ workload: workloadId, impl, ns, cpuNs, ops: spec.ops, peakHeap: peak, baseHeap: base, extra: extra ?? {} });
  // W5 leaves the unbounded queue's backlog behind on purpose: do not wait for it.
  if (!spec.timed) process.exit(0);
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
