// DDPMScheduler: ancestral sampling of Ho et al. 2020 (https://arxiv.org/abs/2006.11239) with diffusers'
// semantics (scheduling_ddpm.py, v0.32): prediction types, clipping, variance types, timestep skipping.
import { DdpmError } from '../errors.js';
import type { Tensor } from '../engine/memory.js';
import type { StepCoefficients } from '../kernels/gaussian.js';
import { modelLogVariance, pMeanVariance, type ModelVarianceType, type PMeanVariance } from './posterior.js';
import {
  COMMON_CONFIG_KEYS,
  SchedulerBase,
  oneOf,
  optionsFromConfig,
  type SchedulerOptions,
  type SchedulerOutput,
  type StepOptions,
} from './scheduler.js';

export type VarianceType =
  | 'fixed_small'
  | 'fixed_small_log'
  | 'fixed_large'
  | 'fixed_large_log'
  | 'learned'
  | 'learned_range';

const VARIANCE_TYPES: readonly VarianceType[] = [
  'fixed_small',
  'fixed_small_log',
  'fixed_large',
  'fixed_large_log',
  'learned',
  'learned_range',
];

/** The model variance each diffusers variance type stands for (the _log variants differ only in what
 * getVariance returns). */
const BASE_VARIANCE: Record<VarianceType, ModelVarianceType> = {
  fixed_small: 'fixed_small',
  fixed_small_log: 'fixed_small',
  fixed_large: 'fixed_large',
  fixed_large_log: 'fixed_large',
  learned: 'learned',
  learned_range: 'learned_range',
};

export interface DDPMSchedulerOptions extends SchedulerOptions {
  varianceType?: VarianceType; // 'fixed_small'
}

const DDPM_CONFIG_KEYS: Record<string, string> = { ...COMMON_CONFIG_KEYS, variance_type: 'varianceType' };

export class DDPMScheduler extends SchedulerBase {
  readonly varianceType: VarianceType;
  /** True after setTimesteps({ timesteps }). */
  customTimesteps = false;

  constructor(o: DDPMSchedulerOptions = {}) {
    super(o, 'DDPMScheduler');
    this.varianceType = oneOf('DDPMScheduler', 'varianceType', o.varianceType ?? 'fixed_small', VARIANCE_TYPES);
  }

  /** From diffusers' scheduler_config.json keys (num_train_timesteps, beta_schedule, variance_type …). */
  static fromConfig(json: unknown, extra: Pick<SchedulerOptions, 'engine'> = {}): DDPMScheduler {
    return new DDPMScheduler({
      ...optionsFromConfig<DDPMSchedulerOptions>(json, DDPM_CONFIG_KEYS, 'DDPMScheduler'),
      ...extra,
    });
  }

  toConfig(): Record<string, unknown> {
    return { _class_name: 'DDPMScheduler', ...this.commonConfig(), variance_type: this.varianceType };
  }

  /**
   * Sets the inference timesteps: a number of steps n ∈ [1, T] spaced by `timestepSpacing`, or
   * { timesteps }: custom, strictly decreasing integers in [0, T).
   */
  setTimesteps(n: number | { timesteps: readonly number[] }): void {
    if (typeof n === 'number') {
      this.timesteps = this.spacedTimesteps(n);
      this.numInferenceSteps = n;
      this.customTimesteps = false;
      return;
    }
    const ts = [...n.timesteps];
    if (ts.length < 1) throw new DdpmError('INVALID_TIMESTEP', 'custom timesteps must not be empty');
    ts.forEach((t, i) => {
      this.checkTimestep(t);
      if (i > 0 && !(t < ts[i - 1])) {
        throw new DdpmError(
          'INVALID_TIMESTEP',
          `custom timesteps must be strictly decreasing: timesteps[${i}] = ${t} follows ${ts[i - 1]}`,
        );
      }
    });
    this.timesteps = ts;
    this.numInferenceSteps = ts.length;
    this.customTimesteps = true;
  }

  /** The timestep after t: the next one in `timesteps` (−1 after the last) once they are set, else t − 1. */
  previousTimestep(t: number): number {
    this.checkTimestep(t);
    if (this.numInferenceSteps === null) return t - 1;
    const i = this.timesteps.indexOf(t);
    if (i < 0)
      throw new DdpmError(
        'INVALID_TIMESTEP',
        `timestep ${t} is not one of the ${this.timesteps.length} inference timesteps set by setTimesteps`,
      );
    return i === this.timesteps.length - 1 ? -1 : this.timesteps[i + 1];
  }

