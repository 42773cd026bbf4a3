// A sampling chain x_T → x_0 that can stop after any step and resume with bit-identical results, for every
// scheduler: DDPM, DDIM and the few-step solvers (DPM-Solver++, UniPC, Euler, Euler ancestral, Heun).
//
// Everything random is addressed, never drawn from a stateful generator: x_T = initNoiseSigma·z with z
// Philox at (seed, stream T, offset) — T is no inference timestep, so it never collides with a step's
// noise; DDPM and DDIM draw the noise of the step at timestep t from stream t, the solvers from stream
// T + 1 + step index (solver.ts). A step of the chain is one model call: Heun's two calls per step are two
// entries of its `timesteps`. The state is therefore (x_t, model calls done, seed, offset, scheduler config
// and timesteps, DDIM's η, and the solver's history — past x̂_0's, UniPC's last sample, Heun's pending
// derivative): toJSON() writes it, SamplingChain.resume() reads it back.
//
// State versions: 2 (this one) adds `solver` (null for DDPM and DDIM); version-1 states (DDPM and DDIM
// only) still resume.
import { DdpmError } from '../errors.js';
import type { Engine } from '../engine/engine.js';
import type { Tensor } from '../engine/memory.js';
import { randn, splitU64, type U64 } from '../kernels/gaussian.js';
import { solverCombine } from '../kernels/solver.js';
import { DDIMScheduler } from './ddim.js';
import { schedulerFromConfig, type AnyScheduler } from './samplers.js';
import { SolverBase, base64ToTensor, describe, tensorToBase64, type SolverState } from './solver.js';
import { LIMITS } from '../limits.js';
import { product, show } from '../validate.js';

export const SAMPLING_STATE_FORMAT = 'ddpm-wasm.sampling-chain';
export const SAMPLING_STATE_VERSION = 2;
/** Versions resume() reads. */
export const SAMPLING_STATE_VERSIONS: readonly number[] = [1, 2];

/** The JSON form of a chain. `sample` is x_t as base64 of little-endian float32 (exact). */
export interface SamplingState {
  format: typeof SAMPLING_STATE_FORMAT;
  version: number;
  scheduler: Record<string, unknown>; // toConfig(): diffusers' keys and _class_name
  timesteps: number[];
  /** The setTimesteps count (Heun: n steps are 2n − 1 timesteps). */
  numInferenceSteps: number;
  stepIndex: number; // model calls done: the next one is at timesteps[stepIndex]
  seed: string; // decimal u64
  offset: string; // decimal u64
  eta: number;
  useClippedModelOutput: boolean;
  shape: number[];
  sample: string;
  /** The solver's history (version 2; null for DDPM and DDIM). */
  solver?: SolverState | null;
}

export interface SamplingChainOptions {
  /** (N, C, H, W) or any [N, …]. */
  shape: readonly number[];
  /** setTimesteps' count: model calls for every scheduler but Heun (2n − 1; see stepsForModelCalls). */
  numInferenceSteps: number;
  seed: U64;
  /** Element offset of sample 0 in every stream; chain n of a larger batch: n·D. Default 0. */
  offset?: U64;
  /** DDIM only. */
  eta?: number;
  useClippedModelOutput?: boolean;
}

/** The model as the chain calls it: ε (or x_0, v) for the model input at timestep t (fractional for Euler
 * and Heun), a tensor of sample's size (2× for learned variance). */
export type SamplingModel = (modelInput: Tensor, t: number) => Tensor | Promise<Tensor>;

export class SamplingChain {
  /** x_t, updated in place by every step. */
  readonly sample: Tensor;
  /** The last step's x̂_0. */
  readonly predOriginalSample: Tensor;
  private constructor(
    readonly engine: Engine,
    readonly scheduler: AnyScheduler,
    sample: Tensor,
    private index: number,
    readonly seed: bigint,
    readonly offset: bigint,
    readonly eta: number,
    readonly useClippedModelOutput: boolean,
  ) {
    this.sample = sample;
    this.predOriginalSample = engine.alloc(sample.shape, 'predOriginalSample');
  }

