// Noise levels σ and inference timesteps of the few-step solvers, reproducing diffusers v0.32's numpy and
// float32 arithmetic where it decides a value (the parity fixtures pin these to the last bit).
//
// σ_t = sqrt((1 − ᾱ_t)/ᾱ_t) is the noise-to-signal ratio of the variance-preserving process written as
// x_t/α_t = x_0 + σ_t·ε (Karras et al. 2022, "Elucidating the design space", the VE form of a VP model).
// The solvers step in σ (Euler, Heun) or in λ_t = log(α_t/σ_t) = −log σ (DPM-Solver++, UniPC), with
// α_t = 1/sqrt(σ² + 1) and σ_t = σ·α_t.
//
// diffusers' quirk, kept on purpose: its σ table is computed in float32 from a float32 ᾱ, so σ at t = 0 is
// 0.0100013297…, not 0.0100005 (1 − ᾱ_0 loses 3 digits in float32). This is σ_min of every Karras schedule
// and the last σ of the Euler and Heun loops, and it moves samples by ~1e-5 relative; the rest of our
// arithmetic is float64.
import { DdpmError } from '../errors.js';
import type { NoiseSchedule } from './schedule.js';
import { linspace } from './schedule.js';
import { roundHalfEven, type TimestepSpacing } from './scheduler.js';

const f32 = Math.fround;

/**
 * torch.linspace(start, end, n, dtype=float32) bit for bit, as the CPU kernel of torch 1.13 computes it on
 * x86-64 (AVX2, the build that made the fixtures): step = (end − start)/(n − 1) in float32; in blocks of 8
 * (two per loop turn, the last < 16 values one by one) a base start + step·i (or end − step·(n − 1 − i)
 * from the halfway point on) with one rounding (the compiler fuses it), then base + k·step per lane.
 */
export function torchLinspace32(start: number, end: number, n: number): Float64Array {
  const out = new Float64Array(n);
  if (n === 1) {
    out[0] = f32(start);
    return out;
  }
  const s = f32(start),
    e = f32(end),
    step = f32(f32(e - s) / (n - 1)),
    half = Math.floor(n / 2);
  const base = (i: number) => (i < half ? f32(s + step * i) : f32(e - step * (n - i - 1)));
  const V = 8;
  let i = 0;
  for (; i + 2 * V <= n; i += V) {
    const b = base(i);
    for (let k = 0; k < V; k++) out[i + k] = f32(b + f32(k * step));
  }
  for (; i < n; i++) out[i] = base(i);
  return out;
}

/** diffusers' float32 betas: torch.linspace for linear and scaled_linear (squared in float32), the float64
 * values rounded for the others (squaredcos_cap_v2 is computed in float64 there too; trained betas). */
export function betas32(schedule: NoiseSchedule, name: string, betaStart: number, betaEnd: number): Float64Array {
  if (name === 'linear') return torchLinspace32(betaStart, betaEnd, schedule.T);
  if (name === 'scaled_linear')
    return torchLinspace32(Math.sqrt(betaStart), Math.sqrt(betaEnd), schedule.T).map((v) => f32(v * v));
  return schedule.betas.map(f32);
}

/** diffusers' alphas_cumprod: float32 α = 1 − β, multiplied in double (torch.cumprod on CPU accumulates
 * float32 in double) and each partial product rounded to float32.  betas: float32 values (betas32). */
export function alphasCumprod32(betas: ArrayLike<number>): Float64Array {
  const out = new Float64Array(betas.length);
  let p = 1;
  for (let t = 0; t < betas.length; t++) {
    p *= f32(1 - f32(betas[t]));
    out[t] = f32(p);
  }
  return out;
}

/** diffusers' σ table (float32 values): σ_t = ((1 − ᾱ_t)/ᾱ_t)^½, every operation in float32.  (T) */
export function sigmaTable32(alphasCumprod: ArrayLike<number>): Float64Array {
  return Float64Array.from(alphasCumprod, (a) => f32(Math.sqrt(f32(f32(1 - a) / a))));
}

/** λ_t = log α_t − log σ_t in float32, as DPM-Solver's lambda_min_clipped compares it.  (T) */
export function lambdaTable32(alphasCumprod: ArrayLike<number>): Float64Array {
  return Float64Array.from(alphasCumprod, (a) =>
    f32(f32(Math.log(f32(Math.sqrt(a)))) - f32(Math.log(f32(Math.sqrt(f32(1 - a)))))),
  );
}

/** numpy.interp(x, [0, 1, …, T − 1], fp) in float64. */
export function interpTable(x: number, fp: ArrayLike<number>): number {
  const last = fp.length - 1;
  if (x <= 0) return fp[0];
  if (x >= last) return fp[last];
  const j = Math.floor(x);
  if (j === x) return fp[j];
  const slope = (fp[j + 1] - fp[j]) / 1;
  return slope * (x - j) + fp[j];
}

