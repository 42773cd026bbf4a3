// The posterior q(x_{t−1} | x_t, x_0) and the model's Gaussian p_θ(x_{t−1} | x_t) — the one place where
// the model's mean and variance are derived from its output. The schedulers (DDPM, DDIM), the variational
// bound and the trainer's losses all take their per-step float64 coefficients from here; the per-element
// work stays in the fused kernels (kernels/gaussian.ts) or the float64 loops of bound.ts / vlb.ts.
//
// Equations (Ho et al. 2020, https://arxiv.org/abs/2006.11239; Nichol & Dhariwal 2021,
// https://arxiv.org/abs/2102.09672), written for a step from timestep t to an earlier `prev` (t − 1
// without skipping, any earlier timestep with it; prev = −1 means past the last step, ᾱ_prev = 1):
//
//   β      = 1 − ᾱ_t/ᾱ_prev                          (the step's β; = β_t without skipping)
//   q(x_prev | x_t, x_0) = N(μ̃_t(x_t, x_0), β̃_t I)                                            (6)
//   μ̃_t = sqrt(ᾱ_prev)·β/(1 − ᾱ_t) · x_0 + sqrt(1 − β)·(1 − ᾱ_prev)/(1 − ᾱ_t) · x_t            (7)
//   β̃_t = (1 − ᾱ_prev)/(1 − ᾱ_t) · β                                                          (7)
//   x̂_0 = (x_t − sqrt(1 − ᾱ_t)·ε_θ)/sqrt(ᾱ_t)             ε-prediction                       (15)
//   x̂_0 = sqrt(ᾱ_t)·x_t − sqrt(1 − ᾱ_t)·v_θ               v-prediction (Salimans & Ho 2022, §4)
//   μ_θ(x_t, t) = μ̃_t(x_t, x̂_0)                            the model's mean, x̂_0 optionally clipped
//   Σ_θ: fixed_small β̃_t, fixed_large β (§3.2); learned_range (Nichol & Dhariwal, eq. 15):
//   Σ_θ = exp(f·log β + (1 − f)·log β̃_t), f = (v + 1)/2, v the model's variance channels.
//
// β̃ is 0 at the last step (ᾱ_prev = 1), so its log needs a convention there, and the two codebases we
// follow differ: diffusers' DDPMScheduler clamps β̃ to ≥ 1e-20 (harmless: that step adds no noise);
// improved-diffusion, whose conventions the bound and the training losses use, replaces log β̃_0 by
// log β̃_1 (and fixed_large's β_0 by β̃_1), so the decoder L_0 has a usable variance.
import { DdpmError } from '../errors.js';
import type { NoiseSchedule } from './schedule.js';

export type PredictionType = 'epsilon' | 'sample' | 'v_prediction';

/** The model's variance as the bound and the trainer read it ('learned': the output is Σ_θ itself). */
export type ModelVarianceType = 'fixed_small' | 'fixed_large' | 'learned' | 'learned_range';

/** How log β̃ is taken at the last step, where β̃ = 0 (see the header). */
export type FinalVariance = 'clamped' | 'clipped';

/** ᾱ_t, ᾱ_prev and the step's β = 1 − ᾱ_t/ᾱ_prev. */
export interface StepAlphas {
  alphaProdT: number;
  alphaProdTPrev: number;
  betaT: number;
}

/** The alphas of the step t → prev; ᾱ_prev = `finalAlphaCumprod` (default 1) when prev < 0. */
export function stepAlphas(schedule: NoiseSchedule, t: number, prev: number, finalAlphaCumprod = 1): StepAlphas {
  const acp = schedule.alphasCumprod;
  const alphaProdT = acp[t];
  const alphaProdTPrev = prev >= 0 ? acp[prev] : finalAlphaCumprod;
  return { alphaProdT, alphaProdTPrev, betaT: 1 - alphaProdT / alphaProdTPrev };
}

/** The posterior q(x_prev | x_t, x_0), eqs. 6–7: μ̃ = coefX0·x_0 + coefXt·x_t, variance β̃ (0 at the end). */
export interface PosteriorCoefficients {
  coefX0: number;
  coefXt: number;
  variance: number;
}

