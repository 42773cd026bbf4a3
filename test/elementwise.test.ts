import { describe, expect, it } from 'vitest';
import { DdpmError, kernels, type Engine } from '../src/index.js';
import * as ref from './reference/elementwise.js';
import { engineMatrix, f64, maxScaledErr, numericGrad, onAllEngines, SIMD_LEVELS } from './helpers/kernel-test.js';
import { maxRelErr, randomF32 } from './helpers/rng.js';

const engines = engineMatrix();
const SIZES = [1, 3, 17, 63, 65, 129, 1037];

/** Values spread over several binades, plus exact zeros, for the pointwise kernels. */
function spread(n: number, seed: number, range = 8): Float32Array {
  const x = randomF32(n, seed);
  return x.map((v, i) => (i % 11 === 5 ? 0 : v * range * Math.abs(v)));
}

const fround = (a: ArrayLike<number>) => Float32Array.from(a);

describe('add, mul, scale', () => {
  it('are correctly rounded float32 ops on every size, in place too', () => {
    for (const n of SIZES) {
      const x = spread(n, 1);
      const y = spread(n, 2);
      const out = onAllEngines(engines, `add/mul/scale n=${n}`, (e) => {
        const tx = e.upload(x, n, 'x');
        const ty = e.upload(y, n, 'y');
        const tz = e.alloc(n, 'z');
        kernels.add(e, n, tx, ty, tz);
        const sum = e.read(tz);
        kernels.mul(e, n, tx, ty, tz);
        const prod = e.read(tz);
        kernels.scale(e, n, 0.37, tx, tz);
        const scaled = e.read(tz);
        kernels.add(e, n, tx, ty, ty); // in place: y ← x + y
        return [sum, prod, scaled, e.read(ty)];
      });
      // the float64 sum/product of two float32 values is exact here, so rounding it once is the float32 op
      const a = Math.fround(0.37);
      for (const simd of SIMD_LEVELS) {
        const [sum, prod, scaled, inPlace] = out[simd];
        expect(sum).toEqual(fround(Array.from(x, (v, i) => v + y[i])));
        expect(prod).toEqual(fround(Array.from(x, (v, i) => v * y[i])));
        expect(scaled).toEqual(fround(Array.from(x, (v) => a * v)));
        expect(inPlace).toEqual(sum);
      }
    }
  });
});

describe('silu', () => {
  it('forward and backward match float64 within a few ulp, extremes included', () => {
    for (const n of SIZES) {
      const x = spread(n, 3, 12);
      if (n >= 17) x.set([100, -100, 1e30, -1e30, 88.8, -88.8, 104, -104, 1e-30], 3);
      const dy = randomF32(n, 4);
      const out = onAllEngines(engines, `silu n=${n}`, (e) => {
        const tx = e.upload(x, n, 'x');
        const ty = e.alloc(n, 'y');
        const tdy = e.upload(dy, n, 'dy');
        const tdx = e.alloc(n, 'dx');
        kernels.silu(e, n, tx, ty);
        kernels.siluBackward(e, n, tx, tdy, tdx);
        return [e.read(ty), e.read(tdx)];
      });
      const wantY = ref.silu(x);
      const wantDx = ref.siluBackward(x, dy);
      // dx = dy·σ + dy·σ·x·(1 − σ): the terms' sizes bound the rounding error
      const magDx = Array.from(x, (v, i) => {
        const s = 1 / (1 + Math.exp(-v));
        return Math.abs(dy[i]) * s * (1 + Math.abs(v) * (1 - s));
      });
      for (const simd of SIMD_LEVELS) {
        const [y, dx] = out[simd];
        expect(maxRelErr(y, wantY, 1e-30), `silu ${simd} n=${n}`).toBeLessThan(1e-6);
        expect(maxScaledErr(dx, wantDx, magDx, 1e-30), `siluBackward ${simd} n=${n}`).toBeLessThan(1e-6);
        expect(y.every(Number.isFinite) && dx.every(Number.isFinite)).toBe(true);
      }
    }
  });

  it('the reference backward matches central differences', () => {
    const x = f64(spread(40, 5, 6));
    const w = randomF32(40, 6);
    const num = numericGrad(ref.silu, x, w);
    expect(maxRelErr(ref.siluBackward(x, w), num, 1e-6)).toBeLessThan(1e-7);
  });
});