  /** Sets the scheduler's timesteps and draws x_T = initNoiseSigma·z, z ~ N(0, I) at (seed, stream T, offset). */
  static start(engine: Engine, schedulerIn: AnyScheduler, o: SamplingChainOptions): SamplingChain {
    // The chain steps its own copy (same class and config; its own timesteps, buffers and solver
    // history): chains started from one scheduler do not change each other's steps (one asked for 10
    // steps used to run 20). The scheduler passed in still gets the timesteps set, for callers that
    // read them (progress, initNoiseSigma), but the chain never reads it again.
    schedulerIn.engine = engine;
    schedulerIn.setTimesteps(o.numInferenceSteps);
    const scheduler = schedulerFromConfig(schedulerIn.toConfig(), { engine });
    scheduler.setTimesteps(o.numInferenceSteps);
    const seed = toU64('SamplingChain: seed', o.seed);
    const offset = toU64('SamplingChain: offset', o.offset ?? 0);
    const x = engine.alloc(o.shape, 'x_t');
    if (x.size === 0) throw new DdpmError('SHAPE_MISMATCH', `SamplingChain: shape [${o.shape}] holds no values`);
    randn(engine, x, x.size, { seed, stream: scheduler.numTrainTimesteps, offset });
    // diffusers: latents · init_noise_sigma in float32 (one rounding of the exact product, as here).
    if (scheduler.initNoiseSigma !== 1)
      solverCombine(engine, { N: 1, D: x.size, out: x, x: { t: x, coef: scheduler.initNoiseSigma } });
    return new SamplingChain(engine, scheduler, x, 0, seed, offset, o.eta ?? 0, o.useClippedModelOutput ?? false);
  }

  /**
   * Rebuilds a chain from toJSON()'s state (version 1 or 2) on any engine, with a fresh scheduler built
   * from its `_class_name`. Every field is validated first: anything malformed is a DdpmError (FORMAT, or
   * the scheduler's own code for a config it refuses), never a TypeError.
   */
  static resume(engine: Engine, state: SamplingState): SamplingChain {
    try {
      return SamplingChain.resumeChecked(engine, state);
    } catch (e) {
      if (e instanceof DdpmError) throw e;
      throw new DdpmError('FORMAT', `sampling state: malformed (${(e as Error)?.message ?? String(e)})`);
    }
  }

