// What DDPMScheduler and DDIMScheduler share: options and diffusers' scheduler_config.json keys, the
// float64 schedule, inference timesteps (leading / trailing / linspace spacing), and the planned output
// buffers of step().
//
// How tensors are passed: step() takes and returns Engine Tensors (float32 in Wasm memory), so the model's
// output feeds the fused kernel without a copy. Unless the caller passes `out`, the scheduler owns one
// prevSample and one predOriginalSample buffer, allocated from the engine's arena on the first step (and
// again only if the sample size grows): the sampling loop allocates nothing per step. Those returned
// tensors are overwritten by the next step (using one after that is a BUSY error); passing the previous
// prevSample back as `sample` is fine (the kernel updates in place). Arena trap: if the caller releases an arena mark taken before the first step
// and then allocates past the buffers, they alias the new tensors; take marks after the first step, or
// pass `out`.
import { DdpmError } from '../errors.js';
import type { Engine } from '../engine/engine.js';
import type { Tensor } from '../engine/memory.js';
import { gaussianStep, splitU64, type StepCoefficients, type U64 } from '../kernels/gaussian.js';
import {
  BETA_SCHEDULES,
  betaSchedule,
  linspace,
  makeSchedule,
  type BetaScheduleName,
  type NoiseSchedule,
} from './schedule.js';
import { addNoise, type AddNoiseOptions } from './forward.js';
import { LIMITS } from '../limits.js';
import { show } from '../validate.js';
import { SCHEDULER_CONFIG_FILE, modelLayout, openSource, readJsonFile, type ModelSource } from '../io/sources.js';
import { predX0Coefficients, type PredictionType } from './posterior.js';

export type { PredictionType } from './posterior.js';
export type TimestepSpacing = 'leading' | 'trailing' | 'linspace';

/** Smallest ᾱ_T a scheduler accepts: 1/√ᾱ ≤ 1e30 keeps the float32 step coefficients 8 decades inside range. */
export const MIN_ALPHA_CUMPROD = 1e-60;

const PREDICTION_TYPES: readonly PredictionType[] = ['epsilon', 'sample', 'v_prediction'];
const SPACINGS: readonly TimestepSpacing[] = ['leading', 'trailing', 'linspace'];

/** Options shared by both schedulers; defaults are diffusers'. */
export interface SchedulerOptions {
  numTrainTimesteps?: number; // 1000
  betaSchedule?: BetaScheduleName; // 'linear'
  betaStart?: number; // 0.0001
  betaEnd?: number; // 0.02
  /** Explicit betas (length numTrainTimesteps); overrides betaSchedule. */
  trainedBetas?: ArrayLike<number> | null;
  predictionType?: PredictionType; // 'epsilon'
  clipSample?: boolean; // true
  clipSampleRange?: number; // 1
  timestepSpacing?: TimestepSpacing; // 'leading'
  stepsOffset?: number; // 0
  /** The engine step() and addNoise() run on; may also be set later (`scheduler.engine = e`). */
  engine?: Engine;
}

/** The snake_case keys of diffusers' scheduler_config.json that both schedulers read. */
export const COMMON_CONFIG_KEYS: Record<string, keyof SchedulerOptions> = {
  num_train_timesteps: 'numTrainTimesteps',
  beta_schedule: 'betaSchedule',
  beta_start: 'betaStart',
  beta_end: 'betaEnd',
  trained_betas: 'trainedBetas',
  prediction_type: 'predictionType',
  clip_sample: 'clipSample',
  clip_sample_range: 'clipSampleRange',
  timestep_spacing: 'timestepSpacing',
  steps_offset: 'stepsOffset',
};

/**
 * Reads a diffusers scheduler_config.json object into camelCase options. Keys starting with `_`
 * (`_class_name`, `_diffusers_version`) and keys of other schedulers are ignored, as diffusers does;
 * options that would change the math and are not implemented (`thresholding`, `rescale_betas_zero_snr`
 * set to true) are refused rather than ignored.
 */
