// The fused inference pass SiLU(GroupNorm(x)) gives the same bits as the two kernels, in both SIMD builds.
import { afterAll, describe, expect, it } from 'vitest';
import { Engine, kernels } from '../src/index.js';
import { randomF32, sameBits } from './helpers/rng.js';

const engines: Engine[] = [];
afterAll(() => engines.forEach((e) => e.dispose()));

describe('groupNorm with silu', () => {
  for (const simd of ['simd', 'relaxed'] as const) {
    it(`${simd}: fused = groupNorm then silu, bit for bit (plane sizes not a multiple of 4)`, async () => {
      const e = await Engine.create({ threads: 2, simd });
      engines.push(e);
      for (const [N, C, H, W, G] of [
        [2, 8, 7, 7, 4],
        [3, 16, 28, 28, 8],
        [1, 4, 5, 3, 2],
      ]) {
        const n = N * C * H * W;
        const x = e.upload(
          randomF32(n, N + C).map((v) => 3 * v),
          n,
          'x',
        );
        const gamma = e.upload(randomF32(C, 1), C, 'gamma'),
          beta = e.upload(randomF32(C, 2), C, 'beta');
        const stats = () => [e.alloc(N * G, 'mean'), e.alloc(N * G, 'rstd')];
        const [m1, r1] = stats(),
          [m2, r2] = stats();
        const y1 = e.alloc(n, 'y1'),
          y2 = e.alloc(n, 'y2'),
          s1 = e.alloc(n, 's1');
        kernels.groupNorm(e, { N, C, H, W, groups: G, x, gamma, beta, y: y1, mean: m1, rstd: r1, eps: 1e-6 });
        kernels.silu(e, n, y1, s1);
        kernels.groupNorm(e, {
          N,
          C,
          H,
          W,
          groups: G,
          x,
          gamma,
          beta,
          y: y2,
          mean: m2,
          rstd: r2,
          eps: 1e-6,
          silu: true,
        });
        expect(sameBits(e.read(y2), e.read(s1)), `${N}×${C}×${H}×${W}`).toBe(true);
        expect(sameBits(e.read(m2), e.read(m1)) && sameBits(e.read(r2), e.read(r1))).toBe(true);
      }
    });
  }
});
