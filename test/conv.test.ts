import { describe, expect, it } from 'vitest';
import { DdpmError, type Engine, kernels } from '../src/index.js';
import { randomF32, sameBits } from './helpers/rng.js';
import { conv2dBackwardRef, conv2dRef, outSize, type RefConvGeometry } from './reference/conv.js';
import { useEngines } from './helpers/engines.js';

const make = useEngines();
type Case = RefConvGeometry & { bias: boolean };
const geo = (
  N: number,
  Cin: number,
  H: number,
  W: number,
  Cout: number,
  k: number,
  stride: number,
  pad: number[],
  bias = true,
): Case => ({ N, Cin, H, W, Cout, k, stride, pad: pad as Case['pad'], bias });

// Odd sizes, odd channel counts, batch 1 and 5, symmetric and diffusers' (0, 0, 1, 1) padding; the
// 16/32-wide ones take the one-output-row packing path, Cin = 33 with 3×3 spans two K blocks.
const CASES: Case[] = [
  geo(1, 3, 17, 13, 5, 3, 1, [1, 1, 1, 1]),
  geo(5, 5, 17, 13, 33, 3, 2, [0, 0, 1, 1], false),
  geo(5, 33, 7, 9, 3, 1, 1, [0, 0, 0, 0]),
  geo(1, 5, 7, 9, 5, 1, 2, [0, 0, 0, 0], false),
  geo(1, 33, 1, 1, 33, 3, 1, [1, 1, 1, 1]),
  geo(5, 3, 7, 9, 5, 3, 2, [1, 1, 1, 1]),
  geo(1, 5, 7, 9, 3, 3, 1, [0, 0, 0, 0]),
  geo(2, 33, 16, 16, 17, 3, 1, [1, 1, 1, 1]),
  geo(1, 3, 32, 31, 5, 3, 2, [0, 0, 1, 1]),
  geo(2, 5, 33, 32, 3, 3, 2, [0, 0, 1, 1], false),
  geo(1, 5, 8, 8, 3, 1, 1, [0, 0, 0, 0]),
  // batch folded into the GEMM columns: tiles of 8 columns straddle several tiny images
  geo(5, 3, 1, 1, 5, 3, 1, [1, 1, 1, 1]),
  geo(5, 5, 2, 3, 3, 1, 1, [0, 0, 0, 0], false),
  // the shipped network's channel counts: leftover-row tiles of 4 (Cout 16 = 6 + 6 + 4) and 2 (Cout 32 =
  // 5·6 + 2, Cout 8 = 6 + 2, Cout 1), the width-keeping panels of 14×14 and 7×7 images
  geo(2, 16, 14, 14, 32, 3, 1, [1, 1, 1, 1]),
  geo(3, 32, 7, 7, 16, 3, 1, [1, 1, 1, 1]),
  geo(2, 4, 7, 7, 8, 3, 1, [1, 1, 1, 1], false),
  geo(2, 16, 12, 10, 1, 3, 1, [1, 1, 1, 1]),
];

const sizes = (c: Case) => {
  const { Ho, Wo } = outSize(c);
  return { Ho, Wo, x: c.N * c.Cin * c.H * c.W, w: c.Cout * c.Cin * c.k * c.k, y: c.N * c.Cout * Ho * Wo };
};
const args = (c: Case) => ({
  N: c.N,
  Cin: c.Cin,
  H: c.H,
  W: c.W,
  Cout: c.Cout,
  kernel: c.k as 1 | 3,
  stride: c.stride as 1 | 2,
  pad: c.pad,
});

/** max over i of |got − want| / scale, which float32 keeps below (terms + 4)·2⁻²⁴. */
function relErr(got: ArrayLike<number>, want: ArrayLike<number>, scale: ArrayLike<number>): number {
  let worst = 0;
  for (let i = 0; i < want.length; i++) {
    const e = Math.abs(got[i] - want[i]) / Math.max(scale[i], 1e-30);
    if (!(e <= worst)) worst = Number.isNaN(e) ? Infinity : e;
  }
  return worst;
}

