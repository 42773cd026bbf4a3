import { describe, expect, it } from 'vitest';
import { DdpmError, type Engine } from '../src/index.js';
import { conv2dWinograd, winogradFilter, winogradFilterSize, type WinogradTile } from '../src/kernels/winograd.js';
import { randomF32, sameBits } from './helpers/rng.js';
import { conv2dRef } from './reference/conv.js';
import { type RefWinogradGeometry, winogradConvRef } from './reference/winograd.js';
import { useEngines } from './helpers/engines.js';

const make = useEngines();
type Case = RefWinogradGeometry & { bias: boolean };
const geo = (N: number, Cin: number, H: number, W: number, Cout: number, bias = true): Case => ({
  N,
  Cin,
  H,
  W,
  Cout,
  bias,
});

// Odd sizes (partial tiles on the right and bottom for m = 2 and 4, tails of 1–3 tiles per row of four),
// 1×1 and 1×W images, batch 1 and 3, channels not multiples of 4, Cin = 260 spans two GEMM K blocks,
// W = 16, 21, 33, 47 take the vector de-interleave of the input rows and interleave of the output rows.
const CASES: Case[] = [
  geo(1, 3, 7, 9, 5),
  geo(3, 5, 13, 11, 7, false),
  geo(1, 6, 1, 1, 3),
  geo(2, 7, 1, 21, 6),
  geo(1, 5, 16, 16, 9),
  geo(3, 17, 6, 33, 5),
  geo(1, 260, 5, 6, 3),
  geo(2, 9, 14, 14, 33, false),
  geo(1, 3, 5, 47, 4),
];

const refGeo = (c: Case) => ({ ...c, k: 3, stride: 1, pad: [1, 1, 1, 1] as [number, number, number, number] });

/**
 * The rounding bound we hold the kernel to, element by element: |y − y_exact| ≤ (Cin + 24)·2⁻²⁴·S, where
 * S is the same Winograd computation over absolute values (|Bᵀ| |d| |B|, |G| |g| |Gᵀ|, |Aᵀ| · |A|). Each
 * rounding is at most 2⁻²⁴ of the magnitude it rounds, and a value passes ≤ Cin − 1 additions in the
 * channel sum plus a fixed number of operations in the transforms (input ≤ 2·3 adds and 2 multiplies,
 * output ≤ 2·5 adds and 2 multiplies, filter rounding, bias): 24 covers them with margin. S is larger than
 * the direct conv's Σ|x·w| — by the transforms' growth, 6–14× for F(2,3), 27–630× for F(4,3).
 */
function check(
  c: Case,
  m: WinogradTile,
  got: Float32Array,
  xv: Float32Array,
  wv: Float32Array,
  bv?: Float32Array,
): number {
  const want = conv2dRef(refGeo(c), xv, wv, bv).y;
  const S = winogradConvRef(m, c, xv, wv, bv, undefined, true);
  let worst = 0;
  for (let i = 0; i < want.length; i++) {
    const e = Math.abs(got[i] - want[i]) / ((c.Cin + 24) * 2 ** -24 * Math.max(S[i], 1e-30));
    if (!(e <= worst)) worst = Number.isNaN(e) ? Infinity : e;
  }
  return worst;
}

function run(e: Engine, c: Case, m: WinogradTile, seed: number, opts: { accumulate?: boolean; pre?: boolean } = {}) {
  const mark = e.arena.mark();
  const xv = randomF32(c.N * c.Cin * c.H * c.W, seed),
    wv = randomF32(c.Cout * c.Cin * 9, seed + 1),
    bv = randomF32(c.Cout, seed + 2),
    y0 = randomF32(c.N * c.Cout * c.H * c.W, seed + 3);
  const x = e.upload(xv, xv.length, 'x'),
    weight = e.upload(wv, wv.length, 'weight'),
    bias = c.bias ? e.upload(bv, c.Cout, 'bias') : undefined;
  // Overwriting must not read y: NaN would show.
  const y = e.upload(opts.accumulate ? y0 : new Float32Array(y0.length).fill(NaN), y0.length, 'y');
  let filter;
  if (opts.pre) {
    filter = e.alloc(winogradFilterSize(m, c.Cout, c.Cin), 'filter');
    winogradFilter(e, { tile: m, Cout: c.Cout, Cin: c.Cin, weight, filter });
  }
  conv2dWinograd(e, {
    tile: m,
    ...c,
    x,
    weight: opts.pre ? undefined : weight,
    filter,
    bias,
    y,
    accumulate: opts.accumulate,
  });
  const got = e.read(y);
  e.arena.release(mark);
  return { got, xv, wv, bv: c.bias ? bv : undefined, y0 };
}

