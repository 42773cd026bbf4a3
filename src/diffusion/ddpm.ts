// DDPMScheduler: ancestral sampling of Ho et al. 2020 (https://arxiv.org/abs/2006.11239) with diffusers'
// semantics (scheduling_ddpm.py, v0.32): prediction types, clipping, variance types, timestep skipping.
import { DdpmError } from '../errors.js';
import type { Tensor } from '../engine/memory.js';
import type { StepCoefficients } from '../kernels/gaussian.js';
import { COMMON_CONFIG_KEYS, SchedulerBase, oneOf, optionsFromConfig, type SchedulerOptions, type SchedulerOutput, type StepOptions } from './scheduler.js';

export type VarianceType = 'fixed_small' | 'fixed_small_log' | 'fixed_large' | 'fixed_large_log' | 'learned' | 'learned_range';

const VARIANCE_TYPES: readonly VarianceType[] = ['fixed_small', 'fixed_small_log', 'fixed_large', 'fixed_large_log', 'learned', 'learned_range'];

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
    return new DDPMScheduler({ ...optionsFromConfig<DDPMSchedulerOptions>(json, DDPM_CONFIG_KEYS, 'DDPMScheduler'), ...extra });
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
        throw new DdpmError('INVALID_TIMESTEP', `custom timesteps must be strictly decreasing: timesteps[${i}] = ${t} follows ${ts[i - 1]}`);
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
    if (i < 0) throw new DdpmError('INVALID_TIMESTEP', `timestep ${t} is not one of the ${this.timesteps.length} inference timesteps set by setTimesteps`);
    return i === this.timesteps.length - 1 ? -1 : this.timesteps[i + 1];
  }

  /** ᾱ_t, ᾱ_prev, and the step's own β = 1 − ᾱ_t/ᾱ_prev (= β_t without skipping). */
  private alphas(t: number): { prevT: number; alphaProdT: number; alphaProdTPrev: number; currentBetaT: number } {
    const prevT = this.previousTimestep(t);
    const acp = this.schedule.alphasCumprod;
    const alphaProdT = acp[t];
    const alphaProdTPrev = prevT >= 0 ? acp[prevT] : 1;
    return { prevT, alphaProdT, alphaProdTPrev, currentBetaT: 1 - alphaProdT / alphaProdTPrev };
  }

  /**
   * diffusers' _get_variance(t): β̃ = (1 − ᾱ_prev)/(1 − ᾱ_t)·β clamped to ≥ 1e-20 (DDPM eqs. 6–7), then by
   * variance type: fixed_small β̃; fixed_small_log exp(½ log β̃), a standard deviation (diffusers' quirk,
   * kept); fixed_large β (recomputed as 1 − ᾱ_t/ᾱ_prev); fixed_large_log log β; learned the predicted
   * variance; learned_range (Nichol & Dhariwal 2021, eq. 15) f·log β + (1 − f)·log β̃, f = (v + 1)/2.
   */
  getVariance(t: number, o: { varianceType?: VarianceType; predictedVariance?: number } = {}): number {
    const { alphaProdT, alphaProdTPrev, currentBetaT } = this.alphas(t);
    const variance = Math.max(((1 - alphaProdTPrev) / (1 - alphaProdT)) * currentBetaT, 1e-20);
    const type = oneOf('getVariance', 'varianceType', o.varianceType ?? this.varianceType, VARIANCE_TYPES);
    const v = o.predictedVariance;
    if ((type === 'learned' || type === 'learned_range') && (typeof v !== 'number' || !Number.isFinite(v))) {
      throw new DdpmError('INVALID_ARGUMENT', `getVariance: variance type ${type} needs a finite predictedVariance, found ${v}`);
    }
    switch (type) {
      case 'fixed_small': return variance;
      case 'fixed_small_log': return Math.exp(0.5 * Math.log(variance));
      case 'fixed_large': return currentBetaT;
      case 'fixed_large_log': return Math.log(currentBetaT);
      case 'learned': return v!;
      case 'learned_range': {
        const frac = (v! + 1) / 2;
        return frac * Math.log(currentBetaT) + (1 - frac) * Math.log(variance);
      }
    }
  }

  /**
   * One reverse step x_t → x_{t−1} ~ p_θ(x_{t−1} | x_t), as diffusers' DDPMScheduler.step, fused into one
   * kernel pass. For learned variance types, modelOutput holds 2C channels: prediction, then variance.
   * Noise is added only for t > 0; then opts.noise or opts.seed is required.
   */
  step(modelOutput: Tensor, timestep: number, sample: Tensor, opts: StepOptions = {}): SchedulerOutput {
    const t = timestep;
    // 1. compute alphas, betas
    const { alphaProdT, alphaProdTPrev, currentBetaT } = this.alphas(t);
    const betaProdT = 1 - alphaProdT;
    const betaProdTPrev = 1 - alphaProdTPrev;
    const currentAlphaT = 1 - currentBetaT;
    // 2. compute the predicted original sample x̂_0 ("predicted x_0" of formula (15)), and
    // 3. clip it to [−clipSampleRange, clipSampleRange] — both inside the kernel.
    const { ax, am } = this.predX0Coefficients(alphaProdT);
    // 4. coefficients of x̂_0 and x_t in the posterior mean μ̃_t, formula (7)
    const predOriginalSampleCoeff = (Math.sqrt(alphaProdTPrev) * currentBetaT) / betaProdT;
    const currentSampleCoeff = (Math.sqrt(currentAlphaT) * betaProdTPrev) / betaProdT;
    // 5. μ̃_t = coeff·x̂_0 + coeff·x_t and 6. add σ·z for t > 0 — in the kernel.
    const noisy = t > 0;
    // Learned types always carry the variance channels (modelOutput is 2C wide), noise or not.
    const learned = this.varianceType === 'learned' || this.varianceType === 'learned_range';
    const sigma = noisy || learned ? this.noiseScale(t) : 0;
    const coef: StepCoefficients = { ax, am, clip: this.clip, c0: predOriginalSampleCoeff, c1: currentSampleCoeff, c2: 0, sigma };
    return this.runStep('DDPMScheduler.step', modelOutput, t, sample, opts, coef, noisy);
  }

  /** σ of step 6: sqrt(variance) for the fixed types. fixed_small_log's getVariance is already a std;
   * for fixed_large_log we use exp(½ log β) = sqrt(β) (diffusers takes log(β)^½, a NaN). */
  private noiseScale(t: number): StepCoefficients['sigma'] {
    switch (this.varianceType) {
      case 'fixed_small': return Math.sqrt(this.getVariance(t));
      case 'fixed_small_log': return this.getVariance(t);
      case 'fixed_large': return Math.sqrt(this.getVariance(t));
      case 'fixed_large_log': return Math.exp(0.5 * this.getVariance(t));
      case 'learned': return { learned: 'learned' };
      case 'learned_range': {
        const { alphaProdT, alphaProdTPrev, currentBetaT } = this.alphas(t);
        const minLog = Math.log(Math.max(((1 - alphaProdTPrev) / (1 - alphaProdT)) * currentBetaT, 1e-20));
        return { learned: 'learned_range', minLog, maxLog: Math.log(currentBetaT) };
      }
    }
  }
}
