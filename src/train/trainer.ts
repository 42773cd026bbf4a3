// The training loop for any Denoiser: L_simple (Ho et al. 2020, eq. 14) with ε, x_0 or v targets and
// optional min-SNR-γ weighting (Hang et al. 2023), or the bound itself — L_vlb, and L_hybrid = L_simple +
// λ·L_vlb with a learned_range variance (Nichol & Dhariwal 2021, §3.1), t uniform or importance-sampled
// (§3.3) — AdamW with warmup then constant or cosine learning
// rate (diffusers' get_scheduler), gradient-norm clipping, an EMA of the weights (diffusers' EMAModel).
//
// Everything random is addressed by (seed, step), not drawn from a running generator:
//   data order   sample k = step·B + n of the stream is row perm_e[k mod M] of the data, e = ⌊k/M⌋, where
//                perm_e is a Fisher–Yates shuffle seeded by (seed, e): batches may straddle epochs
//   timesteps    t_n = ⌊u_n·T/2^32⌋, u_n the Philox u32 words of (key seed, stream 2·step + 1)
//   ε            Philox normals of (key seed, stream 2·step), element n·D + d
//   dropout      Philox masks keyed by a hash of (seed, step) (UNet dropout only)
// So the state to resume is the weights, the moments, the EMA and the step counters (`state()` /
// `restore()`): a resumed run is bit-identical to an uninterrupted one, for any thread count. Checkpoint
// files and run folders are train/checkpoint.ts and train/run.ts; this file imports neither.
import { DdpmError, checkInt } from '../errors.js';
import { macrotaskYielder } from '../event-loop.js';
import type { Engine } from '../engine/engine.js';
import type { Tensor } from '../engine/memory.js';
import { scale } from '../kernels/elementwise.js';
import { philoxFill, qSample, splitU64 } from '../kernels/gaussian.js';
import { adamw, emaUpdate, gradNorm } from '../kernels/optim.js';
import type { Denoiser } from '../nn/denoiser.js';
import { pMeanVariance, trainingTargetCoefficients, type PredictionType } from '../diffusion/posterior.js';
import { scheduleFromAlphasCumprod, type NoiseSchedule } from '../diffusion/schedule.js';
import { vlbTerm } from '../diffusion/vlb.js';
import { ParamBlock } from '../nn/params.js';
import { splitmix32 } from '../random.js';

/**
 * diffusers' EMAModel: after optimisation step k (1-based), with s = k − updateAfterStep − 1,
 *   decay = 0                                           if s ≤ 0 (the EMA copies the weights)
 *   decay = 1 − (1 + s/invGamma)^(−power)               with useEmaWarmup
 *   decay = (1 + s)/(10 + s)                            without
 * then clamped to [minDecay, maxDecay]; ema ← ema − (1 − decay)·(ema − θ).
 */
export interface EmaConfig {
  /** diffusers `decay`: the largest decay used. */
  maxDecay: number;
  minDecay: number;
  updateAfterStep: number;
  useEmaWarmup: boolean;
  invGamma: number;
  power: number;
}

export interface TrainerConfig {
  /** Version of this config's format, stored in checkpoints. */
  formatVersion: number;
  batchSize: number;
  learningRate: number;
  /** 'constant' or 'cosine' (half a cosine from learningRate to 0 at maxTrainSteps), after the warmup. */
  lrScheduler: 'constant' | 'cosine';
  /** Linear warmup from 0: step s < lrWarmupSteps uses learningRate·s/lrWarmupSteps (diffusers/torch LambdaLR). */
  lrWarmupSteps: number;
  /** Length of the cosine schedule (past it the cosine rises again, as in diffusers); unused by 'constant'. */
  maxTrainSteps: number;
  adamBeta1: number;
  adamBeta2: number;
  adamEpsilon: number;
  adamWeightDecay: number;
  /** torch.nn.utils.clip_grad_norm_ threshold; null for none. */
  maxGradNorm: number | null;
  predictionType: PredictionType;
  /** min-SNR-γ weighting (γ = 5 in the paper) of L_simple's terms; null for none. */
  snrGamma: number | null;
  /**
   * The objective (Nichol & Dhariwal 2021, §3.1): 'simple' L_simple; 'vlb' L_vlb = Σ_t L_t, estimated from
   * the sampled t by L_t/p(t) (the terms of diffusion/vlb.ts, bits/dim; the prior L_T has no parameters);
   * 'hybrid' L_simple + vlbWeight·L_vlb, with the mean's gradient stopped in L_vlb.
   */
  loss: 'simple' | 'hybrid' | 'vlb';
  /**
   * The model's variance Σ_θ: 'learned_range' (the model outputs twice the sample's values: prediction,
   * then v ∈ [−1, 1] interpolating log β̃_t … log β_t, improved DDPM eq. 15) or fixed. 'simple' trains no
   * variance and needs a fixed one; 'hybrid' needs learned_range. Default: learned_range for 'hybrid' and
   * 'vlb', fixed_small for 'simple'.
   */
  varianceType: 'fixed_small' | 'fixed_large' | 'learned_range';
  /** λ of L_hybrid; improved DDPM's 0.001. */
  vlbWeight: number;
  /**
   * t per sample: 'uniform' on {0, …, T−1}, or 'importance' (improved DDPM §3.3, 'vlb' and 'hybrid' only):
   * p(t) ∝ sqrt(E[L_t²]) over the last 10 losses seen at each t, mixed with 0.1% uniform, and uniform until
   * every t has 10; each sample's loss weighted by 1/(T·p(t)).
   */
  timestepSampling: 'uniform' | 'importance';
  /** null: no EMA. */
  ema: EmaConfig | null;
  /** A safe non-negative integer: with the step, it determines the data order and all noise. */
  seed: number;
  /** Non-finite steps in a row that stop training. */
  maxNonFiniteInARow: number;
  /**
   * Classifier-free guidance (Ho & Salimans 2022): with labels, each sample's label is replaced by
   * `uncondLabel` with probability `labelDropout` (reserve one class embedding for it). null: never.
   */
  labelDropout: number | null;
  uncondLabel: number;
  /**
   * Random-shift augmentation: each training image is translated by (dx, dy), integers uniform in
   * [−randomShift, randomShift] drawn from (seed, sample index), the border replicated (MNIST's border is
   * background). 0: none. Needs an image model (Denoiser.imageShape).
   */
  randomShift: number;
}

