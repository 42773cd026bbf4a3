// Test-only diffusion pieces until the scheduler branch lands: ᾱ_t of the linear and squaredcos_cap_v2
// schedules (float64), a plain ancestral DDPM sampler written against the closed-form posterior, and the
// energy distance between point sets.
import type { Engine } from '../../src/index.js';
import { gaussianStep, randn } from '../../src/kernels/gaussian.js';
import type { Denoiser } from '../../src/nn/denoiser.js';

/** ᾱ_t for β linear in [β_start, β_end] (DDPM §4: 1e-4 … 0.02 over T = 1000). */
export function linearAlphasCumprod(T: number, betaStart = 1e-4, betaEnd = 0.02): Float64Array {
  const ac = new Float64Array(T);
  let prod = 1;
  for (let t = 0; t < T; t++) {
    prod *= 1 - (T === 1 ? betaStart : betaStart + ((betaEnd - betaStart) * t) / (T - 1));
    ac[t] = prod;
  }
  return ac;
}

/** ᾱ_t of the cosine schedule (Nichol & Dhariwal 2021, eq. 17), β capped at 0.999. */
export function cosineAlphasCumprod(T: number, s = 0.008): Float64Array {
  const f = (t: number) => Math.cos(((t / T + s) / (1 + s)) * (Math.PI / 2)) ** 2;
  const ac = new Float64Array(T);
  let prod = 1;
  for (let t = 0; t < T; t++) {
    prod *= 1 - Math.min(1 - f(t + 1) / f(t), 0.999);
    ac[t] = prod;
  }
  return ac;
}

/**
 * Ancestral sampling x_T ~ N(0, I) → x_0 with an ε-prediction model: x̂_0 = (x_t − √(1−ᾱ_t)·ε̂)/√ᾱ_t, then
 * x_{t−1} = μ̃_t(x̂_0, x_t) + σ_t·z with μ̃_t = √ᾱ_{t−1}β_t/(1−ᾱ_t)·x̂_0 + √α_t(1−ᾱ_{t−1})/(1−ᾱ_t)·x_t and
 * σ_t² = β̃_t = (1−ᾱ_{t−1})/(1−ᾱ_t)·β_t (DDPM eq. 6–7); no noise at t = 0. Noise from Philox (seed).
 */
export async function ddpmSample(engine: Engine, model: Denoiser, alphasCumprod: Float64Array, N: number, seed: number, numSteps = alphasCumprod.length): Promise<Float32Array> {
  const D = model.sampleSize;
  const T = alphasCumprod.length;
  // With numSteps < T, the chain visits τ_i = ⌊i·T/numSteps⌋ and the same formulas hold with ᾱ_{t−1} read as
  // ᾱ at the previous visited step and β_t = 1 − ᾱ_t/ᾱ_prev (respacing, Nichol & Dhariwal 2021 §4).
  const taus = Array.from({ length: numSteps }, (_, i) => Math.floor((i * T) / numSteps));
  const base = engine.arena.mark();
  const x = engine.alloc([N, D], 'x_t'); // (N, D)
  randn(engine, x, N * D, { seed, stream: 0 });
  for (let i = numSteps - 1; i >= 0; i--) {
    const t = taus[i];
    const ac = alphasCumprod[t];
    const acPrev = i > 0 ? alphasCumprod[taus[i - 1]] : 1;
    const beta = 1 - ac / acPrev;
    const eps = await model.forward(engine.read(x), t);
    const mark = engine.arena.mark();
    const m = engine.upload(eps, [N, D], 'eps'); // (N, D)
    gaussianStep(engine, {
      N, D, modelOutput: m, sample: x, prevSample: x,
      random: i > 0 ? { seed, stream: T - t } : undefined,
      coef: {
        ax: 1 / Math.sqrt(ac), am: -Math.sqrt(1 - ac) / Math.sqrt(ac), clip: Infinity,
        c0: (Math.sqrt(acPrev) * beta) / (1 - ac), c1: (Math.sqrt(1 - beta) * (1 - acPrev)) / (1 - ac), c2: 0,
        sigma: i > 0 ? Math.sqrt(((1 - acPrev) / (1 - ac)) * beta) : 0,
      },
    });
    engine.arena.release(mark);
  }
  const out = engine.read(x);
  engine.arena.release(base);
  return out;
}

/** Energy distance 2E‖X−Y‖ − E‖X−X'‖ − E‖Y−Y'‖ (Székely & Rizzo) between point sets (n, D) and (m, D), V-statistic form. */
export function energyDistance(a: Float32Array, b: Float32Array, D: number): number {
  const meanDist = (p: Float32Array, q: Float32Array) => {
    const n = p.length / D;
    const m = q.length / D;
    let s = 0;
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < m; j++) {
        let d2 = 0;
        for (let k = 0; k < D; k++) {
          const d = p[i * D + k] - q[j * D + k];
          d2 += d * d;
        }
        s += Math.sqrt(d2);
      }
    }
    return s / (n * m);
  };
  return 2 * meanDist(a, b) - meanDist(a, a) - meanDist(b, b);
}
