/**
 * Which JetStream fetch errors end a source (internal): after these, fetching again cannot help.
 */
import type { Consumer } from "@nats-io/jetstream";

const FATAL_MESSAGES: ReadonlySet<string> = new Set(["consumer not found", "stream not found", "consumer deleted", "closed connection"]);

/** A closed connection, or a deleted consumer or stream. */
export function isFatal(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (error.name === "ClosedConnectionError" || error.name === "ConsumerNotFoundError" || error.name === "StreamNotFoundError") return true;
  return FATAL_MESSAGES.has(error.message);
}

/**
 * After a fetch failed for no stated reason (a fetch of a deleted consumer only misses its
 * heartbeats): the error saying the consumer or its stream is gone, else undefined.
 */
export async function missingConsumer(consumer: Consumer): Promise<unknown> {
  try {
    await consumer.info();
    return undefined;
  } catch (e) {
    return isFatal(e) ? e : undefined;
  }
}