export const TRAINER_CONFIG_VERSION = 1;

/** EMAModel's defaults. */
export const EMA_DEFAULTS: EmaConfig = {
  maxDecay: 0.9999,
  minDecay: 0,
  updateAfterStep: 0,
  useEmaWarmup: false,
  invGamma: 1,
  power: 2 / 3,
};

const DEFAULTS: TrainerConfig = {
  formatVersion: TRAINER_CONFIG_VERSION,
  batchSize: 64,
  learningRate: 1e-4,
  lrScheduler: 'constant',
  lrWarmupSteps: 0,
  maxTrainSteps: 0,
  // torch.optim.AdamW's defaults
  adamBeta1: 0.9,
  adamBeta2: 0.999,
  adamEpsilon: 1e-8,
  adamWeightDecay: 1e-2,
  maxGradNorm: 1,
  predictionType: 'epsilon',
  snrGamma: null,
  loss: 'simple',
  varianceType: 'fixed_small',
  vlbWeight: 0.001,
  timestepSampling: 'uniform',
  ema: EMA_DEFAULTS,
  seed: 0,
  maxNonFiniteInARow: 5,
  labelDropout: null,
  uncondLabel: 0,
  randomShift: 0,
};

export type TrainerOptions = Partial<Omit<TrainerConfig, 'ema'>> & { ema?: Partial<EmaConfig> | null };

function bad(what: string, want: string, v: unknown): never {
  throw new DdpmError('INVALID_ARGUMENT', `trainer config: ${what} must be ${want}, found ${JSON.stringify(v)}`);
}

/** Fills defaults and checks every value. */
export function parseTrainerConfig(o: TrainerOptions = {}): TrainerConfig {
  const varianceType =
    o.varianceType ?? (o.loss === 'hybrid' || o.loss === 'vlb' ? 'learned_range' : DEFAULTS.varianceType);
  const c: TrainerConfig = {
    ...DEFAULTS,
    ...o,
    varianceType,
    ema: o.ema === null ? null : { ...EMA_DEFAULTS, ...(o.ema ?? {}) },
  };
  const num = (v: unknown, lo: number, hi: number, loOpen: boolean, hiOpen: boolean) =>
    typeof v === 'number' && Number.isFinite(v) && (loOpen ? v > lo : v >= lo) && (hiOpen ? v < hi : v <= hi);
  const int = (v: unknown, lo: number) => Number.isSafeInteger(v) && (v as number) >= lo;
  if (c.formatVersion !== TRAINER_CONFIG_VERSION) bad('formatVersion', `${TRAINER_CONFIG_VERSION}`, c.formatVersion);
  if (!int(c.batchSize, 1)) bad('batchSize', 'an integer ≥ 1', c.batchSize);
  if (!num(c.learningRate, 0, Infinity, false, true)) bad('learningRate', 'a finite number ≥ 0', c.learningRate);
  if (c.lrScheduler !== 'constant' && c.lrScheduler !== 'cosine')
    bad('lrScheduler', "'constant' or 'cosine'", c.lrScheduler);
  if (!int(c.lrWarmupSteps, 0)) bad('lrWarmupSteps', 'an integer ≥ 0', c.lrWarmupSteps);
  if (!int(c.maxTrainSteps, 0)) bad('maxTrainSteps', 'an integer ≥ 0', c.maxTrainSteps);
  if (c.lrScheduler === 'cosine' && c.maxTrainSteps <= c.lrWarmupSteps)
    bad('maxTrainSteps', `> lrWarmupSteps (${c.lrWarmupSteps}) for the cosine schedule`, c.maxTrainSteps);
  if (!num(c.adamBeta1, 0, 1, false, true)) bad('adamBeta1', 'in [0, 1)', c.adamBeta1);
  if (!num(c.adamBeta2, 0, 1, false, true)) bad('adamBeta2', 'in [0, 1)', c.adamBeta2);
  if (!num(c.adamEpsilon, 0, Infinity, false, true)) bad('adamEpsilon', 'a finite number ≥ 0', c.adamEpsilon);
  if (!num(c.adamWeightDecay, 0, Infinity, false, true))
    bad('adamWeightDecay', 'a finite number ≥ 0', c.adamWeightDecay);
  if (c.maxGradNorm !== null && !num(c.maxGradNorm, 0, Infinity, true, true))
    bad('maxGradNorm', 'a finite number > 0 or null', c.maxGradNorm);
  if (!['epsilon', 'sample', 'v_prediction'].includes(c.predictionType))
    bad('predictionType', "'epsilon', 'sample' or 'v_prediction'", c.predictionType);
  if (c.snrGamma !== null && !num(c.snrGamma, 0, Infinity, true, true))
    bad('snrGamma', 'a finite number > 0 or null', c.snrGamma);
  if (!['simple', 'hybrid', 'vlb'].includes(c.loss)) bad('loss', "'simple', 'hybrid' or 'vlb'", c.loss);
  if (!['fixed_small', 'fixed_large', 'learned_range'].includes(c.varianceType))
    bad('varianceType', "'fixed_small', 'fixed_large' or 'learned_range'", c.varianceType);
  if (c.loss === 'simple' && c.varianceType === 'learned_range')
    bad(
      'varianceType',
      "fixed_small or fixed_large with loss 'simple' (L_simple trains no variance; use loss 'hybrid')",
      c.varianceType,
    );
  if (c.loss === 'hybrid' && c.varianceType !== 'learned_range')
    bad('varianceType', "learned_range with loss 'hybrid' (its L_vlb trains only the variance)", c.varianceType);
  if (c.loss === 'vlb' && c.snrGamma !== null)
    bad('snrGamma', "null with loss 'vlb' (it weights L_simple's terms)", c.snrGamma);
  if (!num(c.vlbWeight, 0, Infinity, true, true)) bad('vlbWeight', 'a finite number > 0', c.vlbWeight);
  if (c.timestepSampling !== 'uniform' && c.timestepSampling !== 'importance')
    bad('timestepSampling', "'uniform' or 'importance'", c.timestepSampling);
  if (c.timestepSampling === 'importance' && c.loss === 'simple')
    bad(
      'timestepSampling',
      "'uniform' with loss 'simple' (importance sampling weights the bound's terms)",
      c.timestepSampling,
    );
  if (!int(c.seed, 0)) bad('seed', 'a safe integer ≥ 0', c.seed);
  if (!int(c.maxNonFiniteInARow, 1)) bad('maxNonFiniteInARow', 'an integer ≥ 1', c.maxNonFiniteInARow);
  if (c.labelDropout !== null && !num(c.labelDropout, 0, 1, false, false))
    bad('labelDropout', 'in [0, 1] or null', c.labelDropout);
  if (!int(c.uncondLabel, 0)) bad('uncondLabel', 'an integer ≥ 0', c.uncondLabel);
  if (!int(c.randomShift, 0) || c.randomShift > 64) bad('randomShift', 'an integer in [0, 64]', c.randomShift);
  const e = c.ema;
  if (e) {
    if (!num(e.maxDecay, 0, 1, false, false)) bad('ema.maxDecay', 'in [0, 1]', e.maxDecay);
    if (!num(e.minDecay, 0, e.maxDecay, false, false))
      bad('ema.minDecay', `in [0, maxDecay = ${e.maxDecay}]`, e.minDecay);
    if (!int(e.updateAfterStep, 0)) bad('ema.updateAfterStep', 'an integer ≥ 0', e.updateAfterStep);
    if (typeof e.useEmaWarmup !== 'boolean') bad('ema.useEmaWarmup', 'a boolean', e.useEmaWarmup);
    if (!num(e.invGamma, 0, Infinity, true, true)) bad('ema.invGamma', 'a finite number > 0', e.invGamma);
    if (!num(e.power, 0, Infinity, true, true)) bad('ema.power', 'a finite number > 0', e.power);
  }
  return c;
}

