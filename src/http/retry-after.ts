/**
 * Retry-After values (internal): whole seconds, at least 1, jittered upward so that clients
 * refused together do not come back together.
 *
 * Invariants:
 *  - Every value returned is a safe integer in [1, MAX_RETRY_AFTER_S].
 *  - Jitter only adds: a refused client is never told to come back earlier than the base.
 */

/** The longest Retry-After sent: a day (a longer hint is as good as "do not retry"). */
export const MAX_RETRY_AFTER_S = 86_400;

function clamp(seconds: number): number {
  if (!(seconds >= 1)) return 1; // NaN, negative, below 1
  return Math.min(MAX_RETRY_AFTER_S, Math.ceil(seconds));
}

/**
 * `base` seconds (rounded up, at least 1) plus a whole number drawn uniformly from
 * `[0, spread]`, where `spread = max(1, round(base * jitter))` when `jitter > 0` (0 otherwise).
 * With the defaults (jitter 0.5) a base of 1 s gives 1 or 2 s, 10 s gives 10 to 15 s.
 */
export function jitteredSeconds(base: number, jitter: number, random: () => number): number {
  const b = clamp(base);
  if (jitter === 0) return b;
  const spread = Math.max(1, Math.round(b * jitter));
  const r = random();
  const extra = r >= 0 && r < 1 ? Math.floor(r * (spread + 1)) : 0;
  return clamp(b + extra);
}

/** A rate limiter's delay in ms as Retry-After seconds: rounded up (never early), at least 1. */
export function secondsFromDelay(delayMs: number): number {
  return clamp(delayMs / 1000);
}

/**
 * Parses a `Retry-After` header value (delta-seconds or an HTTP-date, RFC 9110 10.2.3) into
 * milliseconds from `now`; undefined when absent or unparseable. A date in the past gives 0.
 */
export function parseRetryAfter(value: string | null | undefined, now: number): number | undefined {
  if (value === null || value === undefined) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  if (!/^[A-Za-z]{3}/.test(v)) return undefined; // an HTTP-date starts with a day name
  const date = Date.parse(v);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}
