// The variational bound on −log p_θ(x_0) (Ho et al. 2020, eq. 5), reported in bits per dimension as in the
// paper's Table 2:
//
//   L = L_T + Σ_{t>1} L_{t−1} + L_0
//   L_T     = KL(q(x_T | x_0) ‖ N(0, I))                             (prior term; no parameters)
//   L_{t−1} = KL(q(x_{t−1} | x_t, x_0) ‖ p_θ(x_{t−1} | x_t))          (eq. 6–7 against the model's Gaussian)
//   L_0     = −log p_θ(x_0 | x_1), a Gaussian discretized to 256 bins of [−1, 1] (§3.3)
//
// p_θ is posterior.ts's pMeanVariance and the terms are vlb.ts's, shared with training on the bound.
//
// Timesteps are 0-based as in diffusers: index t here is the paper's t+1, so index 0 is the decoder term.
// Each x_t is drawn independently from q(x_t | x_0) (closed form, eq. 4) with Philox noise addressed by
// (seed, stream = draw, element = image·D + d): the estimate depends on neither batch size nor threads.
import { DdpmError, checkInt } from '../errors.js';
import type { Engine } from '../engine/engine.js';
import { qSample } from '../kernels/gaussian.js';
import { natsToBits, normalKl } from './gaussian-math.js';
import { pMeanVariance, type ModelVarianceType } from './posterior.js';
import { vlbTerm } from './vlb.js';
import type { NoiseSchedule } from './schedule.js';
import { splitmix32 } from '../random.js';
import type { PredictionType } from './posterior.js';

export type BoundVarianceType = ModelVarianceType;

/**
 * The model: given x_t (N·D values, sample-major) and each sample's timestep, its output — (N, D), or
 * (N, 2D) with the variance prediction second for 'learned' (a variance, as diffusers reads it) and
 * 'learned_range' (v ∈ [−1, 1] interpolating log β̃_t … log β_t, improved DDPM eq. 15).
 */
export type BoundModel = (xt: Float32Array, timesteps: Int32Array) => Promise<Float32Array> | Float32Array;

export interface BoundOptions {
  schedule: NoiseSchedule;
  model: BoundModel;
  /** Data in [−1, 1] on the 256-level grid, (N, D). */
  x0: Float32Array;
  /** Elements per sample (C·H·W). */
  D: number;
  predictionType?: PredictionType;
  varianceType?: BoundVarianceType;
  /** Clip the predicted x̂_0 to [−1, 1] before forming the model's mean (pixel data). Default true. */
  clipDenoised?: boolean;
  /**
   * Which KL terms to evaluate: 'all' (exact sum over every t), { stride: k } (t = 1, 1+k, … each standing
   * for the k terms of its block), or { samples: k } (k uniform draws of t per sample, unbiased; its
   * standard error covers both the data and the draws). The decoder and prior terms are always exact.
   */
  timesteps?: 'all' | { stride: number } | { samples: number };
  seed?: number;
  /** Samples per model call. Default: all N. */
  batchSize?: number;
  signal?: AbortSignal;
  onProgress?: (p: { done: number; total: number }) => void;
}

export interface BoundResult {
  /** The bound: mean over samples, bits/dim. */
  bitsPerDim: number;
  /** Standard error of bitsPerDim over samples (and timestep draws), or NaN for one sample. */
  stdError: number;
  priorBpd: number;
  decoderBpd: number;
  /** Σ_{t≥1} L_{t−1} (as estimated), bits/dim. */
  klBpd: number;
  /** Mean bits/dim of each evaluated term by timestep index (NaN where not evaluated; index 0 = decoder). */
  terms: Float64Array;
  /** Each sample's bound, bits/dim. */
  perSample: Float64Array;
}