/** EMAModel.get_decay: the decay used by the EMA update after optimisation step k (1-based). */
export function emaDecay(e: EmaConfig, k: number): number {
  const s = Math.max(0, k - e.updateAfterStep - 1);
  if (s <= 0) return 0;
  const d = e.useEmaWarmup ? 1 - (1 + s / e.invGamma) ** -e.power : (1 + s) / (10 + s);
  return Math.max(Math.min(d, e.maxDecay), e.minDecay);
}

/** The learning rate of step s (0-based): diffusers' constant_with_warmup / cosine_with_warmup (0.5 cycles). */
export function learningRateAt(c: TrainerConfig, s: number): number {
  if (s < c.lrWarmupSteps) return (c.learningRate * s) / Math.max(1, c.lrWarmupSteps);
  if (c.lrScheduler === 'constant') return c.learningRate;
  const progress = (s - c.lrWarmupSteps) / Math.max(1, c.maxTrainSteps - c.lrWarmupSteps);
  return c.learningRate * Math.max(0, 0.5 * (1 + Math.cos(Math.PI * progress)));
}

function isNoiseSchedule(s: NoiseSchedule | ArrayLike<number>): s is NoiseSchedule {
  return (
    typeof s === 'object' &&
    s !== null &&
    !ArrayBuffer.isView(s) &&
    !Array.isArray(s) &&
    (s as NoiseSchedule).alphasCumprod instanceof Float64Array &&
    (s as NoiseSchedule).betas instanceof Float64Array
  );
}

/** A 32-bit hash of (seed, i, salt) for seeding the small JS generators (shuffles, dropout keys). */
function mix(seed: number, i: number, salt: number): number {
  const [lo, hi] = splitU64('seed', seed);
  const r = splitmix32(
    (lo ^
      Math.imul(hi, 0x85ebca6b) ^
      Math.imul(i, 0x9e3779b9) ^
      Math.imul(Math.floor(i / 2 ** 32), 0xc2b2ae35) ^
      salt) >>>
      0,
  );
  r();
  return Math.floor(r() * 2 ** 32);
}

export interface TrainProgress {
  /** Steps completed (including skipped ones). */
  step: number;
  /** This step's loss (NaN when skipped). */
  loss: number;
  imagesPerSecond: number;
  /** The learning rate this step used. */
  lr: number;
  /** The gradient norm before clipping (NaN when skipped). */
  gradNorm: number;
  skipped: boolean;
}

export interface TrainRunOptions {
  /** Steps to run from the current step. */
  steps: number;
  /**
   * Checked between steps: training stops at a step boundary and the promise resolves with aborted = true.
   */
  signal?: AbortSignal;
  onProgress?: (p: TrainProgress) => void;
  /**
   * Awaited after every step (after onProgress), e.g. to write a checkpoint on a cadence (TrainingRun
   * does). Not called for the step boundary at which an abort is seen.
   */
  afterStep?: (step: number) => void | Promise<void>;
}