export function optionsFromConfig<O>(json: unknown, keys: Record<string, string>, who: string): O {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new DdpmError('FORMAT', `${who}.fromConfig: the config must be a JSON object, found ${show(json)}`);
  }
  const cfg = json as Record<string, unknown>;
  for (const k of ['thresholding', 'rescale_betas_zero_snr']) {
    if (cfg[k] === true) throw new DdpmError('INVALID_ARGUMENT', `${who}.fromConfig: ${k} = true is not supported`);
  }
  const out: Record<string, unknown> = {};
  for (const [snake, camel] of Object.entries(keys)) {
    if (Object.hasOwn(cfg, snake) && cfg[snake] !== null) out[camel] = cfg[snake];
  }
  return out as O;
}

/** numpy's round (half to even), which diffusers' timestep spacings use. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** A scheduler's result: both tensors live in Wasm memory (see the header for who owns them). */
export interface SchedulerOutput {
  prevSample: Tensor;
  predOriginalSample: Tensor;
}

export interface StepOptions {
  /** z for the noise term, (N, D); otherwise drawn with `seed`. */
  noise?: Tensor;
  /** Philox seed of the noise: z at element offset + i of stream t (the timestep). */
  seed?: U64;
  /** Element offset of sample 0 in the stream; sample n uses offset + n·D, so it does not depend on the
   * batch size. Default 0. */
  offset?: U64;
  /** Output buffers; default: buffers owned by the scheduler. */
  out?: Partial<SchedulerOutput>;
}

export abstract class SchedulerBase {
  readonly schedule: NoiseSchedule;
  readonly numTrainTimesteps: number;
  readonly betaSchedule: BetaScheduleName | 'trained';
  readonly betaStart: number;
  readonly betaEnd: number;
  readonly predictionType: PredictionType;
  readonly clipSample: boolean;
  readonly clipSampleRange: number;
  readonly timestepSpacing: TimestepSpacing;
  readonly stepsOffset: number;
  /** diffusers' init_noise_sigma: x_T ~ N(0, initNoiseSigma²·I); 1 for DDPM and DDIM, σ_max for the
   * Karras-sigma schedulers (Euler, Heun), which set it in setTimesteps. */
  initNoiseSigma = 1;
  engine: Engine | undefined;
  /** Inference timesteps, decreasing; all of [0, T) before setTimesteps. */
  timesteps: number[];
  numInferenceSteps: number | null = null;
  private buffers: { engine: Engine; prev: Tensor; x0: Tensor; end: number } | null = null;
  /** Bumped by every step into the scheduler's own buffers: a result with an older number was overwritten. */
  private outGen = 0;
  /** Whether step() accepts a 2C-channel model output (prediction, then learned variance) and skips the
   * variance channels; DDPM reads them instead, through its varianceType. */
  protected readonly ignoresVarianceChannels: boolean = false;