export function qPosteriorCoefficients(a: StepAlphas): PosteriorCoefficients {
  const betaProdT = 1 - a.alphaProdT;
  const betaProdTPrev = 1 - a.alphaProdTPrev;
  return {
    coefX0: (Math.sqrt(a.alphaProdTPrev) * a.betaT) / betaProdT,
    coefXt: (Math.sqrt(1 - a.betaT) * betaProdTPrev) / betaProdT,
    variance: (betaProdTPrev / betaProdT) * a.betaT,
  };
}

/** x̂_0 = ax·x_t + am·m for the prediction type m (eq. 15 for ε; v: Salimans & Ho 2022). */
export function predX0Coefficients(predictionType: PredictionType, alphaProdT: number): { ax: number; am: number } {
  const betaProdT = 1 - alphaProdT;
  switch (predictionType) {
    case 'epsilon':
      return { ax: 1 / Math.sqrt(alphaProdT), am: -Math.sqrt(betaProdT) / Math.sqrt(alphaProdT) };
    case 'sample':
      return { ax: 0, am: 1 };
    case 'v_prediction':
      return { ax: Math.sqrt(alphaProdT), am: -Math.sqrt(betaProdT) };
  }
}

/** ε̂ = ex·x_t + em·m: eq. 4 solved for ε given x̂_0 (sample), or ε = sqrt(ᾱ)·v + sqrt(1 − ᾱ)·x_t (v). */
export function predEpsCoefficients(predictionType: PredictionType, alphaProdT: number): { ex: number; em: number } {
  const sa = Math.sqrt(alphaProdT),
    sb = Math.sqrt(1 - alphaProdT);
  switch (predictionType) {
    case 'epsilon':
      return { ex: 0, em: 1 };
    case 'sample':
      return { ex: 1 / sb, em: -sa / sb };
    case 'v_prediction':
      return { ex: sb, em: sa };
  }
}

/**
 * L_simple's regression target = cEps·ε + cX0·x_0 for x_t = sqrt(ᾱ_t)·x_0 + sqrt(1 − ᾱ_t)·ε (eq. 4): ε
 * (eq. 14), x_0, or v = sqrt(ᾱ_t)·ε − sqrt(1 − ᾱ_t)·x_0 (Salimans & Ho 2022) — what predX0Coefficients
 * inverts.
 */
export function trainingTargetCoefficients(
  predictionType: PredictionType,
  alphaProdT: number,
): { cEps: number; cX0: number } {
  switch (predictionType) {
    case 'epsilon':
      return { cEps: 1, cX0: 0 };
    case 'sample':
      return { cEps: 0, cX0: 1 };
    case 'v_prediction':
      return { cEps: Math.sqrt(alphaProdT), cX0: -Math.sqrt(1 - alphaProdT) };
  }
}

/** Σ_θ of one step: a fixed variance, the output itself ('learned'), or log Σ = f·maxLog + (1 − f)·minLog. */
export type ModelVariance =
  | { kind: 'fixed'; variance: number; logVariance: number }
  | { kind: 'learned' }
  | { kind: 'learned_range'; minLog: number; maxLog: number };

/** p_θ(x_prev | x_t) of one step as per-step coefficients of the model output m (and v). */
export interface PMeanVariance {
  /** x̂_0 = clamp(ax·x_t + am·m, −clip, clip); clip = Infinity for none. */
  ax: number;
  am: number;
  clip: number;
  /** μ_θ = c0·x̂_0 + c1·x_t (eq. 7 with x̂_0 for x_0). */
  c0: number;
  c1: number;
  variance: ModelVariance;
  /** The true posterior of the same step (eqs. 6–7), with log β̃ under the convention chosen (`variance` is
   * the raw β̃, 0 at the last step). */
  posterior: PosteriorCoefficients & { logVariance: number };
  alphas: StepAlphas;
}

