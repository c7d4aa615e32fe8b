/**
 * Ports of Go's `test/chan/sieve1.go` and `sieve2.go`: prime sieves built of goroutines that run
 * forever. Go's program exits with them still blocked; here they run in a `Scope` (see
 * ./helpers.ts): every channel operation takes the scope's signal, and `scope.cancel()` stops
 * them all, so nothing is left parked.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Channel, recv, select, send, type SelectCase } from "../../../src/index.js";
import { assertNothingParked, Scope, testSeed, withSeededRandom } from "./helpers.js";

const PRIMES = [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97];

test("sieve1.go: a daisy chain of filter goroutines yields the primes below 100", async () => {
  const scope = new Scope();
  // Sends 2, 3, 4, ... to ch.
  const generate = async (ch: Channel<number>, signal: AbortSignal) => {
    for (let i = 2; ; i++) await ch.send(i, { signal });
  };
  // Copies the values from input to out, removing those divisible by prime.
  const filter = async (input: Channel<number>, out: Channel<number>, prime: number, signal: AbortSignal) => {
    for await (const i of input.values({ signal })) if (i % prime !== 0) await out.send(i, { signal });
  };
  const sieve = async (primes: Channel<number>, signal: AbortSignal) => {
    let ch = new Channel<number>();
    const first = ch;
    scope.go((s) => generate(first, s));
    for (;;) {
      const prime = (await ch.recv({ signal })).value!;
      await primes.send(prime, { signal });
      const ch1 = new Channel<number>();
      const input = ch;
      scope.go((s) => filter(input, ch1, prime, s));
      ch = ch1;
    }
  };
  const primes = new Channel<number>();
  scope.go((s) => sieve(primes, s));
  for (const want of PRIMES) assert.equal((await primes.recv()).value, want);
  await scope.cancel();
  assertNothingParked();
});

test("sieve2.go: an Eratosthenes sieve of merged multiples, with a feedback loop through a proxy, yields the primes below 100", async () => {
  await withSeededRandom(testSeed(0x51e7e), async () => {
    const scope = new Scope();
    const { signal } = scope;

    // A channel of odd numbers, starting from 5.
    const odds = (): Channel<number> => {
      const out = new Channel<number>(50);
      scope.go(async (s) => {
        for (let n = 5; ; n += 2) await out.send(n, { signal: s });
      });
      return out;
    };
    // A channel of the odd multiples of the prime p, starting from p*p.
    const multiples = (p: number): Channel<number> => {
      const out = new Channel<number>(10);
      scope.go(async (s) => {
        for (let n = p * p; ; n += 2 * p) await out.send(n, { signal: s });
      });
      return out;
    };
    // A channel that serves as a sending proxy to `out`: a goroutine buffers what it receives in
    // an expanding queue, so that sending to the proxy never blocks for long. (Go's version grows
    // a ring without bound; this test asserts it stays small: primes below 100 feed it.)
    let proxyPeak = 0;
    const sendproxy = (out: Channel<number>): Channel<number> => {
      const proxy = new Channel<number>(10);
      scope.go(async (s) => {
        const queue: number[] = [];
        let head = 0;
        for (;;) {
          const cases: SelectCase[] = [recv(proxy), send(head < queue.length ? out : null, queue[head])];
          const r = await select(cases, { signal: s });
          if (r.index === 0) {
            queue.push(r.value as number);
            proxyPeak = Math.max(proxyPeak, queue.length - head);
            assert.ok(queue.length - head <= 100, "proxy queue out of bounds");
          } else if (++head === queue.length) {
            queue.length = head = 0;
          }
        }
      });
      return proxy;
    };

    // The output values.
    const out = new Channel<number>(10);
    await out.send(2);
    await out.send(3);
    // The channel of all composites to be eliminated, in increasing order.
    const composites = new Channel<number>(50);
    // The feedback loop.
    const primes = new Channel<number>(10);
    await primes.send(3);

    // Merge the channels of multiples of `primes` into `composites` (a min-heap keyed by head).
    scope.go(async (s) => {
      type PeekCh = { head: number; ch: Channel<number> };
      const heap: PeekCh[] = []; // one entry per prime <= sqrt(largest candidate): a handful
      const pop = (): PeekCh => {
        let m = 0;
        for (let i = 1; i < heap.length; i++) if (heap[i]!.head < heap[m]!.head) m = i;
        return heap.splice(m, 1)[0]!;
      };
      const next = async (c: Channel<number>) => (await c.recv({ signal: s })).value!;
      let min = 15;
      for (;;) {
        const m = multiples(await next(primes));
        const head = await next(m);
        while (min < head) {
          await composites.send(min, { signal: s });
          const minchan = pop();
          min = minchan.head;
          minchan.head = await next(minchan.ch);
          heap.push(minchan);
        }
        while (min === head) {
          const minchan = pop();
          min = minchan.head;
          minchan.head = await next(minchan.ch);
          heap.push(minchan);
        }
        await composites.send(head, { signal: s });
        heap.push({ head: await next(m), ch: m });
      }
    });

    // Sieve out `composites` from the candidates.
    scope.go(async (s) => {
      const primesProxy = sendproxy(primes);
      const candidates = odds();
      let p = (await candidates.recv({ signal: s })).value!;
      for (;;) {
        const c = (await composites.recv({ signal: s })).value!;
        while (p < c) {
          await primesProxy.send(p, { signal: s });
          await out.send(p, { signal: s });
          p = (await candidates.recv({ signal: s })).value!;
        }
        if (p === c) p = (await candidates.recv({ signal: s })).value!;
      }
    });

    for (const want of PRIMES) assert.equal((await out.recv({ signal })).value, want);
    await scope.cancel();
    assert.ok(proxyPeak > 0, "the proxy buffered values");
    assertNothingParked();
  });
});
