/**
 * Conformance, randomized (fast-check): random pipelines keep every input exactly once (or
 * counted as dropped by a filter), keep order where promised, and after a random failure or
 * abort reject with that error (or signal.reason), with nothing parked and the source closed.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { batch, filter, flatMap, map, pipeline, tap, type Stage } from "../../src/pipeline/index.js";
import { assertNothingParked } from "./helpers.js";

type Spec =
  | { kind: "map"; concurrency: number; ordered: boolean; buffer: number; delay: number }
  | { kind: "filter"; mod: number; buffer: number }
  | { kind: "rebatch"; size: number; buffer: number }
  | { kind: "tap"; buffer: number };

const spec: fc.Arbitrary<Spec> = fc.oneof(
  fc.record({ kind: fc.constant("map" as const), concurrency: fc.integer({ min: 1, max: 6 }), ordered: fc.boolean(), buffer: fc.integer({ min: 0, max: 4 }), delay: fc.integer({ min: 0, max: 2 }) }),
  fc.record({ kind: fc.constant("filter" as const), mod: fc.integer({ min: 2, max: 5 }), buffer: fc.integer({ min: 0, max: 4 }) }),
  fc.record({ kind: fc.constant("rebatch" as const), size: fc.integer({ min: 1, max: 7 }), buffer: fc.integer({ min: 0, max: 4 }) }),
  fc.record({ kind: fc.constant("tap" as const), buffer: fc.integer({ min: 0, max: 4 }) }),
);

const tick = (n: number): Promise<void> =>
  n === 0 ? Promise.resolve() : new Promise<void>((r) => (n === 1 ? setImmediate(r) : setTimeout(r, 1)));

/** The stages of a spec (rebatch = batch then flatten, so items stay numbers) and what it keeps. */
function build(specs: Spec[], failAt: number | undefined): { stages: Stage<number, number>[] | unknown[]; keeps: (x: number) => boolean; ordered: boolean } {
  const stages: unknown[] = [];
  const preds: ((x: number) => boolean)[] = [];
  let ordered = true;
  for (const s of specs) {
    if (s.kind === "map") {
      if (!s.ordered && s.concurrency > 1) ordered = false;
      stages.push(map(async (x: number) => {
        await tick(s.delay);
        if (x === failAt) throw new Error(`fail at ${x}`);
        return x;
      }, { concurrency: s.concurrency, ordered: s.ordered, buffer: s.buffer }));
    } else if (s.kind === "filter") {
      const m = s.mod;
      preds.push((x) => x % m !== 1);
      stages.push(filter((x: number) => x % m !== 1, { buffer: s.buffer }));
    } else if (s.kind === "rebatch") {
      stages.push(batch<number>({ size: s.size, buffer: s.buffer }));
      stages.push(flatMap((b: number[]) => b, { buffer: s.buffer }));
    } else {
      stages.push(tap(() => {}, { buffer: s.buffer }));
    }
  }
  return { stages, keeps: (x) => preds.every((p) => p(x)), ordered };
}

test("random pipelines: every input exactly once (or dropped by a filter), order where promised", { timeout: 120_000 }, async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(spec, { minLength: 1, maxLength: 5 }), fc.integer({ min: 0, max: 60 }), async (specs, n) => {
      const { stages, keeps, ordered } = build(specs, undefined);
      const input = Array.from({ length: n }, (_, i) => i);
      const out: number[] = [];
      for await (const v of pipeline(input, ...(stages as Stage<unknown, unknown>[])) as AsyncIterable<number>) out.push(v);
      const expected = input.filter(keeps);
      if (ordered) assert.deepEqual(out, expected);
      else assert.deepEqual([...out].sort((a, b) => a - b), expected);
      assertNothingParked("after a random run");
    }),
    { numRuns: 40 },
  );
});

test("random failure or abort: rejects with that error (or signal.reason), nothing parked, source closed", { timeout: 120_000 }, async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(spec, { minLength: 1, maxLength: 4 }).filter((s) => s.some((x) => x.kind === "map")),
      fc.integer({ min: 0, max: 40 }),
      fc.boolean(),
      async (specs, at, byAbort) => {
        let closed = false;
        let pulled = 0;
        async function* source(): AsyncGenerator<number> {
          try {
            for (;;) yield pulled++;
          } finally {
            closed = true;
          }
        }
        // Fail at an item that every filter keeps, so the failing map sees it.
        const { stages, keeps } = build(specs, undefined);
        let failAt = at;
        while (!keeps(failAt)) failAt++;
        const built = byAbort ? stages : build(specs, failAt).stages;
        const ac = new AbortController();
        const reason = new Error("random abort");
        const p = pipeline(source(), ...(built as Stage<unknown, unknown>[]), tap((x: number) => {
          if (byAbort && x >= at) ac.abort(reason);
        }) as Stage<unknown, unknown>);
        let err: unknown;
        try {
          await p.run({ signal: ac.signal });
        } catch (e) {
          err = e;
        }
        if (byAbort) assert.equal(err, reason);
        else assert.match(String((err as Error)?.message), new RegExp(`^fail at ${failAt}$`));
        assert.ok(closed, "the source was closed");
        assertNothingParked("after a random failure");
      },
    ),
    { numRuns: 40 },
  );
});