function forward(e: Engine, c: Case, seed: number) {
  const s = sizes(c);
  const mark = e.arena.mark();
  const xv = randomF32(s.x, seed),
    wv = randomF32(s.w, seed + 1),
    bv = randomF32(c.Cout, seed + 2);
  const x = e.upload(xv, s.x, 'x'),
    weight = e.upload(wv, s.w, 'weight'),
    bias = e.upload(bv, c.Cout, 'bias');
  const y = e.upload(new Float32Array(s.y).fill(NaN), s.y, 'y');
  kernels.conv2d(e, { ...args(c), x, weight, bias: c.bias ? bias : undefined, y });
  const got = e.read(y);
  e.arena.release(mark);
  return { got, xv, wv, bv };
}

function backward(e: Engine, c: Case, seed: number, accumulate: boolean, chunkFloats?: number) {
  const s = sizes(c);
  const mark = e.arena.mark();
  const xv = randomF32(s.x, seed),
    wv = randomF32(s.w, seed + 1),
    dyv = randomF32(s.y, seed + 2);
  const dx0 = randomF32(s.x, seed + 3),
    dw0 = randomF32(s.w, seed + 4),
    db0 = randomF32(c.Cout, seed + 5);
  const x = e.upload(xv, s.x, 'x'),
    weight = e.upload(wv, s.w, 'weight'),
    dy = e.upload(dyv, s.y, 'dy');
  // Without accumulation the old contents must not matter: NaN would show.
  const init = (v: Float32Array, name: string) =>
    e.upload(accumulate ? v : new Float32Array(v.length).fill(NaN), v.length, name);
  const dx = init(dx0, 'dx'),
    dweight = init(dw0, 'dweight'),
    dbias = init(db0, 'dbias');
  kernels.conv2dBackward(e, { ...args(c), x, weight, dy, dx, dweight, dbias, accumulate, chunkFloats });
  const got = { dx: e.read(dx), dw: e.read(dweight), db: e.read(dbias) };
  e.arena.release(mark);
  return { got, xv, wv, dyv, dx0, dw0, db0 };
}

