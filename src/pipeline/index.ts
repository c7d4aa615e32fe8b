/**
 * `sluice/pipeline`: stages joined by bounded channels (`pipeline`, `map`, `filter`, `flatMap`,
 * `batch`, `tap`, `rateLimit`), fan-in and fan-out (`merge`, `fanOut`, `partition`), pub/sub
 * with a policy per subscriber (`Broadcast`), and Node / web stream adapters. Every link is
 * bounded, so backpressure holds from the last consumer to the source.
 */
export { pipeline, Pipeline } from "./pipeline.js";
export type { PipelineOptions, PipelineStats, RunOptions, StageLike } from "./pipeline.js";
export { Stage } from "./stage.js";
export type { StageOptions, ItemStageOptions, StageStats, DeadLetter } from "./stage.js";
export type { StageFunction } from "./function-stage.js";
export type { Source } from "./source.js";
export { map } from "./map.js";
export type { MapStageOptions } from "./map.js";
export { filter } from "./filter.js";
export { flatMap } from "./flat-map.js";
export { batch } from "./batch.js";
export type { BatchOptions } from "./batch.js";
export { tap } from "./tap.js";
export { rateLimit } from "./rate-limit.js";
export { LaggedError } from "./errors.js";
export { merge } from "./merge.js";
export { fanOut } from "./fan-out.js";
export { partition } from "./partition.js";
export type { AbortableIterable } from "./group.js";
export type { PartitionOptions } from "./partition.js";
export { Broadcast, Subscription } from "./broadcast.js";
export type { BroadcastOptions, BroadcastPolicy, BroadcastStats, SubscribeOptions, SubscriptionStats } from "./broadcast.js";
export { toReadable, toWritable } from "./node-streams.js";
export type { ToReadableOptions } from "./node-streams.js";
export { toReadableStream, toWritableStream } from "./web-streams.js";
export type { ToReadableStreamOptions, ToWritableStreamOptions } from "./web-streams.js";
