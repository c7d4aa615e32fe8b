/**
 * Test helpers for `sluice/nats`: a connection to the real NATS server on 127.0.0.1:4222 (a clear
 * failure when it is not there: these tests never skip), and work-queue streams with unique
 * names, deleted afterwards.
 */
import { connect, type NatsConnection } from "@nats-io/transport-node";
import {
  AckPolicy,
  DiscardPolicy,
  RetentionPolicy,
  StorageType,
  jetstream,
  jetstreamManager,
  type Consumer,
  type ConsumerConfig,
  type JetStreamClient,
  type JetStreamManager,
  type StreamConfig,
} from "@nats-io/jetstream";

export const NATS_URL = process.env.NATS_URL ?? "127.0.0.1:4222";

/** Connects, or throws an error that says what is missing. */
export async function connectNats(): Promise<NatsConnection> {
  try {
    return await connect({ servers: NATS_URL, timeout: 3000, maxReconnectAttempts: 10 });
  } catch (e) {
    throw new Error(`these tests need NATS with JetStream on ${NATS_URL} (nats-server -js): ${(e as Error).message}`, { cause: e });
  }
}

/** A random suffix for stream, subject and consumer names. */
export function unique(prefix: string): string {
  return `${prefix}_${process.pid}_${Math.random().toString(36).slice(2, 10)}`;
}

export interface TestStream {
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  /** The stream's name; its subjects are `${name}.>`. */
  readonly name: string;
  readonly subject: string;
  /** Creates a durable pull consumer (explicit acks) and returns it. */
  consumer(config?: Partial<ConsumerConfig>): Promise<Consumer>;
  /** Publishes `n` messages `0..n-1` (as strings) to `subject`, at most 256 unacknowledged at once. */
  fill(n: number, subject?: string): Promise<void>;
  /** Messages in the stream now. */
  count(): Promise<number>;
  /** Deletes the streams made through this helper and closes the connection. */
  close(): Promise<void>;
  /** Another stream (deleted by `close()` too). */
  extra(config: Partial<StreamConfig> & { name: string; subjects: string[] }): Promise<void>;
}

/** A work-queue stream with a unique name on a fresh connection. */
export async function testStream(prefix: string, config: Partial<StreamConfig> = {}): Promise<TestStream> {
  const nc = await connectNats();
  const js = jetstream(nc);
  const jsm = await jetstreamManager(nc);
  const name = unique(prefix);
  const streams = [name];
  await jsm.streams.add({
    name,
    subjects: [`${name}.>`],
    retention: RetentionPolicy.Workqueue,
    storage: StorageType.File,
    discard: DiscardPolicy.New,
    ...config,
  });
  let consumers = 0;
  const t: TestStream = {
    nc,
    js,
    jsm,
    name,
    subject: `${name}.work`,
    async consumer(c = {}) {
      const durable = `c${consumers++}`;
      await jsm.consumers.add(name, { durable_name: durable, ack_policy: AckPolicy.Explicit, ...c });
      return js.consumers.get(name, durable);
    },
    async fill(n, subject = t.subject) {
      const window = 256;
      const pending = new Set<Promise<unknown>>();
      for (let i = 0; i < n; i++) {
        const p = js.publish(subject, String(i)).finally(() => pending.delete(p));
        pending.add(p);
        if (pending.size >= window) await Promise.race(pending);
      }
      await Promise.all(pending);
    },
    async count() {
      return (await jsm.streams.info(name)).state.messages;
    },
    async extra(cfg) {
      await jsm.streams.add(cfg);
      streams.push(cfg.name);
    },
    async close() {
      for (const s of streams) await jsm.streams.delete(s).catch(() => undefined);
      await nc.close();
    },
  };
  return t;
}

/** Resolves once `check()` is true, polling every `everyMs`; rejects with `what` after `timeoutMs`. */
export async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000, everyMs = 20): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export interface Deferred<T = void> {
  promise: Promise<T>;
  resolve: (v: T) => void;
  reject: (e: unknown) => void;
}

export function deferred<T = void>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}