describe('softmax', () => {
  const shapes: [number, number][] = [
    [1, 1],
    [5, 1],
    [1, 3],
    [5, 17],
    [1, 63],
    [5, 65],
    [3, 129],
    [2, 1030],
  ];

  it('forward and backward match float64 on awkward rows, with a scale, in place too', () => {
    for (const [rows, cols] of shapes) {
      for (const scale of [1, 0.125, -2]) {
        const n = rows * cols;
        const x = spread(n, 7, 16);
        const dy = randomF32(n, 8);
        const wantY = ref.softmax(x, rows, cols, scale);
        const y32 = fround(wantY); // the backward gets the same y on both sides
        const wantDx = ref.softmaxBackward(y32, dy, rows, cols, scale);
        const out = onAllEngines(engines, `softmax ${rows}×${cols} scale ${scale}`, (e) => {
          const tx = e.upload(x, n, 'x');
          const ty = e.alloc(n, 'y');
          kernels.softmax(e, { rows, cols, x: tx, y: ty, scale });
          const y = e.read(ty);
          kernels.softmax(e, { rows, cols, x: tx, y: tx, scale });
          const tyr = e.upload(y32, n, 'y32');
          const tdy = e.upload(dy, n, 'dy');
          kernels.softmaxBackward(e, { rows, cols, y: tyr, dy: tdy, dx: tdy, scale });
          return [y, e.read(tx), e.read(tdy)];
        });
        // exp(s·x − m) is only as accurate as its argument, rounded in float32: |s·x| + |m| ulps
        const magY = Array.from(wantY, (v, i) => v * (1 + Math.abs(scale * x[i]) + rowMax(x, scale, cols, i)));
        const magDx = Array.from(y32, (v, i) => Math.abs(scale) * v * (Math.abs(dy[i]) + rowDot(dy, y32, cols, i)));
        for (const simd of SIMD_LEVELS) {
          const [y, inPlace, dx] = out[simd];
          const where = `${simd} ${rows}×${cols} scale ${scale}`;
          expect(maxScaledErr(y, wantY, magY), `softmax ${where}`).toBeLessThan(1e-6);
          expect(inPlace, `in-place softmax ${where}`).toEqual(y);
          expect(maxScaledErr(dx, wantDx, magDx), `softmaxBackward ${where}`).toBeLessThan(1e-6);
        }
      }
    }
  });

  it('does not overflow on large inputs', () => {
    const cols = 9;
    const x = Float32Array.from([1e30, 3e38, -3e38, 80, 90, 1000, 0, -1000, 3e38]);
    const e = engines[0].engine;
    const tx = e.upload(x, cols, 'x');
    const ty = e.alloc(cols, 'y');
    kernels.softmax(e, { rows: 1, cols, x: tx, y: ty });
    expect(Array.from(e.read(ty))).toEqual([0, 0.5, 0, 0, 0, 0, 0, 0, 0.5]);
  });

  it('the reference backward matches central differences', () => {
    const rows = 3;
    const cols = 7;
    const x = f64(spread(rows * cols, 9, 3));
    const w = randomF32(rows * cols, 10);
    for (const scale of [1, -0.7]) {
      const num = numericGrad((v) => ref.softmax(v, rows, cols, scale), x, w);
      const analytic = ref.softmaxBackward(ref.softmax(x, rows, cols, scale), w, rows, cols, scale);
      expect(maxRelErr(analytic, num, 1e-6)).toBeLessThan(1e-7);
    }
  });
});

function rowMax(x: ArrayLike<number>, scale: number, cols: number, i: number): number {
  const r = Math.floor(i / cols);
  let m = -Infinity;
  for (let j = 0; j < cols; j++) m = Math.max(m, scale * x[r * cols + j]);
  return Math.abs(m);
}

