import { describe, expect, it } from 'vitest';
import { DdpmError, kernels } from '../src/index.js';
import * as ref from './reference/norm.js';
import { engineMatrix, f64, maxScaledErr, numericGrad, onAllEngines, SIMD_LEVELS } from './helpers/kernel-test.js';
import { maxRelErr, randomF32, sameBits } from './helpers/rng.js';

const engines = engineMatrix();

// N, C, H, W, G: batch 1 and 5, odd channel counts, one group and several, planes of 1 … 129 values
const SHAPES: [number, number, number, number, number][] = [
  [1, 1, 1, 1, 1],
  [1, 3, 1, 17, 1],
  [5, 3, 3, 1, 3],
  [1, 6, 3, 21, 2],
  [5, 9, 1, 63, 3],
  [1, 15, 5, 13, 5],
  [2, 4, 1, 65, 2],
  [1, 32, 3, 43, 8],
  [2, 8, 16, 33, 2], // groups of 2112 values: more than one float32 block in the reductions
];

/** Test data: x = offset + spread, gamma around 1, beta small. */
function inputs(N: number, C: number, HW: number, seed: number, offset: number) {
  const x = randomF32(N * C * HW, seed).map((v) => offset + 3 * v);
  const gamma = randomF32(C, seed + 1).map((v) => 1 + 0.5 * v);
  const beta = randomF32(C, seed + 2).map((v) => 0.2 * v);
  const dy = randomF32(N * C * HW, seed + 3);
  return { x, gamma, beta, dy };
}