  private static resumeChecked(engine: Engine, state: SamplingState): SamplingChain {
    const s = state as unknown as Record<string, unknown>;
    if (s === null || typeof s !== 'object' || Array.isArray(s) || s.format !== SAMPLING_STATE_FORMAT) {
      throw new DdpmError(
        'FORMAT',
        `sampling state: format must be "${SAMPLING_STATE_FORMAT}", found ${JSON.stringify(s === null || typeof s !== 'object' ? s : s.format)}`,
      );
    }
    if (!SAMPLING_STATE_VERSIONS.includes(s.version as number)) {
      throw new DdpmError(
        'FORMAT',
        `sampling state: version ${show(s.version)} is not supported (this library reads versions ${SAMPLING_STATE_VERSIONS.join(', ')})`,
      );
    }
    const cfg = s.scheduler;
    if (cfg === null || typeof cfg !== 'object' || Array.isArray(cfg))
      throw new DdpmError('FORMAT', `sampling state: scheduler must be a config object, found ${describe(cfg)}`);
    const cls = (cfg as Record<string, unknown>)._class_name;
    if (s.version === 1 && cls !== 'DDPMScheduler' && cls !== 'DDIMScheduler') {
      throw new DdpmError(
        'FORMAT',
        `sampling state: version 1 states hold DDPMScheduler or DDIMScheduler, found ${show(cls)}`,
      );
    }
    const ts = s.timesteps;
    // lengths and sizes capped before anything is looked at element by element or allocated
    if (
      !Array.isArray(ts) ||
      ts.length > LIMITS.maxTrainTimesteps ||
      !ts.every((t) => typeof t === 'number' && Number.isFinite(t))
    ) {
      throw new DdpmError(
        'FORMAT',
        `sampling state: timesteps must be an array of at most ${LIMITS.maxTrainTimesteps} numbers, found ${show(ts)}`,
      );
    }
    const n = s.numInferenceSteps;
    if (!Number.isInteger(n) || (n as number) < 1)
      throw new DdpmError('FORMAT', `sampling state: numInferenceSteps must be an integer >= 1, found ${describe(n)}`);
    const scheduler = schedulerFromConfig(cfg, { engine });
    scheduler.setTimesteps(n as number);
    if (JSON.stringify(scheduler.timesteps) !== JSON.stringify(ts)) {
      throw new DdpmError(
        'FORMAT',
        `sampling state: its timesteps ${show(ts)} differ from the scheduler's ${show(scheduler.timesteps)} for ${n} steps`,
      );
    }
    const stepIndex = s.stepIndex;
    if (!Number.isInteger(stepIndex) || (stepIndex as number) < 0 || (stepIndex as number) > ts.length) {
      throw new DdpmError(
        'FORMAT',
        `sampling state: stepIndex must be an integer in [0, ${ts.length}], found ${describe(stepIndex)}`,
      );
    }
    const shape = s.shape;
    if (
      !Array.isArray(shape) ||
      shape.length < 1 ||
      shape.length > 8 ||
      !shape.every((d) => Number.isInteger(d) && d >= 1)
    ) {
      throw new DdpmError(
        'FORMAT',
        `sampling state: shape must be an array of 1 to 8 integers >= 1, found ${show(shape)}`,
      );
    }
    // x_t and x̂_0 planned against the memory limit, and the sample's length checked, before anything is
    // allocated or decoded
    const size = product(shape as number[], LIMITS.maxTensorElements);
    if (size > LIMITS.maxTensorElements)
      throw new DdpmError(
        'OUT_OF_MEMORY',
        `sampling state: shape ${show(shape)} has more than ${LIMITS.maxTensorElements} elements`,
      );
    engine.arena.plan(2 * (4 * size + 64), `sampling state: x_t of shape [${shape}]`);
    if (typeof s.sample === 'string' && s.sample.length !== 4 * Math.ceil((4 * size) / 3)) {
      throw new DdpmError(
        'FORMAT',
        `sampling state: sample has ${Math.floor((s.sample.length * 3) / 4)} bytes, shape [${shape}] needs ${4 * size} (${s.sample.length} base64 characters, ${4 * Math.ceil((4 * size) / 3)} expected)`,
      );
    }
    if (typeof s.sample !== 'string')
      throw new DdpmError('FORMAT', `sampling state: sample must be a base64 string, found ${describe(s.sample)}`);
    if (typeof s.eta !== 'number' || !Number.isFinite(s.eta) || typeof s.useClippedModelOutput !== 'boolean') {
      throw new DdpmError(
        'FORMAT',
        `sampling state: eta must be a number and useClippedModelOutput a boolean, found ${describe(s.eta)}, ${describe(s.useClippedModelOutput)}`,
      );
    }
    const seed = toU64('sampling state: seed', parseU64('seed', s.seed));
    const offset = toU64('sampling state: offset', parseU64('offset', s.offset));
    const x = engine.alloc(shape as number[], 'x_t');
    const need = x.size * 4;
    try {
      base64ToTensor(engine, s.sample, x, 'sampling state: sample');
    } catch (e) {
      if (e instanceof DdpmError && /bytes, expected/.test(e.message)) {
        throw new DdpmError(
          'FORMAT',
          `sampling state: sample has ${e.message.match(/(\d+) bytes/)?.[1]} bytes, shape [${shape}] needs ${need}`,
        );
      }
      throw e;
    }
    const solver = s.solver ?? null;
    if (scheduler instanceof SolverBase) {
      if (solver === null) {
        if (stepIndex !== 0)
          throw new DdpmError(
            'FORMAT',
            `sampling state: a ${String(cls)} chain ${stepIndex} steps in needs its solver state (history), found none`,
          );
      } else {
        scheduler.loadState(solver, x.size);
        const si = scheduler.stepIndex;
        if (si !== null && si !== stepIndex)
          throw new DdpmError('FORMAT', `sampling state: solver.stepIndex ${si} differs from stepIndex ${stepIndex}`);
      }
    } else if (solver !== null) {
      throw new DdpmError('FORMAT', `sampling state: ${String(cls)} has no solver state, found ${describe(solver)}`);
    }
    return new SamplingChain(engine, scheduler, x, stepIndex as number, seed, offset, s.eta, s.useClippedModelOutput);
  }