  /** The model's Gaussian of the step t → previousTimestep(t) (posterior.ts, with diffusers' β̃ ≥ 1e-20). */
  private pMeanVariance(t: number, type: VarianceType = this.varianceType): PMeanVariance {
    return pMeanVariance(this.schedule, t, {
      prev: this.previousTimestep(t),
      predictionType: this.predictionType,
      varianceType: BASE_VARIANCE[type],
      clip: this.clip,
      finalVariance: 'clamped',
    });
  }

  /**
   * diffusers' _get_variance(t): β̃ = (1 − ᾱ_prev)/(1 − ᾱ_t)·β clamped to ≥ 1e-20 (DDPM eqs. 6–7), then by
   * variance type: fixed_small β̃; fixed_small_log exp(½ log β̃), a standard deviation (diffusers' quirk,
   * kept); fixed_large β (recomputed as 1 − ᾱ_t/ᾱ_prev); fixed_large_log log β; learned the predicted
   * variance; learned_range (Nichol & Dhariwal 2021, eq. 15) f·log β + (1 − f)·log β̃, f = (v + 1)/2.
   */
  getVariance(t: number, o: { varianceType?: VarianceType; predictedVariance?: number } = {}): number {
    const type = oneOf('getVariance', 'varianceType', o.varianceType ?? this.varianceType, VARIANCE_TYPES);
    const v = o.predictedVariance;
    if ((type === 'learned' || type === 'learned_range') && (typeof v !== 'number' || !Number.isFinite(v))) {
      throw new DdpmError(
        'INVALID_ARGUMENT',
        `getVariance: variance type ${type} needs a finite predictedVariance, found ${v}`,
      );
    }
    const { variance } = this.pMeanVariance(t, type);
    if (variance.kind === 'learned') return v!;
    if (variance.kind === 'learned_range') return modelLogVariance(variance, v!);
    if (type === 'fixed_small_log') return Math.exp(0.5 * Math.log(variance.variance));
    return type === 'fixed_large_log' ? variance.logVariance : variance.variance;
  }

  /**
   * One reverse step x_t → x_{t−1} ~ p_θ(x_{t−1} | x_t), as diffusers' DDPMScheduler.step, fused into one
   * kernel pass. For learned variance types, modelOutput holds 2C channels: prediction, then variance.
   * Noise is added only for t > 0; then opts.noise or opts.seed is required.
   */
  step(modelOutput: Tensor, timestep: number, sample: Tensor, opts: StepOptions = {}): SchedulerOutput {
    const t = timestep;
    // 1. compute alphas, betas; 2. the predicted original sample x̂_0 ("predicted x_0" of formula (15));
    // 4. the coefficients of x̂_0 and x_t in the posterior mean μ̃_t, formula (7); the variance Σ_θ —
    // all in posterior.ts. 3. clipping x̂_0, 5. μ̃_t = c0·x̂_0 + c1·x_t and 6. adding σ·z for t > 0 run in
    // the kernel.
    const p = this.pMeanVariance(t);
    const noisy = t > 0;
    // Learned types always carry the variance channels (modelOutput is 2C wide), noise or not.
    const learned = this.varianceType === 'learned' || this.varianceType === 'learned_range';
    const sigma = noisy || learned ? this.noiseScale(p) : 0;
    const coef: StepCoefficients = { ax: p.ax, am: p.am, clip: p.clip, c0: p.c0, c1: p.c1, c2: 0, sigma };
    return this.runStep('DDPMScheduler.step', modelOutput, t, sample, opts, coef, noisy);
  }

  /** σ of step 6: sqrt(variance) for the fixed types. fixed_small_log's getVariance is already a std;
   * for fixed_large_log we use exp(½ log β) = sqrt(β) (diffusers takes log(β)^½, a NaN). */
  private noiseScale(p: PMeanVariance): StepCoefficients['sigma'] {
    const v = p.variance;
    if (v.kind === 'learned') return { learned: 'learned' };
    if (v.kind === 'learned_range') return { learned: 'learned_range', minLog: v.minLog, maxLog: v.maxLog };
    switch (this.varianceType) {
      case 'fixed_small_log':
        return Math.exp(0.5 * Math.log(v.variance));
      case 'fixed_large_log':
        return Math.exp(0.5 * v.logVariance);
      default:
        return Math.sqrt(v.variance);
    }
  }
}