describe('groupNorm', () => {
  it('forward and backward match float64 on awkward shapes, also with a large mean', () => {
    for (const [N, C, H, W, G] of SHAPES) {
      for (const offset of [0, 100]) {
        const HW = H * W;
        const n = N * C * HW;
        const eps = 1e-5;
        const { x, gamma, beta, dy } = inputs(N, C, HW, N * 100 + C, offset);
        const dg0 = randomF32(C, 7); // dgamma, dbeta accumulate onto what is there
        const db0 = randomF32(C, 8);
        const out = onAllEngines(engines, `groupNorm ${[N, C, H, W, G]} offset ${offset}`, (e) => {
          const t = {
            x: e.upload(x, n, 'x'),
            gamma: e.upload(gamma, C, 'gamma'),
            beta: e.upload(beta, C, 'beta'),
            y: e.alloc(n, 'y'),
            mean: e.alloc(N * G, 'mean'),
            rstd: e.alloc(N * G, 'rstd'),
          };
          kernels.groupNorm(e, { N, C, H, W, groups: G, eps, ...t });
          const inPlace = e.upload(x, n, 'x in place'); // y written over x: each group is read whole first
          kernels.groupNorm(e, { N, C, H, W, groups: G, eps, ...t, x: inPlace, y: inPlace });
          expect(sameBits(e.read(inPlace), e.read(t.y)), 'in-place groupNorm').toBe(true);
          const dyT = e.upload(dy, n, 'dy');
          const dgamma = e.upload(dg0, C, 'dgamma');
          const dbeta = e.upload(db0, C, 'dbeta');
          // dx written over dy: the kernel reads each group whole before writing it
          kernels.groupNormBackward(e, {
            N,
            C,
            H,
            W,
            groups: G,
            dy: dyT,
            x: t.x,
            mean: t.mean,
            rstd: t.rstd,
            gamma: t.gamma,
            dx: dyT,
            dgamma,
            dbeta,
          });
          return [e.read(t.y), e.read(t.mean), e.read(t.rstd), e.read(dyT), e.read(dgamma), e.read(dbeta)];
        });
        const want = ref.groupNorm(x, gamma, beta, N, C, HW, G, eps);
        const grads = ref.groupNormBackward(dy, x, gamma, N, C, HW, G, eps);
        const mag = magnitudes(x, dy, gamma, beta, want, N, C, HW, G);
        for (const simd of SIMD_LEVELS) {
          const [y, mean, rstd, dx, dgamma, dbeta] = out[simd];
          const where = `${simd} ${[N, C, H, W, G]} offset ${offset}`;
          expect(maxScaledErr(y, want.y, mag.y), `y ${where}`).toBeLessThan(5e-7);
          // the mean to within its float32 rounding plus 1e-7 standard deviations, whatever its size
          const meanErr = Array.from(
            mean,
            (m, g) => (Math.abs(m - want.mean[g]) - 2 ** -24 * Math.abs(want.mean[g])) * want.rstd[g],
          );
          expect(Math.max(...meanErr), `mean ${where}`).toBeLessThan(1e-7);
          expect(maxRelErr(rstd, want.rstd), `rstd ${where}`).toBeLessThan(5e-7);
          expect(maxScaledErr(dx, grads.dx, mag.dx), `dx ${where}`).toBeLessThan(5e-7);
          expect(
            maxScaledErr(
              dgamma,
              Array.from(grads.dgamma, (v, c) => v + dg0[c]),
              mag.dgamma,
            ),
            `dgamma ${where}`,
          ).toBeLessThan(2e-7);
          expect(
            maxScaledErr(
              dbeta,
              Array.from(grads.dbeta, (v, c) => v + db0[c]),
              mag.dbeta,
            ),
            `dbeta ${where}`,
          ).toBeLessThan(1e-7);
        }
      }
    }
  });

  it('the reference backward matches central differences for x, gamma and beta', () => {
    const [N, C, HW, G, eps] = [2, 6, 5, 3, 1e-5];
    const { x, gamma, beta } = inputs(N, C, HW, 31, 0.5);
    const w = randomF32(N * C * HW, 35); // the loss is Σ w ⊙ y
    const [x64, g64, b64] = [f64(x), f64(gamma), f64(beta)];
    const grads = ref.groupNormBackward(w, x, gamma, N, C, HW, G, eps);
    const y = (xv: Float64Array, gv: Float64Array, bv: Float64Array) => ref.groupNorm(xv, gv, bv, N, C, HW, G, eps).y;
    expect(
      maxRelErr(
        grads.dx,
        numericGrad((v) => y(v, g64, b64), x64, w),
        1e-4,
      ),
    ).toBeLessThan(1e-7);
    expect(
      maxRelErr(
        grads.dgamma,
        numericGrad((v) => y(x64, v, b64), g64, w),
        1e-4,
      ),
    ).toBeLessThan(1e-7);
    expect(
      maxRelErr(
        grads.dbeta,
        numericGrad((v) => y(x64, g64, v), b64, w),
        1e-4,
      ),
    ).toBeLessThan(1e-7);
  });

  it('rejects bad shapes and arguments with a DdpmError before any kernel runs', () => {
    const e = engines[engines.length - 1].engine;
    const x = e.upload(new Float32Array(64).fill(5), 64, 'x');
    const y = e.upload(new Float32Array(64).fill(7), 64, 'y');
    const c32 = e.upload(new Float32Array(32).fill(7), 32, 'c32');
    const stats = e.upload(new Float32Array(8).fill(7), 8, 'stats');
    const stats2 = e.upload(new Float32Array(8).fill(7), 8, 'stats2');
    const base = { N: 1, C: 32, H: 1, W: 2, groups: 8, x, gamma: c32, beta: c32, y, mean: stats, rstd: stats2 };
    const expectError = (code: string, pattern: RegExp, f: () => void) => {
      try {
        f();
        expect.unreachable();
      } catch (err) {
        expect(err).toBeInstanceOf(DdpmError);
        expect((err as DdpmError).code).toBe(code);
        expect((err as Error).message).toMatch(pattern);
      }
    };
    expectError('INVALID_ARGUMENT', /groupNorm: num_groups \(7\) must divide num_channels \(32\)/, () =>
      kernels.groupNorm(e, { ...base, groups: 7 }),
    );
    expectError('INVALID_ARGUMENT', /groupNorm: groups must be an integer >= 1, found 0/, () =>
      kernels.groupNorm(e, { ...base, groups: 0 }),
    );
    expectError('INVALID_ARGUMENT', /groupNorm: eps must be > 0, found 0/, () =>
      kernels.groupNorm(e, { ...base, eps: 0 }),
    );
    expectError(
      'SHAPE_MISMATCH',
      /groupNorm: x \(N, C, H, W\) \(tensor x\) must hold at least 128 values, found 64/,
      () => kernels.groupNorm(e, { ...base, N: 2 }),
    );
    expectError(
      'SHAPE_MISMATCH',
      /groupNorm: mean \(N, G\) \(tensor stats\) must hold at least 16 values, found 8/,
      () => kernels.groupNorm(e, { ...base, groups: 16 }),
    );
    expectError('INVALID_ARGUMENT', /groupNorm: mean \(tensor stats\) overlaps rstd \(tensor stats\)/, () =>
      kernels.groupNorm(e, { ...base, rstd: stats }),
    );
    const bwd = {
      N: 1,
      C: 32,
      H: 1,
      W: 2,
      groups: 8,
      dy: x,
      x,
      mean: stats,
      rstd: stats2,
      gamma: c32,
      dx: y,
      dgamma: c32,
      dbeta: stats,
    };
    expectError('INVALID_ARGUMENT', /groupNormBackward: num_groups \(3\) must divide num_channels \(32\)/, () =>
      kernels.groupNormBackward(e, { ...bwd, groups: 3 }),
    );
    expectError(
      'SHAPE_MISMATCH',
      /groupNormBackward: dbeta \(C\) \(tensor stats\) must hold at least 32 values, found 8/,
      () => kernels.groupNormBackward(e, bwd),
    );
    expectError('INVALID_ARGUMENT', /groupNormBackward: dgamma \(tensor c32\) overlaps gamma \(tensor c32\)/, () =>
      kernels.groupNormBackward(e, { ...bwd, dbeta: y }),
    );
    for (const t of [y, c32, stats, stats2]) expect(e.read(t).every((v) => v === 7)).toBe(true);
  });
});

