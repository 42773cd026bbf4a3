// What the few-step solvers share (DPMSolverMultistepScheduler, UniPCMultistepScheduler,
// EulerDiscreteScheduler, EulerAncestralDiscreteScheduler, HeunDiscreteScheduler): the float32 σ table,
// the step counter diffusers keeps (`step_index`), buffers for their outputs and history, the one
// elementwise kernel they are built from (kernels/solver.ts), and their state as JSON so a sampling chain
// can stop after any step and resume bit-identically.
//
// Buffers: like SchedulerBase, a solver owns its output tensors and, for the multistep and two-stage
// methods, its history (past x̂_0's, UniPC's last sample, Heun's first-stage derivative), allocated from
// the engine's arena on the first step for the sample's size. Returned tensors are overwritten by the
// next step. Releasing an arena mark taken before the first step frees the history too: the next step
// then fails with INVALID_ARGUMENT instead of reading freed memory (call setTimesteps to start over).
import { show } from '../validate.js';
import { DdpmError } from '../errors.js';
import type { Engine } from '../engine/engine.js';
import type { Tensor } from '../engine/memory.js';
import { base64ToBytes } from '../engine/runtime.js';
import { solverCombine, type CombineArgs, type Term } from '../kernels/solver.js';
import { splitU64 } from '../kernels/gaussian.js';
import { SchedulerBase, type SchedulerOptions, type SchedulerOutput, type StepOptions } from './scheduler.js';
import { alphasCumprod32, betas32, sigmaTable32 } from './sigmas.js';

/** A solver's state between steps, as JSON: tensors are base64 little-endian float32 (exact). */
export interface SolverState {
  stepIndex: number | null;
  values: Record<string, number | null>;
  tensors: Record<string, string | null>;
}

/** Refuses config keys whose non-default value would change the math and is not implemented. */
export function refuseUnsupported(who: string, json: unknown, keys: Record<string, unknown>): void {
  if (json === null || typeof json !== 'object') return;
  const cfg = json as Record<string, unknown>;
  for (const [k, dflt] of Object.entries(keys)) {
    const v = cfg[k];
    if (v === undefined || v === null || v === dflt) continue;
    if (Array.isArray(dflt) && Array.isArray(v) && v.length === 0) continue;
    throw new DdpmError(
      'UNSUPPORTED',
      `${who}.fromConfig: ${k} = ${JSON.stringify(v)} is not supported (only ${JSON.stringify(dflt)})`,
    );
  }
}

export abstract class SolverBase extends SchedulerBase {
  /** ᾱ_t as diffusers computes it in float32.  (T) */
  readonly alphasCumprod32: Float64Array;
  /** σ_t for t ∈ [0, T), diffusers' float32 values.  (T) */
  readonly sigmaTable: Float64Array;
  /** log σ_t in float32 (what diffusers' _sigma_to_t interpolates over).  (T) */
  readonly logSigmaTable: Float64Array;

  /** The shared scheduler_config.json keys, less clip_sample(_range), which the DPM-Solver, UniPC and
   * Euler configs of diffusers do not have. */
  protected commonConfigWithoutClip(): Record<string, unknown> {
    const c = this.commonConfig();
    delete c.clip_sample;
    delete c.clip_sample_range;
    return c;
  }
  /** σ of each inference timestep, then the final σ (0): timesteps.length + 1 values, float32. */
  sigmas: number[] = [];
  /** diffusers' step_index: the index into `timesteps` of the next step; null before the first. */
  stepIndex: number | null = null;
  private owned = new Map<string, { engine: Engine; t: Tensor; end: number; run: number }>();
  /** Counts setTimesteps calls: a buffer from an earlier run is stale, not "freed mid-run". */
  private run = 0;

  protected constructor(o: SchedulerOptions, who: string) {
    super(o, who);
    this.alphasCumprod32 = alphasCumprod32(betas32(this.schedule, this.betaSchedule, this.betaStart, this.betaEnd));
    this.sigmaTable = sigmaTable32(this.alphasCumprod32);
    this.logSigmaTable = this.sigmaTable.map((s) => Math.fround(Math.log(s)));
  }

  /** Inference steps set by setTimesteps: `timesteps` and `sigmas`, and the history cleared. */
  abstract setTimesteps(n: number): void;

  /** Clears the step counter and the history (setTimesteps calls it). */
  protected resetState(): void {
    this.stepIndex = null;
    this.run++;
  }