  protected constructor(o: SchedulerOptions, who: string) {
    const T = o.numTrainTimesteps ?? 1000;
    // capped before anything of size T is built: a schedule is ~15 float64 arrays of T
    if (!Number.isInteger(T) || T < 1 || T > LIMITS.maxTrainTimesteps) {
      throw new DdpmError(
        'INVALID_SCHEDULE',
        `${who}: numTrainTimesteps must be an integer in [1, ${LIMITS.maxTrainTimesteps}], found ${show(T)}`,
      );
    }
    this.numTrainTimesteps = T;
    this.betaStart = o.betaStart ?? 0.0001;
    this.betaEnd = o.betaEnd ?? 0.02;
    for (const [k, b] of [
      ['betaStart', this.betaStart],
      ['betaEnd', this.betaEnd],
    ] as const) {
      if (typeof b !== 'number' || !Number.isFinite(b))
        throw new DdpmError('INVALID_SCHEDULE', `${who}: ${k} must be a finite number, found ${show(b)}`);
    }
    const tb = o.trainedBetas;
    // an array already in memory (its length is then checked by makeSchedule); not {length: 1e9}
    if (tb != null && !(ArrayBuffer.isView(tb) || Array.isArray(tb))) {
      throw new DdpmError(
        'INVALID_SCHEDULE',
        `${who}: trainedBetas must be an array of numTrainTimesteps (${T}) numbers, found ${show(tb)}`,
      );
    }
    if (o.trainedBetas != null) {
      this.betaSchedule = 'trained';
      this.schedule = makeSchedule(o.trainedBetas, T);
    } else {
      const name = o.betaSchedule ?? 'linear';
      if (!BETA_SCHEDULES.includes(name)) {
        throw new DdpmError(
          'INVALID_SCHEDULE',
          `${who}: betaSchedule must be one of ${BETA_SCHEDULES.join(', ')}, found ${show(name)}`,
        );
      }
      this.betaSchedule = name;
      this.schedule = makeSchedule(betaSchedule(name, T, { betaStart: this.betaStart, betaEnd: this.betaEnd }));
    }
    // The step kernels take float32 coefficients such as 1/√ᾱ_t: an ᾱ so small that they approach
    // float32's range (a valid schedule of large betas, e.g. beta_start 0.5) would give NaN samples.
    const acpMin = this.schedule.alphasCumprod[T - 1];
    if (!(acpMin >= MIN_ALPHA_CUMPROD)) {
      throw new DdpmError(
        'INVALID_SCHEDULE',
        `${who}: alphas_cumprod falls to ${acpMin.toExponential(3)} at t = ${T - 1}, below ${MIN_ALPHA_CUMPROD} (1/√ᾱ would overflow the float32 step coefficients); use smaller betas or fewer timesteps`,
      );
    }
    this.predictionType = oneOf(who, 'predictionType', o.predictionType ?? 'epsilon', PREDICTION_TYPES);
    this.clipSample = bool(who, 'clipSample', o.clipSample ?? true);
    this.clipSampleRange = o.clipSampleRange ?? 1;
    if (
      typeof this.clipSampleRange !== 'number' ||
      !(this.clipSampleRange > 0) ||
      !Number.isFinite(this.clipSampleRange)
    ) {
      throw new DdpmError(
        'INVALID_ARGUMENT',
        `${who}: clipSampleRange must be a finite number > 0, found ${show(this.clipSampleRange)}`,
      );
    }
    this.timestepSpacing = oneOf(who, 'timestepSpacing', o.timestepSpacing ?? 'leading', SPACINGS);
    this.stepsOffset = o.stepsOffset ?? 0;
    if (!Number.isInteger(this.stepsOffset) || this.stepsOffset < 0) {
      throw new DdpmError(
        'INVALID_ARGUMENT',
        `${who}: stepsOffset must be an integer >= 0, found ${show(this.stepsOffset)}`,
      );
    }
    this.engine = o.engine;
    this.timesteps = Array.from({ length: T }, (_, i) => T - 1 - i);
  }

  /**
   * Reads scheduler_config.json from a source as UNet2DModel.fromPretrained takes one (a folder, a URL, a
   * map of file names to bytes, a shipped model's name; a pipeline folder's scheduler/ is found by itself),
   * e.g. `await DDIMScheduler.fromPretrained('mnist', { engine })`. Any scheduler class reads another's
   * config, as in diffusers.
   */
  static async fromPretrained<S>(
    this: { fromConfig(json: unknown, extra?: Pick<SchedulerOptions, 'engine'>): S },
    source: ModelSource,
    extra: Pick<SchedulerOptions, 'engine'> = {},
  ): Promise<S> {
    const { scheduler } = await modelLayout(openSource(source));
    const config = await readJsonFile(scheduler, SCHEDULER_CONFIG_FILE);
    if (!config) throw new DdpmError('FORMAT', `${scheduler.name}: ${SCHEDULER_CONFIG_FILE} is missing`);
    // biome-ignore lint/complexity/noThisInStatic: `this` is the subclass the call was made on (DDIMScheduler.fromPretrained builds a DDIMScheduler)
    return this.fromConfig(config, extra);
  }

  /** The options as diffusers' scheduler_config.json keys (what fromConfig reads back). */
  protected commonConfig(): Record<string, unknown> {
    return {
      num_train_timesteps: this.numTrainTimesteps,
      beta_start: this.betaStart,
      beta_end: this.betaEnd,
      beta_schedule: this.betaSchedule === 'trained' ? 'linear' : this.betaSchedule,
      trained_betas: this.betaSchedule === 'trained' ? Array.from(this.schedule.betas) : null,
      prediction_type: this.predictionType,
      clip_sample: this.clipSample,
      clip_sample_range: this.clipSampleRange,
      timestep_spacing: this.timestepSpacing,
      steps_offset: this.stepsOffset,
    };
  }

