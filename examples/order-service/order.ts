/**
 * The order model of the example service: what a message carries once validated (`Order`) and
 * what the enrichment adds (`EnrichedOrder`), as stored in PostgreSQL.
 */

/** Currencies the service accepts. */
export const CURRENCIES: readonly string[] = ["EUR", "USD", "GBP", "CHF"];

/** One line of an order. */
export interface OrderLine {
  readonly sku: string;
  /** A positive integer, at most `MAX_QTY`. */
  readonly qty: number;
  /** The unit price in cents: a non-negative safe integer. */
  readonly priceCents: number;
}

/** A validated order message. */
export interface Order {
  /** The order's identity, also the table's primary key: a redelivery upserts the same row. */
  readonly orderId: string;
  readonly customerId: string;
  readonly currency: string;
  /** One to `MAX_LINES` lines. */
  readonly items: readonly OrderLine[];
  /** ISO 8601 timestamp of the order. */
  readonly createdAt: string;
}

/** What the enrichment looked up about the customer. */
export interface Customer {
  readonly customerId: string;
  readonly tier: "standard" | "gold" | "platinum";
  readonly region: string;
}

/** An order with its customer's data and its totals: one row of the orders table. */
export interface EnrichedOrder extends Order {
  readonly tier: Customer["tier"];
  readonly region: string;
  readonly subtotalCents: number;
  /** The tier's discount on the subtotal, rounded down to a cent. */
  readonly discountCents: number;
  readonly totalCents: number;
}

/** The most lines an order may have. */
export const MAX_LINES = 20;
/** The most units of one line. */
export const MAX_QTY = 1000;