  /** Model calls done so far. */
  get stepIndex(): number {
    return this.index;
  }

  get done(): boolean {
    return this.index >= this.scheduler.timesteps.length;
  }

  /** The timestep of the next model call. */
  get timestep(): number {
    if (this.done) throw new DdpmError('INVALID_ARGUMENT', 'SamplingChain: the chain is finished');
    return this.scheduler.timesteps[this.index];
  }

  /** What the model sees for the next call: scaleModelInput(x_t, t) (x_t itself for DDPM, DDIM,
   * DPM-Solver++ and UniPC; x̃/sqrt(σ² + 1) for Euler and Heun). */
  modelInput(): Tensor {
    return this.scheduler.scaleModelInput(this.sample, this.timestep);
  }

  /**
   * One step with the model's output for modelInput() at `timestep`; x_t is replaced by the next sample. A
   * model output with NaN or ±Inf is a NON_FINITE error naming the step, and leaves the chain (x_t, step
   * index, history) as it was, so it can still be saved or resumed.
   */
  step(modelOutput: Tensor): void {
    const t = this.timestep;
    const m = this.engine.view(modelOutput);
    let bad = 0,
      first = -1;
    for (let i = 0; i < m.length; i++) {
      if (!Number.isFinite(m[i])) {
        if (bad++ === 0) first = i;
      }
    }
    if (bad > 0) {
      throw new DdpmError(
        'NON_FINITE',
        `SamplingChain: the model output (tensor ${modelOutput.name}) at step ${this.index} (t = ${t}) has ${bad} non-finite values, the first at element ${first} (${m[first]}); x_t is unchanged`,
      );
    }
    const out = { prevSample: this.sample, predOriginalSample: this.predOriginalSample };
    const opts = { seed: this.seed, offset: this.offset, out };
    const s = this.scheduler;
    if (s instanceof DDIMScheduler)
      s.step(modelOutput, t, this.sample, {
        ...opts,
        eta: this.eta,
        useClippedModelOutput: this.useClippedModelOutput,
      });
    else s.step(modelOutput, t, this.sample, opts);
    this.index++;
  }

  /** Runs up to `maxSteps` more model calls (default: to the end), checking `signal` between them. */
  async run(
    model: SamplingModel,
    o: { maxSteps?: number; signal?: AbortSignal; onStep?: (index: number, t: number) => void } = {},
  ): Promise<Tensor> {
    let left = o.maxSteps ?? Infinity;
    while (!this.done && left-- > 0) {
      o.signal?.throwIfAborted();
      const t = this.timestep;
      // A synchronous model's output is stepped on before anything else can run: with an await in between,
      // another chain on the same model could overwrite its (shared) output buffer first.
      const r = model(this.modelInput(), t);
      this.step(isPromise(r) ? await r : r);
      if (!isPromise(r)) await undefined; // still yield between steps (signals, other chains)
      o.onStep?.(this.index, t);
    }
    return this.sample;
  }

  toJSON(): SamplingState {
    const s = this.scheduler;
    return {
      format: SAMPLING_STATE_FORMAT,
      version: SAMPLING_STATE_VERSION,
      scheduler: s.toConfig(),
      timesteps: [...s.timesteps],
      numInferenceSteps: s.numInferenceSteps ?? s.timesteps.length,
      stepIndex: this.index,
      seed: this.seed.toString(),
      offset: this.offset.toString(),
      eta: this.eta,
      useClippedModelOutput: this.useClippedModelOutput,
      shape: [...this.sample.shape],
      sample: tensorToBase64(this.engine, this.sample),
      solver: s instanceof SolverBase ? s.saveState() : null,
    };
  }
}

function isPromise<T>(r: T | Promise<T>): r is Promise<T> {
  return typeof (r as { then?: unknown })?.then === 'function';
}

function toU64(what: string, v: U64): bigint {
  const [lo, hi] = splitU64(what, v);
  return (BigInt(hi) << 32n) | BigInt(lo);
}

function parseU64(what: string, s: unknown): bigint {
  if (typeof s !== 'string' || !/^[0-9]{1,20}$/.test(s))
    throw new DdpmError('FORMAT', `sampling state: ${what} must be a decimal string, found ${JSON.stringify(s)}`);
  return BigInt(s);
}
