/**
 * Web stream adapters that keep the bound: `toReadableStream` (any source, pulled only when
 * the stream wants more) and `toWritableStream` (into a `Channel`, `desiredSize` 0 while a
 * write waits for room in it).
 */
import { Abortable, unwatchAbort, watchAbort } from "../core/abort.js";
import { Channel } from "../core/channel.js";
import { checkInteger, checkOptions, given, signalOf } from "../core/validate.js";
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
  const highWaterMark = checkInteger(given(options?.highWaterMark, 0), "options.highWaterMark", 0);
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
 * A writable stream's stop: `stop` aborts the waiting send, either when the stream's own
 * `abort()` runs or when `options.signal` aborts. The latter is heard through sluice's one
 * listener per signal (abort.ts), so many streams sharing a shutdown signal add no native
 * listener each; it also closes the channel and errors the stream at once.
 */
class WritableStop extends Abortable {
  readonly stop = new AbortController();
  ctrl: WritableStreamDefaultController | null = null;
  constructor(readonly channel: Channel<unknown>) {
    super();
  }

  onAbort(reason: unknown): void {
    this.stop.abort(reason);
    if (!this.channel.closed) this.channel.close();
    this.ctrl?.error(reason);
  }
}

/** Options of `toWritableStream`. */
export interface ToWritableStreamOptions {
  /**
   * Ends the stream: when it aborts (or is aborted already), a write waiting for room is
   * withdrawn (its chunk never sent), the channel is closed and the stream errors with the
   * reason at once, so a `pipeTo` into it rejects and cancels its source. Give the signal here
   * rather than to `pipeTo`: `pipeTo({ signal })` aborts its destination only after the write
   * in flight completed, which a full channel nobody reads never lets happen (and Node 20's
   * `pipeTo`, given the signal in both places, rejects without cancelling its source).
   */
  signal?: AbortSignal;
}

/**
 * A web `WritableStream` that sends every chunk into `channel`: a write completes when the
 * channel holds the chunk (buffered, or taken by a receiver), as `await channel.send(chunk)`
 * does. A write into a full channel waits as a parked send; with a queue of one
 * (`highWaterMark` 1), `desiredSize` is 0 and `writer.ready` waits until the channel takes it.
 * So the stream holds at most one chunk beyond the channel's buffer. (A sink cannot keep
 * `desiredSize` at 0 after a write that filled the channel without holding that write open
 * until a receive, which would make `await writer.write(x)` into a channel with room wait for a
 * consumer.) `close()` closes the channel; `abort(reason)`, or `options.signal` aborting,
 * withdraws the waiting send and closes the channel.
 *
 * @example
 * const ac = new AbortController();
 * await toReadableStream(source).pipeTo(toWritableStream(jobs, { signal: ac.signal })); // ac.abort() ends it
 */
export function toWritableStream<T>(channel: Channel<T>, options?: ToWritableStreamOptions): WritableStream<T> {
  if (!(channel instanceof Channel)) throw new TypeError("channel must be a Channel");
  const outer = signalOf(options);
  const link = new WritableStop(channel);
  const stop = link.stop;
  let inner: AbortSignal | undefined;
  const onInner = (): void => stop.abort(inner!.reason);
  const unlink = (): void => {
    inner?.removeEventListener("abort", onInner);
    unwatchAbort(link);
  };
  return new WritableStream<T>(
    {
      start(controller) {
        link.ctrl = controller;
        // Node 20's controller has a signal, aborted by the stream's abort(); its types do not say so.
        inner = (controller as { signal?: AbortSignal }).signal;
        inner?.addEventListener("abort", onInner, { once: true });
        if (outer === undefined) return;
        if (outer.aborted) {
          inner?.removeEventListener("abort", onInner);
          link.onAbort(outer.reason);
        } else watchAbort(outer, link);
      },
      write(chunk) {
        // A failed write errors the stream, and then neither close() nor abort() is called.
        try {
          if (stop.signal.aborted) throw stop.signal.reason;
          if (channel.trySend(chunk)) return;
        } catch (e) {
          unlink();
          throw e;
        }
        return channel.send(chunk, { signal: stop.signal }).then(undefined, (e: unknown) => {
          unlink();
          throw e;
        });
      },
      close() {
        unlink();
        if (!channel.closed) channel.close();
      },
      abort() {
        unlink();
        if (!channel.closed) channel.close();
      },
    },
    new CountQueuingStrategy({ highWaterMark: 1 }),
  );
}
