/**
 * Crash test: N entries in a stream, consumer processes (concurrency 16) that record each
 * processed entry idempotently in a Redis set, SIGKILLed at random moments mid-work and
 * restarted (half the time under the same name, which recovers its own pending entries; half
 * under a new name, so the live consumers claim the dead one's entries). At the end: nothing
 * lost, no more duplicates than the entries in flight at the kills, counted on the server, and
 * the dead consumers' names pruned from the group.
 *
 * Size: SLUICE_REDIS_CRASH_N (default 5000 here; `npm run test:crash:redis` runs 100 000).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { once } from "node:events";
import { RedisStreamSink } from "../../src/redis/index.js";
import { cleanup, connect, prefix, until } from "./helpers.js";

const N = Number(process.env.SLUICE_REDIS_CRASH_N ?? 5000);
const KILLS = Number(process.env.SLUICE_REDIS_CRASH_KILLS ?? (N >= 50_000 ? 10 : 6));
const CONCURRENCY = 16;
const CLAIM_IDLE_MS = 2000;
const root = fileURLToPath(new URL("../..", import.meta.url));
const fixture = fileURLToPath(new URL("./fixtures/consumer.ts", import.meta.url));

test(`crash: ${N} entries, consumers SIGKILLed ${KILLS} times mid-work: 0 lost, duplicates <= in flight at the kills`, { timeout: Math.max(120_000, N * 6) }, async () => {
  const redis = await connect();
  const keys = prefix("crash");
  const stream = `${keys}s`;
  const group = "g";
  const set = `${keys}done`;
  const dups = `${keys}dups`;
  const children = new Map<string, ChildProcess>();
  const exits = new Map<string, Promise<unknown>>();
  const start = (consumer: string): void => {
    const cfg = { stream, group, consumer, set, dups, concurrency: CONCURRENCY, claimIdleMs: CLAIM_IDLE_MS, workMs: 2 };
    const child = spawn(process.execPath, ["--import", "tsx", fixture, JSON.stringify(cfg)], { cwd: root, stdio: ["ignore", "pipe", "inherit"] });
    children.set(consumer, child);
    exits.set(consumer, once(child, "exit"));
  };
  const heldBy = async (consumer: string): Promise<number> => {
    const [, , , consumers] = (await redis.xpending(stream, group)) as [number, unknown, unknown, [string, string][] | null];
    return Number((consumers ?? []).find(([name]) => name === consumer)?.[1] ?? 0);
  };
  try {
    await redis.xgroup("CREATE", stream, group, "0", "MKSTREAM");
    const sink = new RedisStreamSink(redis, { stream, maxLength: N });
    for (let i = 0; i < N; i += 500) {
      await Promise.all(Array.from({ length: Math.min(500, N - i) }, (_, j) => sink.add({ n: String(i + j) })));
    }
    assert.equal(await redis.xlen(stream), N);

    let generation = 0;
    start("c0");
    start("c1");
    const inFlightAtKills: number[] = [];
    for (let kill = 0; kill < KILLS; kill++) {
      // a random moment, after some progress since the last kill (so every kill lands mid-work)
      const before = await redis.scard(set);
      const step = Math.max(50, Math.floor(N / (KILLS * 3)));
      await until(async () => (await redis.scard(set)) >= Math.min(Math.floor(N / 2), before + Math.floor(Math.random() * step) + 20), "progress before a kill", 60_000, 5);
      const names = [...children.keys()];
      const victim = names[Math.floor(Math.random() * names.length)] as string;
      const child = children.get(victim) as ChildProcess;
      // mid-work: the victim holds entries (delivered to it, not done) when the kill is sent
      await until(async () => (await heldBy(victim)) > 0, `consumer ${victim} at work`, 60_000, 1);
      child.kill("SIGKILL");
      await exits.get(victim);
      children.delete(victim);
      // what the dead consumer held: delivered to it, not acknowledged (its connection is gone)
      const held = await heldBy(victim);
      assert.ok(held <= CONCURRENCY, `consumer ${victim} held ${held} entries at its kill; its pool has room for ${CONCURRENCY}`);
      inFlightAtKills.push(held);
      start(kill % 2 === 0 ? victim : `n${++generation}`);
    }
    await until(async () => (await redis.scard(set)) === N, `all ${N} recorded`, Math.max(60_000, N * 3), 50);
    // the dead consumers' names are pruned from the group: it lists only live ones (a live one
    // that never received an entry is not listed at all: Redis creates a consumer at its first)
    const live = new Set(children.keys());
    await until(
      async () => ((await redis.xinfo("CONSUMERS", stream, group)) as string[][]).every((c) => live.has(c[c.indexOf("name") + 1] as string)),
      `the group listing only live consumers (${[...live].join(", ")})`,
      6 * CLAIM_IDLE_MS,
      50,
    );
    for (const [name, child] of children) {
      child.kill("SIGTERM");
      const [code] = (await exits.get(name)) as [number | null];
      assert.equal(code, 0, `consumer ${name} stopped cleanly`);
    }
    children.clear();
    const duplicates = Number((await redis.get(dups)) ?? 0);
    const bound = inFlightAtKills.reduce((a, b) => a + b, 0);
    const [pendingTotal] = (await redis.xpending(stream, group)) as [number];
    process.stdout.write(`# crash: N=${N} kills=${KILLS} in flight at kills=${JSON.stringify(inFlightAtKills)} duplicates=${duplicates} (bound ${bound})\n`);
    assert.equal(await redis.scard(set), N, "0 lost");
    assert.ok(duplicates <= bound, `duplicates ${duplicates} <= in flight at the kills ${bound}`);
    assert.equal(await redis.xlen(stream), 0, "every entry removed once done");
    assert.equal(pendingTotal, 0, "nothing left pending");
  } finally {
    for (const child of children.values()) child.kill("SIGKILL");
    await Promise.all([...exits.values()]);
    await cleanup(redis, keys);
    redis.disconnect();
  }
});
