/**
 * What `sluice/redis` requires of an `ioredis` client, and how it tells an outage from other
 * failures (internal).
 *
 * With ioredis's offline queue on (its default), every command issued while the connection is
 * down is buffered in memory without a bound, and a Redis outage becomes a latent OOM in the
 * producer, the very failure sluice exists to prevent. So sluice sends a command only while the
 * connection is ready (`whenReady`); with `enableOfflineQueue: false` ioredis does the same by
 * itself. Either way a command issued while disconnected fails at once, and sluice turns that
 * into backpressure (`BusyError` in the sink, a retried read in the source).
 */
import type { Redis } from "ioredis";

/**
 * The checked client. A client with its offline queue on (ioredis's default) is accepted too:
 * sluice then never lets it buffer, by sending each command only while the connection is
 * `ready` (see `whenReady`), so an outage is still an error at once, not a growing queue.
 */
export function checkRedisClient(redis: unknown, what: string): Redis {
  if (redis === null || typeof redis !== "object" || typeof (redis as { evalsha?: unknown }).evalsha !== "function") {
    throw new TypeError(`${what}: redis must be an ioredis client (new Redis({ enableOfflineQueue: false }))`);
  }
  return redis as Redis;
}

/** Whether ioredis would queue a command of `redis` in memory instead of failing it while disconnected. */
function buffers(redis: Redis): boolean {
  return (redis as { options?: { enableOfflineQueue?: unknown } }).options?.enableOfflineQueue !== false;
}

/**
 * Resolves when a command may be sent without entering ioredis's offline queue; rejects with
 * an outage error (see `isOutage`) when the connection is down. A client that has not
 * connected yet (`lazyConnect`) is connected first; one that is connecting is waited for, at most
 * 2 s. Free for a client with the queue off.
 */
export async function whenReady(redis: Redis): Promise<void> {
  if (!buffers(redis) || redis.status === "ready") return;
  if (redis.status === "wait") await redis.connect().catch(() => {});
  else if (redis.status === "connecting" || redis.status === "connect") await readyWithin(redis, CONNECTING_WAIT_MS);
  if ((redis.status as string) === "ready") return;
  throw new Error(`Connection is closed (${redis.status}): sluice does not let the client's offline queue buffer commands`);
}

/** How long a command waits for a connection that is being made (a fresh client, a reconnect under way). */
const CONNECTING_WAIT_MS = 2000;

/** One wait per client, however many commands wait on it (so no listener pile-up). */
const waits = new WeakMap<Redis, Promise<void>>();

/** Resolves when `redis` is ready, or after `ms` (whichever comes first); never rejects. */
function readyWithin(redis: Redis, ms: number): Promise<void> {
  let wait = waits.get(redis);
  if (wait === undefined) {
    wait = newWait(redis, ms).finally(() => waits.delete(redis));
    waits.set(redis, wait);
  }
  return wait;
}

function newWait(redis: Redis, ms: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      redis.off("ready", done);
      redis.off("end", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    redis.once("ready", done);
    redis.once("end", done);
  });
}

const OUTAGE_MESSAGES = ["Stream isn't writeable", "Connection is closed", "Command timed out", "connect ECONNREFUSED", "read ECONNRESET", "LOADING"];

/**
 * Whether `e` says Redis could not be reached or did not answer in time (the connection is
 * down, closed, reset, the command timed out, the server is loading its data after a restart),
 * as opposed to a reply error about the command itself.
 */
export function isOutage(e: unknown): boolean {
  if (!(e instanceof Error)) return false;
  const code = (e as { code?: unknown }).code;
  if (code === "ECONNREFUSED" || code === "ECONNRESET" || code === "EPIPE" || code === "ETIMEDOUT") return true;
  return OUTAGE_MESSAGES.some((m) => e.message.startsWith(m) || e.message.includes(m));
}