  /** diffusers' scale_model_input: the identity for DDPM and DDIM (Euler and Heun divide by sqrt(σ² + 1)). */
  scaleModelInput(sample: Tensor, _timestep?: number): Tensor {
    return sample;
  }

  /**
   * Inference timesteps for n steps, as diffusers spaces them (numpy arithmetic reproduced, rounding half
   * to even): leading: (0, T//n, 2·T//n, …) + stepsOffset; trailing: round(T − i·T/n) − 1; linspace:
   * round(linspace(0, T − 1, n)); all returned decreasing. n must be an integer in [1, T] and every
   * timestep must land in [0, T), else INVALID_TIMESTEP.
   *
   * trailing deviates from diffusers in one corner: numpy's arange(T, 0, −T/n) sometimes has n + 1
   * elements (T = 1000, n = 61), giving diffusers a final timestep −1; we keep exactly n.
   */
  protected spacedTimesteps(n: number): number[] {
    const T = this.numTrainTimesteps;
    if (!Number.isInteger(n) || n < 1 || n > T) {
      throw new DdpmError(
        'INVALID_TIMESTEP',
        `numInferenceSteps must be an integer in [1, ${T}] (numTrainTimesteps), found ${n}`,
      );
    }
    let ts: number[];
    if (this.timestepSpacing === 'leading') {
      const ratio = Math.floor(T / n);
      ts = Array.from({ length: n }, (_, i) => (n - 1 - i) * ratio + this.stepsOffset);
    } else if (this.timestepSpacing === 'trailing') {
      // numpy's arange fills start + i·delta with delta = (start + step) − start, not step itself.
      const delta = T + -T / n - T;
      ts = Array.from({ length: n }, (_, i) => roundHalfEven(T + i * delta) - 1);
    } else {
      ts = Array.from(linspace(0, T - 1, n), roundHalfEven).reverse();
    }
    const bad = ts.findIndex((t) => t < 0 || t >= T);
    if (bad >= 0) {
      throw new DdpmError(
        'INVALID_TIMESTEP',
        `${this.timestepSpacing} spacing of ${n} steps with stepsOffset ${this.stepsOffset} gives timestep ${ts[bad]}, outside [0, ${T})`,
      );
    }
    return ts;
  }

  /** Throws INVALID_TIMESTEP unless t is an integer in [0, T). */
  protected checkTimestep(t: number): void {
    if (!Number.isInteger(t) || t < 0 || t >= this.numTrainTimesteps) {
      throw new DdpmError(
        'INVALID_TIMESTEP',
        `timestep must be an integer in [0, ${this.numTrainTimesteps}), found ${t}`,
      );
    }
  }

  protected requireEngine(who: string): Engine {
    if (!this.engine)
      throw new DdpmError(
        'INVALID_ARGUMENT',
        `${who}: no engine: pass { engine } to the constructor or fromConfig, or set scheduler.engine`,
      );
    return this.engine;
  }

