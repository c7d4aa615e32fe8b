/**
 * Overload test: two producer processes add as fast as they can, one consumer process works
 * slowly. The stream never holds more than maxLength entries (sampled on the server), the
 * producers are refused with BusyError, nothing is lost, and the memory of every process stays
 * flat (heapUsed after a GC, sampled over IPC): the overload is pushed back to the producers,
 * never buffered.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { once } from "node:events";
import { cleanup, connect, prefix, until } from "./helpers.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
const consumerFixture = fileURLToPath(new URL("./fixtures/consumer.ts", import.meta.url));
const producerFixture = fileURLToPath(new URL("./fixtures/producer.ts", import.meta.url));
const MAX_LENGTH = 200;
const TARGET = Number(process.env.SLUICE_REDIS_OVERLOAD_N ?? 1200);

interface MemSample {
  kind: "mem";
  who: string;
  heapUsed: number;
  busy?: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

test(`overload: producers faster than the consumer; XLEN <= ${MAX_LENGTH}, producers get BusyError, memory flat`, { timeout: 120_000 }, async () => {
  const redis = await connect();
  const keys = prefix("overload");
  const stream = `${keys}s`;
  const set = `${keys}done`;
  const children: ChildProcess[] = [];
  const exits: Promise<unknown>[] = [];
  const samples = new Map<string, number[]>();
  const busyOf = new Map<string, number>();
  const outputs = new Map<ChildProcess, string>();
  const spawnFixture = (file: string, cfg: object): ChildProcess => {
    const child = spawn(process.execPath, ["--expose-gc", "--import", "tsx", file, JSON.stringify(cfg)], { cwd: root, stdio: ["ignore", "pipe", "inherit", "ipc"] });
    outputs.set(child, "");
    child.stdout?.on("data", (d: Buffer) => outputs.set(child, (outputs.get(child) as string) + d.toString()));
    child.on("message", (m: MemSample) => {
      if (m.kind !== "mem") return;
      const list = samples.get(m.who) ?? [];
      if (list.length < 10_000) list.push(m.heapUsed);
      samples.set(m.who, list);
      if (m.busy !== undefined) busyOf.set(m.who, m.busy);
    });
    children.push(child);
    exits.push(once(child, "exit"));
    return child;
  };
  try {
    await redis.xgroup("CREATE", stream, "g", "0", "MKSTREAM");
    spawnFixture(consumerFixture, { stream, group: "g", consumer: "slow", set, dups: `${keys}dups`, concurrency: 4, queue: 4, claimIdleMs: 5000, workMs: 6, memEveryMs: 100 });
    spawnFixture(producerFixture, { stream, maxLength: MAX_LENGTH, name: "p1", inFlight: 4, memEveryMs: 150, retryAfterMs: 25 });
    spawnFixture(producerFixture, { stream, maxLength: MAX_LENGTH, name: "p2", inFlight: 4, memEveryMs: 150, retryAfterMs: 25 });
    let maxLen = 0;
    let lenSamples = 0;
    let consumedSoFar = 0;
    const t0 = performance.now();
    await until(async () => {
      const len = await redis.xlen(stream);
      maxLen = Math.max(maxLen, len);
      lenSamples++;
      consumedSoFar = await redis.scard(set);
      const sampled = samples.size === 3 && [...samples.values()].every((xs) => xs.length >= 15);
      // enough: TARGET consumed, or (on a machine too busy for that) 40 s and a fifth of it
      const enough = consumedSoFar >= TARGET || (performance.now() - t0 > 40_000 && consumedSoFar >= TARGET / 5);
      return sampled && enough;
    }, `${TARGET} entries consumed (or ${TARGET / 5} in 40 s) and 15 memory samples of each process`, 100_000, 20).catch((e: Error) => {
      const counts = [...samples].map(([who, xs]) => `${who}: ${xs.length}`).join(", ");
      throw new Error(`${e.message} (consumed ${consumedSoFar}; memory samples ${counts || "none"}; exits ${children.map((c) => c.exitCode).join("/")})`);
    });
    for (const child of children.slice(1)) child.kill("SIGTERM"); // producers first
    await Promise.all(exits.slice(1));
    await until(async () => (await redis.xlen(stream)) === 0, "the backlog consumed", 60_000, 20);
    (children[0] as ChildProcess).kill("SIGTERM");
    await exits[0];

    const produced = children.slice(1).map((c) => JSON.parse(outputs.get(c) as string) as { added: number; busy: number });
    const added = produced.reduce((a, p) => a + p.added, 0);
    const consumed = await redis.scard(set);
    const report = [...samples].map(([who, xs]) => `${who}: ${xs.length} samples, heap ${(median(xs.slice(0, Math.ceil(xs.length / 3))) / 1e6).toFixed(1)} -> ${(median(xs.slice(-Math.ceil(xs.length / 3))) / 1e6).toFixed(1)} MB`);
    process.stdout.write(`# overload: maxLen=${maxLen} over ${lenSamples} samples, added=${added}, consumed=${consumed}, busy=${produced.map((p) => p.busy).join("/")}; ${report.join("; ")}\n`);

    assert.ok(maxLen <= MAX_LENGTH, `XLEN reached ${maxLen} > maxLength ${MAX_LENGTH}`);
    assert.ok(maxLen >= MAX_LENGTH * 0.8, `the stream did fill up (max ${maxLen}): the producers were faster`);
    for (const p of produced) assert.ok(p.busy > 0, "each producer was refused with BusyError");
    assert.equal(consumed, added, "every entry added was consumed: nothing lost, nothing trimmed");
    for (const [who, xs] of samples) {
      assert.ok(xs.length >= 9, `${who}: enough memory samples (${xs.length})`);
      const third = Math.ceil(xs.length / 3);
      const early = median(xs.slice(1, third + 1));
      const late = median(xs.slice(-third));
      assert.ok(late <= early * 1.25 + 3e6, `${who}: heap grew from ${(early / 1e6).toFixed(1)} MB to ${(late / 1e6).toFixed(1)} MB`);
    }
  } finally {
    for (const child of children) if (child.exitCode === null) child.kill("SIGKILL");
    await Promise.all(exits);
    await cleanup(redis, keys);
    redis.disconnect();
  }
});
