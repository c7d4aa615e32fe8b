/**
 * Port of Go's `test/chan/powser1.go`: Doug McIlroy's power series, where a series is a pair of
 * channels (a demand channel `req` and a data channel `dat`) served by goroutines, and every
 * operation on series (add, multiply, differentiate, integrate, exponentiate, substitute) is a
 * network of goroutines that compute coefficients on demand. It exercises unbuffered hand-offs,
 * selects over send and receive cases with nil (null) channels switched in and out, and the
 * `split` goroutine chain.
 *
 * Go's program exits with its goroutines blocked; here they run in a `Scope` (./helpers.ts):
 * every channel operation takes the scope's signal, and `scope.cancel()` stops them all.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Channel, recv, select, send } from "../../../src/index.js";
import { assertNothingParked, Scope } from "./helpers.js";

/** A rational number; a denominator of zero marks the end of a series. */
interface Rat {
  readonly num: number;
  readonly den: number;
}

/** A demand channel: send on `req` to ask for the next coefficient, then receive it on `dat`. */
interface Dch {
  readonly req: Channel<number>;
  readonly dat: Channel<Rat>;
}
type Dch2 = [Dch, Dch];
type PS = Dch;

// Integer arithmetic as Go's int64 (truncating division); the values here stay far below 2^53.
const quo = (a: number, b: number): number => Math.trunc(a / b);
function gcd(u: number, v: number): number {
  if (u < 0) return gcd(-u, v);
  if (u === 0) return v;
  return gcd(v % u, u);
}
function i2tor(u: number, v: number): Rat {
  const g = gcd(u, v);
  return v > 0 ? { num: quo(u, g), den: quo(v, g) } : { num: quo(-u, g), den: quo(-v, g) };
}
const itor = (u: number): Rat => i2tor(u, 1);
const zero = itor(0);
const one = itor(1);
const finis = i2tor(1, 0);
const end = (u: Rat): number => (u.den === 0 ? 1 : 0);
function add(u: Rat, v: Rat): Rat {
  const g = gcd(u.den, v.den);
  return i2tor(u.num * quo(v.den, g) + v.num * quo(u.den, g), u.den * quo(v.den, g));
}
function mul(u: Rat, v: Rat): Rat {
  const g1 = gcd(u.num, v.den);
  const g2 = gcd(u.den, v.num);
  return { num: quo(u.num, g1) * quo(v.num, g2), den: quo(u.den, g2) * quo(v.den, g1) };
}
const neg = (u: Rat): Rat => i2tor(-u.num, u.den);
const fmt = (u: Rat): string => (u.den === 1 ? `${u.num}` : `${u.num}/${u.den}`);

/** The power-series package of powser1.go, its goroutines confined to one scope. */
class PowerSeries {
  seqno = 0;
  readonly Ones: PS;
  readonly Twos: PS;

  constructor(readonly scope: Scope) {
    this.Ones = this.Rep(one);
    this.Twos = this.Rep(itor(2));
  }