  /**
   * Checks shapes, picks the output buffers and runs the fused kernel. `noisy`: whether the step adds
   * σ·z (then z comes from opts.noise or Philox at (opts.seed, stream t, opts.offset)).
   */
  protected runStep(
    who: string,
    modelOutput: Tensor,
    t: number,
    sample: Tensor,
    opts: StepOptions,
    coef: StepCoefficients,
    noisy: boolean,
  ): SchedulerOutput {
    const engine = this.requireEngine(who);
    const N = sample.shape[0] ?? 1;
    if (sample.shape.length < 1 || N < 1 || sample.size % N !== 0 || sample.size === 0) {
      throw new DdpmError(
        'SHAPE_MISMATCH',
        `${who}: sample (tensor ${sample.name}) must have shape [N, …] with N >= 1, found [${sample.shape}]`,
      );
    }
    const D = sample.size / N;
    // A model trained with learned variances (2C channels) also drives schedulers that have no variance
    // type (DDIM): they read the prediction channels and skip the variance ones, as improved-diffusion does.
    const learned =
      typeof coef.sigma === 'object' ||
      (this.ignoresVarianceChannels && sample.shape.length >= 2 && modelOutput.size === 2 * sample.size);
    if (learned && sample.shape.length < 2) {
      throw new DdpmError(
        'SHAPE_MISMATCH',
        `${who}: learned variances split the model output's channels (dim 1): sample (tensor ${sample.name}) must be [N, C, …], found [${sample.shape}]`,
      );
    }
    if (modelOutput.size !== (learned ? 2 : 1) * sample.size) {
      throw new DdpmError(
        'SHAPE_MISMATCH',
        `${who}: modelOutput (tensor ${modelOutput.name}, [${modelOutput.shape}]) must hold ${learned ? 'twice as many values as' : 'as many values as'} sample [${sample.shape}]${learned ? ' (prediction and variance channels)' : ''}`,
      );
    }
    if (noisy && !opts.noise && opts.seed === undefined) {
      throw new DdpmError('INVALID_ARGUMENT', `${who}: the step at t = ${t} adds noise: give { seed } or { noise }`);
    }
    if (opts.seed !== undefined) splitU64(`${who}: seed`, opts.seed);
    const out = this.outputs(engine, sample.size, opts.out);
    gaussianStep(engine, {
      N,
      D,
      modelOutput,
      sample,
      prevSample: out.prevSample,
      predOriginalSample: out.predOriginalSample,
      noise: noisy ? opts.noise : undefined,
      random: noisy && !opts.noise ? { seed: opts.seed!, stream: t, offset: opts.offset ?? 0 } : undefined,
      coef,
      mStride: learned ? 2 * D : D,
    });
    if (opts.out?.prevSample && opts.out.predOriginalSample) return out;
    // The scheduler's own buffers: this result stays usable until the next step overwrites them; used
    // after that (two loops sharing one scheduler) it is a BUSY error, never the other loop's values.
    const gen = ++this.outGen;
    const lease = { live: () => this.outGen === gen, holder: who };
    return {
      prevSample: opts.out?.prevSample ?? { ...out.prevSample, lease },
      predOriginalSample: opts.out?.predOriginalSample ?? { ...out.predOriginalSample, lease },
    };
  }

  private outputs(engine: Engine, size: number, out: Partial<SchedulerOutput> | undefined): SchedulerOutput {
    if (out?.prevSample && out.predOriginalSample) return out as SchedulerOutput;
    // Reallocated when the arena was released below them (then nothing allocated since can overlap the new
    // ones). A release followed by allocations past them cannot be detected: see the header.
    const b = this.buffers;
    if (!b || b.engine !== engine || b.prev.size < size || engine.arena.used < b.end) {
      const prev = engine.alloc(size, 'prevSample');
      const x0 = engine.alloc(size, 'predOriginalSample');
      this.buffers = { engine, prev, x0, end: engine.arena.used };
    }
    const view = (t: Tensor) => (t.size === size ? t : { ...t, size, shape: [size] });
    return {
      prevSample: out?.prevSample ?? view(this.buffers!.prev),
      predOriginalSample: out?.predOriginalSample ?? view(this.buffers!.x0),
    };
  }

  /** x̂_0 = (ax, am) · (x_t, m) for the prediction type (DDPM eq. 15 for ε; v: Salimans & Ho 2022): see
   * posterior.ts. */
  protected predX0Coefficients(alphaProdT: number): { ax: number; am: number } {
    return predX0Coefficients(this.predictionType, alphaProdT);
  }

  protected get clip(): number {
    return this.clipSample ? this.clipSampleRange : Infinity;
  }

  /** q_sample with this scheduler's schedule: see forward.ts addNoise. */
  addNoise(x0: Tensor, noise: Tensor | null, timesteps: ArrayLike<number>, opts: AddNoiseOptions): Tensor {
    return addNoise(this.requireEngine('addNoise'), this.schedule, x0, noise, timesteps, opts);
  }

  abstract step(modelOutput: Tensor, timestep: number, sample: Tensor, opts?: StepOptions): SchedulerOutput;
  abstract toConfig(): Record<string, unknown>;
}

export function oneOf<T extends string>(who: string, what: string, v: unknown, allowed: readonly T[]): T {
  if (!allowed.includes(v as T))
    throw new DdpmError('INVALID_ARGUMENT', `${who}: ${what} must be one of ${allowed.join(', ')}, found ${show(v)}`);
  return v as T;
}

function bool(who: string, what: string, v: unknown): boolean {
  if (typeof v !== 'boolean')
    throw new DdpmError('INVALID_ARGUMENT', `${who}: ${what} must be true or false, found ${show(v)}`);
  return v;
}