export interface PMeanVarianceOptions {
  /** The step's earlier timestep; default t − 1. */
  prev?: number;
  /** ᾱ when prev < 0; default 1. */
  finalAlphaCumprod?: number;
  predictionType: PredictionType;
  varianceType: ModelVarianceType;
  /** |x̂_0| bound; default Infinity (no clipping). */
  clip?: number;
  /** β̃ at the last step; default 'clamped' (diffusers: ≥ 1e-20). 'clipped' (improved-diffusion: β̃_1) needs
   * prev = t − 1 there. */
  finalVariance?: FinalVariance;
}

/**
 * The model's Gaussian p_θ(x_prev | x_t) at timestep t (improved-diffusion's p_mean_variance, diffusers'
 * DDPMScheduler.step steps 1–5), as the float64 coefficients the fused kernels take.
 */
export function pMeanVariance(schedule: NoiseSchedule, t: number, o: PMeanVarianceOptions): PMeanVariance {
  const T = schedule.T;
  if (!Number.isInteger(t) || t < 0 || t >= T)
    throw new DdpmError('INVALID_TIMESTEP', `pMeanVariance: timestep must be an integer in [0, ${T}), found ${t}`);
  const prev = o.prev ?? t - 1;
  if (!Number.isInteger(prev) || prev >= t) {
    throw new DdpmError(
      'INVALID_TIMESTEP',
      `pMeanVariance: prev must be an integer below t = ${t} (negative: past the last step), found ${prev}`,
    );
  }
  // 1. alphas and betas of the step
  const alphas = stepAlphas(schedule, t, prev, o.finalAlphaCumprod ?? 1);
  // 2. x̂_0 from the model output (eq. 15), clipped by the kernel
  const { ax, am } = predX0Coefficients(o.predictionType, alphas.alphaProdT);
  // 3. the posterior's coefficients (eq. 7), applied to x̂_0
  const post = qPosteriorCoefficients(alphas);
  // 4. β̃ and β under the chosen convention at the last step (where β̃ = 0)
  let smallVariance = post.variance;
  let largeVariance = alphas.betaT;
  if ((o.finalVariance ?? 'clamped') === 'clamped') smallVariance = Math.max(smallVariance, 1e-20);
  else if (prev < 0) {
    if (prev !== t - 1)
      throw new DdpmError(
        'INVALID_ARGUMENT',
        `pMeanVariance: finalVariance 'clipped' needs prev = t − 1, found prev ${prev} at t = ${t}`,
      );
    // improved-diffusion: β̃_0 := β̃_1, and fixed_large's β_0 := β̃_1 (T = 1: β_0 for both)
    smallVariance = largeVariance = T > 1 ? qPosteriorCoefficients(stepAlphas(schedule, 1, 0)).variance : alphas.betaT;
  }
  const logPosteriorVariance = Math.log(smallVariance);
  // 5. Σ_θ: fixed (§3.2) or learned_range (improved DDPM eq. 15)
  let variance: ModelVariance;
  switch (o.varianceType) {
    case 'fixed_small':
      variance = { kind: 'fixed', variance: smallVariance, logVariance: logPosteriorVariance };
      break;
    case 'fixed_large':
      variance = { kind: 'fixed', variance: largeVariance, logVariance: Math.log(largeVariance) };
      break;
    case 'learned':
      variance = { kind: 'learned' };
      break;
    case 'learned_range':
      variance = { kind: 'learned_range', minLog: logPosteriorVariance, maxLog: Math.log(alphas.betaT) };
      break;
    default:
      throw new DdpmError(
        'INVALID_ARGUMENT',
        `pMeanVariance: varianceType must be fixed_small, fixed_large, learned or learned_range, found ${String(o.varianceType)}`,
      );
  }
  return {
    ax,
    am,
    clip: o.clip ?? Infinity,
    c0: post.coefX0,
    c1: post.coefXt,
    variance,
    posterior: { ...post, logVariance: logPosteriorVariance },
    alphas,
  };
}

/** log Σ_θ for one element with variance-channel value v (ignored by fixed variances). */
export function modelLogVariance(variance: ModelVariance, v: number): number {
  switch (variance.kind) {
    case 'fixed':
      return variance.logVariance;
    case 'learned':
      return Math.log(v);
    case 'learned_range': {
      const frac = (v + 1) / 2;
      return frac * variance.maxLog + (1 - frac) * variance.minLog;
    }
  }
}
