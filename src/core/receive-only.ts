/**
 * ReceiveOnlyChannel (internal): a channel whose sending side belongs to sluice (a timer, a
 * ticker, `done(signal)`), like Go's `<-chan T`. Users may receive from it, iterate it and put
 * `recv(ch)` in a select; `send`, `trySend`, `close` and `send(ch, v)` select cases are refused
 * with a TypeError, so no holder can close `done(signal)` under everyone else or make a
 * timer's callback throw.
 */
import { Channel, type ChannelOptions } from "./channel.js";

/** @internal */
export class ReceiveOnlyChannel<T> extends Channel<T> {
  constructor(capacity: number, options?: ChannelOptions) {
    super(capacity, options);
  }

  override send(): Promise<void> {
    return Promise.reject(this.#refusal("send on"));
  }

  override trySend(): boolean {
    throw this.#refusal("send on");
  }

  override close(): void {
    throw this.#refusal("close of");
  }

  /** @internal The owner delivers a value: as `trySend`. */
  put(value: T): boolean {
    return !this.isClosed && super.trySend(value);
  }

  /** @internal The owner closes the channel (idempotent). */
  shut(): void {
    if (!this.isClosed) super.close();
  }

  #refusal(what: string): TypeError {
    return new TypeError(`${what} receive-only ${this.describe()}: only sluice sends on and closes it`);
  }
}
