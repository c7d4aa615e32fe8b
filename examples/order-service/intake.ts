/**
 * The intake: one task pulling deliveries from the broker into the pipeline's first channel,
 * as seed 001's consumer pushes onto its bounded `msgCh`. It asks the broker for a message only
 * once the previous one was handed on, so the channel's capacity (plus the broker's unacked
 * limit) bounds what the service holds: when the pipeline is slow, the intake waits, and the
 * broker keeps the rest.
 */
import { ChannelClosedError, type Channel } from "../../src/index.js";
import type { Delivery, InMemoryBroker } from "./broker.js";

/**
 * Moves deliveries from `broker` to `out` until the broker has no more (then closes `out`: the
 * pipeline drains), `signal` aborts (stop of intake; `out` is closed too), or `out` was closed
 * by the pipeline (it failed or was aborted). `onReceive` is called for every delivery taken,
 * before it is handed on; a delivery taken but not handed on stays unacked (the service gives
 * it back). Rejects only with an error of the broker itself.
 *
 * @example
 * const intake = feed(broker, source, { signal: shutdown.intake }, (d) => pending.add(d.tag));
 */
export async function feed(
  broker: InMemoryBroker,
  out: Channel<Delivery>,
  options: { signal: AbortSignal },
  onReceive: (d: Delivery) => void,
): Promise<void> {
  const { signal } = options;
  try {
    for (;;) {
      const d = await broker.receive({ signal });
      if (d === undefined) break;
      onReceive(d);
      if (!out.trySend(d)) await out.send(d, { signal });
    }
  } catch (e) {
    if (!signal.aborted && !(e instanceof ChannelClosedError)) throw e;
  } finally {
    if (!out.closed) out.close();
  }
}
