/**
 * `sluice/flow`: backpressure tools built on the core. A bounded `Pool` with block / try /
 * deadline admission and overflow policies, watermarks, rate limits, adaptive concurrency,
 * retries with budgets, and circuit breaking. Everything here counts what it does and takes
 * `{ signal }` wherever it can wait.
 */
export { BusyError } from "../core/errors.js";
export { DroppedError, BreakerOpenError, PoolClosedError } from "./errors.js";
export { Pool } from "./pool.js";
export type { PoolOptions, PoolStats, Task, Overflow, DynamicConcurrency } from "./pool.js";
export type { MapOptions } from "./pool-map.js";
export type { SummarySnapshot } from "./summary.js";
export type { ConcurrencyLimit, LimitSample } from "./concurrency-limit.js";
export { AdaptiveLimit } from "./adaptive-limit.js";
export type { AdaptiveLimitOptions, AimdLimitOptions, Gradient2LimitOptions, AdaptiveLimitCommonOptions, AdaptiveLimitStats } from "./adaptive-limit.js";
export type { AimdOptions } from "./aimd.js";
export type { Gradient2Options } from "./gradient2.js";
export { RateLimiter } from "./rate-limiter.js";
export type { RateLimiterOptions, RateLimiterStats, Reservation, ReserveOptions, RateWaitOptions } from "./rate-limiter.js";
export { KeyedRateLimiter } from "./keyed-rate-limiter.js";
export type { KeyedRateLimiterOptions, KeyedRateLimiterStats } from "./keyed-rate-limiter.js";
export { retry, defaultRetryIf } from "./retry.js";
export type { RetryOptions, RetryEvent, Jitter } from "./retry.js";
export { RetryBudget } from "./retry-budget.js";
export type { RetryBudgetOptions, RetryBudgetStats, RetryBudgetLike } from "./retry-budget.js";
export { CircuitBreaker } from "./circuit-breaker.js";
export type { CircuitBreakerOptions, BreakerStats, BreakerState, BreakerWindow, BreakerStateChange } from "./circuit-breaker.js";