export interface TrainResult {
  step: number;
  aborted: boolean;
  /** The last step's loss (NaN if it was skipped). */
  loss: number;
}

/** Counters that, with the weights, moments and EMA, are the whole resumable state. */
export interface TrainerCounters {
  /** Steps completed, skipped ones included: drives data order, noise and the learning rate. */
  step: number;
  /** Updates applied: AdamW's t and the EMA's optimisation step. */
  optimizerStep: number;
  skippedSteps: number;
  nonFiniteInARow: number;
}

/**
 * Everything that, with the trainer's construction (model config, data, schedule, TrainerConfig), makes
 * a run resumable bit-identically: the counters and four blocks in the parameters' layout
 * (model.params.specs order), as copies.
 */
export interface TrainerState {
  counters: TrainerCounters;
  params: Float32Array; // (P) θ
  ema: Float32Array | null; // (P) EMA of θ; null when the trainer keeps none
  expAvg: Float32Array; // (P) AdamW m
  expAvgSq: Float32Array; // (P) AdamW v
  /** The importance sampler's loss history (getTimestepHistory), or null. */
  timestepHistory: { losses: Float64Array; seen: Uint32Array } | null;
}

/** Losses kept per timestep by the importance sampler, and its uniform share (improved-diffusion's
 * LossSecondMomentResampler: history_per_term = 10, uniform_prob = 0.001). */
const HISTORY_PER_T = 10;
const UNIFORM_PROB = 0.001;

export class Trainer {
  readonly config: TrainerConfig;
  readonly engine: Engine;
  /** Adam's first and second moments and the EMA weights, in the parameters' layout. */
  readonly m: ParamBlock;
  readonly v: ParamBlock;
  readonly ema: ParamBlock | null;
  /** T = alphasCumprod.length, M rows of D values. */
  readonly numTrainTimesteps: number;
  /** The diffusion process's coefficients (for a trainer given ᾱ alone: re-derived from β_t = 1 − ᾱ_t/ᾱ_{t−1}). */
  readonly schedule: NoiseSchedule;
  readonly datasetSize: number;
  private readonly alphasCumprod: Float64Array;
  /** The importance sampler's state: the last HISTORY_PER_T losses at each t (a ring) and how many seen. */
  private history: { losses: Float64Array; seen: Uint32Array } | null = null;
  private readonly data: Float32Array; // (M, D)
  private readonly labels: Int32Array | null; // (M), for class-conditional models
  private readonly batchLabels: Int32Array; // (B)
  private counters: TrainerCounters = { step: 0, optimizerStep: 0, skippedSteps: 0, nonFiniteInARow: 0 };
  // batch buffers, planned once
  private readonly x0: Tensor; // (B, D)
  private readonly xt: Tensor; // (B, D)
  private readonly noise: Tensor; // (B, D)
  private readonly dOut: Tensor; // (B, D), (B, 2D) with learned_range
  private readonly sqrtAc: Tensor; // (B)
  private readonly sqrtOneMinusAc: Tensor; // (B)
  private readonly tBits: Tensor; // (4·⌈B/4⌉) Philox u32 words
  private readonly timesteps: Int32Array; // (B)
  private readonly weights: Float64Array; // (B) per-sample loss weights
  private readonly perm: Uint32Array; // (M) the current epoch's order
  private imageShape: readonly [number, number, number] | null = null; // (C, H, W) when randomShift > 0
  private permEpoch = -1;

