// The variational bound on data whose exact answer is known: Gaussian data with the analytically optimal
// reverse process.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../src/index.js';
import { variationalBound } from '../src/diffusion/bound.js';
import { namedSchedule } from '../src/diffusion/schedule.js';
import { rng } from './helpers/rng.js';

const T = 1000;
const sched = namedSchedule('linear', T); // β 1e-4 … 0.02 (Ho et al. 2020)
const s = 0.3; // data std
const N = 200,
  D = 8;

/** x0: N(0, s²) rounded to the 256-level grid of [−1, 1]. */
function gaussianData(): Float32Array {
  const r = rng(11);
  const x = new Float32Array(N * D);
  for (let i = 0; i < x.length; i++) {
    const z = Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
    const k = Math.min(255, Math.max(0, Math.round(((s * z + 1) * 255) / 2)));
    x[i] = (2 * k) / 255 - 1;
  }
  return x;
}

/** −log P(bin) under N(0, s²), by Simpson integration of the density (an oracle independent of erf). */
function binNll(x: number): number {
  const lo = x < -0.999 ? -8 * s : x - 1 / 255;
  const hi = x > 0.999 ? 8 * s : x + 1 / 255;
  const m = 200;
  const h = (hi - lo) / m;
  const f = (u: number) => Math.exp((-0.5 * u * u) / (s * s)) / (s * Math.sqrt(2 * Math.PI));
  let sum = f(lo) + f(hi);
  for (let k = 1; k < m; k++) sum += (k % 2 ? 4 : 2) * f(lo + k * h);
  return -Math.log((sum * h) / 3);
}

/** The exact reverse process for N(0, s²) data: E[ε | x_t] and Var(x_{t−1} | x_t) (a 'learned' variance). */
function optimalModel(xt: Float32Array, ts: Int32Array): Float32Array {
  const out = new Float32Array(2 * xt.length);
  const n = ts.length;
  for (let b = 0; b < n; b++) {
    const t = ts[b];
    const ab = sched.alphasCumprod[t];
    const abPrev = t === 0 ? 1 : sched.alphasCumprod[t - 1];
    const v = ab * s * s + 1 - ab; // Var(x_t)
    const vPrev = abPrev * s * s + 1 - abPrev; // Var(x_{t−1}), = s² at t = 0
    const alpha = ab / abPrev;
    const varPrev = vPrev - (alpha * vPrev * vPrev) / v;
    for (let d = 0; d < D; d++) {
      out[b * 2 * D + d] = (Math.sqrt(1 - ab) / v) * xt[b * D + d];
      out[b * 2 * D + D + d] = varPrev;
    }
  }
  return out;
}

let engine: Engine;
beforeAll(async () => {
  engine = await Engine.create({ threads: 1 });
});
afterAll(() => engine.dispose());

describe('variational bound', () => {
  const x0 = gaussianData();
  // −log P(x_0) per sample, bits/dim
  const nllPerSample = Array.from({ length: N }, (_, n) => {
    let sum = 0;
    for (let d = 0; d < D; d++) sum += binNll(x0[n * D + d]);
    return sum / D / Math.LN2;
  });
  const nllBpd = nllPerSample.reduce((a, b) => a + b) / N;

  it('for Gaussian data and the exact optimal model, matches the analytic NLL within the discretization', async () => {
    const r = await variationalBound(engine, {
      schedule: sched,
      model: optimalModel,
      x0,
      D,
      varianceType: 'learned',
      clipDenoised: false,
      seed: 5,
    });
    // Sanity of the parts: the prior term is tiny (ᾱ_T ≈ 4e-5), every KL term is ≥ 0.
    expect(r.priorBpd).toBeLessThan(1e-3);
    for (let t = 1; t < T; t++) expect(r.terms[t]).toBeGreaterThanOrEqual(-1e-12);
    // The bound exceeds −log P(x_0) only by the discretization gap: x_1's noise (std 0.01) is about one
    // bin (2/255) wide, so q(x_1 | x_0) misses the within-bin spread by KL ≈ ½(0.0023/0.01)² ≈ 0.04 bits.
    // Paired over the same samples, the gap's noise is only that of the x_t draws.
    const diffs = nllPerSample.map((v, n) => r.perSample[n] - v);
    const gap = diffs.reduce((a, b) => a + b) / N;
    const se = Math.sqrt(diffs.reduce((a, b) => a + (b - gap) ** 2, 0) / (N - 1) / N);
    expect(gap).toBeGreaterThan(-4 * se);
    expect(gap).toBeLessThan(0.05 + 4 * se);
    expect(nllBpd).toBeGreaterThan(7); // ≈ log2(s·√(2πe)·255/2) = 7.30 bits/dim
  });

  it('a worse model gets a clearly worse bound (the test can fail)', async () => {
    const fixed = await variationalBound(engine, {
      schedule: sched,
      model: (xt, ts) => optimalModel(xt, ts).filter((_, i) => Math.floor(i / D) % 2 === 0),
      x0,
      D,
      varianceType: 'fixed_large',
      clipDenoised: false,
      seed: 5,
    });
    // β_t instead of the true reverse variance costs ~0.13 bits/dim here
    expect(fixed.bitsPerDim - nllBpd).toBeGreaterThan(0.08);
    const blind = await variationalBound(engine, {
      schedule: sched,
      model: (xt) => new Float32Array(xt.length),
      x0,
      D,
      varianceType: 'fixed_small',
      seed: 5,
      timesteps: { stride: 10 },
    });
    expect(blind.bitsPerDim - nllBpd).toBeGreaterThan(1);
  });

  it('the sampled estimate is unbiased: within a few standard errors of the exact sum', async () => {
    const exact = await variationalBound(engine, {
      schedule: sched,
      model: optimalModel,
      x0,
      D,
      varianceType: 'learned',
      clipDenoised: false,
      seed: 5,
    });
    const sampled = await variationalBound(engine, {
      schedule: sched,
      model: optimalModel,
      x0,
      D,
      varianceType: 'learned',
      clipDenoised: false,
      seed: 9,
      timesteps: { samples: 20 },
      batchSize: 64,
    });
    expect(sampled.stdError).toBeGreaterThan(0);
    expect(Math.abs(sampled.bitsPerDim - exact.bitsPerDim)).toBeLessThan(
      4 * Math.hypot(sampled.stdError, exact.stdError),
    );
    // same seed and options, other batch size → same estimate
    const again = await variationalBound(engine, {
      schedule: sched,
      model: optimalModel,
      x0,
      D,
      varianceType: 'learned',
      clipDenoised: false,
      seed: 9,
      timesteps: { samples: 20 },
      batchSize: 37,
    });
    expect(again.bitsPerDim).toBe(sampled.bitsPerDim);
  });

  it('rejects bad input with typed errors', async () => {
    const base = { schedule: sched, model: optimalModel, D, varianceType: 'learned' as const };
    await expect(variationalBound(engine, { ...base, x0: new Float32Array(7) })).rejects.toThrow(
      /x0 has 7 values, not a positive multiple of D = 8/,
    );
    await expect(variationalBound(engine, { ...base, x0: new Float32Array(8).fill(1.5) })).rejects.toThrow(
      /x0\[0\] = 1.5 is outside \[-1, 1\]/,
    );
    await expect(
      variationalBound(engine, { ...base, x0: new Float32Array(8), varianceType: 'fixed_small' }),
    ).rejects.toThrow(/returned 16 values for 1 samples, expected 8/);
  });
});