  /** diffusers' index_for_timestep on the first step (the second match when t repeats, as Heun's do),
   * then one per step; t must be the timestep at that index. */
  protected beginStep(who: string, t: number): number {
    if (this.numInferenceSteps === null)
      throw new DdpmError('INVALID_ARGUMENT', `${who}: call setTimesteps(numInferenceSteps) before step`);
    if (this.stepIndex === null) {
      const hits = this.timesteps.flatMap((s, i) => (s === t ? [i] : []));
      if (hits.length === 0)
        throw new DdpmError(
          'INVALID_TIMESTEP',
          `${who}: timestep ${t} is not one of the ${this.timesteps.length} inference timesteps set by setTimesteps`,
        );
      this.stepIndex = hits.length > 1 ? hits[1] : hits[0];
    }
    const i = this.stepIndex;
    if (i >= this.timesteps.length)
      throw new DdpmError(
        'INVALID_TIMESTEP',
        `${who}: all ${this.timesteps.length} steps are done; call setTimesteps to start again`,
      );
    if (this.timesteps[i] !== t) {
      throw new DdpmError(
        'INVALID_TIMESTEP',
        `${who}: step ${i} is at timestep ${this.timesteps[i]}, found ${t} (timesteps must be passed in order)`,
      );
    }
    return i;
  }

  /** Checks sample and model output, returns (N, D) and the model output's row stride. */
  protected shapes(
    who: string,
    modelOutput: Tensor,
    sample: Tensor,
    learned = false,
  ): { engine: Engine; N: number; D: number; stride: number } {
    const engine = this.requireEngine(who);
    const N = sample.shape[0] ?? 1;
    if (sample.shape.length < 1 || N < 1 || sample.size === 0 || sample.size % N !== 0) {
      throw new DdpmError(
        'SHAPE_MISMATCH',
        `${who}: sample (tensor ${sample.name}) must have shape [N, …] with N >= 1, found [${sample.shape}]`,
      );
    }
    const D = sample.size / N;
    const k = learned ? 2 : 1;
    if (modelOutput.size !== k * sample.size) {
      throw new DdpmError(
        'SHAPE_MISMATCH',
        `${who}: modelOutput (tensor ${modelOutput.name}, [${modelOutput.shape}]) must hold ${learned ? 'twice as many values as (prediction and variance channels)' : 'as many values as'} sample [${sample.shape}]`,
      );
    }
    return { engine, N, D, stride: k * D };
  }

  /** The solver's own tensor `name` of the sample's size. History buffers must survive between steps:
   * if the arena was released below one mid-run, that is an error rather than a silent corruption. */
  protected buffer(engine: Engine, size: number, name: string, history: boolean): Tensor {
    const b = this.owned.get(name);
    if (b && b.engine === engine && b.t.size === size && engine.arena.used >= b.end) return b.t;
    if (b && history && b.run === this.run && this.hasHistory()) {
      throw new DdpmError(
        'INVALID_ARGUMENT',
        `${this.constructor.name}: its history buffer ${name} was freed mid-run (arena released below it, or a new engine or sample size); call setTimesteps to start again`,
      );
    }
    const t = engine.alloc(size, `${this.constructor.name}.${name}`);
    this.owned.set(name, { engine, t, end: engine.arena.used, run: this.run });
    return t;
  }

  /** The first of the buffers `names` that `inUse` does not hold (for history rings). */
  protected freeBuffer(
    engine: Engine,
    size: number,
    names: readonly string[],
    inUse: readonly (Tensor | null)[],
  ): Tensor {
    for (const n of names) {
      const t = this.buffer(engine, size, n, true);
      if (!inUse.some((u) => u !== null && u.ptr === t.ptr)) return t;
    }
    throw new DdpmError(
      'INVALID_ARGUMENT',
      `${this.constructor.name}: no free history buffer among ${names.join(', ')}`,
    );
  }

  /** True when history tensors hold values needed by the next step. */
  protected abstract hasHistory(): boolean;

  /** The output buffers of a step: the caller's `out`, else the solver's own. */
  protected solverOutputs(engine: Engine, size: number, out: Partial<SchedulerOutput> | undefined): SchedulerOutput {
    return {
      prevSample: out?.prevSample ?? this.buffer(engine, size, 'prevSample', false),
      predOriginalSample: out?.predOriginalSample ?? this.buffer(engine, size, 'predOriginalSample', false),
    };
  }

  /** out = a·x + Σ b_i·y_i (+ c·z), clamped to ±clip: one pass of the shared kernel. */
  protected combine(
    engine: Engine,
    N: number,
    D: number,
    out: Tensor,
    x: Term | null,
    terms: readonly (Term | null)[],
    extra: Pick<CombineArgs, 'stride0' | 'noise' | 'clip'> = {},
  ): void {
    solverCombine(engine, { N, D, out, x: x ?? undefined, terms, ...extra });
  }

