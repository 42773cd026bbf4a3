// HeunDiscreteScheduler: Heun's second-order method on the probability-flow ODE dx̃/dσ = (x̃ − x̂_0)/σ
// (Karras et al. 2022, Algorithm 1 without churn), with diffusers v0.32's semantics
// (scheduling_heun_discrete.py). Each step σ_i → σ_{i+1} costs two model calls: an Euler predictor
// (d_i = (x̃ − x̂_0)/σ_i, x̃' = x̃ + (σ_{i+1} − σ_i)·d_i), then a corrector with the model at x̃':
// x̃_{i+1} = x̃ + (σ_{i+1} − σ_i)·(d_i + d')/2.
//
// diffusers encodes the two calls in the schedule: timesteps [t_0, t_1, t_1, …, t_{n−1}, t_{n−1}] and sigmas
// [σ_0, σ_1, σ_1, …, σ_{n−1}, σ_{n−1}, 0] — 2n − 1 model calls for n steps; the last call is a lone Euler
// step from σ_{n−1} to 0 (Heun's correction would divide by σ = 0). Each entry of `timesteps` is one
// model call: step() alternates predictor and corrector, and keeps d_i, x̃ and dt in between.
import type { Tensor } from '../engine/memory.js';
import { DdpmError } from '../errors.js';
import {
  COMMON_CONFIG_KEYS,
  optionsFromConfig,
  type SchedulerOptions,
  type SchedulerOutput,
  type StepOptions,
} from './scheduler.js';
import { initNoiseSigmaOf } from './sigmas.js';
import { flag, refuseUnsupported } from './solver.js';
import { SigmaSpaceScheduler, sigmaSpaceX0 } from './euler.js';

const f32 = Math.fround;

export interface HeunDiscreteSchedulerOptions extends SchedulerOptions {
  useKarrasSigmas?: boolean; // false
}

const HEUN_CONFIG_KEYS: Record<string, string> = { ...COMMON_CONFIG_KEYS, use_karras_sigmas: 'useKarrasSigmas' };
const HEUN_UNSUPPORTED = { use_exponential_sigmas: false, use_beta_sigmas: false };

export class HeunDiscreteScheduler extends SigmaSpaceScheduler {
  readonly useKarrasSigmas: boolean;
  /** The predictor's step σ_{i+1} − σ_i while a corrector call is pending (diffusers' dt), else null. */
  private dt: number | null = null;
  /** The predictor's derivative d_i and start x̃_i, kept for the corrector. */
  private derivative: Tensor | null = null;
  private heunSample: Tensor | null = null;

  constructor(o: HeunDiscreteSchedulerOptions = {}) {
    const who = 'HeunDiscreteScheduler';
    // diffusers' Heun defaults: β from 0.00085 to 0.012 ("sensible defaults"), no clipping.
    super(
      { ...o, betaStart: o.betaStart ?? 0.00085, betaEnd: o.betaEnd ?? 0.012, clipSample: o.clipSample ?? false },
      who,
    );
    this.useKarrasSigmas = flag(who, 'useKarrasSigmas', o.useKarrasSigmas ?? false);
  }

  static fromConfig(json: unknown, extra: Pick<SchedulerOptions, 'engine'> = {}): HeunDiscreteScheduler {
    refuseUnsupported('HeunDiscreteScheduler', json, HEUN_UNSUPPORTED);
    return new HeunDiscreteScheduler({
      ...optionsFromConfig<HeunDiscreteSchedulerOptions>(json, HEUN_CONFIG_KEYS, 'HeunDiscreteScheduler'),
      ...extra,
    });
  }

  toConfig(): Record<string, unknown> {
    return {
      _class_name: 'HeunDiscreteScheduler',
      ...this.commonConfig(),
      use_karras_sigmas: this.useKarrasSigmas,
      use_exponential_sigmas: false,
      use_beta_sigmas: false,
    };
  }

