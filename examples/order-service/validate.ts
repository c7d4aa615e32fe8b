/**
 * Validation of an order message: JSON text in, a typed `Order` out, or an `InvalidOrderError`
 * saying what is wrong (the service routes those to its dead-letter channel). Pure and
 * synchronous: it runs as one stage, in order, as seed 001's validate stage does.
 */
import { CURRENCIES, MAX_LINES, MAX_QTY, type Order, type OrderLine } from "./order.js";

/** A message that is not a valid order; `reason` says why. Not retryable. */
export class InvalidOrderError extends Error {
  readonly code = "ERR_INVALID_ORDER";
  constructor(readonly reason: string) {
    super(`invalid order: ${reason}`);
    this.name = "InvalidOrderError";
  }
}

const ID = /^[A-Za-z0-9_-]{1,64}$/;
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?Z$/;

function line(v: unknown, i: number): OrderLine {
  if (v === null || typeof v !== "object") throw new InvalidOrderError(`items[${i}] is not an object`);
  const { sku, qty, priceCents } = v as Record<string, unknown>;
  if (typeof sku !== "string" || !ID.test(sku)) throw new InvalidOrderError(`items[${i}].sku is missing or malformed`);
  if (!Number.isSafeInteger(qty) || (qty as number) < 1 || (qty as number) > MAX_QTY) {
    throw new InvalidOrderError(`items[${i}].qty must be an integer in [1, ${MAX_QTY}], got ${JSON.stringify(qty)}`);
  }
  if (!Number.isSafeInteger(priceCents) || (priceCents as number) < 0) {
    throw new InvalidOrderError(`items[${i}].priceCents must be a non-negative integer, got ${JSON.stringify(priceCents)}`);
  }
  return { sku, qty: qty as number, priceCents: priceCents as number };
}

/**
 * Parses and checks one message body. Throws `InvalidOrderError` when it is not JSON, not an
 * object, or a field is missing or out of range; returns a fresh `Order` with only the known
 * fields otherwise.
 *
 * @example
 * validateOrder('{"orderId":"o-1","customerId":"c-1","currency":"EUR","createdAt":"2026-01-01T00:00:00Z","items":[{"sku":"A","qty":1,"priceCents":100}]}');
 */
export function validateOrder(body: string): Order {
  let v: unknown;
  try {
    v = JSON.parse(body);
  } catch {
    throw new InvalidOrderError("not JSON");
  }
  if (v === null || typeof v !== "object" || Array.isArray(v)) throw new InvalidOrderError("not a JSON object");
  const { orderId, customerId, currency, items, createdAt } = v as Record<string, unknown>;
  if (typeof orderId !== "string" || !ID.test(orderId)) throw new InvalidOrderError("orderId is missing or malformed");
  if (typeof customerId !== "string" || !ID.test(customerId)) throw new InvalidOrderError("customerId is missing or malformed");
  if (typeof currency !== "string" || !CURRENCIES.includes(currency)) {
    throw new InvalidOrderError(`currency must be one of ${CURRENCIES.join(", ")}, got ${JSON.stringify(currency)}`);
  }
  if (!Array.isArray(items) || items.length === 0 || items.length > MAX_LINES) {
    throw new InvalidOrderError(`items must be an array of 1 to ${MAX_LINES} lines`);
  }
  if (typeof createdAt !== "string" || !ISO.test(createdAt) || Number.isNaN(Date.parse(createdAt))) {
    throw new InvalidOrderError("createdAt must be an ISO 8601 UTC timestamp");
  }
  return { orderId, customerId, currency, items: items.map(line), createdAt };
}
