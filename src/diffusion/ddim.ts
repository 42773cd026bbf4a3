// DDIMScheduler: denoising diffusion implicit models, Song et al. 2020 (https://arxiv.org/abs/2010.02502),
// with diffusers' semantics (scheduling_ddim.py, v0.32): η, use_clipped_model_output, set_alpha_to_one.
import { show } from '../validate.js';
import { DdpmError } from '../errors.js';
import type { Tensor } from '../engine/memory.js';
import { predEpsCoefficients, qPosteriorCoefficients, stepAlphas, type StepAlphas } from './posterior.js';
import {
  COMMON_CONFIG_KEYS,
  SchedulerBase,
  optionsFromConfig,
  type SchedulerOptions,
  type SchedulerOutput,
  type StepOptions,
} from './scheduler.js';

export interface DDIMSchedulerOptions extends SchedulerOptions {
  /** ᾱ used for the step past t = 0: 1 when true, else ᾱ_0. Default true. */
  setAlphaToOne?: boolean;
}

export interface DDIMStepOptions extends StepOptions {
  /** η of eq. 16: 0 deterministic DDIM, 1 DDPM-like. Default 0. */
  eta?: number;
  /** Re-derive ε from the clipped x̂_0 (as GLIDE does). Default false. */
  useClippedModelOutput?: boolean;
}

const DDIM_CONFIG_KEYS: Record<string, string> = { ...COMMON_CONFIG_KEYS, set_alpha_to_one: 'setAlphaToOne' };

export class DDIMScheduler extends SchedulerBase {
  readonly setAlphaToOne: boolean;
  /** ᾱ of the step past the last: 1 or ᾱ_0. */
  readonly finalAlphaCumprod: number;
  protected override readonly ignoresVarianceChannels = true;

  constructor(o: DDIMSchedulerOptions = {}) {
    super(o, 'DDIMScheduler');
    this.setAlphaToOne = o.setAlphaToOne ?? true;
    if (typeof this.setAlphaToOne !== 'boolean')
      throw new DdpmError(
        'INVALID_ARGUMENT',
        `DDIMScheduler: setAlphaToOne must be true or false, found ${show(this.setAlphaToOne)}`,
      );
    this.finalAlphaCumprod = this.setAlphaToOne ? 1 : this.schedule.alphasCumprod[0];
  }

  static fromConfig(json: unknown, extra: Pick<SchedulerOptions, 'engine'> = {}): DDIMScheduler {
    return new DDIMScheduler({
      ...optionsFromConfig<DDIMSchedulerOptions>(json, DDIM_CONFIG_KEYS, 'DDIMScheduler'),
      ...extra,
    });
  }

  toConfig(): Record<string, unknown> {
    return { _class_name: 'DDIMScheduler', ...this.commonConfig(), set_alpha_to_one: this.setAlphaToOne };
  }

  /** n inference steps ∈ [1, T], spaced by `timestepSpacing` (see SchedulerBase.spacedTimesteps). */
  setTimesteps(n: number): void {
    this.timesteps = this.spacedTimesteps(n);
    this.numInferenceSteps = n;
  }

  /** diffusers' rule, whatever the spacing: t − T // numInferenceSteps. */
  previousTimestep(t: number): number {
    this.checkTimestep(t);
    if (this.numInferenceSteps === null) {
      throw new DdpmError('INVALID_ARGUMENT', 'DDIMScheduler: call setTimesteps(numInferenceSteps) before step');
    }
    return t - Math.floor(this.numTrainTimesteps / this.numInferenceSteps);
  }

  private alphas(t: number): StepAlphas {
    return stepAlphas(this.schedule, t, this.previousTimestep(t), this.finalAlphaCumprod);
  }

  /** σ_t²(η = 1) of eq. 16: (1 − ᾱ_prev)/(1 − ᾱ_t) · (1 − ᾱ_t/ᾱ_prev), the DDPM posterior's β̃ (DDPM eq. 7). */
  getVariance(t: number): number {
    return qPosteriorCoefficients(this.alphas(t)).variance;
  }

  /**
   * One DDIM step, eq. 12: x_{t−1} = sqrt(ᾱ_prev)·x̂_0 + sqrt(1 − ᾱ_prev − σ_t²)·ε̂ + σ_t·z, fused into one
   * kernel pass; noise (opts.noise or opts.seed) is needed only when η > 0.
   */
  step(modelOutput: Tensor, timestep: number, sample: Tensor, opts: DDIMStepOptions = {}): SchedulerOutput {
    const t = timestep;
    const eta = opts.eta ?? 0;
    if (typeof eta !== 'number' || !(eta >= 0) || !Number.isFinite(eta))
      throw new DdpmError(
        'INVALID_ARGUMENT',
        `DDIMScheduler.step: eta must be a finite number >= 0, found ${show(eta)}`,
      );
    // 1. get the previous step value and 2. compute alphas, betas
    const { alphaProdT, alphaProdTPrev } = this.alphas(t);
    const betaProdT = 1 - alphaProdT;
    const sa = Math.sqrt(alphaProdT),
      sb = Math.sqrt(betaProdT);
    // 3. "predicted x_0" of formula (12), and 4. its clipping — in the kernel; ε̂ = ex·x_t + em·m + e0·x̂_0.
    const { ax, am } = this.predX0Coefficients(alphaProdT);
    let ex: number,
      em: number,
      e0 = 0;
    if (opts.useClippedModelOutput) {
      // ε re-derived from the clipped x̂_0 (GLIDE)
      [ex, em, e0] = [1 / sb, 0, -sa / sb];
    } else ({ ex, em } = predEpsCoefficients(this.predictionType, alphaProdT));
    // 5. σ_t(η), formula (16)
    const stdDevT = eta * Math.sqrt(this.getVariance(t));
    // 6. "direction pointing to x_t" of formula (12)
    const dir2 = 1 - alphaProdTPrev - stdDevT * stdDevT;
    if (!(dir2 >= 0)) {
      throw new DdpmError(
        'INVALID_ARGUMENT',
        `DDIMScheduler.step: eta ${eta} is too large at t = ${t}: 1 − ᾱ_prev − σ² = ${dir2} < 0`,
      );
    }
    const dir = Math.sqrt(dir2);
    // 7. x_{t−1} without noise, formula (12), plus σ_t·z when η > 0 — in the kernel.
    const coef = {
      ax,
      am,
      clip: this.clip,
      c0: Math.sqrt(alphaProdTPrev) + dir * e0,
      c1: dir * ex,
      c2: dir * em,
      sigma: stdDevT,
    };
    return this.runStep('DDIMScheduler.step', modelOutput, t, sample, opts, coef, eta > 0);
  }
}
