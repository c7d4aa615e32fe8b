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
import { Channel, NOTHING, type RecvResult } from "../core/channel.js";
import { isThenable } from "./stage.js";

/** What a pipeline can read from. */
export type Source<T> = Channel<T> | Iterable<T> | AsyncIterable<T> | Readable | ReadableStream<T>;

/** @internal An opened source: the first link, and how to pump into it and close it. */
export interface OpenSource<T> {
  readonly link: Channel<T>;
  /**
   * Fills `link` until the source ends (then closes it), or rejects. Null for a channel source.
   * `forward`, when given, hands each item on instead of a plain send into `link`.
   */
  pump(signal: AbortSignal, forward?: (item: T) => Promise<void> | undefined): Promise<void> | null;
  /** Stops the source early (after a failure, an abort, or a stop); safe to call more than once. */
  close(reason: unknown): void;
}

function noop(): void {}

/**
 * @internal Checks `source` and prepares to read it (nothing is read yet). Without `into`, the
 * first link is a new channel of capacity `buffer` (or a `Channel` source itself) and is closed
 * when the source ends. With `into`, items are sent into that channel, which is left open (its
 * owner closes it when all of its feeds are done).
 */
export function openSource<T>(source: Source<T>, buffer: number, into?: Channel<T>, name = "source"): OpenSource<T> {
  if (source instanceof Channel) return into === undefined ? new ChannelSource(source) : new ForwardSource(source, into);
  const s = source as unknown as Record<PropertyKey, unknown> | null;
  const link = into ?? new Channel<T>(buffer);
  const own = into === undefined;
  if (s !== null && typeof s === "object" && typeof s.getReader === "function") {
    return new WebSource(source as ReadableStream<T>, link, own);
  }
  if (source instanceof Readable) return new IteratorSource<T>(() => (source as Readable)[Symbol.asyncIterator](), link, own, () => (source as Readable).destroy());
  if (s != null && typeof s[Symbol.asyncIterator] === "function") {
    return new IteratorSource<T>(() => (source as AsyncIterable<T>)[Symbol.asyncIterator](), link, own, null);
  }
  if (s != null && typeof s[Symbol.iterator] === "function") {
    if (own) return new SyncSource<T>(source as Iterable<T>);
    return new IteratorSource<T>(() => (source as Iterable<T>)[Symbol.iterator](), link, own, null);
  }
  throw new TypeError(`${name} must be a Channel, an iterable, an async iterable, a Node Readable or a web ReadableStream`);
}

/**
 * The first link of a pipeline whose source is a synchronous iterable: a channel that never
 * buffers and never parks, because a receive pulls the next item from the iterator right then
 * (an iterator's failure is thrown to the stage that pulled). So the first stage reads its
 * source directly, with no pump in between, and nothing is read before a stage asks for it.
 * Closing it (the end of the source, an abort, a stage that stopped reading) stops the pulls.
 */
class SyncSourceLink<T> extends Channel<T> {
  #it: Iterator<T> | null = null;
  /** The iterator ended or threw: it must not be closed with `return()`. */
  finished = false;
  constructor(readonly source: Iterable<T>) {
    super(0);
  }