describe('conv2d', () => {
  for (const simd of ['simd', 'relaxed'] as const) {
    it(`${simd}: forward matches the float64 reference (1×1/3×3, stride 1/2, odd sizes, padding)`, async () => {
      const e = await make({ threads: simd === 'simd' ? 1 : 2, simd });
      CASES.forEach((c, n) => {
        const { got, xv, wv, bv } = forward(e, c, 100 + 10 * n);
        const ref = conv2dRef(c, xv, wv, c.bias ? bv : undefined);
        expect(relErr(got, ref.y, ref.scale), JSON.stringify(c)).toBeLessThanOrEqual(
          (c.Cin * c.k * c.k + 4) * 2 ** -24,
        );
      });
    });

    it(`${simd}: backward (dx, dweight, dbias) matches the reference, accumulating or overwriting`, async () => {
      const e = await make({ threads: simd === 'simd' ? 2 : 1, simd });
      CASES.forEach((c, n) => {
        const accumulate = n % 2 === 0;
        // every third case one image per chunk of the batch-folded backward (the others: one chunk)
        const r = backward(e, c, 200 + 10 * n, accumulate, n % 3 === 1 ? 1 : undefined);
        const ref = conv2dBackwardRef(c, r.xv, r.wv, r.dyv);
        const { Ho, Wo } = outSize(c);
        const plus = (v: Float64Array, v0: Float32Array) => (accumulate ? v.map((a, i) => a + v0[i]) : v);
        const sc = (s: Float64Array, v0: Float32Array) => (accumulate ? s.map((a, i) => a + Math.abs(v0[i])) : s);
        const tag = `${JSON.stringify(c)} accumulate=${accumulate} chunked=${n % 3 === 1}`;
        // dx sums ≤ Cout·k² terms (col2im adds its k² parts), dW N·Ho·Wo, db N·Ho·Wo.
        expect(relErr(r.got.dx, plus(ref.dx, r.dx0), sc(ref.dxScale, r.dx0)), `dx ${tag}`).toBeLessThanOrEqual(
          (c.Cout * c.k * c.k + 4) * 2 ** -24,
        );
        expect(relErr(r.got.dw, plus(ref.dw, r.dw0), sc(ref.dwScale, r.dw0)), `dw ${tag}`).toBeLessThanOrEqual(
          (c.N * Ho * Wo + 4) * 2 ** -24,
        );
        expect(relErr(r.got.db, plus(ref.db, r.db0), sc(ref.dbScale, r.db0)), `db ${tag}`).toBeLessThanOrEqual(
          (c.N * Ho * Wo + 4) * 2 ** -24,
        );
      });
    });
  }

  it('the reference backward matches central finite differences of the reference forward (float64)', () => {
    for (const c of [
      geo(2, 2, 5, 4, 3, 3, 2, [0, 0, 1, 1]),
      geo(1, 3, 4, 3, 2, 3, 1, [1, 1, 1, 1]),
      geo(2, 3, 3, 2, 2, 1, 2, [0, 0, 0, 0]),
    ]) {
      const s = sizes(c);
      const x = Float64Array.from(randomF32(s.x, 1)),
        w = Float64Array.from(randomF32(s.w, 2));
      const b = Float64Array.from(randomF32(c.Cout, 3)),
        r = Float64Array.from(randomF32(s.y, 4));
      // L = Σ y·r, so dL/dy = r
      const loss = () => conv2dRef(c, x, w, b).y.reduce((acc, v, i) => acc + v * r[i], 0);
      const grad = conv2dBackwardRef(c, x, w, r);
      const h = 1e-5;
      const fd = (v: Float64Array, i: number) => {
        const old = v[i];
        v[i] = old + h;
        const lp = loss();
        v[i] = old - h;
        const lm = loss();
        v[i] = old;
        return (lp - lm) / (2 * h);
      };
      for (let i = 0; i < x.length; i++) expect(Math.abs(fd(x, i) - grad.dx[i]), `dx[${i}]`).toBeLessThan(1e-8);
      for (let i = 0; i < w.length; i++) expect(Math.abs(fd(w, i) - grad.dw[i]), `dw[${i}]`).toBeLessThan(1e-8);
      for (let i = 0; i < b.length; i++) expect(Math.abs(fd(b, i) - grad.db[i]), `db[${i}]`).toBeLessThan(1e-8);
    }
  });

  it('forward and backward are bit-identical for 1, 2, 3, 4 threads, simd and relaxed', async () => {
    // threads split the GEMM columns (pixels) in the first two cases, the rows (Cout) in the third and fourth
    const cases = [
      geo(3, 5, 17, 13, 33, 3, 1, [1, 1, 1, 1]),
      geo(2, 33, 9, 7, 5, 3, 2, [0, 0, 1, 1]),
      geo(1, 3, 3, 3, 65, 3, 1, [1, 1, 1, 1]),
      geo(1, 16, 2, 2, 32, 3, 1, [1, 1, 1, 1]), // rows split, the 2-row leftover tile on the last thread
      geo(2, 16, 14, 14, 16, 3, 1, [1, 1, 1, 1]), // columns split, the 4-row leftover tile
    ];
    for (const simd of ['simd', 'relaxed'] as const) {
      const first: Float32Array[][] = [];
      for (const threads of [1, 2, 3, 4]) {
        const e = await make({ threads, simd });
        cases.forEach((c, n) => {
          const f = forward(e, c, 300 + n).got;
          const b = backward(e, c, 400 + n, n === 0).got;
          const outs = [f, b.dx, b.dw, b.db];
          if (threads === 1) first[n] = outs;
          else
            outs.forEach((o, i) =>
              expect(sameBits(o, first[n][i]), `${simd} ${threads} threads case ${n} output ${i}`).toBe(true),
            );
        });
        e.dispose();
      }
    }
  });

  it('rejects bad geometry, small tensors, aliasing and a small workspace before any kernel runs', async () => {
    const e = await make({ threads: 1 });
    const c = geo(2, 3, 5, 5, 4, 3, 1, [1, 1, 1, 1]);
    const s = sizes(c);
    const x = e.alloc(s.x, 'x'),
      weight = e.alloc(s.w, 'weight'),
      y = e.upload(new Float32Array(s.y).fill(7), s.y, 'y');
    const dy = e.alloc(s.y, 'dy'),
      dx = e.alloc(s.x, 'dx');
    const expectError = (f: () => void, code: string, msg: RegExp) => {
      try {
        f();
        expect.unreachable();
      } catch (err) {
        expect(err).toBeInstanceOf(DdpmError);
        expect((err as DdpmError).code).toBe(code);
        expect((err as Error).message).toMatch(msg);
      }
    };
    const a = args(c);
    expectError(
      () => kernels.conv2d(e, { ...a, kernel: 5 as 3, x, weight, y }),
      'INVALID_ARGUMENT',
      /conv2d: kernel must be 1 or 3, found 5/,
    );
    expectError(
      () => kernels.conv2d(e, { ...a, stride: 3 as 2, x, weight, y }),
      'INVALID_ARGUMENT',
      /conv2d: stride must be 1 or 2, found 3/,
    );
    expectError(
      () => kernels.conv2d(e, { ...a, pad: [1, 1, 1] as never, x, weight, y }),
      'INVALID_ARGUMENT',
      /pad must be a number or \[top, left, bottom, right\]/,
    );
    expectError(
      () => kernels.conv2d(e, { ...a, pad: -1, x, weight, y }),
      'INVALID_ARGUMENT',
      /conv2d: pad top must be an integer in \[0, 3\], found -1/,
    );
    expectError(
      () => kernels.conv2d(e, { ...a, N: 0, x, weight, y }),
      'INVALID_ARGUMENT',
      /conv2d: N must be an integer >= 1/,
    );
    expectError(
      () => kernels.conv2d(e, { ...a, H: 1, W: 1, pad: 0, x, weight, y }),
      'SHAPE_MISMATCH',
      /a 1×1 input with padding \[0,0,0,0\] is smaller than the 3×3 kernel/,
    );
    expectError(
      () => kernels.conv2d(e, { ...a, Cin: 4, x, weight, y }),
      'SHAPE_MISMATCH',
      /conv2d: x \(N, Cin, H, W\) = \(2, 4, 5, 5\) \(tensor x\) must hold at least 200 values, found 150/,
    );
    expectError(
      () => kernels.conv2d(e, { ...a, x, weight, y: dx }),
      'SHAPE_MISMATCH',
      /conv2d: y \(N, Cout, Ho, Wo\) = \(2, 4, 5, 5\) \(tensor dx\) must hold at least 200/,
    );
    expectError(
      () => kernels.conv2d(e, { ...a, x: y, weight, y }),
      'INVALID_ARGUMENT',
      /conv2d: y \(tensor y\) overlaps x \(tensor y\)/,
    );
    expectError(
      () => kernels.conv2dBackward(e, { ...a, x, weight, dy, dx: x }),
      'INVALID_ARGUMENT',
      /conv2dBackward: dx \(tensor x\) overlaps x \(tensor x\)/,
    );
    const dw100 = e.alloc(100, 'dw100');
    expectError(
      () => kernels.conv2dBackward(e, { ...a, x, weight, dy, dweight: dw100 }),
      'SHAPE_MISMATCH',
      /conv2dBackward: dweight \(Cout, Cin, k, k\) = \(4, 3, 3, 3\) \(tensor dw100\) must hold at least 108 values, found 100/,
    );
    expectError(
      () => kernels.conv2dBackward(e, { ...a, x, weight, dy, dx, dweight: dx }),
      'INVALID_ARGUMENT',
      /dx \(tensor dx\) overlaps dweight \(tensor dx\)/,
    );
    expect(Array.from(e.read(y))).toEqual(new Array(s.y).fill(7));
    const small = await make({ threads: 1, scratchPerThread: 64 * 1024 });
    const t = (n: number, name: string) => small.alloc(n, name);
    expectError(
      () => kernels.conv2d(small, { ...a, x: t(s.x, 'x'), weight: t(s.w, 'w'), y: t(s.y, 'y') }),
      'INVALID_ARGUMENT',
      /conv2d: the engine's workspace has 65536 bytes per thread/,
    );
  });
});