/** The size of the terms behind each output, so that the error bounds are relative to what was summed. */
function magnitudes(
  x: Float32Array,
  dy: Float32Array,
  gamma: Float32Array,
  beta: Float32Array,
  want: ref.GroupNormOut,
  N: number,
  C: number,
  HW: number,
  G: number,
) {
  const Cg = C / G;
  const M = Cg * HW;
  const y = new Float64Array(N * C * HW);
  const dx = new Float64Array(N * C * HW);
  const dgamma = new Float64Array(C);
  const dbeta = new Float64Array(C);
  for (let ng = 0; ng < N * G; ng++) {
    const r = want.rstd[ng];
    const mu = want.mean[ng];
    // |x| bounds the rounding of x − μ (the mean is rounded to float32 first), as in torch
    let sumAbsDxhat = 0;
    let sumAbsDxhatXhat = 0;
    for (let i = 0; i < M; i++) {
      const k = ng * M + i;
      const c = (ng % G) * Cg + Math.floor(i / HW);
      sumAbsDxhat += Math.abs(dy[k] * gamma[c]);
      sumAbsDxhatXhat += Math.abs(dy[k] * gamma[c] * (x[k] - mu) * r);
      y[k] = (Math.abs(x[k] - mu) + Math.abs(mu)) * r * Math.abs(gamma[c]) + Math.abs(beta[c]);
      dgamma[c] += Math.abs(dy[k]) * (Math.abs(x[k] - mu) + Math.abs(mu)) * r;
      dbeta[c] += Math.abs(dy[k]);
    }
    for (let i = 0; i < M; i++) {
      const k = ng * M + i;
      const c = (ng % G) * Cg + Math.floor(i / HW);
      const xhatMag = (Math.abs(x[k] - mu) + Math.abs(mu)) * r;
      dx[k] = r * (Math.abs(dy[k] * gamma[c]) + sumAbsDxhat / M + xhatMag * (sumAbsDxhatXhat / M));
    }
  }
  return { y, dx, dgamma, dbeta };
}