  /**
   * The EMA starts as a copy of the model's weights now: load pretrained weights before, or resume with
   * `restore()` (restoreTrainer / TrainingRun do).
   * @param data M samples of model.sampleSize values each, sample-major; finite. With a class-conditional
   *   model, `{ samples, labels }`: M integer labels too.
   * @param schedule the NoiseSchedule (makeSchedule / namedSchedule / a scheduler's `.schedule`, already
   *   validated); or, as before, ᾱ_t for t = 0 … T−1 alone (float64), checked here.
   */
  constructor(
    readonly model: Denoiser,
    dataIn: Float32Array | { samples: Float32Array; labels: ArrayLike<number> },
    schedule: NoiseSchedule | ArrayLike<number>,
    options: TrainerOptions = {},
  ) {
    const data = dataIn instanceof Float32Array ? dataIn : dataIn.samples;
    this.config = parseTrainerConfig(options);
    const e = (this.engine = model.engine);
    const D = model.sampleSize;
    const B = this.config.batchSize;
    const alphasCumprod = isNoiseSchedule(schedule) ? schedule.alphasCumprod : schedule;
    this.schedule = isNoiseSchedule(schedule) ? schedule : scheduleFromAlphasCumprod(alphasCumprod);
    this.alphasCumprod = Float64Array.from(alphasCumprod);
    this.numTrainTimesteps = alphasCumprod.length;
    const M = data.length / D;
    if (!Number.isInteger(M) || M < 1)
      throw new DdpmError(
        'SHAPE_MISMATCH',
        `Trainer: data has ${data.length} values, expected M × ${D} (the model's sample size) with M ≥ 1`,
      );
    const i = data.findIndex((x) => !Number.isFinite(x));
    if (i >= 0)
      throw new DdpmError('NON_FINITE', `Trainer: data[${i}] (sample ${Math.floor(i / D)}) = ${data[i]} is not finite`);
    if (M > 2 ** 32) throw new DdpmError('INVALID_ARGUMENT', `Trainer: ${M} samples is more than 2^32`);
    this.data = data;
    this.datasetSize = M;
    this.labels = dataIn instanceof Float32Array ? null : Int32Array.from(dataIn.labels);
    if (this.labels) {
      if (this.labels.length !== M)
        throw new DdpmError('SHAPE_MISMATCH', `Trainer: ${this.labels.length} labels for ${M} samples`);
      const j = Array.from(dataIn instanceof Float32Array ? [] : dataIn.labels).findIndex(
        (l) => !Number.isInteger(l) || l < 0,
      );
      if (j >= 0) throw new DdpmError('INVALID_ARGUMENT', `Trainer: labels[${j}] must be an integer ≥ 0`);
    }
    this.batchLabels = new Int32Array(this.config.batchSize);
    if (this.config.randomShift > 0) {
      const shape = model.imageShape;
      if (!shape)
        throw new DdpmError(
          'INVALID_ARGUMENT',
          'Trainer: randomShift needs an image model (one with imageShape, e.g. UNet2DModel); this one has none',
        );
      if (this.config.randomShift >= Math.min(shape[1], shape[2]))
        bad('randomShift', `smaller than the image (${shape[1]}×${shape[2]})`, this.config.randomShift);
      this.imageShape = shape;
    }

    const P = model.params.size;
    const blocks = this.config.ema ? 3 : 2;
    const outSize = this.config.varianceType === 'learned_range' ? 2 * D : D; // values per sample of the model's output
    e.arena.plan(
      4 * (blocks * P + (3 * D + outSize) * B + 3 * B + 64 * 8),
      `Trainer state (${blocks} × ${P} parameters, batch ${B} × ${D})`,
    );
    model.grads();
    this.m = new ParamBlock(e, model.params.specs, 'adam.exp_avg');
    this.v = new ParamBlock(e, model.params.specs, 'adam.exp_avg_sq');
    e.view(this.m.all).fill(0);
    e.view(this.v.all).fill(0);
    this.ema = this.config.ema ? new ParamBlock(e, model.params.specs, 'ema') : null;
    if (this.ema) e.view(this.ema.all).set(e.view(model.params.all));
    this.x0 = e.alloc([B, D], 'x0');
    this.xt = e.alloc([B, D], 'x_t');
    this.noise = e.alloc([B, D], 'noise');
    this.dOut = e.alloc([B, outSize], 'dL/dout');
    this.sqrtAc = e.alloc(B, 'sqrt_alphas_cumprod');
    this.sqrtOneMinusAc = e.alloc(B, 'sqrt_one_minus_alphas_cumprod');
    this.tBits = e.alloc(4 * Math.ceil(B / 4), 'timestep bits');
    this.timesteps = new Int32Array(B);
    this.weights = new Float64Array(B);
    this.perm = new Uint32Array(M);
  }

  get step(): number {
    return this.counters.step;
  }

  /** A copy of the counters (for checkpoints). */
  getCounters(): TrainerCounters {
    return { ...this.counters };
  }

  /** Sets the counters alone (tests; resuming goes through `restore()`). */
  setCounters(c: TrainerCounters): void {
    for (const k of ['step', 'optimizerStep', 'skippedSteps', 'nonFiniteInARow'] as const)
      checkInt(`Trainer.setCounters: ${k}`, c[k], 0);
    this.counters = { ...c };
  }

  /** The resumable state (see TrainerState), copied out of engine memory. */
  state(): TrainerState {
    const e = this.engine;
    return {
      counters: this.getCounters(),
      params: e.read(this.model.params.all),
      ema: this.ema ? e.read(this.ema.all) : null,
      expAvg: e.read(this.m.all),
      expAvgSq: e.read(this.v.all),
      timestepHistory: this.getTimestepHistory(),
    };
  }

  /**
   * The first key whose value differs between this trainer's config and `saved` (a stored config, read
   * through parseTrainerConfig so keys added since it was written compare as their defaults), or null.
   */
  configDiffers(saved: TrainerOptions): { key: string; saved: unknown; now: unknown } | null {
    const tc = this.config as unknown as Record<string, unknown>;
    const other = parseTrainerConfig(saved) as unknown as Record<string, unknown>;
    for (const k of new Set([...Object.keys(tc), ...Object.keys(other)])) {
      if (JSON.stringify(tc[k]) !== JSON.stringify(other[k])) return { key: k, saved: other[k], now: tc[k] };
    }
    return null;
  }

  /**
   * Puts the trainer in state `s` (from `state()` or a checkpoint). Everything is checked first — the
   * counters, each block's length, the EMA's presence, every value finite — so a bad state leaves the
   * trainer untouched (INVALID_ARGUMENT / SHAPE_MISMATCH / NON_FINITE naming the block).
   */
  restore(s: TrainerState): void {
    const P = this.model.params.size;
    for (const k of ['step', 'optimizerStep', 'skippedSteps', 'nonFiniteInARow'] as const)
      checkInt(`Trainer.restore: counters.${k}`, s.counters?.[k], 0);
    if (s.counters.optimizerStep + s.counters.skippedSteps !== s.counters.step) {
      throw new DdpmError(
        'INVALID_ARGUMENT',
        `Trainer.restore: optimizerStep (${s.counters.optimizerStep}) + skippedSteps (${s.counters.skippedSteps}) must equal step (${s.counters.step})`,
      );
    }
    if (!!s.ema !== !!this.ema)
      throw new DdpmError(
        'INVALID_ARGUMENT',
        `Trainer.restore: the state ${s.ema ? 'has' : 'has no'} EMA weights but this trainer ${this.ema ? 'keeps' : 'keeps no'} EMA`,
      );
    const blocks: [string, Float32Array | null, ParamBlock | null][] = [
      ['params', s.params, this.model.params],
      ['ema', s.ema, this.ema],
      ['expAvg', s.expAvg, this.m],
      ['expAvgSq', s.expAvgSq, this.v],
    ];
    for (const [name, src] of blocks) {
      if (src === null) continue;
      if (!(src instanceof Float32Array) || src.length !== P)
        throw new DdpmError(
          'SHAPE_MISMATCH',
          `Trainer.restore: ${name} must be a Float32Array of ${P} values (the model's parameters), found ${src instanceof Float32Array ? src.length : typeof src}`,
        );
      const i = src.findIndex((x) => !Number.isFinite(x));
      if (i >= 0) throw new DdpmError('NON_FINITE', `Trainer.restore: ${name}[${i}] = ${src[i]} is not finite`);
    }
    // the history's checks throw before anything is written; then the blocks and counters
    this.setTimestepHistory(s.timestepHistory ?? null);
    for (const [, src, block] of blocks) if (src && block) this.engine.write(block.all, src);
    this.counters = { ...s.counters };
  }

