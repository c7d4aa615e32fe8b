/**
 * Types for the benchmark's use of `medium` 1.2.0 (a CommonJS package without declarations):
 * only the functions the benchmark calls, as its README and `lib/index.js` define them.
 */
declare module "medium" {
  /** A medium channel. It has a `then` method (it is a thenable): never await or return it. */
  export interface MediumChan<T> {
    readonly isClosed: boolean;
    /** Present so that the type parameter is used; medium keeps puts in its buffer object. */
    readonly takes: unknown[];
    readonly __valueType?: T;
  }
  /** What `take` resolves with once the channel is closed and drained. */
  export const CLOSED: unique symbol;
  /** `chan()`: unbuffered; `chan(n)`: a fixed buffer of n. */
  export function chan<T>(bufferOrN?: number): MediumChan<T>;
  /** Resolves `true` once the value is accepted, `false` if the channel is closed. */
  export function put<T>(ch: MediumChan<T>, value: T): Promise<boolean>;
  export function take<T>(ch: MediumChan<T>): Promise<T | typeof CLOSED>;
  export function close<T>(ch: MediumChan<T>): MediumChan<T>;
}
