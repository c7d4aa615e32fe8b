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
