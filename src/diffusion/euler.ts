// The σ-space samplers of Karras et al. 2022 ("Elucidating the Design Space of Diffusion-Based Generative
// Models", https://arxiv.org/abs/2206.00364) as diffusers v0.32 runs them on a VP model:
// EulerDiscreteScheduler (Algorithm 2 without churn, i.e. Euler's method on the probability-flow ODE
// dx/dσ = (x − x̂_0)/σ, eq. 3) and EulerAncestralDiscreteScheduler (k-diffusion's sample_euler_ancestral:
// an Euler step down to σ_down, then fresh noise of σ_up). HeunDiscreteScheduler is in heun.ts.
//
// The state is x̃ = x_t/α_t = x_0 + σ·ε, so x_T = σ_max·z (initNoiseSigma) and the model sees
// x̃/sqrt(σ² + 1) = x_t (scaleModelInput). diffusers' quirks reproduced: float32 timesteps
// linspace(0, T − 1, n) that are fractional and end at 0, σ interpolated linearly in t over the float32
// table, a final σ of 0, and init_noise_sigma sqrt(σ_max² + 1) for leading spacing.
import { show } from '../validate.js';
import { DdpmError } from '../errors.js';
import type { Tensor } from '../engine/memory.js';
import {
  COMMON_CONFIG_KEYS,
  oneOf,
  optionsFromConfig,
  type SchedulerOptions,
  type SchedulerOutput,
  type StepOptions,
} from './scheduler.js';
import { discreteTimesteps, initNoiseSigmaOf, interpTable, karrasSigmas, sigmaToT } from './sigmas.js';
import { SolverBase, flag, refuseUnsupported } from './solver.js';
import type { FinalSigmasType } from './dpm-solver.js';

const f32 = Math.fround;

/** (ax, am) with x̂_0 = ax·x̃ + am·m at noise level σ, in the σ-space form x̃ = x_0 + σ·ε. */
export function sigmaSpaceX0(type: 'epsilon' | 'sample' | 'v_prediction', sigma: number): { ax: number; am: number } {
  switch (type) {
    case 'epsilon':
      return { ax: 1, am: -sigma };
    case 'sample':
      return { ax: 0, am: 1 };
    // diffusers: denoised = model_output·c_out + input·c_skip, c_out = −σ/sqrt(σ² + 1), c_skip = 1/(σ² + 1)
    case 'v_prediction':
      return { ax: 1 / (sigma * sigma + 1), am: -sigma / Math.sqrt(sigma * sigma + 1) };
  }
}

/** What Euler, Euler ancestral and Heun share: float32 timesteps, interpolated σ, scaleModelInput. */
export abstract class SigmaSpaceScheduler extends SolverBase {
  protected constructor(o: SchedulerOptions, who: string) {
    super({ ...o, timestepSpacing: o.timestepSpacing ?? 'linspace' }, who);
  }

  /** The timesteps and their σ (float64, before diffusers' final float32 cast), for n steps. */
  protected baseSigmas(n: number): { ts: number[]; sig: number[] } {
    const ts = discreteTimesteps(this.timestepSpacing, this.numTrainTimesteps, n, this.stepsOffset);
    return { ts, sig: ts.map((t) => interpTable(t, this.sigmaTable)) };
  }

  /** Karras σ between the given (or the interpolated schedule's own) ends, and their timesteps. */
  protected karras(
    sig: number[],
    n: number,
    sigmaMin: number | null,
    sigmaMax: number | null,
  ): { ts: number[]; sig: number[] } {
    const ks = Array.from(karrasSigmas(sigmaMin ?? sig[sig.length - 1], sigmaMax ?? sig[0], n));
    return { ts: ks.map((s) => sigmaToT(s, this.logSigmaTable)), sig: ks };
  }

  /** x̃/sqrt(σ² + 1) (every operation as diffusers does it in float32): what the model sees. Also sets the
   * step counter on the first call, as diffusers does. Returns a tensor the scheduler owns. */
  override scaleModelInput(sample: Tensor, timestep?: number): Tensor {
    const who = `${this.constructor.name}.scaleModelInput`;
    if (timestep === undefined) throw new DdpmError('INVALID_ARGUMENT', `${who}: give the timestep`);
    const i = this.beginStep(who, timestep);
    const engine = this.requireEngine(who);
    const N = sample.shape[0] ?? 1;
    const sigma = this.sigmas[i];
    const div = f32(Math.sqrt(f32(f32(sigma * sigma) + 1)));
    const out = this.buffer(engine, sample.size, 'modelInput', false);
    this.combine(engine, N, sample.size / N, out, { t: sample, coef: 1 / div }, []);
    return out.shape.length === sample.shape.length ? out : { ...out, shape: [...sample.shape] };
  }
}

