/**
 * The dead-letter desk: seed 001's error channel and its aggregating goroutine. The validate
 * and enrich stages route their failures to two bounded channels (a full one slows the stage,
 * it never grows); one task receives from both with `select`, sorts each failure by reason,
 * keeps the last few as samples, and acks its delivery: a dead-lettered message is done (in a
 * real service it would be published to a dead-letter topic first).
 *
 * A failure that is an `AbandonedError` (the run stopped under the call) is not a dead letter:
 * it is counted apart and its delivery is left unacked, to be given back to the broker.
 */
import { Channel, recv, select } from "../../src/index.js";
import type { DeadLetter } from "../../src/pipeline/index.js";
import type { Delivery } from "./broker.js";
import { UnknownCustomerError } from "./lookup.js";
import { AbandonedError, type Validated } from "./messages.js";
import { InvalidOrderError } from "./validate.js";

/** Why a message was dead-lettered. */
export type DeadLetterReason = "invalid" | "unknownCustomer" | "enrichFailed";

/** One dead-lettered message, as kept in the samples. */
export interface DeadLetterSample {
  readonly messageId: number;
  readonly reason: DeadLetterReason;
  readonly message: string;
}

/** Counts by reason (a fresh snapshot). */
export interface DeadLetterCounts {
  readonly invalid: number;
  readonly unknownCustomer: number;
  readonly enrichFailed: number;
  /** Failures that were not dead letters: abandoned when the run stopped. */
  readonly abandoned: number;
}

/**
 * Receives the failures of two stages and settles them.
 *
 * @example
 * const desk = new DeadLetterDesk((d, reason) => broker.ack(d.tag));
 * const done = desk.run();
 * // pipeline(..., map(validate, { deadLetter: desk.invalid }), map(enrich, { deadLetter: desk.failed }), ...)
 * desk.close(); await done;
 */
export class DeadLetterDesk {
  /** Where `validate` routes its failures. */
  readonly invalid: Channel<DeadLetter<Delivery>>;
  /** Where `enrich` routes its failures. */
  readonly failed: Channel<DeadLetter<Validated>>;
  readonly #settle: (d: Delivery, reason: DeadLetterReason, error: unknown) => void;
  readonly #keep: number;
  readonly #samples: DeadLetterSample[] = [];
  #counts = { invalid: 0, unknownCustomer: 0, enrichFailed: 0, abandoned: 0 };

  /**
   * `settle(delivery, reason)` is called once per dead letter (ack it there). `buffer` is each
   * channel's capacity (default 64); `keep` how many samples are kept, the latest (default 10).
   */
  constructor(settle: (d: Delivery, reason: DeadLetterReason, error: unknown) => void, options?: { buffer?: number; keep?: number }) {
    const buffer = options?.buffer ?? 64;
    this.invalid = new Channel(buffer, { name: "orders/dead-letter-invalid" });
    this.failed = new Channel(buffer, { name: "orders/dead-letter-enrich" });
    this.#settle = settle;
    this.#keep = options?.keep ?? 10;
  }

  get counts(): DeadLetterCounts {
    return { ...this.#counts };
  }

  /** The total of dead letters (abandoned ones excluded). */
  get total(): number {
    const c = this.#counts;
    return c.invalid + c.unknownCustomer + c.enrichFailed;
  }

  /** The last `keep` dead letters, oldest first. */
  get samples(): readonly DeadLetterSample[] {
    return [...this.#samples];
  }

  /** Receives from both channels until both are closed and drained (Go's nil-channel idiom). */
  async run(): Promise<void> {
    let a: Channel<DeadLetter<Delivery>> | null = this.invalid;
    let b: Channel<DeadLetter<Validated>> | null = this.failed;
    while (a !== null || b !== null) {
      const r = await select([recv(a), recv(b)]);
      if (!r.ok) {
        if (r.index === 0) a = null;
        else b = null;
        continue;
      }
      if (r.index === 0) {
        const letter = r.value as DeadLetter<Delivery>;
        this.#take(letter.item, letter.error);
      } else {
        const letter = r.value as DeadLetter<Validated>;
        this.#take(letter.item.delivery, letter.error);
      }
    }
  }

  /** No more failures will come: `run` ends once it has taken what the channels hold. */
  close(): void {
    if (!this.invalid.closed) this.invalid.close();
    if (!this.failed.closed) this.failed.close();
  }

  #take(d: Delivery, error: unknown): void {
    if (error instanceof AbandonedError) {
      this.#counts.abandoned++;
      return;
    }
    const reason: DeadLetterReason =
      error instanceof InvalidOrderError ? "invalid" : error instanceof UnknownCustomerError ? "unknownCustomer" : "enrichFailed";
    this.#counts[reason]++;
    this.#samples.push({ messageId: d.messageId, reason, message: error instanceof Error ? error.message : String(error) });
    if (this.#samples.length > this.#keep) this.#samples.shift();
    this.#settle(d, reason, error);
  }
}