  /** @internal Pulls the next item now; `NOTHING` once the source ended (the link is then closed) or the link was closed. */
  override take(): T | typeof NOTHING {
    if (this.closed) return NOTHING;
    let r: IteratorResult<T>;
    try {
      r = (this.#it ??= this.source[Symbol.iterator]()).next();
    } catch (e) {
      this.finished = true;
      this.close();
      throw e;
    }
    if (r.done === true) {
      this.finished = true;
      this.close();
      return NOTHING;
    }
    return r.value;
  }

  /** Pulls the next item now; `{ ok: false }` once the source ended or the link was closed. */
  override tryRecv(): RecvResult<T> {
    const v = this.take();
    return v === NOTHING ? { value: undefined, ok: false } : { value: v, ok: true };
  }

  override recv(): Promise<RecvResult<T>> {
    try {
      return Promise.resolve(this.tryRecv());
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Closes the iterator (`return()`), unless it ended or was never opened. */
  stop(): void {
    if (this.finished || this.#it === null) return;
    this.finished = true;
    const it = this.#it;
    if (typeof it.return !== "function") return;
    try {
      it.return();
    } catch {
      // A source that fails to close has nothing more to tell a pipeline that is already over.
    }
  }
}

class SyncSource<T> implements OpenSource<T> {
  readonly link: SyncSourceLink<T>;
  constructor(source: Iterable<T>) {
    this.link = new SyncSourceLink(source);
  }
  pump(): null {
    return null;
  }
  close(): void {
    this.link.stop();
    if (!this.link.closed) this.link.close();
  }
}

/** A `Channel` source feeding another channel: received and sent on, one at a time. */
class ForwardSource<T> implements OpenSource<T> {
  constructor(
    readonly from: Channel<T>,
    readonly link: Channel<T>,
  ) {}
  async pump(signal: AbortSignal): Promise<void> {
    const { from, link } = this;
    const opts = { signal };
    for (;;) {
      if (signal.aborted) return;
      let r = from.tryRecv();
      if (r === undefined) r = await from.recv(opts);
      if (!r.ok) return;
      if (!link.trySend(r.value)) await link.send(r.value, opts);
    }
  }
  close(): void {
    if (!this.from.closed) this.from.close();
  }
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
  #it: Iterator<T> | AsyncIterator<T> | null = null;
  #finished = false;
  #closed = false;

  constructor(
    readonly open: () => Iterator<T> | AsyncIterator<T>,
    readonly link: Channel<T>,
    readonly own: boolean,
    readonly destroy: (() => void) | null,
  ) {}

  async pump(signal: AbortSignal, forward?: (item: T) => Promise<void> | undefined): Promise<void> {
    const link = this.link;
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
      if (forward !== undefined) {
        const d = forward(r.value);
        if (d !== undefined) await d; // the source's own wait is not in any stage's stats
      } else if (!link.trySend(r.value)) await link.send(r.value);
    }
    this.#finished = true;
    if (this.own) link.close();
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
  #reader: ReadableStreamDefaultReader<T> | null = null;
  #finished = false;
  #closed = false;

  constructor(
    readonly stream: ReadableStream<T>,
    readonly link: Channel<T>,
    readonly own: boolean,
  ) {}

  async pump(signal: AbortSignal, forward?: (item: T) => Promise<void> | undefined): Promise<void> {
    const link = this.link;
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
      if (forward !== undefined) {
        const d = forward(r.value);
        if (d !== undefined) await d;
      } else if (!link.trySend(r.value)) await link.send(r.value);
    }
    this.#finished = true;
    reader.releaseLock();
    if (this.own) link.close();
  }

  close(reason: unknown): void {
    if (this.#closed || this.#finished) return;
    this.#closed = true;
    const p = this.#reader !== null ? this.#reader.cancel(reason) : this.stream.cancel(reason);
    p.then(noop, noop);
  }
}

/** @internal One-at-a-time reading of any source, for adapters that pull only when asked. */
export interface Puller<T> {
  /** The next item; at most one call pending at a time. */
  next(): Promise<IteratorResult<T>>;
  /** Stops the source early (idempotent; nothing once it ended or failed). */
  close(reason: unknown): void;
}

/** @internal A `Puller` over `source` (nothing is read until the first `next()`). */
export function pullerOf<T>(source: Source<T>, name = "source"): Puller<T> {
  if (source instanceof Channel) {
    const ch = source;
    return {
      next: () => ch.recv().then((r) => (r.ok ? { value: r.value, done: false } : { value: undefined, done: true })),
      close: () => {
        if (!ch.closed) ch.close();
      },
    };
  }
  const s = source as unknown as Record<PropertyKey, unknown> | null;
  if (s !== null && typeof s === "object" && typeof s.getReader === "function") {
    const stream = source as ReadableStream<T>;
    let reader: ReadableStreamDefaultReader<T> | null = null;
    let ended = false;
    return {
      next: async () => {
        reader ??= stream.getReader();
        try {
          const r = await reader.read();
          if (r.done) ended = true;
          return r.done ? { value: undefined, done: true } : { value: r.value, done: false };
        } catch (e) {
          ended = true;
          throw e;
        }
      },
      close: (reason) => {
        if (ended) return;
        ended = true;
        (reader !== null ? reader.cancel(reason) : stream.cancel(reason)).then(noop, noop);
      },
    };
  }
  let it: Iterator<T> | AsyncIterator<T> | null = null;
  let ended = false;
  let open: () => Iterator<T> | AsyncIterator<T>;
  let destroy: (() => void) | null = null;
  if (source instanceof Readable) {
    open = () => (source as Readable)[Symbol.asyncIterator]();
    destroy = () => (source as Readable).destroy();
  } else if (s != null && typeof s[Symbol.asyncIterator] === "function") {
    open = () => (source as AsyncIterable<T>)[Symbol.asyncIterator]();
  } else if (s != null && typeof s[Symbol.iterator] === "function") {
    open = () => (source as Iterable<T>)[Symbol.iterator]();
  } else {
    throw new TypeError(`${name} must be a Channel, an iterable, an async iterable, a Node Readable or a web ReadableStream`);
  }
  return {
    next: async () => {
      it ??= open();
      try {
        const r = await it.next();
        if (r.done === true) ended = true;
        return r;
      } catch (e) {
        ended = true;
        throw e;
      }
    },
    close: () => {
      if (ended) return;
      ended = true;
      if (destroy !== null) return destroy();
      if (it === null || typeof it.return !== "function") return;
      try {
        const p = it.return() as unknown;
        if (isThenable(p)) p.then(noop, noop);
      } catch {
        // Closing a source we are leaving: nothing more to report.
      }
    },
  };
}