  /** The schedule this trainer uses (a copy). */
  getAlphasCumprod(): Float64Array {
    return this.alphasCumprod.slice();
  }

  /** A copy of the importance sampler's loss history (resumable state, with the counters), or null (uniform
   * t, or no step yet). */
  getTimestepHistory(): { losses: Float64Array; seen: Uint32Array } | null {
    return this.history && { losses: this.history.losses.slice(), seen: this.history.seen.slice() };
  }

  /** Restores getTimestepHistory()'s value when resuming. */
  setTimestepHistory(h: { losses: ArrayLike<number>; seen: ArrayLike<number> } | null): void {
    const T = this.numTrainTimesteps;
    if (h === null) {
      this.history = null;
      return;
    }
    if (h.losses.length !== T * HISTORY_PER_T || h.seen.length !== T) {
      throw new DdpmError(
        'SHAPE_MISMATCH',
        `Trainer.setTimestepHistory: expected ${T * HISTORY_PER_T} losses and ${T} counts, found ${h.losses.length} and ${h.seen.length}`,
      );
    }
    const i = Array.prototype.findIndex.call(h.losses, (l: unknown) => typeof l !== 'number' || !Number.isFinite(l));
    const j = Array.prototype.findIndex.call(
      h.seen,
      (n: unknown) => !Number.isInteger(n) || (n as number) < 0 || (n as number) >= 2 ** 32,
    );
    if (i >= 0 || j >= 0) {
      throw new DdpmError(
        'INVALID_ARGUMENT',
        `Trainer.setTimestepHistory: ${i >= 0 ? `losses[${i}] must be a finite number` : `seen[${j}] must be an integer in [0, 2^32)`}`,
      );
    }
    this.history = { losses: Float64Array.from(h.losses), seen: Uint32Array.from(h.seen) };
  }

  /**
   * The importance sampler's p(t) as a cumulative table (improved-diffusion's LossSecondMomentResampler):
   * p(t) ∝ sqrt(mean of the last 10 L_t²), mixed with UNIFORM_PROB of uniform; null (uniform) until every
   * t has 10 losses.
   */
  private importanceCdf(): { p: Float64Array; cdf: Float64Array } | null {
    const h = this.history;
    const T = this.numTrainTimesteps;
    if (!h || h.seen.some((n) => n < HISTORY_PER_T)) return null;
    const p = new Float64Array(T);
    let sum = 0;
    for (let t = 0; t < T; t++) {
      let sq = 0;
      for (let k = 0; k < HISTORY_PER_T; k++) sq += h.losses[t * HISTORY_PER_T + k] ** 2;
      sum += p[t] = Math.sqrt(sq / HISTORY_PER_T);
    }
    const cdf = new Float64Array(T);
    let acc = 0;
    for (let t = 0; t < T; t++) {
      p[t] = (p[t] / sum) * (1 - UNIFORM_PROB) + UNIFORM_PROB / T;
      cdf[t] = acc += p[t];
    }
    return { p, cdf };
  }

  /**
   * x0[at …] = data row `from` translated by (dx, dy) ∈ [−k, k]² (k = randomShift) taken from the 32-bit
   * word h: out[c, y, x] = in[c, clamp(y − dy), clamp(x − dx)] — the border replicated.
   */
  private shiftedCopy(x0: Float32Array, at: number, from: number, h: number): void {
    const [C, H, W] = this.imageShape!;
    const k = this.config.randomShift;
    const span = 2 * k + 1;
    const dx = (h % span) - k;
    const dy = (Math.floor(h / span) % span) - k;
    for (let ch = 0; ch < C; ch++) {
      const base = from + ch * H * W;
      for (let y = 0; y < H; y++) {
        const sy = Math.min(H - 1, Math.max(0, y - dy));
        const o = at + (ch * H + y) * W;
        for (let x = 0; x < W; x++) x0[o + x] = this.data[base + sy * W + Math.min(W - 1, Math.max(0, x - dx))];
      }
    }
  }

  /** Row index of sample k of the data stream. */
  private row(k: number): number {
    const M = this.datasetSize;
    const epoch = Math.floor(k / M);
    if (epoch !== this.permEpoch) {
      // Fisher–Yates shuffle of 0 … M−1 seeded by (seed, epoch)
      const next = splitmix32(mix(this.config.seed, epoch, 0x5eed0001));
      const p = this.perm;
      for (let i = 0; i < M; i++) p[i] = i;
      for (let i = M - 1; i > 0; i--) {
        const j = Math.floor(next() * (i + 1));
        const t = p[i];
        p[i] = p[j];
        p[j] = t;
      }
      this.permEpoch = epoch;
    }
    return this.perm[k % M];
  }