describe('winograd reference', () => {
  it('the float64 Winograd reference equals the direct convolution (F(2,3) and F(4,3))', () => {
    for (const c of [geo(2, 3, 7, 9, 2), geo(1, 2, 5, 4, 3), geo(1, 1, 1, 1, 1)]) {
      const xv = randomF32(c.N * c.Cin * c.H * c.W, 5),
        wv = randomF32(c.Cout * c.Cin * 9, 6),
        bv = randomF32(c.Cout, 7);
      const want = conv2dRef(refGeo(c), xv, wv, bv);
      for (const m of [2, 4] as const) {
        const got = winogradConvRef(m, c, xv, wv, bv);
        for (let i = 0; i < got.length; i++)
          expect(Math.abs(got[i] - want.y[i])).toBeLessThan(1e-12 * want.scale[i] + 1e-300);
      }
    }
  });
});

describe('conv2dWinograd', () => {
  for (const simd of ['simd', 'relaxed'] as const) {
    for (const m of [2, 4] as const) {
      it(`${simd} F(${m}×${m},3×3): matches the direct conv within the rounding bound, bit-identical for 1–3 threads`, async () => {
        const engines = [
          await make({ threads: 1, simd }),
          await make({ threads: 2, simd }),
          await make({ threads: 3, simd }),
        ];
        CASES.forEach((c, n) => {
          const opts = { accumulate: n % 3 === 1, pre: n % 2 === 0 };
          const runs = engines.map((e) => run(e, c, m, 300 + 10 * n, opts));
          const tag = `${JSON.stringify(c)} ${JSON.stringify(opts)}`;
          const r = runs[0];
          // accumulate: y = y0 + conv, so compare conv = y − y0 against the reference
          const conv = opts.accumulate ? r.got.map((v, i) => v - r.y0[i]) : r.got;
          const ratio = check(c, m, Float32Array.from(conv), r.xv, r.wv, r.bv);
          // y − y0 adds one rounding of |y0| + |conv|: allow it only when accumulating (y0 ∈ [−1, 1)).
          expect(ratio, tag).toBeLessThanOrEqual(opts.accumulate ? 1.5 : 1);
          expect(sameBits(runs[1].got, r.got), `2 threads ${tag}`).toBe(true);
          expect(sameBits(runs[2].got, r.got), `3 threads ${tag}`).toBe(true);
        });
      });
    }
  }

  it('a pre-transformed filter gives the same bits as transforming per call', async () => {
    const e = await make({ threads: 2, simd: 'relaxed' });
    for (const m of [2, 4] as const) {
      const c = geo(2, 5, 9, 10, 7);
      expect(sameBits(run(e, c, m, 11, { pre: true }).got, run(e, c, m, 11).got)).toBe(true);
    }
  });

  it('rejects bad arguments with typed errors before any kernel runs', async () => {
    const e = await make({ threads: 1 });
    const x = e.alloc(2 * 3 * 4 * 4, 'x'),
      w = e.alloc(5 * 3 * 9, 'w'),
      y = e.alloc(2 * 5 * 4 * 4, 'y');
    const base = { tile: 2 as WinogradTile, N: 2, Cin: 3, H: 4, W: 4, Cout: 5, x, weight: w, y };
    const code = (f: () => void) => {
      try {
        f();
      } catch (err) {
        expect(err).toBeInstanceOf(DdpmError);
        return (err as DdpmError).code;
      }
      return 'none';
    };
    expect(code(() => conv2dWinograd(e, { ...base, tile: 3 as WinogradTile }))).toBe('INVALID_ARGUMENT');
    expect(code(() => conv2dWinograd(e, { ...base, Cout: 6 }))).toBe('SHAPE_MISMATCH');
    expect(code(() => conv2dWinograd(e, { ...base, weight: undefined }))).toBe('INVALID_ARGUMENT');
    expect(code(() => conv2dWinograd(e, { ...base, y: x }))).toBe('SHAPE_MISMATCH');
    expect(code(() => conv2dWinograd(e, { ...base, Cin: 1, Cout: 3, weight: e.alloc(27, 'w3'), y: x }))).toBe(
      'INVALID_ARGUMENT',
    ); // y aliases x
    expect(code(() => winogradFilter(e, { tile: 4, Cout: 5, Cin: 3, weight: w, filter: e.alloc(10, 'f') }))).toBe(
      'SHAPE_MISMATCH',
    );
  });
});
