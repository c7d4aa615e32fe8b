/**
 * `sluice/nats`: backpressure across NATS JetStream. `consumeJetStream` reads a pull consumer
 * into a `Pool`, asking for no more messages than the pool has room for and acknowledging only
 * what is done; `jetStreamMessages` is the same consumer as a bounded async iterable (at most
 * `batch` delivered and not taken); `JetStreamSink` publishes with a bounded number of
 * unacknowledged publishes and turns a full stream or a timeout into `BusyError`. Needs `@nats-io/jetstream` and
 * `@nats-io/transport-node` (optional peer dependencies).
 */
export { consumeJetStream } from "./jetstream-source.js";
export type { JetStreamSourceOptions, JetStreamSourceStats, NakBackoff } from "./jetstream-source.js";
export { jetStreamMessages } from "./jetstream-messages.js";
export type { JetStreamMessagesOptions } from "./jetstream-messages.js";
export { JetStreamSink, isStreamFull } from "./jetstream-sink.js";
export type { JetStreamSinkOptions, JetStreamSinkStats, JetStreamPublishOptions } from "./jetstream-sink.js";