  get #signal(): AbortSignal {
    return this.scope.signal;
  }

  mkdch(): Dch {
    return { req: new Channel<number>(), dat: new Channel<Rat>() };
  }

  mkdch2(): Dch2 {
    return [this.mkdch(), this.mkdch()];
  }

  async #rcv<T>(c: Channel<T>): Promise<T> {
    return (await c.recv({ signal: this.#signal })).value!;
  }

  async #snd<T>(c: Channel<T>, v: T): Promise<void> {
    await c.send(v, { signal: this.#signal });
  }

  #go(fn: () => Promise<void>): void {
    this.scope.go(fn);
  }

  // split reads a single demand channel and replicates its output onto two, which may be read
  // at different rates. A goroutine is created at first demand for a value and dies after the
  // value has been sent to both outputs. The newest generation serves out[0]; the oldest serves
  // out[1]; `wait` tells the next newer generation to begin serving out[1]. `out` is shared by
  // every generation, which swap its two entries in place (as Go's `*dch2`).
  async dosplit(input: Dch, out: Dch2, wait: Channel<number>): Promise<void> {
    const signal = this.#signal;
    let both = false; // do not serve both channels
    const r = await select([recv(out[0].req), recv(wait)], { signal });
    if (r.index === 1) {
      both = true;
      const r2 = await select([recv(out[0].req), recv(out[1].req)], { signal });
      if (r2.index === 1) [out[0], out[1]] = [out[1], out[0]];
    }
    this.seqno++;
    await this.#snd(input.req, this.seqno);
    const release = new Channel<number>();
    this.#go(() => this.dosplit(input, out, release));
    const dat = await this.#rcv(input.dat);
    await this.#snd(out[0].dat, dat);
    if (!both) await this.#rcv(wait);
    await this.#rcv(out[1].req);
    await this.#snd(out[1].dat, dat);
    await this.#snd(release, 0);
  }

  async split(input: Dch, out: Dch2): Promise<void> {
    const release = new Channel<number>();
    this.#go(() => this.dosplit(input, out, release));
    await this.#snd(release, 0);
  }

  async put(dat: Rat, out: Dch): Promise<void> {
    await this.#rcv(out.req);
    await this.#snd(out.dat, dat);
  }

  async get(input: Dch): Promise<Rat> {
    this.seqno++;
    await this.#snd(input.req, this.seqno);
    return this.#rcv(input.dat);
  }

  /** One value from each of two demand channels: asks both, and takes the answers as they come. */
  async get2(in0: Dch, in1: Dch): Promise<[Rat, Rat]> {
    const req: (Channel<number> | null)[] = [in0.req, in1.req];
    const dat: (Channel<Rat> | null)[] = [null, null];
    const out: [Rat, Rat] = [zero, zero];
    for (let n = 4; n > 0; n--) {
      this.seqno++;
      const r = await select([send(req[0], this.seqno), send(req[1], this.seqno), recv(dat[0]), recv(dat[1])], {
        signal: this.#signal,
      });
      switch (r.index) {
        case 0:
          dat[0] = in0.dat;
          req[0] = null;
          break;
        case 1:
          dat[1] = in1.dat;
          req[1] = null;
          break;
        case 2:
          out[0] = r.value as Rat;
          dat[0] = null;
          break;
        case 3:
          out[1] = r.value as Rat;
          dat[1] = null;
          break;
      }
    }
    return out;
  }

  async copy(input: Dch, out: Dch): Promise<never> {
    for (;;) {
      await this.#rcv(out.req);
      await this.#snd(out.dat, await this.get(input));
    }
  }

  async repeat(dat: Rat, out: Dch): Promise<never> {
    for (;;) await this.put(dat, out);
  }

  Split(U: PS): Dch2 {
    const UU = this.mkdch2();
    this.#go(() => this.split(U, UU));
    return UU;
  }

  Add(U: PS, V: PS): PS {
    const Z = this.mkdch();
    this.#go(async () => {
      for (;;) {
        await this.#rcv(Z.req);
        const uv = await this.get2(U, V);
        switch (end(uv[0]) + 2 * end(uv[1])) {
          case 0:
            await this.#snd(Z.dat, add(uv[0], uv[1]));
            break;
          case 1:
            await this.#snd(Z.dat, uv[1]);
            await this.copy(V, Z);
            break;
          case 2:
            await this.#snd(Z.dat, uv[0]);
            await this.copy(U, Z);
            break;
          case 3:
            await this.#snd(Z.dat, finis);
            break;
        }
      }
    });
    return Z;
  }

  Cmul(c: Rat, U: PS): PS {
    const Z = this.mkdch();
    this.#go(async () => {
      let done = false;
      while (!done) {
        await this.#rcv(Z.req);
        const u = await this.get(U);
        if (end(u) !== 0) done = true;
        else await this.#snd(Z.dat, mul(c, u));
      }
      await this.#snd(Z.dat, finis);
    });
    return Z;
  }

  Sub(U: PS, V: PS): PS {
    return this.Add(U, this.Cmul(neg(one), V));
  }

  Rep(c: Rat): PS {
    const Z = this.mkdch();
    this.#go(() => this.repeat(c, Z));
    return Z;
  }

  // Multiply: let U = u + x*UU, V = v + x*VV; then UV = u*v + x*(u*VV+v*UU) + x*x*UU*VV.
  Mul(U: PS, V: PS): PS {
    const Z = this.mkdch();
    this.#go(async () => {
      await this.#rcv(Z.req);
      const uv = await this.get2(U, V);
      if (end(uv[0]) !== 0 || end(uv[1]) !== 0) {
        await this.#snd(Z.dat, finis);
      } else {
        await this.#snd(Z.dat, mul(uv[0], uv[1]));
        const UU = this.Split(U);
        const VV = this.Split(V);
        const W = this.Add(this.Cmul(uv[0], VV[0]), this.Cmul(uv[1], UU[0]));
        await this.#rcv(Z.req);
        await this.#snd(Z.dat, await this.get(W));
        await this.copy(this.Add(W, this.Mul(UU[1], VV[1])), Z);
      }
    });
    return Z;
  }

  Diff(U: PS): PS {
    const Z = this.mkdch();
    this.#go(async () => {
      await this.#rcv(Z.req);
      let u = await this.get(U);
      if (end(u) === 0) {
        for (let i = 1, done = false; !done; i++) {
          u = await this.get(U);
          if (end(u) !== 0) {
            done = true;
          } else {
            await this.#snd(Z.dat, mul(itor(i), u));
            await this.#rcv(Z.req);
          }
        }
      }
      await this.#snd(Z.dat, finis);
    });
    return Z;
  }

  Integ(c: Rat, U: PS): PS {
    const Z = this.mkdch();
    this.#go(async () => {
      await this.put(c, Z);
      for (let i = 1, done = false; !done; i++) {
        await this.#rcv(Z.req);
        const u = await this.get(U);
        if (end(u) !== 0) done = true;
        await this.#snd(Z.dat, mul(i2tor(1, i), u));
      }
      await this.#snd(Z.dat, finis);
    });
    return Z;
  }

  // Exponential of a power series with constant term 0: Z = exp(U), DZ = Z*DU, integrate.
  async Exp(U: PS): Promise<PS> {
    const ZZ = this.mkdch2();
    await this.split(this.Integ(one, this.Mul(ZZ[0], this.Diff(U))), ZZ);
    return ZZ[1];
  }

  // Monomial substitution U(c x^n): each Ui is multiplied by c^i and followed by n-1 zeros.
  MonSubst(U: PS, c0: Rat, n: number): PS {
    const Z = this.mkdch();
    this.#go(async () => {
      let c = one;
      for (;;) {
        await this.#rcv(Z.req);
        const u = await this.get(U);
        await this.#snd(Z.dat, mul(u, c));
        c = mul(c, c0);
        if (end(u) !== 0) {
          await this.#snd(Z.dat, finis);
          break;
        }
        for (let i = 1; i < n; i++) {
          await this.#rcv(Z.req);
          await this.#snd(Z.dat, zero);
        }
      }
    });
    return Z;
  }

  async check(U: PS, c: Rat, count: number, str: string): Promise<void> {
    for (let i = 0; i < count; i++) {
      const r = await this.get(U);
      assert.ok(r.num === c.num && r.den === c.den, `${str}: got ${fmt(r)}, should get ${fmt(c)}`);
    }
  }

  async checka(U: PS, a: readonly Rat[], str: string): Promise<void> {
    for (const [i, c] of a.entries()) await this.check(U, c, 1, `${str}[${i}]`);
  }
}

