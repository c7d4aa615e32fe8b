/**
 * A Redis crash and restart, on a private redis-server (its own port and data directory, AOF
 * with fsync on every write), so the shared server on 6379 is never touched. While the server
 * is down the sink refuses with BusyError at once (nothing buffered) and the source retries;
 * after the restart the source goes on and every entry is handled: none lost.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { Pool } from "../../src/flow/index.js";
import { consumeRedisStream, RedisStreamSink, BusyError } from "../../src/redis/index.js";
import { until } from "./helpers.js";

function startServer(port: number, dir: string): ChildProcess {
  return spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes", "--appendfsync", "always", "--dir", dir], { stdio: "ignore" });
}

async function ping(port: number): Promise<boolean> {
  const probe = new Redis({ port, host: "127.0.0.1", lazyConnect: true, enableOfflineQueue: false, retryStrategy: () => null });
  probe.on("error", () => {});
  try {
    await probe.connect();
    return (await probe.ping()) === "PONG";
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}

test("Redis crashes and restarts: the sink refuses during the outage, the source resumes, nothing is lost", { timeout: 90_000 }, async () => {
  const probe = spawnSync("redis-server", ["--version"], { encoding: "utf8" });
  assert.ok(probe.error === undefined && probe.status === 0, `this test starts its own redis-server (the binary of the Redis on 127.0.0.1:6379; apt install redis-server): ${String(probe.error ?? probe.stderr)}`);
  const dir = mkdtempSync(join(tmpdir(), "sluice-redis-restart-"));
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  let server = startServer(port, dir);
  const clients: Redis[] = [];
  const ac = new AbortController();
  let run: Promise<unknown> | undefined;
  try {
    await until(() => ping(port), `the private redis-server on port ${port}`, 15_000, 50);
    const client = (): Redis => {
      const c = new Redis({ port, host: "127.0.0.1", enableOfflineQueue: false, commandTimeout: 3000, retryStrategy: () => 50 });
      c.on("error", () => {});
      clients.push(c);
      return c;
    };
    const producer = client();
    const consumer = client();
    let reconnects = 0;
    consumer.on("reconnecting", () => void reconnects++);
    await until(() => producer.status === "ready" && consumer.status === "ready", "clients ready");
    const N = 300;
    const sink = new RedisStreamSink(producer, { stream: "jobs", maxLength: 1000 });
    for (let i = 0; i < N; i++) await sink.add({ n: String(i) });

    const seen = new Map<string, number>();
    run = consumeRedisStream(consumer, {
      stream: "jobs", group: "g", consumer: "c1", pool: new Pool({ concurrency: 4, queue: 4 }), signal: ac.signal,
      blockMs: 100, claimIdleMs: 500,
      onError: () => {},
      handler: async (entry) => {
        await new Promise((r) => setTimeout(r, 2));
        seen.set(entry.fields.n as string, (seen.get(entry.fields.n as string) ?? 0) + 1);
      },
    });
    await until(() => seen.size >= 100, "100 handled before the crash");

    server.kill("SIGKILL");
    await once(server, "exit");
    await until(() => producer.status !== "ready", "the producer noticed the outage");
    const refused = await sink.add({ n: "during-outage" }).then(() => null, (e: unknown) => e);
    assert.ok(refused instanceof BusyError, `an add during the outage: BusyError, got ${String(refused)}`);
    assert.equal(sink.stats.inFlight, 0, "nothing held in the sink");
    const seenAtCrash = seen.size;

    server = startServer(port, dir);
    await until(() => ping(port), "the restarted redis-server", 15_000, 50);
    await until(() => seen.size === N, `all ${N} handled after the restart (had ${seenAtCrash} at the crash)`, 60_000, 20);
    await until(async () => (await producer.xlen("jobs")) === 0, "the stream emptied", 30_000, 20);
    ac.abort();
    const stats = (await run) as { completed: number; errors: number; ackErrors: number };
    for (let i = 0; i < N; i++) assert.ok(seen.has(String(i)), `entry ${i} handled`);
    const duplicates = [...seen.values()].reduce((a, b) => a + b - 1, 0);
    process.stdout.write(`# restart: handled ${seenAtCrash} before the crash; after: ${N} of ${N}, duplicates ${duplicates}, source errors ${stats.errors}, ack errors ${stats.ackErrors}\n`);
    assert.ok(reconnects > 0, "the consumer's connection went down and came back");
    assert.ok(duplicates <= 8 + stats.ackErrors, `duplicates ${duplicates}: at most what was in flight (8) or not acked`);
    const [pending] = (await producer.xpending("jobs", "g")) as [number];
    assert.equal(pending, 0);
  } finally {
    ac.abort();
    await run?.catch(() => {});
    for (const c of clients) c.disconnect();
    if (server.exitCode === null && server.signalCode === null) {
      server.kill("SIGKILL");
      await once(server, "exit");
    }
    rmSync(dir, { recursive: true, force: true });
  }
});

test("Redis restarts without its data: the source recreates its group and consumes what is added afterwards", { timeout: 90_000 }, async () => {
  const probe = spawnSync("redis-server", ["--version"], { encoding: "utf8" });
  assert.ok(probe.error === undefined && probe.status === 0, `this test starts its own redis-server: ${String(probe.error ?? probe.stderr)}`);
  const dirs = [mkdtempSync(join(tmpdir(), "sluice-redis-restart-")), mkdtempSync(join(tmpdir(), "sluice-redis-restart-"))];
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  let server = startServer(port, dirs[0] as string);
  const clients: Redis[] = [];
  const ac = new AbortController();
  let run: Promise<unknown> | undefined;
  try {
    await until(() => ping(port), `the private redis-server on port ${port}`, 15_000, 50);
    const client = (): Redis => {
      const c = new Redis({ port, host: "127.0.0.1", enableOfflineQueue: false, commandTimeout: 3000, retryStrategy: () => 50 });
      c.on("error", () => {});
      clients.push(c);
      return c;
    };
    const producer = client();
    const consumer = client();
    await until(() => producer.status === "ready" && consumer.status === "ready", "clients ready");
    const sink = new RedisStreamSink(producer, { stream: "jobs", maxLength: 100 });
    const seen = new Set<string>();
    run = consumeRedisStream(consumer, {
      stream: "jobs", group: "g", consumer: "c1", pool: new Pool({ concurrency: 2 }), signal: ac.signal,
      blockMs: 100, claimIdleMs: 500, onError: () => {},
      handler: (entry) => void seen.add(entry.fields.n as string),
    });
    for (let i = 0; i < 10; i++) await sink.add({ n: `before-${i}` });
    await until(() => seen.size === 10, "the first 10 handled");

    server.kill("SIGKILL");
    await once(server, "exit");
    server = startServer(port, dirs[1] as string); // an empty data directory: stream and group gone
    await until(() => ping(port), "the restarted redis-server", 15_000, 50);
    await until(() => producer.status === "ready", "the producer reconnected", 15_000, 20);
    for (let i = 0; i < 10; i++) {
      for (;;) {
        try {
          await sink.add({ n: `after-${i}` });
          break;
        } catch (e) {
          if (!(e instanceof BusyError)) throw e;
          await new Promise((r) => setTimeout(r, 20));
        }
      }
    }
    await until(() => seen.size === 20, "the 10 added after the restart handled", 30_000, 20);
    ac.abort();
    const stats = (await run) as { errors: number };
    assert.ok(stats.errors > 0, "the source met the missing group (NOGROUP) and recreated it");
    assert.equal(await producer.xlen("jobs"), 0);
  } finally {
    ac.abort();
    await run?.catch(() => {});
    for (const c of clients) c.disconnect();
    if (server.exitCode === null && server.signalCode === null) {
      server.kill("SIGKILL");
      await once(server, "exit");
    }
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
});
