/**
 * @internal A pipeline's source, whatever its kind, as something that fills the first link
 * channel and can be closed: a `Channel` (used as the first link itself), a sync or async
 * iterable, a Node `Readable`, or a web `ReadableStream`.
 *
 * Invariants:
 *  - `close()` runs at most once and only when the source was not exhausted or broken: it is
 *    the source's own way to stop (`return()`, `destroy()`, `cancel()`, `close()` of a channel).
 *  - A pump holds at most one item outside the link channel (the one it is sending).
 */
import { Readable } from "node:stream";
import { Channel } from "../core/channel.js";
import { isThenable } from "./stage.js";

/** What a pipeline can read from. */
export type Source<T> = Channel<T> | Iterable<T> | AsyncIterable<T> | Readable | ReadableStream<T>;

/** @internal An opened source: the first link, and how to pump into it and close it. */
export interface OpenSource<T> {
  readonly link: Channel<T>;
  /** Fills `link` until the source ends (then closes it), or rejects. Absent for a channel source. */
  pump(signal: AbortSignal): Promise<void> | null;
  /** Stops the source early (after a failure, an abort, or a stop); safe to call more than once. */
  close(reason: unknown): void;
}

function noop(): void {}

/** @internal Checks `source` and prepares to read it (nothing is read yet). */
export function openSource<T>(source: Source<T>, buffer: number): OpenSource<T> {
  if (source instanceof Channel) return new ChannelSource(source);
  const s = source as unknown as Record<PropertyKey, unknown> | null;
  if (s !== null && typeof s === "object" && typeof s.getReader === "function") {
    return new WebSource(source as ReadableStream<T>, buffer);
  }
  if (source instanceof Readable) return new IteratorSource<T>(() => (source as Readable)[Symbol.asyncIterator](), buffer, () => (source as Readable).destroy());
  if (s != null && typeof s[Symbol.asyncIterator] === "function") {
    return new IteratorSource<T>(() => (source as AsyncIterable<T>)[Symbol.asyncIterator](), buffer, null);
  }
  if (s != null && typeof s[Symbol.iterator] === "function") {
    return new IteratorSource<T>(() => (source as Iterable<T>)[Symbol.iterator](), buffer, null);
  }
  throw new TypeError("source must be a Channel, an iterable, an async iterable, a Node Readable or a web ReadableStream");
}

class ChannelSource<T> implements OpenSource<T> {
  constructor(readonly link: Channel<T>) {}
  pump(): null {
    return null;
  }
  close(): void {
    // The pipeline owns its source: a producer still sending learns at once that nobody reads.
    if (!this.link.closed) this.link.close();
  }
}

class IteratorSource<T> implements OpenSource<T> {
  readonly link: Channel<T>;
  #it: Iterator<T> | AsyncIterator<T> | null = null;
  #finished = false;
  #closed = false;

  constructor(
    readonly open: () => Iterator<T> | AsyncIterator<T>,
    buffer: number,
    readonly destroy: (() => void) | null,
  ) {
    this.link = new Channel<T>(buffer);
  }

  async pump(signal: AbortSignal): Promise<void> {
    const link = this.link;
    const opts = { signal };
    const it = (this.#it = this.open());
    for (;;) {
      if (signal.aborted || this.#closed) return;
      let r: IteratorResult<T>;
      try {
        const p = it.next();
        r = isThenable(p) ? await p : p;
      } catch (e) {
        this.#finished = true;
        throw e;
      }
      if (this.#closed) return;
      if (r.done === true) break;
      if (!link.trySend(r.value)) await link.send(r.value, opts);
    }
    this.#finished = true;
    link.close();
  }

  close(): void {
    if (this.#closed || this.#finished) return;
    this.#closed = true;
    if (this.destroy !== null) {
      this.destroy();
      return;
    }
    const it = this.#it;
    if (it === null || typeof it.return !== "function") return;
    try {
      const p = it.return() as unknown;
      if (isThenable(p)) p.then(noop, noop);
    } catch {
      // A source that fails to close has nothing more to tell a pipeline that is already over.
    }
  }
}

class WebSource<T> implements OpenSource<T> {
  readonly link: Channel<T>;
  #reader: ReadableStreamDefaultReader<T> | null = null;
  #finished = false;
  #closed = false;

  constructor(
    readonly stream: ReadableStream<T>,
    buffer: number,
  ) {
    this.link = new Channel<T>(buffer);
  }

  async pump(signal: AbortSignal): Promise<void> {
    const link = this.link;
    const opts = { signal };
    const reader = (this.#reader = this.stream.getReader());
    for (;;) {
      if (signal.aborted || this.#closed) return;
      let r: Awaited<ReturnType<ReadableStreamDefaultReader<T>["read"]>>;
      try {
        r = await reader.read();
      } catch (e) {
        this.#finished = true;
        throw e;
      }
      if (this.#closed) return;
      if (r.done) break;
      if (!link.trySend(r.value)) await link.send(r.value, opts);
    }
    this.#finished = true;
    reader.releaseLock();
    link.close();
  }

  close(reason: unknown): void {
    if (this.#closed || this.#finished) return;
    this.#closed = true;
    const p = this.#reader !== null ? this.#reader.cancel(reason) : this.stream.cancel(reason);
    p.then(noop, noop);
  }
}
