/**
 * What `sluice/redis` requires of an `ioredis` client, and how it tells an outage from other
 * failures (internal).
 *
 * The client must run with its offline queue off (`enableOfflineQueue: false`): with it on,
 * ioredis buffers every command issued while the connection is down, in memory and without a
 * bound, and a Redis outage becomes a latent OOM in the producer, the very failure sluice
 * exists to prevent. With it off, a command issued while disconnected fails at once, and
 * sluice turns that into backpressure (`BusyError` in the sink, a retried read in the source).
 */
import type { Redis } from "ioredis";

/** The checked client. `TypeError` naming the option when the offline queue is on. */
export function checkRedisClient(redis: unknown, what: string): Redis {
  if (redis === null || typeof redis !== "object" || typeof (redis as { evalsha?: unknown }).evalsha !== "function") {
    throw new TypeError(`${what}: redis must be an ioredis client (new Redis({ enableOfflineQueue: false }))`);
  }
  const options = (redis as { options?: { enableOfflineQueue?: unknown } }).options;
  if (options?.enableOfflineQueue !== false) {
    throw new TypeError(
      `${what}: the ioredis client must be created with enableOfflineQueue: false (got ${String(options?.enableOfflineQueue)}); ` +
        "with the offline queue on, a Redis outage buffers every command in memory without bound",
    );
  }
  return redis as Redis;
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