export interface EulerDiscreteSchedulerOptions extends Omit<SchedulerOptions, 'clipSample' | 'clipSampleRange'> {
  useKarrasSigmas?: boolean; // false
  /** Ends of the Karras schedule; default the schedule's own. */
  sigmaMin?: number | null;
  sigmaMax?: number | null;
  finalSigmasType?: FinalSigmasType; // 'zero'
}

const EULER_CONFIG_KEYS: Record<string, string> = {
  ...COMMON_CONFIG_KEYS,
  use_karras_sigmas: 'useKarrasSigmas',
  sigma_min: 'sigmaMin',
  sigma_max: 'sigmaMax',
  final_sigmas_type: 'finalSigmasType',
};

const EULER_UNSUPPORTED = {
  use_exponential_sigmas: false,
  use_beta_sigmas: false,
  interpolation_type: 'linear',
  timestep_type: 'discrete',
};

export class EulerDiscreteScheduler extends SigmaSpaceScheduler {
  readonly useKarrasSigmas: boolean;
  readonly sigmaMin: number | null;
  readonly sigmaMax: number | null;
  readonly finalSigmasType: FinalSigmasType;

  constructor(o: EulerDiscreteSchedulerOptions = {}) {
    const who = 'EulerDiscreteScheduler';
    super({ ...o, clipSample: false }, who);
    this.useKarrasSigmas = flag(who, 'useKarrasSigmas', o.useKarrasSigmas ?? false);
    this.sigmaMin = positiveOrNull(who, 'sigmaMin', o.sigmaMin);
    this.sigmaMax = positiveOrNull(who, 'sigmaMax', o.sigmaMax);
    this.finalSigmasType = oneOf(who, 'finalSigmasType', o.finalSigmasType ?? 'zero', ['zero', 'sigma_min'] as const);
  }

  static fromConfig(json: unknown, extra: Pick<SchedulerOptions, 'engine'> = {}): EulerDiscreteScheduler {
    refuseUnsupported('EulerDiscreteScheduler', json, EULER_UNSUPPORTED);
    return new EulerDiscreteScheduler({
      ...optionsFromConfig<EulerDiscreteSchedulerOptions>(json, EULER_CONFIG_KEYS, 'EulerDiscreteScheduler'),
      ...extra,
    });
  }

  toConfig(): Record<string, unknown> {
    const c = this.commonConfigWithoutClip();
    return {
      _class_name: 'EulerDiscreteScheduler',
      ...c,
      interpolation_type: 'linear',
      use_karras_sigmas: this.useKarrasSigmas,
      use_exponential_sigmas: false,
      use_beta_sigmas: false,
      sigma_min: this.sigmaMin,
      sigma_max: this.sigmaMax,
      timestep_type: 'discrete',
      final_sigmas_type: this.finalSigmasType,
      rescale_betas_zero_snr: false,
    };
  }

  setTimesteps(n: number): void {
    let { ts, sig } = this.baseSigmas(n);
    if (this.useKarrasSigmas) ({ ts, sig } = this.karras(sig, n, this.sigmaMin, this.sigmaMax));
    this.timesteps = ts.map(f32);
    this.sigmas = [...sig, this.finalSigmasType === 'zero' ? 0 : this.sigmaTable[0]].map(f32);
    this.initNoiseSigma = initNoiseSigmaOf(this.sigmas, this.timestepSpacing);
    this.numInferenceSteps = n;
    this.resetState();
  }

  protected hasHistory(): boolean {
    return false;
  }

  /** Euler from σ_i to σ_{i+1}: x̃' = x̃ + (σ_{i+1} − σ_i)·(x̃ − x̂_0)/σ_i (churn γ = 0). */
  step(modelOutput: Tensor, timestep: number, sample: Tensor, opts: StepOptions = {}): SchedulerOutput {
    const who = 'EulerDiscreteScheduler.step';
    const { engine, N, D } = this.shapes(who, modelOutput, sample);
    const i = this.beginStep(who, timestep);
    const out = this.solverOutputs(engine, N * D, opts.out);
    const sigma = this.sigmas[i];
    // 1. x̂_0 from the σ-scaled prediction, 2. the ODE derivative (x̃ − x̂_0)/σ, 3. one Euler step of dt
    const { ax, am } = sigmaSpaceX0(this.predictionType, sigma);
    const dt = this.sigmas[i + 1] - sigma;
    const k = dt / sigma; // x̃ + dt·(x̃ − x̂_0)/σ = (1 + k − k·ax)·x̃ − k·am·m
    this.combine(engine, N, D, out.predOriginalSample, { t: sample, coef: ax }, [{ t: modelOutput, coef: am }]);
    this.combine(engine, N, D, out.prevSample, { t: sample, coef: 1 + k - k * ax }, [
      { t: modelOutput, coef: -k * am },
    ]);
    this.stepIndex = i + 1;
    return out;
  }

