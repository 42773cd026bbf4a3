// A sampling chain x_T → x_0 that can stop after any step and resume with bit-identical results.
//
// Everything random is addressed, never drawn from a stateful generator: x_T is Philox at (seed, stream T,
// offset) — T is no inference timestep, so it never collides with a step's noise — and the noise of the
// step at timestep t is (seed, stream t, offset). The state is therefore (x_t, step index, seed, offset,
// scheduler config and timesteps, DDIM's η): toJSON() writes it, SamplingChain.resume() reads it back.
import { DdpmError } from '../errors.js';
import type { Engine } from '../engine/engine.js';
import type { Tensor } from '../engine/memory.js';
import { randn, splitU64, type U64 } from '../kernels/gaussian.js';
import { base64ToBytes } from '../engine/runtime.js';
import { DDIMScheduler } from './ddim.js';
import { DDPMScheduler } from './ddpm.js';
import { LIMITS } from '../limits.js';
import { Checker, hasOwn, product, show } from '../validate.js';

export const SAMPLING_STATE_FORMAT = 'ddpm-wasm.sampling-chain';
export const SAMPLING_STATE_VERSION = 1;

/** The JSON form of a chain. `sample` is x_t as base64 of little-endian float32 (exact). */
export interface SamplingState {
  format: typeof SAMPLING_STATE_FORMAT;
  version: number;
  scheduler: Record<string, unknown>; // toConfig(): diffusers' keys and _class_name
  timesteps: number[];
  numInferenceSteps: number;
  stepIndex: number; // steps done: the next one is at timesteps[stepIndex]
  seed: string; // decimal u64
  offset: string; // decimal u64
  eta: number;
  useClippedModelOutput: boolean;
  shape: number[];
  sample: string;
}

export interface SamplingChainOptions {
  /** (N, C, H, W) or any [N, …]. */
  shape: readonly number[];
  numInferenceSteps: number;
  seed: U64;
  /** Element offset of sample 0 in every stream; chain n of a larger batch: n·D. Default 0. */
  offset?: U64;
  /** DDIM only. */
  eta?: number;
  useClippedModelOutput?: boolean;
}

type Scheduler = DDPMScheduler | DDIMScheduler;

/** The model as the chain calls it: ε (or x_0, v) for x_t at timestep t, a tensor of sample's size (2× for
 * learned variance). */
export type SamplingModel = (sample: Tensor, t: number) => Tensor | Promise<Tensor>;