function rowDot(a: ArrayLike<number>, b: ArrayLike<number>, cols: number, i: number): number {
  const r = Math.floor(i / cols);
  let s = 0;
  for (let j = 0; j < cols; j++) s += Math.abs(a[r * cols + j] * b[r * cols + j]);
  return s;
}

const NCHW_SHAPES: [number, number, number, number][] = [
  [1, 1, 1, 1],
  [1, 3, 1, 17],
  [5, 3, 3, 3],
  [1, 2, 17, 5],
  [5, 1, 4, 63],
  [1, 7, 2, 65],
  [2, 3, 9, 129],
  [1, 2, 37, 41], // planes of 1517 values: more than one float32 block in the sums
];

describe('upsampleNearest2x', () => {
  it('forward copies exactly; backward sums the four gradients', () => {
    for (const [N, C, H, W] of NCHW_SHAPES) {
      const n = N * C * H * W;
      const x = randomF32(n, 11);
      const dy = randomF32(4 * n, 12);
      const out = onAllEngines(engines, `upsample ${[N, C, H, W]}`, (e) => {
        const tx = e.upload(x, n, 'x');
        const ty = e.alloc(4 * n, 'y');
        const tdy = e.upload(dy, 4 * n, 'dy');
        const tdx = e.alloc(n, 'dx');
        kernels.upsampleNearest2x(e, { N, C, H, W, x: tx, y: ty });
        kernels.upsampleNearest2xBackward(e, { N, C, H, W, dy: tdy, dx: tdx });
        return [e.read(ty), e.read(tdx)];
      });
      const wantDx = ref.upsampleNearest2xBackward(dy, N * C, H, W);
      const magDx = ref.upsampleNearest2xBackward(dy.map(Math.abs), N * C, H, W);
      for (const simd of SIMD_LEVELS) {
        const [y, dx] = out[simd];
        expect(y).toEqual(fround(ref.upsampleNearest2x(x, N * C, H, W)));
        expect(maxScaledErr(dx, wantDx, magDx), `${simd} ${[N, C, H, W]}`).toBeLessThan(2.5e-7);
      }
    }
  });

  it('the reference backward matches central differences', () => {
    const [P, H, W] = [2, 3, 5];
    const x = f64(randomF32(P * H * W, 13));
    const w = randomF32(4 * P * H * W, 14);
    const num = numericGrad((v) => ref.upsampleNearest2x(v, P, H, W), x, w);
    expect(maxRelErr(ref.upsampleNearest2xBackward(w, P, H, W), num, 1e-6)).toBeLessThan(1e-8);
  });
});

describe('addChannelBias', () => {
  it('adds bias[n, c] to every pixel; backward sums each plane', () => {
    for (const [N, C, H, W] of NCHW_SHAPES) {
      const n = N * C * H * W;
      const x = randomF32(n, 15);
      const bias = randomF32(N * C, 16);
      const dy = randomF32(n, 17);
      const out = onAllEngines(engines, `addChannelBias ${[N, C, H, W]}`, (e) => {
        const tx = e.upload(x, n, 'x');
        const tb = e.upload(bias, N * C, 'bias');
        const tdy = e.upload(dy, n, 'dy');
        const tdb = e.alloc(N * C, 'dbias');
        kernels.addChannelBias(e, { N, C, H, W, bias: tb, x: tx });
        kernels.addChannelBiasBackward(e, { N, C, H, W, dy: tdy, dbias: tdb });
        return [e.read(tx), e.read(tdb)];
      });
      const wantDb = ref.addChannelBiasBackward(dy, N * C, H * W);
      const magDb = ref.addChannelBiasBackward(dy.map(Math.abs), N * C, H * W);
      for (const simd of SIMD_LEVELS) {
        const [y, db] = out[simd];
        expect(y).toEqual(fround(ref.addChannelBias(x, bias, N * C, H * W)));
        expect(maxScaledErr(db, wantDb, magDb), `${simd} ${[N, C, H, W]}`).toBeLessThan(1e-6);
      }
    }
  });

  it('the reference backward matches central differences', () => {
    const [P, HW] = [6, 7];
    const b = f64(randomF32(P, 18));
    const x = randomF32(P * HW, 19);
    const w = randomF32(P * HW, 20);
    const num = numericGrad((v) => ref.addChannelBias(x, v, P, HW), b, w);
    expect(maxRelErr(ref.addChannelBiasBackward(w, P, HW), num, 1e-6)).toBeLessThan(1e-8);
  });
});

