/**
 * The "broker" of the example, simulated in process: a topic fed by an iterable of message
 * bodies, delivered one at a time with a tag that the consumer acks (done, gone) or nacks
 * (give it back: it is delivered again, to this or a later consumer).
 *
 * Invariants:
 *  - At most `maxUnacked` deliveries are outstanding (delivered, neither acked nor nacked), as a
 *    broker's max-ack-pending / prefetch does: `receive` waits for a credit (a `Semaphore`
 *    unit) before it takes a message, so a consumer is never handed more than it has room for.
 *  - The source is pulled lazily, one message per delivery, so nothing is buffered ahead; the
 *    redelivery queue holds only nacked messages, so it never exceeds `maxUnacked`.
 *  - Each tag is acked or nacked at most once; a second ack/nack of the same tag, or of a tag
 *    never delivered, throws (a consumer bug, never silently ignored).
 *  - `delivered = acked + nacked + unacked`; `published` counts source messages taken.
 */
import { Semaphore } from "../../src/index.js";

/** One delivery of a message: the tag to ack it with, its body, and how often it was delivered. */
export interface Delivery {
  /** Unique per delivery (a redelivery gets a new tag). */
  readonly tag: number;
  /** The message's identity across redeliveries (its position in the source). */
  readonly messageId: number;
  readonly body: string;
  /** 1 for the first delivery, 2 for the first redelivery, ... */
  readonly attempt: number;
}

/** Options of `new InMemoryBroker(source, options)`. */
export interface InMemoryBrokerOptions {
  /** The most deliveries outstanding at once (a positive safe integer, default 256). */
  maxUnacked?: number;
}

/** Counters of a broker (a fresh snapshot). */
export interface InMemoryBrokerStats {
  /** Messages taken from the source. */
  readonly published: number;
  /** Deliveries made (first deliveries and redeliveries). */
  readonly delivered: number;
  readonly redelivered: number;
  readonly acked: number;
  readonly nacked: number;
  /** Outstanding now. */
  readonly unacked: number;
  /** Nacked messages waiting to be delivered again. */
  readonly requeued: number;
  /** Whether the source is exhausted and nothing waits for redelivery. */
  readonly drained: boolean;
}

interface Held {
  readonly messageId: number;
  readonly body: string;
  readonly attempt: number;
}

/**
 * A single-topic in-memory broker with acknowledgements.
 *
 * @example
 * const broker = new InMemoryBroker(["a", "b"], { maxUnacked: 10 });
 * const d = await broker.receive({ signal });   // waits while 10 are outstanding
 * if (d !== undefined) broker.ack(d.tag);
 */
export class InMemoryBroker {
  readonly #source: Iterator<string>;
  readonly #credits: Semaphore;
  readonly #outstanding = new Map<number, Held>();
  readonly #requeue: Held[] = [];
  #exhausted = false;
  #nextTag = 1;
  #published = 0;
  #delivered = 0;
  #redelivered = 0;
  #acked = 0;
  #nacked = 0;

  constructor(source: Iterable<string>, options?: InMemoryBrokerOptions) {
    const max = options?.maxUnacked ?? 256;
    if (!Number.isSafeInteger(max) || max < 1) throw new RangeError(`maxUnacked must be a positive safe integer, got ${String(max)}`);
    this.#source = source[Symbol.iterator]();
    this.#credits = new Semaphore(max);
  }

  /**
   * The next delivery: a nacked message first, else the next message of the source. Waits
   * while `maxUnacked` deliveries are outstanding; rejects with `signal.reason` on abort
   * (taking nothing). Resolves `undefined` once the source is exhausted and nothing waits for
   * redelivery (the load is finite, so that a run can end).
   */
  async receive(options?: { signal?: AbortSignal }): Promise<Delivery | undefined> {
    if (this.#isDrained()) return undefined;
    await this.#credits.acquire(1, options);
    const held = this.#take();
    if (held === undefined) {
      this.#credits.release(1);
      return undefined;
    }
    const tag = this.#nextTag++;
    this.#outstanding.set(tag, held);
    this.#delivered++;
    if (held.attempt > 1) this.#redelivered++;
    return { tag, messageId: held.messageId, body: held.body, attempt: held.attempt };
  }

  /** The message of `tag` is done: it will not be delivered again. */
  ack(tag: number): void {
    this.#settle(tag);
    this.#acked++;
  }

  /** The message of `tag` was not done: it goes back to be delivered again. */
  nack(tag: number): void {
    const held = this.#settle(tag);
    this.#nacked++;
    this.#requeue.push({ messageId: held.messageId, body: held.body, attempt: held.attempt + 1 });
  }

  get stats(): InMemoryBrokerStats {
    return {
      published: this.#published,
      delivered: this.#delivered,
      redelivered: this.#redelivered,
      acked: this.#acked,
      nacked: this.#nacked,
      unacked: this.#outstanding.size,
      requeued: this.#requeue.length,
      drained: this.#isDrained(),
    };
  }

  #isDrained(): boolean {
    return this.#exhausted && this.#requeue.length === 0;
  }

  #take(): Held | undefined {
    const again = this.#requeue.shift();
    if (again !== undefined) return again;
    if (this.#exhausted) return undefined;
    const next = this.#source.next();
    if (next.done === true) {
      this.#exhausted = true;
      return undefined;
    }
    return { messageId: this.#published++, body: next.value, attempt: 1 };
  }

  #settle(tag: number): Held {
    const held = this.#outstanding.get(tag);
    if (held === undefined) throw new RangeError(`delivery tag ${tag} is not outstanding (never delivered, or already acked or nacked)`);
    this.#outstanding.delete(tag);
    this.#credits.release(1);
    return held;
  }
}
