/**
 * The load: a generated, deterministic stream of JSON order messages, some of them invalid and
 * some for customers the lookup does not know, as a broker topic would deliver them.
 *
 * Lazy and bounded: messages are made one at a time as they are pulled (nothing is held), and
 * the same `seed` always gives the same messages, so a test can know what each one should
 * become (`expected`).
 */
import { CURRENCIES } from "./order.js";

/** What a generated message is meant to become. */
export type Expected = "valid" | "invalid" | "unknown-customer";

/** One generated message: its body (what the broker carries) and what it should become. */
export interface GeneratedMessage {
  /** 0, 1, 2, ... in generation order. */
  readonly seq: number;
  /** The message body: JSON text (not always valid JSON). */
  readonly body: string;
  /** What the service should do with it: persist it, dead-letter it as invalid, or as unknown customer. */
  readonly expected: Expected;
  /** The order id it carries (undefined when the body is not an object with one). */
  readonly orderId: string | undefined;
}

/** Options of `generateOrders`. */
export interface GeneratorOptions {
  /** How many messages (a non-negative safe integer). */
  count: number;
  /** Fraction of invalid messages, in [0, 1] (default 0.05). */
  invalidRate?: number;
  /** Fraction of valid messages for a customer the lookup does not know, in [0, 1] (default 0.01). */
  unknownCustomerRate?: number;
  /** Known customers are `c-1` ... `c-<customers>` (default 500). */
  customers?: number;
  /** Order ids are `<prefix>-<seq>` (default "ord"). Give each run its own to keep ids apart. */
  prefix?: string;
  /** The seed of the pseudo-random sequence (default 1). */
  seed?: number;
}

/** A small, fast, seedable PRNG (mulberry32): uniform numbers in [0, 1). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function rate(value: number | undefined, fallback: number, name: string): number {
  const r = value ?? fallback;
  if (typeof r !== "number" || !(r >= 0 && r <= 1)) throw new RangeError(`${name} must be a number in [0, 1], got ${String(r)}`);
  return r;
}

/** The ways a message is broken, one picked at random for each invalid message. */
const BREAKAGES: readonly ((o: Record<string, unknown>) => string)[] = [
  (o) => JSON.stringify(o).slice(0, 17), // truncated JSON
  (o) => JSON.stringify({ ...o, orderId: undefined }), // missing id
  (o) => JSON.stringify({ ...o, currency: "XYZ" }), // unknown currency
  (o) => JSON.stringify({ ...o, items: [] }), // no lines
  (o) => JSON.stringify({ ...o, items: [{ sku: "SKU-1", qty: -2, priceCents: 100 }] }), // negative quantity
  (o) => JSON.stringify({ ...o, createdAt: "yesterday" }), // bad timestamp
  () => "null",
];

/**
 * Yields `count` messages, lazily. Each is valid, invalid (`invalidRate`) or valid but for an
 * unknown customer (`unknownCustomerRate`); a valid one has 1 to 4 lines.
 *
 * @example
 * for (const m of generateOrders({ count: 3, seed: 7 })) console.log(m.expected, m.body);
 */
export function* generateOrders(options: GeneratorOptions): Generator<GeneratedMessage, void, undefined> {
  const { count } = options;
  if (!Number.isSafeInteger(count) || count < 0) throw new RangeError(`count must be a non-negative safe integer, got ${String(count)}`);
  const invalidRate = rate(options.invalidRate, 0.05, "invalidRate");
  const unknownRate = rate(options.unknownCustomerRate, 0.01, "unknownCustomerRate");
  const customers = options.customers ?? 500;
  if (!Number.isSafeInteger(customers) || customers < 1) throw new RangeError(`customers must be a positive safe integer, got ${String(customers)}`);
  const prefix = options.prefix ?? "ord";
  if (typeof prefix !== "string" || !/^[A-Za-z0-9_-]{1,40}$/.test(prefix)) throw new TypeError(`prefix must be 1 to 40 letters, digits, "_" or "-", got ${JSON.stringify(prefix)}`);
  const random = prng(options.seed ?? 1);
  const t0 = Date.UTC(2026, 0, 1);
  for (let seq = 0; seq < count; seq++) {
    const orderId = `${prefix}-${seq}`;
    const lines = 1 + Math.floor(random() * 4);
    const items = Array.from({ length: lines }, () => ({
      sku: `SKU-${1 + Math.floor(random() * 200)}`,
      qty: 1 + Math.floor(random() * 5),
      priceCents: 100 + Math.floor(random() * 9900),
    }));
    const order: Record<string, unknown> = {
      orderId,
      customerId: `c-${1 + Math.floor(random() * customers)}`,
      currency: CURRENCIES[Math.floor(random() * CURRENCIES.length)],
      items,
      createdAt: new Date(t0 + seq * 1000).toISOString(),
    };
    const roll = random();
    if (roll < invalidRate) {
      const broken = BREAKAGES[Math.floor(random() * BREAKAGES.length)]!(order);
      let id: string | undefined;
      try {
        const parsed = JSON.parse(broken) as Record<string, unknown> | null;
        id = typeof parsed?.orderId === "string" ? parsed.orderId : undefined;
      } catch {
        id = undefined;
      }
      yield { seq, body: broken, expected: "invalid", orderId: id };
    } else if (roll < invalidRate + unknownRate * (1 - invalidRate)) {
      yield { seq, body: JSON.stringify({ ...order, customerId: `c-unknown-${seq}` }), expected: "unknown-customer", orderId };
    } else {
      yield { seq, body: JSON.stringify(order), expected: "valid", orderId };
    }
  }
}