  /**
   * One training step. Returns its loss and gradient norm, or skipped = true when either was not finite
   * (no update; K in a row throw NON_FINITE naming the step).
   */
  trainStep(): { loss: number; gradNorm: number; lr: number; skipped: boolean } {
    const c = this.config;
    const e = this.engine;
    const s = this.counters.step;
    const B = c.batchSize;
    const D = this.model.sampleSize;
    const T = this.numTrainTimesteps;
    const lr = learningRateAt(c, s);

    // 1. the batch x_0 (B, D): rows s·B … s·B + B − 1 of the shuffled stream
    const x0 = e.view(this.x0);
    for (let n = 0; n < B; n++) {
      const r = this.row(s * B + n);
      if (this.imageShape) this.shiftedCopy(x0, n * D, r * D, mix(c.seed, s * B + n, 0x5417f7));
      else for (let d = 0; d < D; d++) x0[n * D + d] = this.data[r * D + d];
      if (this.labels) this.batchLabels[n] = this.labels[r];
    }
    // classifier-free guidance: drop labels to the unconditional one, from (seed, step, sample)
    if (this.labels && c.labelDropout !== null) {
      for (let n = 0; n < B; n++)
        if (mix(c.seed, s * B + n, 0xcf9) / 2 ** 32 < c.labelDropout) this.batchLabels[n] = c.uncondLabel;
    }

    // 2. t per sample — U{0, …, T−1}, or from the importance sampler's p(t) — and its coefficients
    const [seedLo, seedHi] = splitU64('seed', c.seed);
    const [streamLo, streamHi] = splitU64('stream', 2 * s + 1);
    philoxFill(e, this.tBits, this.tBits.size / 4, [0, 0, streamLo, streamHi], [seedLo, seedHi]);
    const bitsView = e.view(this.tBits);
    const bits = new Uint32Array(bitsView.buffer, bitsView.byteOffset, B);
    const sa = e.view(this.sqrtAc);
    const sb = e.view(this.sqrtOneMinusAc);
    if (c.timestepSampling === 'importance' && !this.history)
      this.history = { losses: new Float64Array(T * HISTORY_PER_T), seen: new Uint32Array(T) };
    const imp = c.timestepSampling === 'importance' ? this.importanceCdf() : null;
    const tWeight = new Float64Array(B).fill(1); // 1/(T·p(t)): 1 for uniform t
    for (let n = 0; n < B; n++) {
      let t = Math.floor((bits[n] * T) / 2 ** 32);
      if (imp) {
        // inverse CDF at u = bits/2^32: the first t with cdf[t] > u (the last one if rounding leaves none)
        const u = bits[n] / 2 ** 32;
        let lo = 0,
          hi = T - 1;
        while (lo < hi) {
          const mid = (lo + hi) >> 1;
          if (imp.cdf[mid] > u) hi = mid;
          else lo = mid + 1;
        }
        t = lo;
        tWeight[n] = 1 / (T * imp.p[t]);
      }
      this.timesteps[n] = t;
      const ac = this.alphasCumprod[t];
      sa[n] = Math.sqrt(ac);
      sb[n] = Math.sqrt(1 - ac);
      // min-SNR-γ (Hang et al. 2023, §3.4): min(SNR, γ) for x_0; divided by SNR for ε, by SNR + 1 for v
      const snr = ac / (1 - ac);
      const w = c.snrGamma === null ? 1 : Math.min(snr, c.snrGamma);
      this.weights[n] =
        c.snrGamma === null
          ? 1
          : c.predictionType === 'epsilon'
            ? w / snr
            : c.predictionType === 'v_prediction'
              ? w / (snr + 1)
              : w;
    }

    // 3. x_t = sqrt(ᾱ_t)·x_0 + sqrt(1 − ᾱ_t)·ε (eq. 4), ε kept as the target
    qSample(e, {
      N: B,
      D,
      x0: this.x0,
      sqrtAlphasCumprod: this.sqrtAc,
      sqrtOneMinusAlphasCumprod: this.sqrtOneMinusAc,
      out: this.xt,
      random: { seed: c.seed, stream: 2 * s },
      noiseOut: this.noise,
    });

    // 4. forward, loss L = mean_n w_n·mean_d (out − target)², dL/dout, backward
    const mark = e.arena.mark();
    let loss = 0;
    let norm = NaN;
    const perSample = new Float64Array(B); // each sample's loss before the 1/(T·p(t)) weight (importance sampler)
    try {
      // a 53-bit dropout key per step, distinct from `seed` so its Philox streams never meet the noise's
      const dropoutSeed = mix(c.seed, s, 0xd409) + 2 ** 32 * (mix(c.seed, s, 0xd40a) >>> 11);
      const fwd = this.model.trainForward(this.xt, this.timesteps, {
        dropoutSeed,
        classLabels: this.labels ? this.batchLabels : undefined,
      });
      const stride = c.varianceType === 'learned_range' ? 2 * D : D;
      if (fwd.out.size !== B * stride) {
        throw new DdpmError(
          'SHAPE_MISMATCH',
          `Trainer: the model outputs ${fwd.out.size / B} values per sample, expected ${stride} (${stride === D ? `varianceType ${c.varianceType}` : `2 × ${D}: the prediction, then the learned_range variance channels`})`,
        );
      }
      const out = e.view(fwd.out);
      const eps = e.view(this.noise);
      const g = e.view(this.dOut);
      const x = e.view(this.x0);
      const inv = 1 / (B * D);
      if (c.loss !== 'simple') g.fill(0); // the bound's terms accumulate
      // L_simple: mean_n w_n·mean_d (out − target)² (eq. 14), target = cEps·ε + cX0·x_0 (posterior.ts)
      if (c.loss !== 'vlb') {
        for (let n = 0; n < B; n++) {
          const { cEps, cX0 } = trainingTargetCoefficients(c.predictionType, this.alphasCumprod[this.timesteps[n]]);
          const a = Math.fround(cEps); // the f32 coefficients q_sample used
          const b = Math.fround(cX0);
          const w = this.weights[n] * tWeight[n];
          let sum = 0;
          for (let d = 0; d < D; d++) {
            const i = n * D + d;
            const r = out[n * stride + d] - (a * eps[i] + b * x[i]);
            sum += r * r;
            loss += w * r * r;
            g[n * stride + d] = 2 * w * r * inv;
          }
          perSample[n] = this.weights[n] * (sum / D);
        }
        loss *= inv;
      }
      // L_vlb ≈ L_t/p(t) = T·L_t·(1/(T·p(t))), bits/dim: its part of the loss and of dL/dout (vlb.ts)
      if (c.loss !== 'simple') {
        const lambda = c.loss === 'hybrid' ? c.vlbWeight : 1;
        const xtv = e.view(this.xt);
        let vlb = 0;
        for (let n = 0; n < B; n++) {
          const t = this.timesteps[n];
          const p = pMeanVariance(this.schedule, t, {
            predictionType: c.predictionType,
            varianceType: c.varianceType,
            finalVariance: 'clipped',
          });
          const scale = (lambda * T * tWeight[n]) / (Math.LN2 * B);
          const nats = vlbTerm(
            p,
            t,
            D,
            x.subarray(n * D, (n + 1) * D),
            xtv.subarray(n * D, (n + 1) * D),
            out.subarray(n * stride, (n + 1) * stride),
            { grad: g.subarray(n * stride, (n + 1) * stride), scale, stopMeanGradient: c.loss === 'hybrid' },
          );
          const term = (lambda * T * nats) / Math.LN2;
          perSample[n] += term;
          vlb += tWeight[n] * term;
        }
        loss += vlb / B;
      }
      if (Number.isFinite(loss)) {
        e.view(this.model.grads().all).fill(0);
        fwd.backward(this.dOut);
      }
    } finally {
      e.arena.release(mark);
    }

    // 5. clip and update, unless the loss or the gradient is not finite
    const grads = this.model.grads();
    const P = this.model.params.size;
    if (Number.isFinite(loss)) norm = gradNorm(e, grads.all, P);
    const cnt = this.counters;
    cnt.step = s + 1;
    if (!Number.isFinite(norm)) {
      cnt.skippedSteps++;
      cnt.nonFiniteInARow++;
      if (cnt.nonFiniteInARow >= c.maxNonFiniteInARow) {
        throw new DdpmError(
          'NON_FINITE',
          `training stopped at step ${s}: ${cnt.nonFiniteInARow} steps in a row had a non-finite ${Number.isFinite(loss) ? 'gradient' : 'loss'} (${Number.isFinite(loss) ? `gradient norm ${norm}` : `loss ${loss}`}); the weights are those before step ${s - cnt.nonFiniteInARow + 1}`,
        );
      }
      return { loss, gradNorm: norm, lr, skipped: true };
    }
    cnt.nonFiniteInARow = 0;
    if (this.history) {
      const h = this.history;
      for (let n = 0; n < B; n++) {
        const t = this.timesteps[n];
        h.losses[t * HISTORY_PER_T + (h.seen[t] % HISTORY_PER_T)] = perSample[n];
        h.seen[t] = Math.min(h.seen[t] + 1, 2 ** 32 - 1);
      }
    }
    if (c.maxGradNorm !== null) {
      // torch.nn.utils.clip_grad_norm_: scale by max_norm/(norm + 1e-6) when that is below 1
      const coef = c.maxGradNorm / (norm + 1e-6);
      if (coef < 1) scale(e, P, coef, grads.all, grads.all);
    }
    cnt.optimizerStep++;
    adamw(e, {
      params: this.model.params.all,
      grads: grads.all,
      m: this.m.all,
      v: this.v.all,
      n: P,
      step: cnt.optimizerStep,
      lr,
      beta1: c.adamBeta1,
      beta2: c.adamBeta2,
      eps: c.adamEpsilon,
      weightDecay: c.adamWeightDecay,
    });
    if (this.ema && c.ema)
      emaUpdate(e, {
        ema: this.ema.all,
        params: this.model.params.all,
        n: P,
        decay: emaDecay(c.ema, cnt.optimizerStep),
      });
    return { loss, gradNorm: norm, lr, skipped: false };
  }

  /** Runs `steps` steps (see TrainRunOptions); rejects with NON_FINITE when training has to stop. */
  async train(o: TrainRunOptions): Promise<TrainResult> {
    checkInt('train: steps', o.steps, 0);
    const end = this.counters.step + o.steps;
    const yieldToEvents = macrotaskYielder();
    let loss = NaN;
    while (this.counters.step < end) {
      if (o.signal?.aborted) {
        // the caller saves what it needs (TrainingRun writes a checkpoint of this step)
        return { step: this.counters.step, aborted: true, loss };
      }
      const t0 = performance.now();
      const r = this.trainStep();
      const t1 = performance.now();
      loss = r.loss;
      o.onProgress?.({
        step: this.counters.step,
        loss: r.loss,
        imagesPerSecond: (1000 * this.config.batchSize) / Math.max(t1 - t0, 1e-3),
        lr: r.lr,
        gradNorm: r.gradNorm,
        skipped: r.skipped,
      });
      if (o.afterStep) await o.afterStep(this.counters.step);
      await yieldToEvents();
    }
    return { step: this.counters.step, aborted: false, loss };
  }
}
