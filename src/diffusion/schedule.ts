// Noise schedules β_1…β_T and every coefficient derived from them, computed once in float64 (diffusers
// computes them in float32; see test/fixtures/diffusers/README.md for the size of that difference).
// Arrays are indexed by the 0-based timestep t ∈ [0, T) as in diffusers: betas[t] is the paper's β_{t+1}.
import { show } from '../validate.js';
import { DdpmError } from '../errors.js';

export type BetaScheduleName = 'linear' | 'scaled_linear' | 'squaredcos_cap_v2' | 'sigmoid';

export const BETA_SCHEDULES: readonly BetaScheduleName[] = ['linear', 'scaled_linear', 'squaredcos_cap_v2', 'sigmoid'];

export interface BetaScheduleOptions {
  /** Default 0.0001 (Ho et al. 2020). */
  betaStart?: number;
  /** Default 0.02. */
  betaEnd?: number;
  /** Cap of the cosine schedule's betas. Default 0.999 (Nichol & Dhariwal 2021). */
  maxBeta?: number;
}

/** numpy.linspace(start, stop, n) as numpy computes it: start + i·((stop − start)/(n − 1)), last = stop. */
export function linspace(start: number, stop: number, n: number): Float64Array {
  const out = new Float64Array(n);
  if (n === 1) {
    out[0] = start;
    return out;
  }
  const step = (stop - start) / (n - 1);
  for (let i = 0; i < n; i++) out[i] = i * step + start;
  out[n - 1] = stop;
  return out;
}

/** β_t for t ∈ [0, T) of a named schedule (not yet validated: see makeSchedule). */
export function betaSchedule(name: BetaScheduleName, T: number, o: BetaScheduleOptions = {}): Float64Array {
  if (!Number.isInteger(T) || T < 1)
    throw new DdpmError('INVALID_SCHEDULE', `num_train_timesteps must be an integer >= 1, found ${show(T)}`);
  const b0 = o.betaStart ?? 0.0001;
  const b1 = o.betaEnd ?? 0.02;
  switch (name) {
    case 'linear':
      // Ho et al. 2020, §4: β linear from 1e-4 to 0.02 over T = 1000.
      return linspace(b0, b1, T);
    case 'scaled_linear':
      // Rombach et al. 2022 (latent diffusion): linear in sqrt(β), then squared.
      return linspace(Math.sqrt(b0), Math.sqrt(b1), T).map((v) => v * v);
    case 'squaredcos_cap_v2': {
      // Nichol & Dhariwal 2021, eq. 17: ᾱ(t) = cos²((t/T + s)/(1 + s)·π/2), s = 0.008; β = 1 − ᾱ(t+1)/ᾱ(t),
      // capped at 0.999 to avoid the singularity at t = T.
      const maxBeta = o.maxBeta ?? 0.999;
      const alphaBar = (x: number) => Math.cos((((x + 0.008) / 1.008) * Math.PI) / 2) ** 2;
      return Float64Array.from({ length: T }, (_, i) => Math.min(1 - alphaBar((i + 1) / T) / alphaBar(i / T), maxBeta));
    }
    case 'sigmoid':
      // GeoDiff (Xu et al. 2022): sigmoid over linspace(−6, 6, T), rescaled to [betaStart, betaEnd].
      return linspace(-6, 6, T).map((x) => (1 / (1 + Math.exp(-x))) * (b1 - b0) + b0);
    default:
      throw new DdpmError(
        'INVALID_SCHEDULE',
        `beta_schedule must be one of ${BETA_SCHEDULES.join(', ')}, found ${show(name)}`,
      );
  }
}

/** The diffusion process's coefficients (Ho et al. 2020; names as in diffusers and improved-diffusion). */
export interface NoiseSchedule {
  /** T, the number of training timesteps. */
  readonly T: number;
  readonly betas: Float64Array; // (T)  β_t
  readonly alphas: Float64Array; // (T)  α_t = 1 − β_t
  readonly alphasCumprod: Float64Array; // (T)  ᾱ_t = Π_{s≤t} α_s
  readonly alphasCumprodPrev: Float64Array; // (T)  ᾱ_{t−1}, with ᾱ_{−1} = 1
  readonly sqrtAlphasCumprod: Float64Array; // (T)
  readonly sqrtOneMinusAlphasCumprod: Float64Array; // (T)
  readonly logOneMinusAlphasCumprod: Float64Array; // (T)
  readonly sqrtRecipAlphasCumprod: Float64Array; // (T)  1/sqrt(ᾱ_t)
  readonly sqrtRecipm1AlphasCumprod: Float64Array; // (T)  sqrt(1/ᾱ_t − 1)
  /** Variance of q(x_{t−1} | x_t, x_0), β̃_t = β_t (1 − ᾱ_{t−1})/(1 − ᾱ_t) (DDPM eq. 7); 0 at t = 0. */
  readonly posteriorVariance: Float64Array; // (T)
  /** log β̃_t with the t = 0 value (log 0) replaced by log β̃_1, as improved-diffusion does (for T = 1,
   * where there is no β̃_1, by log β_0). */
  readonly posteriorLogVarianceClipped: Float64Array; // (T)
  /** μ̃_t(x_t, x_0) = posteriorMeanCoef1·x_0 + posteriorMeanCoef2·x_t (DDPM eq. 7). */
  readonly posteriorMeanCoef1: Float64Array; // (T)  β_t sqrt(ᾱ_{t−1})/(1 − ᾱ_t)
  readonly posteriorMeanCoef2: Float64Array; // (T)  (1 − ᾱ_{t−1}) sqrt(α_t)/(1 − ᾱ_t)
}