describe('concatChannels', () => {
  const shapes: [number, number, number, number, number][] = [
    [1, 1, 1, 1, 1],
    [5, 3, 2, 1, 17],
    [1, 7, 3, 5, 13],
    [2, 4, 9, 3, 65],
  ];

  it('concatenates along C; backward splits, overwriting or accumulating', () => {
    for (const [N, C1, C2, H, W] of shapes) {
      const HW = H * W;
      const [n1, n2] = [N * C1 * HW, N * C2 * HW];
      const a = randomF32(n1, 21);
      const b = randomF32(n2, 22);
      const dy = randomF32(n1 + n2, 23);
      const out = onAllEngines(engines, `concat ${[N, C1, C2, H, W]}`, (e) => {
        const ta = e.upload(a, n1, 'a');
        const tb = e.upload(b, n2, 'b');
        const ty = e.alloc(n1 + n2, 'y');
        const tdy = e.upload(dy, n1 + n2, 'dy');
        const s = { N, C1, C2, H, W };
        kernels.concatChannels(e, { ...s, a: ta, b: tb, y: ty });
        const y = e.read(ty);
        // accumulate onto a and b, then overwrite them
        kernels.concatChannelsBackward(e, { ...s, dy: tdy, da: ta, db: tb, accumulate: true });
        const acc = [e.read(ta), e.read(tb)];
        kernels.concatChannelsBackward(e, { ...s, dy: tdy, da: ta, db: tb });
        return [y, ...acc, e.read(ta), e.read(tb)];
      });
      const [wantDa, wantDb] = ref.concatChannelsBackward(dy, N, C1, C2, HW);
      for (const simd of SIMD_LEVELS) {
        const [y, accA, accB, da, db] = out[simd];
        expect(y).toEqual(fround(ref.concatChannels(a, b, N, C1, C2, HW)));
        expect(accA).toEqual(fround(Array.from(a, (v, i) => v + wantDa[i])));
        expect(accB).toEqual(fround(Array.from(b, (v, i) => v + wantDb[i])));
        expect(da).toEqual(fround(wantDa));
        expect(db).toEqual(fround(wantDb));
      }
    }
  });

  it('the reference backward matches central differences', () => {
    const [N, C1, C2, HW] = [2, 2, 3, 4];
    const a = f64(randomF32(N * C1 * HW, 24));
    const b = f64(randomF32(N * C2 * HW, 25));
    const w = randomF32(N * (C1 + C2) * HW, 26);
    const [da, db] = ref.concatChannelsBackward(w, N, C1, C2, HW);
    expect(
      maxRelErr(
        da,
        numericGrad((v) => ref.concatChannels(v, b, N, C1, C2, HW), a, w),
        1e-6,
      ),
    ).toBeLessThan(1e-8);
    expect(
      maxRelErr(
        db,
        numericGrad((v) => ref.concatChannels(a, v, N, C1, C2, HW), b, w),
        1e-6,
      ),
    ).toBeLessThan(1e-8);
  });
});

