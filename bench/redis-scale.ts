/**
 * Scale of the Redis Streams source: throughput with 1, 2 and 4 consumer processes draining
 * the same stream (one group), each a `consumeRedisStream` with a Pool of concurrency 16 and a
 * queue of 16, whose handler records the entry in a Redis set (one script call) after `workMs`
 * of simulated I/O. The consumers start first; the clock runs from the first XADD to the last
 * entry recorded. Reports entries per second and where the CPU went (the consumers' own CPU
 * time from their first entry on, and the Redis server's, which also did the adds, per entry),
 * from one run per size.
 *
 * Usage: node --import tsx bench/redis-scale.ts [--n 20000] [--work-ms 0] [--sizes 1,2,4]
 * Needs Redis on 127.0.0.1:6379. The machine's cores bound what more processes can show.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { randomBytes } from "node:crypto";
import os from "node:os";
import { Redis } from "ioredis";

const { values } = parseArgs({ options: { n: { type: "string", default: "20000" }, "work-ms": { type: "string", default: "0" }, sizes: { type: "string", default: "1,2,4" } } });
const N = Number(values.n);
const WORK_MS = Number(values["work-ms"]);
const SIZES = (values.sizes as string).split(",").map(Number);
const ROOT = fileURLToPath(new URL("..", import.meta.url));
const CONSUMER = fileURLToPath(new URL("../test/redis/fixtures/consumer.ts", import.meta.url));

const redis = new Redis({ enableOfflineQueue: false });
await once(redis, "ready");

async function redisCpuMs(): Promise<number> {
  const info = await redis.info("cpu");
  const get = (k: string): number => Number(new RegExp(`${k}:([0-9.]+)`).exec(info)?.[1] ?? 0);
  return (get("used_cpu_user") + get("used_cpu_sys")) * 1000;
}

/** Calls so far of each command (INFO commandstats; read only, never reset). */
async function calls(): Promise<Record<string, number>> {
  const info = await redis.info("commandstats");
  const out: Record<string, number> = {};
  for (const m of info.matchAll(/cmdstat_([a-z|]+):calls=(\d+)/g)) out[m[1] as string] = Number(m[2]);
  return out;
}

async function measure(k: number): Promise<{ k: number; perSec: number; consumerCpuUsPerEntry: number; redisCpuUsPerEntry: number; wallMs: number; readsPerEntry: number; scriptsPerEntry: number }> {
  const p = `sluice-bench:scale:${randomBytes(4).toString("hex")}:`;
  const stream = `${p}s`;
  const set = `${p}done`;
  await redis.xgroup("CREATE", stream, "g", "0", "MKSTREAM");
  const children = Array.from({ length: k }, (_, i) => {
    const cfg = { stream, group: "g", consumer: `c${i}`, set, dups: `${p}dups`, concurrency: 16, queue: 16, claimIdleMs: 30_000, workMs: WORK_MS };
    const child = spawn(process.execPath, ["--import", "tsx", CONSUMER, JSON.stringify(cfg)], { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    return { child, exit: once(child, "exit"), output: () => out };
  });
  // every consumer started and reading (a consumer joins the group at its first read), so
  // process start-up is not measured; then the entries are added while they consume
  while (((await redis.xinfo("CONSUMERS", stream, "g")) as unknown[]).length < k) await new Promise((r) => setTimeout(r, 10));
  const calls0 = await calls();
  const t0 = performance.now();
  const cpu0 = await redisCpuMs();
  for (let i = 0; i < N; i += 1000) {
    const pipe = redis.pipeline();
    for (let j = i; j < Math.min(N, i + 1000); j++) pipe.xadd(stream, "*", "n", String(j));
    await pipe.exec();
  }
  while ((await redis.scard(set)) < N) await new Promise((r) => setTimeout(r, 5));
  const wallMs = performance.now() - t0;
  const cpu1 = await redisCpuMs();
  const calls1 = await calls();
  const per = (cmd: string): number => Math.round((((calls1[cmd] ?? 0) - (calls0[cmd] ?? 0)) / N) * 100) / 100;
  for (const c of children) c.child.kill("SIGTERM");
  await Promise.all(children.map((c) => c.exit));
  const consumerCpuMs = children.reduce((a, c) => a + (JSON.parse(c.output()) as { cpuMs: number }).cpuMs, 0);
  await redis.del(stream, set, `${p}dups`);
  return { k, perSec: Math.round((N / wallMs) * 1000), consumerCpuUsPerEntry: Math.round((consumerCpuMs * 1000) / N), redisCpuUsPerEntry: Math.round(((cpu1 - cpu0) * 1000) / N), wallMs: Math.round(wallMs), readsPerEntry: per("xreadgroup"), scriptsPerEntry: per("evalsha") + per("eval") };
}

process.stdout.write(`redis-scale: N=${N}, workMs=${WORK_MS}, ${os.cpus().length} cores, load ${os.loadavg()[0]?.toFixed(1)}\n`);
const rows = [];
for (const k of SIZES) {
  const r = await measure(k);
  rows.push(r);
  process.stdout.write(`${k} consumer process(es): ${r.perSec} entries/s (${r.wallMs} ms); CPU per entry: consumers ${r.consumerCpuUsPerEntry} us (from their first entry on), redis ${r.redisCpuUsPerEntry} us; per entry ${r.readsPerEntry} XREADGROUP, ${r.scriptsPerEntry} scripts\n`);
}
const base = rows[0]?.perSec ?? 1;
process.stdout.write(`scaling vs 1: ${rows.map((r) => `${r.k}: ${(r.perSec / base).toFixed(2)}x`).join(", ")}\n`);
process.stdout.write(`${JSON.stringify(rows)}\n`);
redis.disconnect();