  /**
   * The noise of a stochastic step, or undefined when its coefficient is 0. z is opts.noise, else Philox
   * at (opts.seed, stream T + 1 + stepIndex, opts.offset + i): T + 1 + i never collides with x_T's stream
   * T nor with another step's, and does not need integer timesteps (Euler's are fractional).
   */
  protected stepNoise(
    who: string,
    opts: StepOptions,
    coef: number,
    stepIndex: number,
    total: number,
    engine: Engine,
  ): CombineArgs['noise'] {
    if (coef === 0) return undefined;
    if (opts.noise) {
      engine.check(opts.noise, `${who}: noise`);
      if (opts.noise.size < total)
        throw new DdpmError(
          'SHAPE_MISMATCH',
          `${who}: noise (tensor ${opts.noise.name}) must hold ${total} values, found ${opts.noise.size}`,
        );
      return { coef, z: opts.noise };
    }
    if (opts.seed === undefined)
      throw new DdpmError('INVALID_ARGUMENT', `${who}: step ${stepIndex} adds noise: give { seed } or { noise }`);
    splitU64(`${who}: seed`, opts.seed);
    return {
      coef,
      random: { seed: opts.seed, stream: this.numTrainTimesteps + 1 + stepIndex, offset: opts.offset ?? 0 },
    };
  }

  /** Scalars and tensors of the state beyond stepIndex (the history); restoreState reads them back. */
  protected abstract stateValues(): Record<string, number | null>;
  protected abstract stateTensors(): Record<string, Tensor | null>;
  protected abstract restoreState(values: Record<string, number | null>, tensors: Record<string, Tensor | null>): void;

  /** The state after the last step, as JSON (see SamplingChain). */
  saveState(): SolverState {
    const engine = this.engine;
    const tensors: Record<string, string | null> = {};
    for (const [k, t] of Object.entries(this.stateTensors()))
      tensors[k] = t && engine ? tensorToBase64(engine, t) : null;
    return { stepIndex: this.stepIndex, values: this.stateValues(), tensors };
  }

  /** Restores saveState()'s output for samples of `size` values, after setTimesteps with the same steps.
   * Every field is checked: a malformed state is a FORMAT error. */
  loadState(state: unknown, size: number): void {
    const who = `${this.constructor.name}.loadState`;
    const s = state as Record<string, unknown> | null;
    if (s === null || typeof s !== 'object' || Array.isArray(s))
      throw new DdpmError('FORMAT', `${who}: the state must be an object, found ${describe(s)}`);
    const si = s.stepIndex;
    if (si !== null && !(Number.isInteger(si) && (si as number) >= 0 && (si as number) <= this.timesteps.length)) {
      throw new DdpmError(
        'FORMAT',
        `${who}: stepIndex must be null or an integer in [0, ${this.timesteps.length}], found ${describe(si)}`,
      );
    }
    const values = s.values as Record<string, unknown> | undefined;
    const tensors = s.tensors as Record<string, unknown> | undefined;
    if (
      !values ||
      typeof values !== 'object' ||
      Array.isArray(values) ||
      !tensors ||
      typeof tensors !== 'object' ||
      Array.isArray(tensors)
    ) {
      throw new DdpmError(
        'FORMAT',
        `${who}: values and tensors must be objects, found ${describe(values)} and ${describe(tensors)}`,
      );
    }
    const wantValues = Object.keys(this.stateValues());
    const wantTensors = Object.keys(this.stateTensors());
    const vals: Record<string, number | null> = {};
    for (const k of wantValues) {
      const v = values[k];
      // finite in float32 too: the values become kernel coefficients (a dt of 1e39 gave NaN samples)
      if (v !== null && (typeof v !== 'number' || !Number.isFinite(Math.fround(v))))
        throw new DdpmError(
          'FORMAT',
          `${who}: values.${k} must be a finite (float32) number or null, found ${show(v)}`,
        );
      vals[k] = v as number | null;
    }
    const engine = this.requireEngine(who);
    const tens: Record<string, Tensor | null> = {};
    for (const k of wantTensors) {
      const v = tensors[k];
      if (v === null || v === undefined) {
        tens[k] = null;
        continue;
      }
      if (typeof v !== 'string')
        throw new DdpmError('FORMAT', `${who}: tensors.${k} must be a base64 string or null, found ${describe(v)}`);
      const t = this.buffer(engine, size, `state.${k}`, false);
      base64ToTensor(engine, v, t, `${who}: tensors.${k}`);
      tens[k] = t;
    }
    this.restoreState(vals, tens);
    this.stepIndex = si as number | null;
  }
}

export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  return typeof v === 'object' ? 'an object' : String(v);
}

