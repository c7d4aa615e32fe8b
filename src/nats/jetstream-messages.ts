/**
 * jetStreamMessages: a JetStream pull consumer as a bounded async iterable, for code that wants
 * a `for await` loop (or `pool.map`) instead of `consumeJetStream`'s handler.
 *
 * Invariants:
 *  - At most one fetch is open, asking for at most `batch` messages; the next fetch starts only
 *    after the previous one ended and the loop asked for the next message. So at most `batch`
 *    messages are delivered and not yet taken by the loop, whatever the backlog.
 *  - The iterable never acks: the loop acks, naks or terms each message it took (at-least-once).
 *  - On `break`/`return`, a thrown error in the loop, or the signal's abort, every message the
 *    open fetch delivered that the loop did not take is `nak`ed at once (not left to
 *    `ack_wait`), and the fetch is closed once it has been quiet for a moment (`fetch-end.ts`:
 *    the server cannot take a pull request back, so a fetch closed at once would lose what the
 *    server sends it next). An abort ends the iteration (it does not throw): the loop finishes the
 *    message it holds.
 */
import type { Consumer, JsMsg } from "@nats-io/jetstream";
import { checkInteger, checkOptions, checkSignal, given } from "../core/validate.js";
import { isFatal, missingConsumer } from "./fatal.js";
import { closeWhenQuiet, type QuietCloser } from "./fetch-end.js";

/** Options of `jetStreamMessages(consumer, options)`. */
export interface JetStreamMessagesOptions {
  /** Messages asked for per fetch, at most (a positive safe integer, default 16): the bound on messages delivered but not yet taken. */
  batch?: number;
  /** How long one fetch waits for messages (ms, at least 1000, default 5000). */
  expiresMs?: number;
  /** Ends the iteration: no new fetch, delivered but untaken messages are nak'ed. */
  signal?: AbortSignal;
}

/**
 * Reads `consumer` as an async iterable of messages, fetching at most `batch` at a time and only
 * when the loop wants more. The loop must `ack()` (or `nak()`/`term()`) each message.
 *
 * Waits (inside `next()`) for the server's messages, at most `expiresMs` per fetch before
 * fetching again. An already-aborted signal yields nothing. Throws the fetch's error when the
 * consumer or stream is deleted or the connection closes; other fetch errors end that fetch and
 * the next `next()` fetches again.
 *
 * @example
 * // Bounded concurrency: pool.map pulls a message only when one of its 16 slots is free.
 * const pool = new Pool({ concurrency: 16 });
 * for await (const msg of pool.map(jetStreamMessages(consumer, { batch: 16, signal }), async (msg, s) => {
 *   await save(msg.json(), s);
 *   msg.ack();
 *   return msg.seq;
 * })) log(msg);
 */
export async function* jetStreamMessages(consumer: Consumer, options?: JetStreamMessagesOptions): AsyncGenerator<JsMsg, void, undefined> {
  if (consumer === null || typeof consumer !== "object" || typeof consumer.fetch !== "function") {
    throw new TypeError("consumer must be a JetStream pull Consumer (js.consumers.get(stream, name))");
  }
  checkOptions(options);
  const batch = checkInteger(given(options?.batch, 16), "options.batch", 1);
  const expires = checkInteger(given(options?.expiresMs, 5000), "options.expiresMs", 1000);
  const signal = checkSignal(options?.signal);
  const aborted = (): boolean => signal?.aborted === true;
  while (!aborted()) {
    const messages = await consumer.fetch({ max_messages: batch, expires });
    const it = messages[Symbol.asyncIterator]();
    let closer: QuietCloser | undefined;
    const onAbort = (): void => {
      closer ??= closeWhenQuiet(messages);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    if (aborted()) onAbort(); // aborted while the fetch was being opened
    let clean = false;
    try {
      for (;;) {
        const r = await it.next();
        if (r.done === true) break;
        if (aborted()) {
          closer?.touch();
          r.value.nak();
          continue;
        }
        yield r.value;
      }
      clean = true;
    } catch (e) {
      const fatal = isFatal(e) ? e : await missingConsumer(consumer);
      if (fatal !== undefined) throw fatal;
      clean = true; // a transient fetch failure (missed heartbeats, a reconnect): fetch again
    } finally {
      signal?.removeEventListener("abort", onAbort);
      if (!clean) {
        // break/return/throw in the loop: give back what the fetch delivers until it ends or is quiet.
        closer ??= closeWhenQuiet(messages);
        for (;;) {
          let r: IteratorResult<JsMsg>;
          try {
            r = await it.next();
          } catch {
            break;
          }
          if (r.done === true) break;
          closer.touch();
          try {
            r.value.nak();
          } catch {
            void messages.close();
            break; // connection gone: the server redelivers after ack_wait
          }
        }
      }
      closer?.cancel();
    }
  }
}