  protected stateValues(): Record<string, number | null> {
    return {};
  }
  protected stateTensors(): Record<string, Tensor | null> {
    return {};
  }
  protected restoreState(): void {}
}

export type EulerAncestralDiscreteSchedulerOptions = Omit<SchedulerOptions, 'clipSample' | 'clipSampleRange'>;

export class EulerAncestralDiscreteScheduler extends SigmaSpaceScheduler {
  constructor(o: EulerAncestralDiscreteSchedulerOptions = {}) {
    const who = 'EulerAncestralDiscreteScheduler';
    super({ ...o, clipSample: false }, who);
    if (this.predictionType === 'sample')
      throw new DdpmError(
        'UNSUPPORTED',
        `${who}: predictionType sample is not supported (diffusers v0.32 does not implement it either)`,
      );
  }

  static fromConfig(json: unknown, extra: Pick<SchedulerOptions, 'engine'> = {}): EulerAncestralDiscreteScheduler {
    return new EulerAncestralDiscreteScheduler({
      ...optionsFromConfig<EulerAncestralDiscreteSchedulerOptions>(
        json,
        COMMON_CONFIG_KEYS,
        'EulerAncestralDiscreteScheduler',
      ),
      ...extra,
    });
  }

  toConfig(): Record<string, unknown> {
    const c = this.commonConfigWithoutClip();
    return { _class_name: 'EulerAncestralDiscreteScheduler', ...c, rescale_betas_zero_snr: false };
  }

  setTimesteps(n: number): void {
    const { ts, sig } = this.baseSigmas(n);
    this.timesteps = ts;
    this.sigmas = [...sig, 0].map(f32);
    this.initNoiseSigma = initNoiseSigmaOf(this.sigmas, this.timestepSpacing);
    this.numInferenceSteps = n;
    this.resetState();
  }

  protected hasHistory(): boolean {
    return false;
  }

  /**
   * The ancestral step σ_from → σ_to: σ_up = sqrt(σ_to²·(σ_from² − σ_to²)/σ_from²), σ_down =
   * sqrt(σ_to² − σ_up²); Euler to σ_down, then + σ_up·z. z: opts.noise, or Philox at (opts.seed,
   * stream T + 1 + i, opts.offset + n·D); none is needed on the last step (σ_up = 0).
   */
  step(modelOutput: Tensor, timestep: number, sample: Tensor, opts: StepOptions = {}): SchedulerOutput {
    const who = 'EulerAncestralDiscreteScheduler.step';
    const { engine, N, D } = this.shapes(who, modelOutput, sample);
    const i = this.beginStep(who, timestep);
    const sigmaFrom = this.sigmas[i];
    const sigmaTo = this.sigmas[i + 1];
    const sigmaUp = Math.sqrt((sigmaTo ** 2 * (sigmaFrom ** 2 - sigmaTo ** 2)) / sigmaFrom ** 2);
    const sigmaDown = Math.sqrt(sigmaTo ** 2 - sigmaUp ** 2);
    const noise = this.stepNoise(who, opts, sigmaUp, i, N * D, engine);
    const out = this.solverOutputs(engine, N * D, opts.out);
    const { ax, am } = sigmaSpaceX0(this.predictionType, sigmaFrom);
    const k = (sigmaDown - sigmaFrom) / sigmaFrom;
    this.combine(engine, N, D, out.predOriginalSample, { t: sample, coef: ax }, [{ t: modelOutput, coef: am }]);
    this.combine(
      engine,
      N,
      D,
      out.prevSample,
      { t: sample, coef: 1 + k - k * ax },
      [{ t: modelOutput, coef: -k * am }],
      { noise },
    );
    this.stepIndex = i + 1;
    return out;
  }

  protected stateValues(): Record<string, number | null> {
    return {};
  }
  protected stateTensors(): Record<string, Tensor | null> {
    return {};
  }
  protected restoreState(): void {}
}

function positiveOrNull(who: string, what: string, v: unknown): number | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== 'number' || !(v > 0) || !Number.isFinite(v))
    throw new DdpmError('INVALID_ARGUMENT', `${who}: ${what} must be a finite number > 0 or null, found ${show(v)}`);
  return v;
}
