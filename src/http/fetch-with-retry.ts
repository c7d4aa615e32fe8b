/**
 * fetchWithRetry: the client side of admission control. A `fetch` that, when the server
 * answers `503` or `429` (it asked the client to wait), waits at least the server's
 * `Retry-After` (plus a little jitter, so refused clients do not return in a herd) and tries
 * again, through `retry` and, when given, a shared `RetryBudget`; so a sluice client never
 * hammers a sluice server that asked it to wait.
 *
 * Invariants:
 *  - At most `attempts` requests are sent, one at a time; between two, the wait is at least
 *    the previous answer's `Retry-After` (when it had one) and the `retry` backoff.
 *  - A `Retry-After` longer than `maxMs` is not waited out: the 503/429 response is returned
 *    at once, as it is when attempts or the budget run out.
 *  - The body of every response that is retried is cancelled (its connection is freed); the
 *    response that is returned is untouched.
 */
import { BusyError } from "../core/errors.js";
import { checkFunction, checkNumber, given } from "../core/validate.js";
import { defaultRetryIf, retry, type Jitter, type RetryEvent } from "../flow/retry.js";
import type { RetryBudgetLike } from "../flow/retry-budget.js";
import type { Clock } from "../core/clock.js";
import { parseRetryAfter } from "./retry-after.js";

/** Options of `fetchWithRetry`. */
export interface FetchWithRetryOptions {
  /** Requests sent in all, the first included (default 3). */
  attempts?: number;
  /** Backoff before the first retry when the server gave no `Retry-After`, in ms (default 100; doubles). */
  baseMs?: number;
  /** The longest wait, in ms (default 10 000): a longer `Retry-After` returns the response instead. */
  maxMs?: number;
  /** How backoffs are randomised (default "full", see `retry`). */
  jitter?: Jitter;
  /** Added on top of a `Retry-After`: up to this fraction of it (default 0.2). */
  retryAfterJitter?: number;
  /** The statuses that mean "wait and try again" (default `[429, 503]`). */
  retryOn?: readonly number[];
  /** A budget shared by many calls (e.g. every call to one service), limiting their retries together. */
  budget?: RetryBudgetLike;
  /** The `fetch` to use (default the global one). */
  fetch?: typeof fetch;
  /** Where backoffs are timed (default: the default clock). */
  clock?: Clock;
  /** Uniform numbers in [0, 1) for the jitters (default `Math.random`). */
  random?: () => number;
  /** Told before each wait: the error (a `BusyError` with `response` for a 503/429), the attempt, the wait. */
  onRetry?: (event: RetryEvent) => void;
}

/**
 * A 503/429 answer, as `retry` sees it: a `BusyError` with the server's hint (`retryAfterMs`,
 * jittered) and the response. `fetchWithRetry` never rejects with it (it returns the response);
 * `onRetry` sees it for every answer that is retried.
 *
 * @example
 * fetchWithRetry(url, undefined, { onRetry: ({ error }) => {
 *   if (error instanceof RetryableResponseError) metrics.retried(error.response.status);
 * } });
 */
export class RetryableResponseError extends BusyError {
  constructor(
    readonly response: Response,
    retryAfterMs: number | undefined,
  ) {
    super(`the server answered ${response.status}`, retryAfterMs === undefined ? undefined : { retryAfterMs });
  }
}

const IDEMPOTENT = new Set(["GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"]);

function methodOf(input: string | URL | Request, init: RequestInit | undefined): string {
  return (init?.method ?? (input instanceof Request ? input.method : "GET")).toUpperCase();
}

/**
 * `fetch(input, init)`, again after a `503`/`429` (the statuses of `retryOn`), honouring the
 * server's `Retry-After`: the wait before the next attempt is at least that many seconds (plus
 * up to `retryAfterJitter` of it), or a jittered exponential backoff when it gave none. Network
 * failures (`TypeError: fetch failed`) are retried too, for idempotent methods only (a POST that
 * failed in flight may have been processed; a 503/429 from an admission was not).
 *
 * Resolves with the first response that is not to be retried, or with the last 503/429 when
 * attempts, the budget, or `maxMs` (a longer `Retry-After`) say stop: like `fetch`, it never
 * rejects for an HTTP status. Rejects with the last network error, or with `init.signal`'s
 * reason when it aborts (during a request or a wait). What waits: only the backoff timer, one at
 * a time. A body given as a stream cannot be sent twice: such a request gets one attempt.
 *
 * @example
 * const budget = new RetryBudget({ ratio: 0.1 });
 * const res = await fetchWithRetry("http://inbox.local/tasks", { method: "POST", body }, { attempts: 5, budget });
 * if (res.status === 202) return res.json();
 */
export async function fetchWithRetry(
  input: string | URL | Request,
  init?: RequestInit,
  options?: FetchWithRetryOptions,
): Promise<Response> {
  const f = checkFunction(given(options?.fetch, globalThis.fetch), "options.fetch");
  const retryOn = given(options?.retryOn, [429, 503]);
  if (!Array.isArray(retryOn)) throw new TypeError("options.retryOn must be an array of status codes");
  const extra = checkNumber(given(options?.retryAfterJitter, 0.2), "options.retryAfterJitter");
  if (!(extra >= 0 && extra <= 10)) throw new RangeError(`options.retryAfterJitter must be a number in [0, 10], got ${extra}`);
  const random = checkFunction(given(options?.random, Math.random), "options.random");
  const streamed = init?.body instanceof ReadableStream;
  const idempotent = IDEMPOTENT.has(methodOf(input, init));
  const signal = init?.signal ?? undefined;
  const onRetry = options?.onRetry === undefined ? undefined : checkFunction(options.onRetry, "options.onRetry");
  try {
    return await retry(
      async (attemptSignal) => {
        const request = input instanceof Request ? input.clone() : input;
        const res = await f(request, signal === undefined ? init : { ...init, signal: attemptSignal });
        if (!retryOn.includes(res.status)) return res;
        const hint = parseRetryAfter(res.headers.get("retry-after"), Date.now());
        throw new RetryableResponseError(res, hint === undefined ? undefined : hint * (1 + extra * random()));
      },
      {
        attempts: streamed ? 1 : given(options?.attempts, 3),
        baseMs: options?.baseMs,
        maxMs: options?.maxMs,
        jitter: options?.jitter,
        budget: options?.budget,
        clock: options?.clock,
        random,
        signal,
        retryIf: (e, n) => (e instanceof RetryableResponseError ? true : idempotent && defaultRetryIf(e, n)),
        onRetry: (event) => {
          if (event.error instanceof RetryableResponseError) void event.error.response.body?.cancel().catch(() => {});
          onRetry?.(event);
        },
      },
    );
  } catch (e) {
    if (e instanceof RetryableResponseError) return e.response;
    throw e;
  }
}