function invalid(msg: string): DdpmError {
  return new DdpmError('INVALID_SCHEDULE', msg);
}

/**
 * Validates betas and derives every coefficient. Requires T = betas.length ≥ 1 (and = `expectedT` when
 * given), every β finite in (0, 1), and ᾱ strictly decreasing and positive (β so small that ᾱ does not
 * move in float64, or so many steps that it underflows, would make x_0 unrecoverable or the posterior
 * undefined). Errors name the index and the value.
 */
export function makeSchedule(betasIn: ArrayLike<number>, expectedT?: number): NoiseSchedule {
  const T = betasIn.length;
  if (T < 1) throw invalid('a schedule needs at least one beta, found none');
  if (expectedT !== undefined && T !== expectedT)
    throw invalid(`trained_betas has ${T} values, num_train_timesteps is ${expectedT}`);
  const betas = Float64Array.from(betasIn);
  const alphas = new Float64Array(T);
  const alphasCumprod = new Float64Array(T);
  let acp = 1;
  for (let t = 0; t < T; t++) {
    const b = betasIn[t];
    if (typeof b !== 'number' || !Number.isFinite(b))
      throw invalid(`betas[${t}] must be a finite number, found ${show(b)}`);
    if (!(b > 0 && b < 1)) throw invalid(`betas[${t}] must be in (0, 1), found ${b}`);
    alphas[t] = 1 - b;
    const next = acp * alphas[t];
    if (!(next < acp) || !(next > 0)) {
      throw invalid(
        `alphas_cumprod must be strictly decreasing and positive: at t = ${t} (beta ${b}) it goes from ${acp} to ${next}`,
      );
    }
    alphasCumprod[t] = acp = next;
  }
  const map = (f: (t: number) => number) => Float64Array.from({ length: T }, (_, t) => f(t));
  const alphasCumprodPrev = map((t) => (t === 0 ? 1 : alphasCumprod[t - 1]));
  const posteriorVariance = map((t) => (betas[t] * (1 - alphasCumprodPrev[t])) / (1 - alphasCumprod[t]));
  return {
    T,
    betas,
    alphas,
    alphasCumprod,
    alphasCumprodPrev,
    sqrtAlphasCumprod: map((t) => Math.sqrt(alphasCumprod[t])),
    sqrtOneMinusAlphasCumprod: map((t) => Math.sqrt(1 - alphasCumprod[t])),
    logOneMinusAlphasCumprod: map((t) => Math.log(1 - alphasCumprod[t])),
    sqrtRecipAlphasCumprod: map((t) => Math.sqrt(1 / alphasCumprod[t])),
    sqrtRecipm1AlphasCumprod: map((t) => Math.sqrt(1 / alphasCumprod[t] - 1)),
    posteriorVariance,
    posteriorLogVarianceClipped: map((t) =>
      Math.log(t > 0 ? posteriorVariance[t] : T > 1 ? posteriorVariance[1] : betas[0]),
    ),
    posteriorMeanCoef1: map((t) => (betas[t] * Math.sqrt(alphasCumprodPrev[t])) / (1 - alphasCumprod[t])),
    posteriorMeanCoef2: map((t) => ((1 - alphasCumprodPrev[t]) * Math.sqrt(alphas[t])) / (1 - alphasCumprod[t])),
  };
}

/** A named schedule, validated, with its derived coefficients. */
export function namedSchedule(name: BetaScheduleName, T: number, o: BetaScheduleOptions = {}): NoiseSchedule {
  return makeSchedule(betaSchedule(name, T, o));
}

/**
 * The schedule of given ᾱ_t (what a trainer or a checkpoint stores): checks that ᾱ has at least one value,
 * each in (0, 1), strictly decreasing, then derives β_t = 1 − ᾱ_t/ᾱ_{t−1} and everything else with
 * makeSchedule (whose ᾱ, a product of 1 − β, may differ from the given values in the last bits).
 */
export function scheduleFromAlphasCumprod(a: ArrayLike<number>, what = 'alphasCumprod'): NoiseSchedule {
  if (a.length < 1) throw invalid(`${what} is empty`);
  for (let t = 0; t < a.length; t++) {
    if (!(a[t] > 0 && a[t] < 1)) throw invalid(`${what}[${t}] = ${a[t]} is not in (0, 1)`);
    if (t > 0 && !(a[t] < a[t - 1]))
      throw invalid(`${what} must strictly decrease: [${t - 1}] = ${a[t - 1]}, [${t}] = ${a[t]}`);
  }
  return makeSchedule(Float64Array.from({ length: a.length }, (_, t) => 1 - a[t] / (t === 0 ? 1 : a[t - 1])));
}