export async function variationalBound(engine: Engine, o: BoundOptions): Promise<BoundResult> {
  const s = o.schedule;
  const T = s.betas.length;
  const D = o.D;
  checkInt('variationalBound: D', D, 1);
  if (o.x0.length === 0 || o.x0.length % D !== 0) {
    throw new DdpmError(
      'SHAPE_MISMATCH',
      `variationalBound: x0 has ${o.x0.length} values, not a positive multiple of D = ${D}`,
    );
  }
  if (T < 2)
    throw new DdpmError('INVALID_SCHEDULE', `variationalBound: the schedule needs at least 2 timesteps, found ${T}`);
  for (let i = 0; i < o.x0.length; i++) {
    if (!(o.x0[i] >= -1 && o.x0[i] <= 1)) {
      throw new DdpmError('INVALID_ARGUMENT', `variationalBound: x0[${i}] = ${o.x0[i]} is outside [-1, 1]`);
    }
  }
  const N = o.x0.length / D;
  const predictionType = o.predictionType ?? 'epsilon';
  const varianceType = o.varianceType ?? 'fixed_small';
  const clip = o.clipDenoised ?? true;
  const seed = o.seed ?? 0;
  const batch = o.batchSize ?? N;
  checkInt('variationalBound: batchSize', batch, 1);
  const learned = varianceType === 'learned' || varianceType === 'learned_range';

  // Which timestep each sample evaluates in each round, and the weight of that term.
  const mode = o.timesteps ?? 'all';
  const rounds: { t: Int32Array; weight: number }[] = [];
  const constant = (t: number, weight: number) => ({ t: new Int32Array(N).fill(t), weight });
  rounds.push(constant(0, 1)); // decoder
  if (mode === 'all') for (let t = 1; t < T; t++) rounds.push(constant(t, 1));
  else if ('stride' in mode) {
    checkInt('variationalBound: timesteps.stride', mode.stride, 1, T - 1);
    for (let t = 1; t < T; t += mode.stride) rounds.push(constant(t, Math.min(mode.stride, T - t)));
  } else {
    checkInt('variationalBound: timesteps.samples', mode.samples, 1);
    const next = splitmix32(seed ^ 0x5bd1e995);
    for (let j = 0; j < mode.samples; j++) {
      const t = new Int32Array(N);
      for (let n = 0; n < N; n++) t[n] = 1 + Math.floor(next() * (T - 1));
      rounds.push({ t, weight: (T - 1) / mode.samples });
    }
  }

  const perSample = new Float64Array(N);
  const termSum = new Float64Array(T);
  const termCount = new Float64Array(T);
  let decoderNats = 0;
  let klNats = 0;

  // Prior term, closed form: q(x_T | x_0) = N(sqrt(ᾱ_T)·x_0, 1 − ᾱ_T).
  let priorNats = 0;
  {
    const m = s.sqrtAlphasCumprod[T - 1];
    const lv = Math.log(1 - s.alphasCumprod[T - 1]);
    for (let n = 0; n < N; n++) {
      let sum = 0;
      for (let d = 0; d < D; d++) sum += normalKl(m * o.x0[n * D + d], lv, 0, 0);
      perSample[n] += sum / D;
      priorNats += sum / D;
    }
  }

  const mark = engine.arena.mark();
  try {
    const B = Math.min(batch, N);
    const x0T = engine.alloc([B, D], 'bound.x0'); // (B, D)
    const xtT = engine.alloc([B, D], 'bound.xt'); // (B, D)
    const aT = engine.alloc(B, 'bound.sqrtAlphasCumprod'); // (B)
    const bT = engine.alloc(B, 'bound.sqrtOneMinusAlphasCumprod'); // (B)
    for (let r = 0; r < rounds.length; r++) {
      const { t: ts, weight } = rounds[r];
      for (let n0 = 0; n0 < N; n0 += B) {
        if (o.signal?.aborted)
          throw new DdpmError('INVALID_ARGUMENT', `variationalBound: aborted at round ${r} of ${rounds.length}`, {
            cause: o.signal.reason,
          });
        const nb = Math.min(B, N - n0);
        const tb = ts.subarray(n0, n0 + nb);
        const x0b = o.x0.subarray(n0 * D, (n0 + nb) * D);
        engine.view(x0T).set(x0b);
        const av = engine.view(aT),
          bv = engine.view(bT);
        for (let n = 0; n < nb; n++) {
          av[n] = s.sqrtAlphasCumprod[tb[n]];
          bv[n] = s.sqrtOneMinusAlphasCumprod[tb[n]];
        }
        qSample(engine, {
          N: nb,
          D,
          x0: x0T,
          sqrtAlphasCumprod: aT,
          sqrtOneMinusAlphasCumprod: bT,
          out: xtT,
          random: { seed, stream: r, offset: n0 * D },
        });
        const xt = engine.read(xtT).subarray(0, nb * D);
        const out = await o.model(xt, tb);
        const stride = learned ? 2 * D : D;
        if (out.length !== nb * stride) {
          throw new DdpmError(
            'SHAPE_MISMATCH',
            `variationalBound: the model returned ${out.length} values for ${nb} samples, expected ${nb * stride} (${learned ? '2D: prediction then variance' : 'D'})`,
          );
        }
        for (let n = 0; n < nb; n++) {
          const t = tb[n];
          // p_θ(x_{t−1} | x_t) from the model output (posterior.ts), improved-diffusion's variance at t = 0
          const p = pMeanVariance(s, t, {
            predictionType,
            varianceType,
            clip: clip ? 1 : Infinity,
            finalVariance: 'clipped',
          });
          const nats = vlbTerm(
            p,
            t,
            D,
            x0b.subarray(n * D, (n + 1) * D),
            xt.subarray(n * D, (n + 1) * D),
            out.subarray(n * stride, (n + 1) * stride),
          );
          if (!Number.isFinite(nats)) {
            throw new DdpmError(
              'NON_FINITE',
              `variationalBound: the term at timestep ${t} for sample ${n0 + n} is ${nats} (model output non-finite or variance ≤ 0?)`,
            );
          }
          perSample[n0 + n] += weight * nats;
          termSum[t] += nats;
          termCount[t] += 1;
          if (t === 0) decoderNats += nats;
          else klNats += weight * nats;
        }
      }
      o.onProgress?.({ done: r + 1, total: rounds.length });
    }
  } finally {
    engine.arena.release(mark);
  }

  let mean = 0;
  for (let n = 0; n < N; n++) mean += perSample[n];
  mean /= N;
  let v = 0;
  for (let n = 0; n < N; n++) v += (perSample[n] - mean) ** 2;
  const stdErr = N > 1 ? Math.sqrt(v / (N - 1) / N) : NaN;
  const terms = new Float64Array(T).fill(NaN);
  for (let t = 0; t < T; t++) if (termCount[t] > 0) terms[t] = natsToBits(termSum[t] / termCount[t]);
  return {
    bitsPerDim: natsToBits(mean),
    stdError: natsToBits(stdErr),
    priorBpd: natsToBits(priorNats / N),
    decoderBpd: natsToBits(decoderNats / N),
    klBpd: natsToBits(klNats / N),
    terms,
    perSample: perSample.map(natsToBits),
  };
}
