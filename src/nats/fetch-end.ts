/**
 * How a fetch that is no longer wanted is ended without losing messages.
 *
 * The server cannot take a pull request back: until it has sent the request's whole batch or
 * its `expires` passes, it keeps sending to the request's inbox, unsubscribed or not. A fetch
 * closed at once therefore loses what the server sends it next; those messages stay
 * ack-pending until `ack_wait` and only then are redelivered. So a fetch is left open, its late
 * messages given back by the caller (nak), until it ends by itself or has been quiet for
 * `QUIET_MS`; then its subscription is drained (unsubscribe, then a flush, so whatever the
 * server sent before it saw the unsubscribe still arrives) and the fetch closed. A message the
 * server sends after that waits for `ack_wait` (at-least-once holds either way).
 */

/** A fetch's iterator, as `consumer.fetch()` returns it. */
export interface FetchIter {
  close(): Promise<void | Error>;
}

/** A stopping fetch's closer: `touch()` when a message came through it, `cancel()` once it ended. */
export interface QuietCloser {
  touch(): void;
  cancel(): void;
}

/** A stopping fetch is closed once no message has come through it for this long (ms). */
const QUIET_MS = 200;

/** How long a drain may take before the fetch is closed anyway (ms). */
const DRAIN_MS = 2000;

/** Closes `iter` once no message has come through it for `QUIET_MS` (reset by `touch()`). */
export function closeWhenQuiet(iter: FetchIter): QuietCloser {
  let last = performance.now();
  let done = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const check = (): void => {
    if (done) return;
    const quiet = performance.now() - last;
    if (quiet < QUIET_MS) {
      timer = setTimeout(check, QUIET_MS - quiet);
      return;
    }
    done = true;
    drainAndClose(iter);
  };
  timer = setTimeout(check, QUIET_MS);
  return {
    touch: () => {
      last = performance.now();
    },
    cancel: () => {
      done = true;
      clearTimeout(timer);
    },
  };
}

/**
 * Drains the fetch's subscription (the jetstream client ends the iterator once the drain is
 * done), closing the fetch if the drain fails or takes longer than `DRAIN_MS`. The subscription
 * is not part of the client's typed surface: without it, the fetch is simply closed.
 */
function drainAndClose(iter: FetchIter): void {
  const it = iter as FetchIter & { closed?: () => Promise<unknown>; sub?: { drain?: () => Promise<void>; isClosed?: () => boolean } };
  const sub = it.sub;
  if (typeof sub?.drain !== "function" || typeof it.closed !== "function" || sub.isClosed?.() === true) {
    void iter.close();
    return;
  }
  const timer = setTimeout(() => void iter.close(), DRAIN_MS);
  const ended = (): void => clearTimeout(timer);
  it.closed().then(ended, ended);
  sub.drain().catch(() => {
    ended();
    void iter.close();
  });
}
