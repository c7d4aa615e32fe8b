/**
 * The simulated world of the demo: a broker that publishes messages at a fixed rate, and a
 * handler that is slower than that rate.
 *
 * The broker is honest about where messages live. Published messages sit "on the broker's
 * disk" (here: they are only a count, so they cost this process nothing) until a client takes
 * them; a message is materialised, with its payload Buffer, at the moment it is taken. So
 * whatever a client has taken and not yet processed is memory in the client's process, and
 * whatever it has not taken yet is broker-side lag.
 *
 * Two ways to consume, as real broker clients offer:
 *  - `subscribe(fn)`: push. A timer hands every published message to `fn` as soon as it is
 *    published, whatever the client does with it (an event emitter, a client with an unbounded
 *    prefetch). The client cannot say "not now".
 *  - `poll({ signal })`: pull. Takes the next published message, waiting for it to be published
 *    if the client is ahead. A client that pulls only when it has room applies backpressure: the
 *    broker keeps the rest.
 */

/** One message as a client sees it: its position in the log and its payload. */
export interface Message {
  readonly offset: number;
  readonly payload: Buffer;
}

/** How often the push timer runs; each run delivers everything published since the last one. */
const PUSH_INTERVAL_MS = 5;

export class SimulatedBroker {
  #start = 0;
  #taken = 0;
  #pushTimer: ReturnType<typeof setInterval> | undefined;

  /**
   * @param rate messages published per second.
   * @param payloadBytes size of each message's payload.
   */
  constructor(
    readonly rate: number,
    readonly payloadBytes: number,
  ) {}

  /** Starts publishing now (`performance.now()` time). */
  start(): void {
    this.#start = performance.now();
  }

  /** Messages published so far: `rate` per second since `start()`, on a steady schedule. */
  published(): number {
    return Math.floor(((performance.now() - this.#start) * this.rate) / 1000);
  }

  /** Messages taken by the client so far. */
  get taken(): number {
    return this.#taken;
  }

  /** Published and not yet taken: the backlog that waits on the broker. */
  lag(): number {
    return Math.max(0, this.published() - this.#taken);
  }

  /**
   * Push mode: every published message is handed to `onMessage` as soon as the timer sees it,
   * regardless of what the client does with it. Returns a function that stops the pushing (also
   * in the middle of a batch).
   */
  subscribe(onMessage: (msg: Message) => void): () => void {
    let stopped = false;
    const deliver = (): void => {
      const upTo = this.published();
      while (!stopped && this.#taken < upTo) onMessage(this.#take());
    };
    this.#pushTimer = setInterval(deliver, PUSH_INTERVAL_MS);
    return () => {
      stopped = true;
      clearInterval(this.#pushTimer);
    };
  }

  /**
   * Pull mode: takes the next published message. When the client has caught up, waits until the
   * next one is published. Rejects with `signal.reason` if the signal aborts first (nothing taken).
   */
  poll(options?: { signal?: AbortSignal }): Promise<Message> {
    const signal = options?.signal;
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.#taken < this.published()) return Promise.resolve(this.#take());
    return new Promise<Message>((resolve, reject) => {
      const dueAt = this.#start + ((this.#taken + 1) * 1000) / this.rate;
      const onAbort = (): void => {
        clearTimeout(timer);
        reject(signal?.reason);
      };
      const timer = setTimeout(() => {
        signal?.removeEventListener("abort", onAbort);
        resolve(this.#take());
      }, Math.max(0, dueAt - performance.now()));
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  #take(): Message {
    const offset = this.#taken++;
    // A fresh Buffer per message, as a broker client hands out (10 KB: its own ArrayBuffer).
    return { offset, payload: Buffer.alloc(this.payloadBytes, offset & 0xff) };
  }
}

/**
 * Lateness the handler makes up for. Timer callbacks fire a millisecond or more late (more on a
 * busy machine), and without this the handler would run slower than `1000 / workMs` per second.
 * So when messages come back to back, each one is due `workMs` after the previous one was due,
 * not after it actually finished; but never more than this far behind, so that after a long
 * stall (a GC pause) the handler does not sprint to catch up, as a real database would not.
 */
const MAX_CATCH_UP_MS = 50;

/**
 * The slow handler: each message takes `workMs` of waiting (a database call, say), one at a
 * time, so it handles at most `1000 / workMs` messages per second.
 */
export class SlowHandler {
  /** When the current (or last) message is due to finish. */
  #due = -Infinity;
  /** When the last message actually finished. */
  #finishedAt = -Infinity;

  constructor(readonly workMs: number) {}

  /** Handles one message: resolves `workMs` after the previous one was due (or from now if idle). */
  handle(msg: Message): Promise<void> {
    void msg.payload; // a real handler would read it; holding it until here is what costs memory
    const now = performance.now();
    // Called at once after the previous message finished: the handler is busy, keep the cadence.
    const busy = now - this.#finishedAt < 1 && now - this.#due < MAX_CATCH_UP_MS;
    this.#due = (busy ? this.#due : now) + this.workMs;
    return new Promise((resolve) =>
      setTimeout(() => {
        this.#finishedAt = performance.now();
        resolve();
      }, Math.max(0, this.#due - now)),
    );
  }
}