  /** n steps = 2n − 1 model calls (see the header). */
  setTimesteps(n: number): void {
    let { ts, sig } = this.baseSigmas(n);
    // diffusers casts Heun's Karras timesteps to float64, its others to float32.
    if (this.useKarrasSigmas) ({ ts, sig } = this.karras(sig, n, null, null));
    else ts = ts.map(f32);
    const s = [...sig, 0].map(f32);
    this.sigmas = [s[0], ...s.slice(1, -1).flatMap((v) => [v, v]), 0];
    this.timesteps = [ts[0], ...ts.slice(1).flatMap((t) => [t, t])];
    this.initNoiseSigma = initNoiseSigmaOf(this.sigmas, this.timestepSpacing);
    this.numInferenceSteps = n;
    this.resetState();
  }

  protected resetState(): void {
    super.resetState();
    this.dt = null;
    this.derivative = null;
    this.heunSample = null;
  }

  protected hasHistory(): boolean {
    return this.dt !== null;
  }

  /** True when the next call is a predictor (Euler) call. */
  get stateInFirstOrder(): boolean {
    return this.dt === null;
  }

  step(modelOutput: Tensor, timestep: number, sample: Tensor, opts: StepOptions = {}): SchedulerOutput {
    const who = 'HeunDiscreteScheduler.step';
    const { engine, N, D } = this.shapes(who, modelOutput, sample);
    const i = this.beginStep(who, timestep);
    const size = N * D;
    const out = this.solverOutputs(engine, size, opts.out);
    const first = this.dt === null;
    // Predictor: σ = sigmas[i] → sigmas[i + 1]; corrector: the model ran at σ_next = sigmas[i].
    const sigma = first ? this.sigmas[i] : this.sigmas[i - 1];
    const sigmaNext = first ? this.sigmas[i + 1] : this.sigmas[i];
    // 1. x̂_0 from the σ-scaled prediction at the σ the model saw, clipped when clip_sample is set
    const { ax, am } = sigmaSpaceX0(this.predictionType, first ? sigma : sigmaNext);
    const x0 = out.predOriginalSample;
    this.combine(engine, N, D, x0, { t: sample, coef: ax }, [{ t: modelOutput, coef: am }], { clip: this.clip });
    if (first) {
      // 2. d_i = (x̃ − x̂_0)/σ, 3. dt; kept (with x̃) for the corrector; x̃' = x̃ + dt·d_i
      const dt = sigmaNext - sigma;
      const d = this.buffer(engine, size, 'derivative', true);
      const xs = this.buffer(engine, size, 'heunSample', true);
      this.combine(engine, N, D, d, { t: sample, coef: 1 / sigma }, [{ t: x0, coef: -1 / sigma }]);
      this.combine(engine, N, D, xs, { t: sample, coef: 1 }, []);
      this.combine(engine, N, D, out.prevSample, { t: sample, coef: 1 }, [{ t: d, coef: dt }]);
      this.dt = dt;
      this.derivative = d;
      this.heunSample = xs;
    } else {
      // 2. d' = (x̃' − x̂_0)/σ_next; x̃_{i+1} = x̃_i + dt·(d_i + d')/2
      const dt = this.dt!;
      const c = dt / (2 * sigmaNext);
      this.combine(engine, N, D, out.prevSample, { t: this.heunSample!, coef: 1 }, [
        { t: this.derivative!, coef: dt / 2 },
        { t: sample, coef: c },
        { t: x0, coef: -c },
      ]);
      this.dt = null;
      this.derivative = null;
      this.heunSample = null;
    }
    this.stepIndex = i + 1;
    return out;
  }

  protected stateValues(): Record<string, number | null> {
    return { dt: this.dt };
  }

  protected stateTensors(): Record<string, Tensor | null> {
    return { derivative: this.derivative, sample: this.heunSample };
  }

  protected restoreState(values: Record<string, number | null>, tensors: Record<string, Tensor | null>): void {
    const pending = values.dt !== null;
    if (pending !== (tensors.derivative !== null) || pending !== (tensors.sample !== null)) {
      throw new DdpmError(
        'FORMAT',
        'HeunDiscreteScheduler.loadState: dt, derivative and sample must all be present (a corrector call pending) or all null',
      );
    }
    this.dt = values.dt;
    this.derivative = tensors.derivative;
    this.heunSample = tensors.sample;
  }
}
