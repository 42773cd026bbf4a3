// The forward process q(x_t | x_0) and the posterior q(x_{t−1} | x_t, x_0) (Ho et al. 2020, eqs. 4, 6, 7).
// Every one of them is "per-sample scalar · A + per-sample scalar · B", so all run on the q_sample kernel
// with float32 coefficients taken from the float64 schedule.
import { DdpmError } from '../errors.js';
import type { Engine } from '../engine/engine.js';
import type { Tensor } from '../engine/memory.js';
import { qSample, type RandomAddress } from '../kernels/gaussian.js';
import type { NoiseSchedule } from './schedule.js';

export interface AddNoiseOptions {
  /** Receives x_t, (N, D). */
  out: Tensor;
  /** Where ε is drawn when `noise` is null: sample n uses elements offset + n·D of (seed, stream). */
  random?: RandomAddress;
  /** Receives the drawn ε (the training target), (N, D). */
  noiseOut?: Tensor;
}

/** N = timesteps.length samples of D = x0.size / N values; each timestep an integer in [0, T). */
function batchShape(
  who: string,
  schedule: NoiseSchedule,
  x0: Tensor,
  timesteps: ArrayLike<number>,
): { N: number; D: number } {
  const N = timesteps.length;
  if (N < 1 || x0.size % N !== 0 || x0.size === 0) {
    throw new DdpmError(
      'SHAPE_MISMATCH',
      `${who}: ${x0.name} holds ${x0.size} values, not a positive multiple of the ${N} timesteps`,
    );
  }
  for (let n = 0; n < N; n++) {
    const t = timesteps[n];
    if (!Number.isInteger(t) || t < 0 || t >= schedule.T) {
      throw new DdpmError(
        'INVALID_TIMESTEP',
        `${who}: timesteps[${n}] must be an integer in [0, ${schedule.T}), found ${t}`,
      );
    }
  }
  return { N, D: x0.size / N };
}

/** out = a[t_n]·x + b[t_n]·y per sample n: the coefficients go through two arena temporaries. */
function perSample(
  engine: Engine,
  N: number,
  D: number,
  timesteps: ArrayLike<number>,
  a: Float64Array,
  b: Float64Array,
  x: Tensor,
  y: Tensor | null,
  out: Tensor,
  random?: RandomAddress,
  noiseOut?: Tensor,
): void {
  const mark = engine.arena.mark();
  try {
    const ta = engine.alloc(N, 'coefA');
    const tb = engine.alloc(N, 'coefB');
    const va = engine.view(ta),
      vb = engine.view(tb);
    for (let n = 0; n < N; n++) {
      va[n] = a[timesteps[n]];
      vb[n] = b[timesteps[n]];
    }
    qSample(engine, {
      N,
      D,
      x0: x,
      sqrtAlphasCumprod: ta,
      sqrtOneMinusAlphasCumprod: tb,
      out,
      noise: y ?? undefined,
      random,
      noiseOut,
    });
  } finally {
    engine.arena.release(mark);
  }
}

/**
 * q_sample (diffusers' add_noise): x_t = sqrt(ᾱ_t)·x_0 + sqrt(1 − ᾱ_t)·ε (DDPM eq. 4), with ε given or,
 * when `noise` is null, drawn from Philox at `opts.random`. x0, noise, out: (N, …); timesteps: (N).
 * Returns opts.out.
 */
export function addNoise(
  engine: Engine,
  schedule: NoiseSchedule,
  x0: Tensor,
  noise: Tensor | null,
  timesteps: ArrayLike<number>,
  opts: AddNoiseOptions,
): Tensor {
  const { N, D } = batchShape('addNoise', schedule, x0, timesteps);
  if (!noise && !opts.random)
    throw new DdpmError('INVALID_ARGUMENT', 'addNoise: give noise, or opts.random to draw it');
  perSample(
    engine,
    N,
    D,
    timesteps,
    schedule.sqrtAlphasCumprod,
    schedule.sqrtOneMinusAlphasCumprod,
    x0,
    noise,
    opts.out,
    noise ? undefined : opts.random,
    opts.noiseOut,
  );
  return opts.out;
}

/**
 * The posterior q(x_{t−1} | x_t, x_0) = N(μ̃_t, β̃_t I) (DDPM eqs. 6–7): writes μ̃_t = posteriorMeanCoef1·x_0 +
 * posteriorMeanCoef2·x_t into `mean` and returns β̃_t and its clipped log per sample.
 *   x0, xt, mean: (N, D)   timesteps: (N)
 */
export function qPosterior(
  engine: Engine,
  schedule: NoiseSchedule,
  x0: Tensor,
  xt: Tensor,
  timesteps: ArrayLike<number>,
  mean: Tensor,
): { mean: Tensor; variance: Float64Array; logVarianceClipped: Float64Array } {
  const { N, D } = batchShape('qPosterior', schedule, x0, timesteps);
  perSample(engine, N, D, timesteps, schedule.posteriorMeanCoef1, schedule.posteriorMeanCoef2, x0, xt, mean);
  return {
    mean,
    variance: Float64Array.from(timesteps, (t) => schedule.posteriorVariance[t]),
    logVarianceClipped: Float64Array.from(timesteps, (t) => schedule.posteriorLogVarianceClipped[t]),
  };
}

/** x̂_0 = sqrt(1/ᾱ_t)·x_t − sqrt(1/ᾱ_t − 1)·ε (DDPM eq. 4 solved for x_0; eq. 15's estimate).
 *   xt, eps, out: (N, D)   timesteps: (N) */
export function predictStartFromNoise(
  engine: Engine,
  schedule: NoiseSchedule,
  xt: Tensor,
  eps: Tensor,
  timesteps: ArrayLike<number>,
  out: Tensor,
): Tensor {
  const { N, D } = batchShape('predictStartFromNoise', schedule, xt, timesteps);
  const negRecipm1 = schedule.sqrtRecipm1AlphasCumprod.map((v) => -v);
  perSample(engine, N, D, timesteps, schedule.sqrtRecipAlphasCumprod, negRecipm1, xt, eps, out);
  return out;
}