/** A tensor's float32 values as base64 of little-endian bytes. */
export function tensorToBase64(engine: Engine, t: Tensor): string {
  const view = engine.view(t);
  const bytes = new Uint8Array(view.length * 4);
  const dv = new DataView(bytes.buffer);
  for (let i = 0; i < view.length; i++) dv.setFloat32(4 * i, view[i], true);
  let bin = '';
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(bin);
}

/** Writes base64 float32 values into t; FORMAT error naming `what` unless the length matches. */
export function base64ToTensor(engine: Engine, b64: string, t: Tensor, what: string): void {
  let bytes: Uint8Array;
  try {
    bytes = base64ToBytes(b64);
  } catch {
    throw new DdpmError('FORMAT', `${what}: not valid base64`);
  }
  if (bytes.length !== t.size * 4)
    throw new DdpmError('FORMAT', `${what}: ${bytes.length} bytes, expected ${t.size * 4} (${t.size} float32 values)`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  // a saved chain never holds NaN or ±Inf (a step that produced one is refused): such a state is malformed,
  // and would turn every later sample into NaN (found by the chain-state fuzzer in a solver history tensor)
  for (let i = 0; i < t.size; i++) {
    const v = dv.getFloat32(4 * i, true);
    if (!Number.isFinite(v))
      throw new DdpmError('FORMAT', `${what}: element ${i} is ${v}; a saved state holds finite values only`);
  }
  const view = engine.view(t);
  for (let i = 0; i < t.size; i++) view[i] = dv.getFloat32(4 * i, true);
}

/** α_t = 1/sqrt(σ² + 1) and σ_t = σ·α_t of the VP process at noise level σ (diffusers' _sigma_to_alpha_sigma_t). */
export function alphaSigma(sigma: number): { alpha: number; sigmaT: number } {
  const alpha = 1 / Math.sqrt(sigma * sigma + 1);
  return { alpha, sigmaT: sigma * alpha };
}

/** λ = log(α_t/σ_t), the half log-SNR DPM-Solver steps in (Lu et al. 2022, §3.1); +∞ at σ = 0. */
export function lambdaOf(sigma: number): number {
  const { alpha, sigmaT } = alphaSigma(sigma);
  return Math.log(alpha) - Math.log(sigmaT);
}

/** (ax, am) with x̂_0 = ax·x_t + am·m for the prediction type, in the VP form x_t = α_t·x_0 + σ_t·ε. */
export function dataPrediction(type: 'epsilon' | 'sample' | 'v_prediction', sigma: number): { ax: number; am: number } {
  const { alpha, sigmaT } = alphaSigma(sigma);
  switch (type) {
    case 'epsilon':
      return { ax: 1 / alpha, am: -sigmaT / alpha }; // (x − σ_t·ε)/α_t
    case 'sample':
      return { ax: 0, am: 1 };
    case 'v_prediction':
      return { ax: alpha, am: -sigmaT }; // α_t·x − σ_t·v (Salimans & Ho 2022)
  }
}

/** (ex, em) with ε̂ = ex·x_t + em·m for the prediction type (UniPC with predict_x0 = false). */
export function noisePrediction(
  type: 'epsilon' | 'sample' | 'v_prediction',
  sigma: number,
): { ex: number; em: number } {
  const { alpha, sigmaT } = alphaSigma(sigma);
  switch (type) {
    case 'epsilon':
      return { ex: 0, em: 1 };
    case 'sample':
      return { ex: 1 / sigmaT, em: -alpha / sigmaT }; // (x − α_t·x̂_0)/σ_t
    case 'v_prediction':
      return { ex: sigmaT, em: alpha }; // α_t·v + σ_t·x
  }
}

/** A linear combination of history tensors, as coefficients: D = Σ c_j·m_j (m_0 the newest). Lets the
 * solvers write D1 = (m0 − m1)/r0 as in the papers and hand the kernel one coefficient per tensor. */
export type Combo = number[];
export const combo = {
  unit: (j: number, k: number): Combo => Array.from({ length: k }, (_, i) => (i === j ? 1 : 0)),
  add: (a: Combo, b: Combo): Combo => a.map((v, i) => v + b[i]),
  sub: (a: Combo, b: Combo): Combo => a.map((v, i) => v - b[i]),
  scale: (a: Combo, s: number): Combo => a.map((v) => v * s),
};

/** v if it is a boolean, else INVALID_ARGUMENT naming `what`. */
export function flag(who: string, what: string, v: unknown): boolean {
  if (typeof v !== 'boolean')
    throw new DdpmError('INVALID_ARGUMENT', `${who}: ${what} must be true or false, found ${show(v)}`);
  return v;
}