export class SamplingChain {
  /** x_t, updated in place by every step. */
  readonly sample: Tensor;
  /** The last step's x̂_0. */
  readonly predOriginalSample: Tensor;
  private constructor(
    readonly engine: Engine,
    readonly scheduler: Scheduler,
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

  /**
   * Draws x_T ~ N(0, I) at (seed, stream T, offset). The chain works on its own copy of the scheduler
   * (same config, its own timesteps and buffers): chains started from one scheduler do not change each
   * other's steps, and the scheduler passed in is left as it was.
   */
  static start(engine: Engine, schedulerIn: Scheduler, o: SamplingChainOptions): SamplingChain {
    const scheduler = ownCopy(schedulerIn, engine);
    scheduler.setTimesteps(o.numInferenceSteps);
    const seed = toU64('SamplingChain: seed', o.seed);
    const offset = toU64('SamplingChain: offset', o.offset ?? 0);
    const x = engine.alloc(o.shape, 'x_t');
    if (x.size === 0) throw new DdpmError('SHAPE_MISMATCH', `SamplingChain: shape [${o.shape}] holds no values`);
    randn(engine, x, x.size, { seed, stream: scheduler.numTrainTimesteps, offset });
    return new SamplingChain(engine, scheduler, x, 0, seed, offset, o.eta ?? 0, o.useClippedModelOutput ?? false);
  }

  /** Rebuilds a chain from toJSON()'s state; validates the format and every field first. */
  static resume(engine: Engine, state: SamplingState): SamplingChain {
    const s = state as unknown as Record<string, unknown>;
    const v = new Checker('sampling state');
    if (s === null || typeof s !== 'object' || Array.isArray(s) || s.format !== SAMPLING_STATE_FORMAT) {
      throw new DdpmError('FORMAT', `sampling state: format must be "${SAMPLING_STATE_FORMAT}", found ${show(s !== null && typeof s === 'object' ? s.format : s)}`);
    }
    if (s.version !== SAMPLING_STATE_VERSION) {
      throw new DdpmError('FORMAT', `sampling state: version ${show(s.version)} is not supported (this library reads version ${SAMPLING_STATE_VERSION})`);
    }
    checkStateFields(v, s);
    const cfg = state.scheduler;
    const cls = hasOwn(cfg, '_class_name') ? cfg._class_name : undefined;
    const scheduler = cls === 'DDPMScheduler' ? DDPMScheduler.fromConfig(cfg, { engine }) : cls === 'DDIMScheduler' ? DDIMScheduler.fromConfig(cfg, { engine }) : null;
    if (!scheduler) throw new DdpmError('FORMAT', `sampling state: scheduler._class_name must be DDPMScheduler or DDIMScheduler, found ${show(cls)}`);
    v.int('numInferenceSteps', state.numInferenceSteps, 1, scheduler.numTrainTimesteps);
    scheduler.setTimesteps(state.numInferenceSteps);
    if (state.timesteps.length !== scheduler.timesteps.length || state.timesteps.some((t, i) => t !== scheduler.timesteps[i])) {
      throw new DdpmError('FORMAT', `sampling state: its timesteps ${show(state.timesteps)} differ from the scheduler's ${show(scheduler.timesteps)} for ${state.numInferenceSteps} steps`);
    }
    if (!Number.isInteger(state.stepIndex) || state.stepIndex < 0 || state.stepIndex > state.timesteps.length) {
      throw new DdpmError('FORMAT', `sampling state: stepIndex must be an integer in [0, ${state.timesteps.length}], found ${state.stepIndex}`);
    }
    // sizes from arithmetic before anything is allocated or decoded: x_t and x̂_0 in Wasm memory, the
    // decoded bytes outside it
    const size = product(state.shape);
    engine.arena.plan(2 * (4 * size + 64), `sampling state: x_t of shape [${state.shape}]`);
    if (state.sample.length !== 4 * Math.ceil((4 * size) / 3)) {
      throw new DdpmError('FORMAT', `sampling state: sample has ${Math.floor((state.sample.length * 3) / 4)} bytes, shape [${state.shape}] needs ${4 * size} (${state.sample.length} base64 characters, ${4 * Math.ceil((4 * size) / 3)} expected)`);
    }
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(state.sample)) throw new DdpmError('FORMAT', 'sampling state: sample is not base64');
    const x = engine.alloc(state.shape, 'x_t');
    const bytes = base64ToBytes(state.sample);
    if (bytes.length !== x.size * 4) {
      throw new DdpmError('FORMAT', `sampling state: sample has ${bytes.length} bytes, shape [${state.shape}] needs ${x.size * 4}`);
    }
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
    const view = engine.view(x);
    for (let i = 0; i < x.size; i++) view[i] = dv.getFloat32(4 * i, true);
    const seed = toU64('sampling state: seed', parseU64('seed', state.seed));
    const offset = toU64('sampling state: offset', parseU64('offset', state.offset));
    return new SamplingChain(engine, scheduler, x, state.stepIndex, seed, offset, state.eta, state.useClippedModelOutput);
  }

  /** Steps done so far. */
  get stepIndex(): number {
    return this.index;
  }

  get done(): boolean {
    return this.index >= this.scheduler.timesteps.length;
  }

  /** The timestep of the next step. */
  get timestep(): number {
    if (this.done) throw new DdpmError('INVALID_ARGUMENT', 'SamplingChain: the chain is finished');
    return this.scheduler.timesteps[this.index];
  }

  /**
   * One step with the model's output for x_t at `timestep`; x_t is replaced by x_{t−1}. A model output
   * with NaN or ±Inf is a NON_FINITE error naming the step, and leaves the chain (x_t, step index) as it
   * was, so it can still be saved or resumed.
   */
  step(modelOutput: Tensor): void {
    const t = this.timestep;
    const m = this.engine.view(modelOutput);
    let bad = 0, first = -1;
    for (let i = 0; i < m.length; i++) {
      if (!Number.isFinite(m[i])) {
        if (bad++ === 0) first = i;
      }
    }
    if (bad > 0) {
      throw new DdpmError('NON_FINITE', `SamplingChain: the model output (tensor ${modelOutput.name}) at step ${this.index} (t = ${t}) has ${bad} non-finite values, the first at element ${first} (${m[first]}); x_t is unchanged`);
    }
    const out = { prevSample: this.sample, predOriginalSample: this.predOriginalSample };
    const opts = { seed: this.seed, offset: this.offset, out };
    if (this.scheduler instanceof DDIMScheduler) this.scheduler.step(modelOutput, t, this.sample, { ...opts, eta: this.eta, useClippedModelOutput: this.useClippedModelOutput });
    else this.scheduler.step(modelOutput, t, this.sample, opts);
    this.index++;
  }

