// groupNormSiluBackward (the training backward of SiLU(GroupNorm(x)) in one kernel): the same bits as
// siluBackward onto a zeroed gradient followed by groupNormBackward, for both SIMD builds and 1–3 threads;
// close to the float64 reference; typed errors.
import { describe, expect, it } from 'vitest';
import { DdpmError, type Engine, kernels } from '../src/index.js';
import { useEngines } from './helpers/engines.js';
import { randomF32, sameBits } from './helpers/rng.js';
import { groupNorm as groupNormRef, groupNormBackward as groupNormBackwardRef } from './reference/norm.js';
import { siluBackward as siluBackwardRef } from './reference/elementwise.js';

const make = useEngines();

// [N, C, H, W, G]: planes of 49, 15 and 3 values (vector body and scalar tail), one group per channel, one group
const CASES = [
  [2, 8, 7, 7, 4],
  [3, 16, 28, 28, 8],
  [1, 4, 5, 3, 2],
  [2, 6, 1, 3, 6],
  [1, 3, 4, 4, 1],
] as const;

interface Out {
  dx: Float32Array;
  dgamma: Float32Array;
  dbeta: Float32Array;
}

function inputs(e: Engine, [N, C, H, W, G]: readonly number[], seed: number) {
  const n = N * C * H * W;
  const up = (v: Float32Array, name: string) => e.upload(v, v.length, name);
  return {
    shape: { N, C, H, W, groups: G },
    n,
    x: up(
      randomF32(n, seed).map((v) => 3 * v + 0.5),
      'x',
    ),
    dy: up(randomF32(n, seed + 1), 'dy'),
    gamma: up(randomF32(C, seed + 2), 'gamma'),
    beta: up(randomF32(C, seed + 3), 'beta'),
    dx0: randomF32(n, seed + 4),
    dg0: randomF32(C, seed + 5),
    db0: randomF32(C, seed + 6),
  };
}

/** Forward (groupNorm with silu) then the fused backward. */
function fused(e: Engine, c: readonly number[], seed: number, accumulate: boolean): Out {
  const mark = e.arena.mark();
  const a = inputs(e, c, seed);
  const NG = a.shape.N * a.shape.groups;
  const mean = e.alloc(NG, 'mean'),
    rstd = e.alloc(NG, 'rstd'),
    y = e.alloc(a.n, 'y');
  kernels.groupNorm(e, { ...a.shape, x: a.x, gamma: a.gamma, beta: a.beta, y, mean, rstd, eps: 1e-6, silu: true });
  const dx = e.upload(accumulate ? a.dx0 : new Float32Array(a.n).fill(NaN), a.n, 'dx');
  const dgamma = e.upload(a.dg0, a.shape.C, 'dgamma'),
    dbeta = e.upload(a.db0, a.shape.C, 'dbeta');
  kernels.groupNormSiluBackward(e, {
    ...a.shape,
    dy: a.dy,
    x: a.x,
    mean,
    rstd,
    gamma: a.gamma,
    beta: a.beta,
    dx,
    accumulate,
    dgamma,
    dbeta,
  });
  const out = { dx: e.read(dx), dgamma: e.read(dgamma), dbeta: e.read(dbeta) };
  e.arena.release(mark);
  return out;
}

/** The two layers: groupNorm, silu; siluBackward onto a zeroed dh, groupNormBackward. */
function separate(e: Engine, c: readonly number[], seed: number, accumulate: boolean): Out {
  const mark = e.arena.mark();
  const a = inputs(e, c, seed);
  const NG = a.shape.N * a.shape.groups;
  const mean = e.alloc(NG, 'mean'),
    rstd = e.alloc(NG, 'rstd'),
    h = e.alloc(a.n, 'h');
  kernels.groupNorm(e, { ...a.shape, x: a.x, gamma: a.gamma, beta: a.beta, y: h, mean, rstd, eps: 1e-6 });
  const dh = e.upload(new Float32Array(a.n), a.n, 'dh');
  kernels.siluBackward(e, a.n, h, a.dy, dh, true);
  const dx = e.upload(accumulate ? a.dx0 : new Float32Array(a.n).fill(NaN), a.n, 'dx');
  const dgamma = e.upload(a.dg0, a.shape.C, 'dgamma'),
    dbeta = e.upload(a.db0, a.shape.C, 'dbeta');
  kernels.groupNormBackward(e, {
    ...a.shape,
    dy: dh,
    x: a.x,
    mean,
    rstd,
    gamma: a.gamma,
    dx,
    accumulate,
    dgamma,
    dbeta,
  });
  const out = { dx: e.read(dx), dgamma: e.read(dgamma), dbeta: e.read(dbeta) };
  e.arena.release(mark);
  return out;
}

