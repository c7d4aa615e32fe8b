/**
 * Web stream adapters that keep the bound: `toReadableStream` (any source, pulled only when
 * the stream wants more) and `toWritableStream` (into a `Channel`, `desiredSize` 0 while the
 * channel is full).
 */
import { Channel } from "../core/channel.js";
import { checkInteger, checkOptions } from "../core/validate.js";
import { pullerOf, type Source } from "./source.js";

/** Options of `toReadableStream`. */
export interface ToReadableStreamOptions {
  /** Items the stream may queue ahead of its reader (a non-negative safe integer, default 0: pull only for a pending read). */
  highWaterMark?: number;
}

/**
 * A web `ReadableStream` of `source`'s items. Its `pull` asks the source for one item each time
 * the stream's queue is below `highWaterMark` (default 0: only while a read is waiting), so
 * `desiredSize` is honest and nothing piles up. A failure of the source errors the stream;
 * `cancel(reason)` closes the source.
 *
 * @example
 * return new Response(toReadableStream(pipeline(rows, map(toJsonLine))));
 */
export function toReadableStream<T>(source: Source<T>, options?: ToReadableStreamOptions): ReadableStream<T> {
  checkOptions(options);
  const highWaterMark = checkInteger(options?.highWaterMark ?? 0, "options.highWaterMark", 0);
  const puller = pullerOf(source);
  return new ReadableStream<T>(
    {
      async pull(controller) {
        const r = await puller.next();
        if (r.done === true) controller.close();
        else controller.enqueue(r.value);
      },
      cancel(reason) {
        puller.close(reason);
      },
    },
    new CountQueuingStrategy({ highWaterMark }),
  );
}

/**
 * A web `WritableStream` that sends every chunk into `channel`: a write completes when the
 * channel took the chunk, so with a queue of one (`highWaterMark` 1) `desiredSize` is 0 and
 * `writer.ready` waits while the channel is full. `close()` closes the channel; `abort(reason)`
 * withdraws the waiting send and closes the channel.
 *
 * @example
 * await toReadableStream(source).pipeTo(toWritableStream(jobs));
 */
export function toWritableStream<T>(channel: Channel<T>): WritableStream<T> {
  if (!(channel instanceof Channel)) throw new TypeError("channel must be a Channel");
  return new WritableStream<T>(
    {
      write(chunk, controller) {
        if (channel.trySend(chunk)) return;
        // Node 20's controller has a signal (aborted by abort()), its types do not say so.
        const signal = (controller as { signal?: AbortSignal }).signal;
        return channel.send(chunk, signal === undefined ? undefined : { signal });
      },
      close() {
        if (!channel.closed) channel.close();
      },
      abort() {
        if (!channel.closed) channel.close();
      },
    },
    new CountQueuingStrategy({ highWaterMark: 1 }),
  );
}
