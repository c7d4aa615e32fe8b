/**
 * Test helpers for sluice/redis: a real Redis on 127.0.0.1:6379 (a clear failure when it is not
 * there: these tests never skip), unique key prefixes per test, and cleanup.
 */
import { Redis } from "ioredis";
import { randomBytes } from "node:crypto";

export const REDIS_HOST = process.env.REDIS_HOST ?? "127.0.0.1";
export const REDIS_PORT = Number(process.env.REDIS_PORT ?? 6379);

/** A connected client with the offline queue off (as sluice/redis requires). */
export async function connect(extra: Record<string, unknown> = {}): Promise<Redis> {
  const redis = new Redis({ host: REDIS_HOST, port: REDIS_PORT, enableOfflineQueue: false, lazyConnect: true, connectTimeout: 3000, ...extra });
  redis.on("error", () => {}); // connection errors surface through the commands
  try {
    await redis.connect();
  } catch (e) {
    redis.disconnect();
    throw new Error(`sluice/redis tests need a Redis server on ${REDIS_HOST}:${REDIS_PORT} (redis-server, or set REDIS_HOST/REDIS_PORT): ${String(e)}`);
  }
  return redis;
}

/** A unique key prefix: `sluice-test:<label>:<random>:`. */
export function prefix(label: string): string {
  return `sluice-test:${label}:${randomBytes(6).toString("hex")}:`;
}

/** Deletes every key under `prefix` (SCAN, bounded batches). */
export async function cleanup(redis: Redis, keyPrefix: string): Promise<void> {
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", `${keyPrefix}*`, "COUNT", 500);
    cursor = next;
    if (keys.length > 0) await redis.del(...keys);
  } while (cursor !== "0");
}

/** Resolves when `cond()` is true, checking after each `every` ms; rejects after `timeoutMs`. */
export async function until(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 15_000, every = 10): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, every));
  }
}

export interface Deferred<T = void> {
  promise: Promise<T>;
  resolve: (v: T) => void;
  reject: (e: unknown) => void;
}
export function deferred<T = void>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}
