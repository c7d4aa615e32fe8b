/**
 * Argument checks shared by every public entry point (internal). Each throws a `TypeError` when
 * the value has the wrong type and a `RangeError` when it has the right type but a bad value,
 * and names the argument or option in its message. None of them clamps.
 */

function show(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "bigint") return `${value}n`;
  if (typeof value === "function") return "a function";
  if (value !== null && typeof value === "object") return Array.isArray(value) ? "an array" : "an object";
  return String(value);
}

/** A number; `TypeError` otherwise (a numeric string is not a number). */
export function checkNumber(value: unknown, name: string): number {
  if (typeof value !== "number") {
    throw new TypeError(`${name} must be a number, got ${show(value)}`);
  }
  return value;
}

/** A safe integer `>= min`. */
export function checkInteger(value: unknown, name: string, min: number): number {
  checkNumber(value, name);
  const n = value as number;
  if (!Number.isSafeInteger(n) || n < min) {
    const what = min === 0 ? "a non-negative safe integer" : min === 1 ? "a positive safe integer" : `a safe integer >= ${min}`;
    throw new RangeError(`${name} must be ${what}, got ${show(value)}`);
  }
  return n;
}

/** A safe integer `>= min`, or `Infinity` (meaning "no limit"). */
export function checkLimit(value: unknown, name: string, min: number): number {
  if (value === Infinity) return Infinity;
  checkNumber(value, name);
  const n = value as number;
  if (!Number.isSafeInteger(n) || n < min) {
    const what = min === 0 ? "a non-negative safe integer" : "a positive safe integer";
    throw new RangeError(`${name} must be ${what} or Infinity, got ${show(value)}`);
  }
  return n;
}

/** A finite number `>= 0` (a duration in milliseconds). */
export function checkDuration(value: unknown, name: string): number {
  checkNumber(value, name);
  const n = value as number;
  if (!Number.isFinite(n) || n < 0) {
    throw new RangeError(`${name} must be a finite number of milliseconds >= 0, got ${show(value)}`);
  }
  return n;
}

/**
 * An option's value, or `fallback` when it was left out (`undefined`). `null` is not "left out":
 * it is passed on, so the option's own check refuses it (a `limit: null` must not silently
 * mean no limit).
 */
export function given<T, D>(value: T | undefined, fallback: D): T | D {
  return value === undefined ? fallback : value;
}

/** An options bag: `undefined` or an object. */
export function checkOptions<T extends object>(value: T | undefined, name = "options"): T | undefined {
  if (value !== undefined && (value === null || typeof value !== "object")) {
    throw new TypeError(`${name} must be an object, got ${show(value)}`);
  }
  return value;
}

/** `undefined` or an `AbortSignal`. */
export function checkSignal(value: unknown, name = "options.signal"): AbortSignal | undefined {
  if (value !== undefined && !(value instanceof AbortSignal)) {
    throw new TypeError(`${name} must be an AbortSignal, got ${show(value)}`);
  }
  return value;
}

/** A function. */
export function checkFunction<F>(value: F, name: string): F {
  if (typeof value !== "function") {
    throw new TypeError(`${name} must be a function, got ${show(value)}`);
  }
  return value;
}

/** `undefined` or a string. */
export function checkName(value: unknown, name = "options.name"): string | undefined {
  if (value !== undefined && typeof value !== "string") {
    throw new TypeError(`${name} must be a string, got ${show(value)}`);
  }
  return value;
}

/** The `signal` of an options bag (checked), or undefined. */
export function signalOf(options: { signal?: AbortSignal } | undefined): AbortSignal | undefined {
  return checkSignal(checkOptions(options)?.signal);
}
