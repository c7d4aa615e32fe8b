/**
 * `sluice/redis`: Redis Streams as a work queue with backpressure across the broker.
 * `consumeRedisStream` reads a consumer group into a `Pool`, never more entries than the pool
 * has room for, and removes an entry only once its handler is done; `RedisStreamSink` adds
 * entries only while the stream is under its `maxLength`, refusing with `BusyError` (never
 * trimming). Both take an `ioredis` client created with `enableOfflineQueue: false`.
 */
export { consumeRedisStream } from "./redis-stream-source.js";
export type { ConsumeRedisStreamOptions, RedisStreamEntry, RedisStreamSourceStats } from "./redis-stream-source.js";
export { RedisStreamSink } from "./redis-stream-sink.js";
export type { RedisStreamSinkOptions, RedisStreamSinkStats, RedisFieldValue } from "./redis-stream-sink.js";
export { BusyError } from "../core/errors.js";