describe('groupNormSiluBackward', () => {
  it('gives the same bits as siluBackward + groupNormBackward, for simd and relaxed and 1, 2, 3 threads', async () => {
    for (const simd of ['simd', 'relaxed'] as const) {
      const first: Out[] = [];
      for (const threads of [1, 2, 3]) {
        const e = await make({ threads, simd });
        CASES.forEach((c, i) => {
          const accumulate = i % 2 === 0;
          const got = fused(e, c, 10 * i, accumulate);
          const want = separate(e, c, 10 * i, accumulate);
          const tag = `${simd} ${threads} threads case ${c} accumulate=${accumulate}`;
          for (const k of ['dx', 'dgamma', 'dbeta'] as const) {
            expect(got[k].every(Number.isFinite), `${k} ${tag}`).toBe(true);
            expect(sameBits(got[k], want[k]), `${k} ${tag}`).toBe(true);
          }
          if (threads === 1) first[i] = got;
          else
            for (const k of ['dx', 'dgamma', 'dbeta'] as const) expect(sameBits(got[k], first[i][k]), tag).toBe(true);
        });
        e.dispose();
      }
    }
  });

  it('matches the float64 reference (GroupNorm, SiLU, their backward passes composed)', async () => {
    const e = await make({ threads: 2, simd: 'relaxed' });
    CASES.forEach((c, i) => {
      const [N, C, H, W, G] = c;
      const HW = H * W;
      const a = inputs(e, c, 100 + i);
      const [x, dy, gamma, beta] = [a.x, a.dy, a.gamma, a.beta].map((t) => e.read(t));
      const h = groupNormRef(x, gamma, beta, N, C, HW, G, 1e-6).y;
      const ref = groupNormBackwardRef(siluBackwardRef(h, dy), x, gamma, N, C, HW, G, 1e-6);
      const got = fused(e, c, 100 + i, false);
      const close = (g: Float32Array, w: Float64Array, plus: Float32Array | null, what: string) => {
        const want = plus ? w.map((v, j) => v + plus[j]) : w;
        const scale = Math.max(...want.map(Math.abs));
        for (let j = 0; j < want.length; j++)
          expect(Math.abs(g[j] - want[j]), `${what}[${j}] case ${c}`).toBeLessThanOrEqual(2e-5 * scale);
      };
      close(got.dx, ref.dx, null, 'dx');
      close(got.dgamma, ref.dgamma, a.dg0, 'dgamma');
      close(got.dbeta, ref.dbeta, a.db0, 'dbeta');
    });
  });

  it('rejects a group larger than the workspace and groups that do not divide C, before any kernel runs', async () => {
    const small = await make({ threads: 1, scratchPerThread: 64 * 1024 });
    const a = inputs(small, [1, 2, 100, 100, 1], 1); // a group of 20000 floats = 80 kB > 64 kB
    const mean = small.alloc(1, 'mean'),
      rstd = small.alloc(1, 'rstd');
    const dx = small.alloc(a.n, 'dx'),
      dgamma = small.alloc(2, 'dgamma'),
      dbeta = small.alloc(2, 'dbeta');
    const args = { ...a.shape, dy: a.dy, x: a.x, mean, rstd, gamma: a.gamma, beta: a.beta, dx, dgamma, dbeta };
    const before = small.read(dx);
    expect(() => kernels.groupNormSiluBackward(small, args)).toThrow(DdpmError);
    expect(() => kernels.groupNormSiluBackward(small, args)).toThrow(/does not fit the 65536-byte workspace/);
    expect(() => kernels.groupNormSiluBackward(small, { ...args, H: 10, W: 10, C: 3, groups: 2 })).toThrow(
      /num_groups \(2\) must divide num_channels \(3\)/,
    );
    expect(sameBits(small.read(dx), before)).toBe(true);
  });
});