const N = 10;

test("powser1.go: power series as networks of goroutines (Ones, Add, Diff, Integ, Cmul, Sub, Mul, Exp, MonSubst)", async () => {
  const scope = new Scope();
  const ps = new PowerSeries(scope);
  const { Ones, Twos } = ps;
  await ps.check(Ones, one, 5, "Ones");
  await ps.check(ps.Add(Ones, Ones), itor(2), 0, "Add Ones Ones"); // (checks nothing, as in Go)
  await ps.check(ps.Add(Ones, Twos), itor(3), 0, "Add Ones Twos");
  await ps.checka(ps.Diff(Ones), Array.from({ length: N }, (_, i) => itor(i + 1)), "Diff"); // 1 2 3 4 5
  await ps.checka(ps.Integ(zero, Ones), [zero, ...Array.from({ length: N - 1 }, (_, i) => i2tor(1, i + 1))], "Integ"); // 0 1 1/2 1/3
  await ps.check(ps.Cmul(neg(one), Twos), itor(-2), 10, "CMul"); // -2 -2 -2
  await ps.check(ps.Sub(Ones, Twos), itor(-1), 0, "Sub Ones Twos");
  await ps.checka(ps.Mul(Ones, Ones), Array.from({ length: N }, (_, i) => itor(i + 1)), "Mul"); // 1 2 3 4 5
  const e = [itor(1), itor(1), i2tor(3, 2), i2tor(13, 6), i2tor(73, 24), i2tor(167, 40), i2tor(4051, 720), i2tor(37633, 5040), i2tor(43817, 4480), i2tor(4596553, 362880)];
  await ps.checka(await ps.Exp(Ones), e, "Exp"); // 1 1 3/2 13/6 73/24
  const at: Rat[] = [];
  for (let c = 1, i = 0; i < N; i++) {
    if (i % 2 === 0) {
      at.push(zero);
    } else {
      at.push(i2tor(c, i));
      c *= -1;
    }
  }
  await ps.checka(ps.Integ(zero, ps.MonSubst(Ones, neg(one), 2)), at, "ATan"); // 0 1 0 -1/3 0 1/5
  await scope.cancel();
  assertNothingParked();
});
