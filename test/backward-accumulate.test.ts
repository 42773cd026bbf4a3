// The one backward convention (issue 13 item 3): every *_backward kernel can add into its gradient, and
// doing so gives exactly prior + (what it overwrites with) — the same bits, one kernel call, no temporary.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine, kernels, type Tensor } from '../src/index.js';
import { randomF32, sameBits } from './helpers/rng.js';

describe('backward kernels accumulate', () => {
  let e: Engine;
  beforeAll(async () => {
    e = await Engine.create({ threads: 2 });
  });
  afterAll(() => e.dispose());

  /** Runs `kernel` overwriting a NaN-filled buffer, then accumulating onto `prior`; compares the two. */
  function check(n: number, kernel: (out: Tensor, accumulate: boolean) => void, what: string) {
    const prior = randomF32(n, 99);
    const over = e.upload(new Float32Array(n).fill(Number.NaN), [n], `${what}.over`);
    kernel(over, false);
    const acc = e.upload(prior, [n], `${what}.acc`);
    kernel(acc, true);
    const want = Float32Array.from(e.read(over), (v, i) => v + prior[i]);
    expect(e.read(over).every(Number.isFinite), `${what} overwrites`).toBe(true);
    expect(sameBits(e.read(acc), want), `${what} accumulates`).toBe(true);
  }

  it('siluBackward, upsampleNearest2xBackward, addChannelBiasBackward, groupNormBackward (dx), mulAccumulate', () => {
    const [N, C, H, W, G] = [2, 8, 5, 6, 4];
    const n = N * C * H * W;
    const x = e.upload(randomF32(n, 1), [n], 'x');
    const dy = e.upload(randomF32(n, 2), [n], 'dy');
    check(n, (out, accumulate) => kernels.siluBackward(e, n, x, dy, out, accumulate), 'siluBackward');
    const dyUp = e.upload(randomF32(4 * n, 3), [4 * n], 'dyUp');
    check(
      n,
      (out, accumulate) => kernels.upsampleNearest2xBackward(e, { N, C, H, W, dy: dyUp, dx: out, accumulate }),
      'upsampleNearest2xBackward',
    );
    check(
      N * C,
      (out, accumulate) => kernels.addChannelBiasBackward(e, { N, C, H, W, dy, dbias: out, accumulate }),
      'addChannelBiasBackward',
    );
    const gamma = e.upload(randomF32(C, 4), [C], 'gamma');
    const beta = e.upload(randomF32(C, 5), [C], 'beta');
    const y = e.alloc(n, 'y'),
      mean = e.alloc(N * G, 'mean'),
      rstd = e.alloc(N * G, 'rstd');
    kernels.groupNorm(e, { N, C, H, W, groups: G, x, gamma, beta, y, mean, rstd, eps: 1e-5 });
    const dgamma = e.alloc(C, 'dgamma'),
      dbeta = e.alloc(C, 'dbeta');
    check(
      n,
      (out, accumulate) =>
        kernels.groupNormBackward(e, {
          N,
          C,
          H,
          W,
          groups: G,
          dy,
          x,
          mean,
          rstd,
          gamma,
          dx: out,
          dgamma,
          dbeta,
          accumulate,
        }),
      'groupNormBackward',
    );
    // mulAccumulate only accumulates: compare with mul + add
    const z0 = randomF32(n, 6);
    const z = e.upload(z0, [n], 'z');
    kernels.mulAccumulate(e, n, x, dy, z);
    const xv = e.read(x),
      dyv = e.read(dy);
    expect(
      sameBits(
        e.read(z),
        Float32Array.from(z0, (v, i) => v + Math.fround(xv[i] * dyv[i])),
      ),
    ).toBe(true);
  });

  it('refuses an accumulating dx that aliases its input', () => {
    const x = e.upload(randomF32(64, 1), [64], 'x');
    expect(() => kernels.siluBackward(e, 64, x, x, x, true)).toThrow(/overlaps/);
  });
});