describe('bad input', () => {
  function expectError(code: string, pattern: RegExp, f: () => void): void {
    try {
      f();
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(DdpmError);
      expect((err as DdpmError).code).toBe(code);
      expect((err as Error).message).toMatch(pattern);
    }
  }

  it('is a DdpmError naming the argument, and no kernel runs', () => {
    const e: Engine = engines[engines.length - 1].engine;
    const x = e.upload(new Float32Array(64).fill(1), 64, 'x');
    const y = e.upload(new Float32Array(64).fill(7), 64, 'y');
    const small = e.upload(new Float32Array(8).fill(7), 8, 'small');
    const forged = { ptr: 1 << 30, size: 64, shape: [64], name: 'forged' };
    expectError('SHAPE_MISMATCH', /add: z \(tensor small\) must hold at least 64 values, found 8/, () =>
      kernels.add(e, 64, x, y, small),
    );
    expectError('OUT_OF_BOUNDS', /mul: y \(tensor forged/, () => kernels.mul(e, 64, x, forged, y));
    expectError('INVALID_ARGUMENT', /scale: a must be a finite number, found NaN/, () =>
      kernels.scale(e, 64, NaN, x, y),
    );
    expectError('INVALID_ARGUMENT', /silu: n must be an integer >= 0, found -1/, () => kernels.silu(e, -1, x, y));
    const shifted = { ...y, ptr: y.ptr + 16, size: 60 };
    expectError('INVALID_ARGUMENT', /siluBackward: dx \(tensor y\) overlaps dy \(tensor y\)/, () =>
      kernels.siluBackward(e, 60, x, y, shifted),
    );
    expectError('SHAPE_MISMATCH', /softmax: y \(3×5\) \(tensor small\) must hold at least 15 values/, () =>
      kernels.softmax(e, { rows: 3, cols: 5, x, y: small }),
    );
    expectError('INVALID_ARGUMENT', /softmaxBackward: cols must be an integer >= 1, found 0/, () =>
      kernels.softmaxBackward(e, { rows: 3, cols: 0, y: x, dy: x, dx: x }),
    );
    expectError('INVALID_ARGUMENT', /softmax: scale must be a finite number, found Infinity/, () =>
      kernels.softmax(e, { rows: 1, cols: 4, x, y, scale: Infinity }),
    );
    expectError(
      'SHAPE_MISMATCH',
      /upsampleNearest2x: y \(N, C, 2H, 2W\) \(tensor y\) must hold at least 128 values, found 64/,
      () => kernels.upsampleNearest2x(e, { N: 2, C: 1, H: 4, W: 4, x, y }),
    );
    expectError('INVALID_ARGUMENT', /upsampleNearest2x: y \(tensor x\) overlaps x/, () =>
      kernels.upsampleNearest2x(e, { N: 1, C: 1, H: 2, W: 2, x, y: x }),
    );
    expectError('INVALID_ARGUMENT', /upsampleNearest2xBackward: H must be an integer >= 1, found 1.5/, () =>
      kernels.upsampleNearest2xBackward(e, { N: 1, C: 1, H: 1.5, W: 2, dy: x, dx: y }),
    );
    expectError('SHAPE_MISMATCH', /addChannelBias: bias \(N, C\) \(tensor small\) must hold at least 16 values/, () =>
      kernels.addChannelBias(e, { N: 4, C: 4, H: 2, W: 2, bias: small, x }),
    );
    expectError('INVALID_ARGUMENT', /addChannelBiasBackward: N must be an integer >= 1, found 0/, () =>
      kernels.addChannelBiasBackward(e, { N: 0, C: 4, H: 2, W: 2, dy: x, dbias: y }),
    );
    expectError(
      'SHAPE_MISMATCH',
      /concatChannels: y \(N, C1 \+ C2, H, W\) \(tensor y\) must hold at least 72 values, found 64/,
      () => kernels.concatChannels(e, { N: 1, C1: 4, C2: 5, H: 2, W: 4, a: x, b: x, y }),
    );
    expectError('INVALID_ARGUMENT', /concatChannelsBackward: da \(tensor x\) overlaps db \(tensor x\)/, () =>
      kernels.concatChannelsBackward(e, { N: 1, C1: 2, C2: 2, H: 2, W: 2, dy: y, da: x, db: x }),
    );
    expect(Array.from(e.read(y))).toEqual(new Array(64).fill(7));
    expect(Array.from(e.read(small))).toEqual(new Array(8).fill(7));
  });
});