  /** Runs up to `maxSteps` more steps (default: to the end), checking `signal` between steps. */
  async run(model: SamplingModel, o: { maxSteps?: number; signal?: AbortSignal; onStep?: (index: number, t: number) => void } = {}): Promise<Tensor> {
    let left = o.maxSteps ?? Infinity;
    while (!this.done && left-- > 0) {
      o.signal?.throwIfAborted();
      const t = this.timestep;
      // A synchronous model's output is used before anything else can run: with an await in between,
      // another chain on the same model could overwrite its (shared) output buffer first.
      const r = model(this.sample, t);
      this.step(isPromise(r) ? await r : r);
      if (!isPromise(r)) await undefined; // still yield between steps (signals, other chains)
      o.onStep?.(this.index, t);
    }
    return this.sample;
  }

  toJSON(): SamplingState {
    const view = this.engine.view(this.sample);
    const bytes = new Uint8Array(view.length * 4);
    const dv = new DataView(bytes.buffer);
    for (let i = 0; i < view.length; i++) dv.setFloat32(4 * i, view[i], true);
    return {
      format: SAMPLING_STATE_FORMAT,
      version: SAMPLING_STATE_VERSION,
      scheduler: this.scheduler.toConfig(),
      timesteps: [...this.scheduler.timesteps],
      numInferenceSteps: this.scheduler.timesteps.length,
      stepIndex: this.index,
      seed: this.seed.toString(),
      offset: this.offset.toString(),
      eta: this.eta,
      useClippedModelOutput: this.useClippedModelOutput,
      shape: [...this.sample.shape],
      sample: bytesToBase64(bytes),
    };
  }
}

function isPromise<T>(r: T | Promise<T>): r is Promise<T> {
  return typeof (r as { then?: unknown })?.then === 'function';
}

/**
 * A fresh scheduler of the same class and config, on `engine` (its timesteps, buffers and any solver
 * history are the chain's own): every scheduler class has a static fromConfig(toConfig()).
 */
function ownCopy<S extends Scheduler>(s: S, engine: Engine): S {
  const cls = s.constructor as unknown as { fromConfig?: (json: unknown, extra: { engine: Engine }) => S };
  if (typeof cls.fromConfig !== 'function') throw new DdpmError('UNSUPPORTED', `SamplingChain: ${s.constructor.name} has no static fromConfig to copy it from`);
  return cls.fromConfig(s.toConfig(), { engine });
}

/** The state's fields by type and size (the scheduler config is checked by its fromConfig). */
function checkStateFields(v: Checker, s: Record<string, unknown>): void {
  v.object('scheduler', s.scheduler);
  v.array('timesteps', s.timesteps, 1, LIMITS.maxTrainTimesteps).forEach((t, i) => v.int(`timesteps[${i}]`, t, 0, LIMITS.maxTrainTimesteps));
  v.int('numInferenceSteps', s.numInferenceSteps, 1, LIMITS.maxTrainTimesteps);
  v.int('stepIndex', s.stepIndex, 0, (s.timesteps as unknown[]).length);
  const shape = v.intArray('shape', s.shape, { minLength: 1, maxLength: 8, min: 1, max: LIMITS.maxTensorElements });
  if (product(shape, LIMITS.maxTensorElements) > LIMITS.maxTensorElements) v.fail('shape', `at most ${LIMITS.maxTensorElements} elements in all`, shape, 'OUT_OF_MEMORY');
  if (typeof s.sample !== 'string') v.fail('sample', 'a base64 string', s.sample);
  v.number('eta', s.eta, { min: 0 });
  v.bool('useClippedModelOutput', s.useClippedModelOutput);
}

function toU64(what: string, v: U64): bigint {
  const [lo, hi] = splitU64(what, v);
  return (BigInt(hi) << 32n) | BigInt(lo);
}

function parseU64(what: string, s: unknown): bigint {
  if (typeof s !== 'string' || !/^[0-9]{1,20}$/.test(s)) throw new DdpmError('FORMAT', `sampling state: ${what} must be a decimal string, found ${JSON.stringify(s)}`);
  return BigInt(s);
}

function bytesToBase64(bytes: Uint8Array): string {
  let bin = '';
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(bin);
}
