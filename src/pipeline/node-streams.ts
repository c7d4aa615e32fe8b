/**
 * Node stream adapters that keep the bound: `toReadable` (any source as an object-mode
 * `Readable` that pulls only when read) and `toWritable` (a `Writable` into a `Channel` whose
 * `write()` says false while the channel is full).
 */
import { Readable, Writable } from "node:stream";
import { Channel } from "../core/channel.js";
import { checkInteger, checkOptions, given } from "../core/validate.js";
import { pullerOf, type Source } from "./source.js";

/** Options of `toReadable`. */
export interface ToReadableOptions {
  /** Items the `Readable` may buffer ahead of its reader (a non-negative safe integer, default 1). */
  highWaterMark?: number;
}

/**
 * An object-mode Node `Readable` of `source`'s items (a `Channel`, an iterable, an async
 * iterable, a `Pipeline`, a Node `Readable`, a web `ReadableStream`). It pulls one item at a
 * time and only when Node asks (its buffer below `highWaterMark`), so it holds at most
 * `highWaterMark` items plus the one being pulled. A failure of the source destroys it with
 * that error; `destroy()` closes the source (`return()`, `destroy()`, `cancel()`; a channel is
 * closed). A `null` item cannot travel in a Node stream: it destroys the stream with a TypeError.
 *
 * @example
 * await stream.promises.pipeline(toReadable(pipeline(rows, map(toCsvLine))), fs.createWriteStream("out.csv"));
 */
export function toReadable<T>(source: Source<T>, options?: ToReadableOptions): Readable {
  checkOptions(options);
  const highWaterMark = checkInteger(given(options?.highWaterMark, 1), "options.highWaterMark", 0);
  const puller = pullerOf(source);
  let pulling = false;
  return new Readable({
    objectMode: true,
    highWaterMark,
    read() {
      if (pulling) return;
      pulling = true;
      puller.next().then(
        (r) => {
          pulling = false;
          if (this.destroyed) return;
          if (r.done === true) this.push(null);
          else if (r.value === null) this.destroy(new TypeError("toReadable: a source item is null, which a Node stream cannot carry"));
          else this.push(r.value);
        },
        (e: unknown) => {
          pulling = false;
          this.destroy(e as Error);
        },
      );
    },
    destroy(error, callback) {
      puller.close(error ?? undefined);
      callback(error);
    },
  });
}

/** @internal A Writable that sends into a channel. */
class ChannelWritable<T> extends Writable {
  #parked = false;
  readonly #ctl = new AbortController();
  constructor(readonly channel: Channel<T>) {
    super({ objectMode: true, highWaterMark: 1 });
  }

  override _write(chunk: T, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    let sent: boolean;
    try {
      sent = this.channel.trySend(chunk);
    } catch (e) {
      return callback(e as Error);
    }
    if (sent) return callback();
    this.#parked = true;
    this.channel.send(chunk, { signal: this.#ctl.signal }).then(
      () => {
        this.#parked = false;
        callback();
      },
      (e: unknown) => {
        this.#parked = false;
        callback(e as Error);
      },
    );
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (!this.channel.closed) this.channel.close();
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#ctl.abort(error ?? new Error("writable destroyed"));
    if (!this.channel.closed) this.channel.close();
    callback(error);
  }

  /**
   * Writes `chunk`. Returns false while the channel is full (this chunk, or one before it, is
   * waiting for room); then `'drain'` is emitted once the channel took everything.
   */
  override write(chunk: unknown, encoding?: unknown, cb?: unknown): boolean {
    const ret = super.write(chunk, encoding as BufferEncoding, cb as (error: Error | null | undefined) => void);
    // Node's own answer is false at highWaterMark 1 even when the channel took the chunk at once.
    return ret || (!this.#parked && this.writableLength === 0);
  }
}

/**
 * A Node `Writable` (object mode) that sends every chunk into `channel`. `write()` returns
 * false when the channel is full as it is called (the chunk waits as a parked send, and further
 * chunks in the Writable's own buffer, as Node does when its caller ignores false), and
 * `'drain'` is emitted when the channel has taken them. A write that fills the channel returns
 * true, as `trySend` would: the channel holds it. `end()` closes the channel once everything
 * was sent; `destroy(err)` withdraws the waiting send and closes the channel. A channel closed
 * by someone else makes the next write fail with `ChannelClosedError`.
 *
 * @example
 * const jobs = new Channel<Job>(64);
 * await stream.promises.pipeline(fs.createReadStream("jobs.ndjson"), split(), parseJson(), toWritable(jobs));
 */
export function toWritable<T>(channel: Channel<T>): Writable {
  if (!(channel instanceof Channel)) throw new TypeError("channel must be a Channel");
  return new ChannelWritable(channel);
}