/** The Karras et al. 2022 (eq. 5) schedule, ρ = 7: σ_i = (σmax^(1/ρ) + i/(n − 1)·(σmin^(1/ρ) − σmax^(1/ρ)))^ρ. */
export function karrasSigmas(sigmaMin: number, sigmaMax: number, n: number): Float64Array {
  const rho = 7;
  const ramp = linspace(0, 1, n);
  const minInvRho = sigmaMin ** (1 / rho);
  const maxInvRho = sigmaMax ** (1 / rho);
  return ramp.map((r) => (maxInvRho + r * (minInvRho - maxInvRho)) ** rho);
}

/**
 * diffusers' _sigma_to_t: the (fractional) timestep whose σ is `sigma`, interpolating t linearly in log σ
 * over the float32 table. numpy detail that decides the bracket: the comparison runs in float32 (a float64
 * scalar minus a float32 array stays float32 in numpy 1.x).
 */
export function sigmaToT(sigma: number, logSigmas32: ArrayLike<number>): number {
  const T = logSigmas32.length;
  const logSigma = Math.log(Math.max(sigma, 1e-10));
  const ls32 = f32(logSigma);
  let lowIdx = 0;
  for (let i = 0; i < T; i++) if (ls32 >= logSigmas32[i]) lowIdx = i;
  lowIdx = Math.min(lowIdx, T - 2);
  const highIdx = lowIdx + 1;
  const low = logSigmas32[lowIdx],
    high = logSigmas32[highIdx];
  let w = (low - logSigma) / f32(low - high);
  w = Math.min(Math.max(w, 0), 1);
  return (1 - w) * lowIdx + w * highIdx;
}

/** numpy.arange(start, 0, −step) as numpy fills it (start + i·delta, delta = (start − step) − start),
 * kept to at most n values (see SchedulerBase.spacedTimesteps on numpy's occasional extra element). */
function arangeDown(start: number, step: number, n: number): number[] {
  const len = Math.min(n, Math.ceil((0 - start) / -step));
  const delta = start + -step - start;
  return Array.from({ length: len }, (_, i) => start + i * delta);
}

/**
 * DPM-Solver's and UniPC's integer timesteps for n steps, decreasing. diffusers' quirk: linspace and
 * leading space n + 1 points and drop the last (so t = 0 is never evaluated): linspace
 * round(linspace(0, last − 1, n + 1)) reversed without its final 0; leading k·(last // (n + 1)) + offset for
 * k = n … 1; trailing round(last − i·T/n) − 1. `last` is T, or less when DPM-Solver clips λ.
 */
export function solverTimesteps(
  spacing: TimestepSpacing,
  T: number,
  n: number,
  stepsOffset: number,
  last = T,
): number[] {
  checkSteps(n, T);
  let ts: number[];
  if (spacing === 'linspace')
    ts = Array.from(linspace(0, last - 1, n + 1), roundHalfEven)
      .reverse()
      .slice(0, n);
  else if (spacing === 'leading') {
    const ratio = Math.floor(last / (n + 1));
    ts = Array.from({ length: n }, (_, i) => (n - i) * ratio + stepsOffset);
  } else ts = arangeDown(last, T / n, n).map((v) => roundHalfEven(v) - 1);
  return checkRange(ts, T, spacing, n);
}

/**
 * Euler's, Euler ancestral's and Heun's timesteps for n steps (float32 values, decreasing): linspace
 * linspace(0, T − 1, n) — fractional, and ending at 0; leading k·(T // n) + offset for k = n − 1 … 0;
 * trailing round(T − i·T/n) − 1.
 */
export function discreteTimesteps(spacing: TimestepSpacing, T: number, n: number, stepsOffset: number): number[] {
  checkSteps(n, T);
  let ts: number[];
  if (spacing === 'linspace') ts = Array.from(linspace(0, T - 1, n), f32).reverse();
  else if (spacing === 'leading') {
    const ratio = Math.floor(T / n);
    ts = Array.from({ length: n }, (_, i) => f32((n - 1 - i) * ratio) + stepsOffset);
  } else ts = arangeDown(T, T / n, n).map((v) => f32(roundHalfEven(v)) - 1);
  return checkRange(ts, T, spacing, n);
}

function checkSteps(n: number, T: number): void {
  if (!Number.isInteger(n) || n < 1 || n > T) {
    throw new DdpmError(
      'INVALID_TIMESTEP',
      `numInferenceSteps must be an integer in [1, ${T}] (numTrainTimesteps), found ${n}`,
    );
  }
}

function checkRange(ts: number[], T: number, spacing: string, n: number): number[] {
  const bad = ts.findIndex((t) => !(t >= 0 && t < T));
  if (bad >= 0)
    throw new DdpmError(
      'INVALID_TIMESTEP',
      `${spacing} spacing of ${n} steps gives timestep ${ts[bad]}, outside [0, ${T})`,
    );
  return ts;
}

/** diffusers' init_noise_sigma of the σ-space schedulers: σ_max for linspace and trailing spacing,
 * sqrt(σ_max² + 1) for leading (in float32). */
export function initNoiseSigmaOf(sigmas: ArrayLike<number>, spacing: TimestepSpacing): number {
  let max = 0;
  for (let i = 0; i < sigmas.length; i++) max = Math.max(max, sigmas[i]);
  return spacing === 'leading' ? f32(Math.sqrt(f32(f32(max * max) + 1))) : max;
}
