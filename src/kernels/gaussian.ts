// Typed wrappers for assembly/gaussian.ts: Philox4x32-10, normal samples, q_sample and the fused reverse
// step. Random numbers are addressed, not drawn: (seed, stream, element index) → value; see the header of
// assembly/gaussian.ts for the exact key/counter layout.
import { DdpmError } from '../errors.js';
import type { Engine } from '../engine/engine.js';
import type { Tensor } from '../engine/memory.js';
import { KERNEL, VAR_FIXED, VAR_LEARNED, VAR_LEARNED_RANGE } from '../engine/wasm-interface.generated.js';
import { splitU64, type U64 } from '../random.js';
import { checkInt, checkScalar, checkTensor } from './check.js';

// U64 and splitU64 live in src/random.ts; re-exported so `kernels.splitU64` and existing imports keep working.
export { splitU64, type U64 } from '../random.js';

/** (seedLo, seedHi, streamLo, streamHi, offLo, offHi): how a RandomAddress reaches a kernel. */
type Address = readonly [number, number, number, number, number, number];
const NO_ADDRESS: Address = [0, 0, 0, 0, 0, 0];

export interface RandomAddress {
  seed: U64;
  /** Default 0. */
  stream?: U64;
  /** Element index of the first value in the logical stream (sample n of a batch: n·D). Default 0. */
  offset?: U64;
}

/** The six kernel arguments (seedLo, seedHi, streamLo, streamHi, offLo, offHi) of a RandomAddress. */
function addressArgs(what: string, r: RandomAddress): Address {
  return [
    ...splitU64(`${what}: seed`, r.seed),
    ...splitU64(`${what}: stream`, r.stream ?? 0),
    ...splitU64(`${what}: offset`, r.offset ?? 0),
  ];
}

/** Raw Philox4x32-10 blocks: out (viewed as u32) [4b … 4b+3] = philox(counter + b, key), b < nBlocks. */
export function philoxFill(
  engine: Engine,
  out: Tensor,
  nBlocks: number,
  counter: readonly number[],
  key: readonly number[],
): void {
  checkInt('philoxFill: nBlocks', nBlocks, 0);
  checkTensor(engine, out, 'philoxFill: out', 4 * nBlocks);
  if (counter.length !== 4 || key.length !== 2) {
    throw new DdpmError(
      'INVALID_ARGUMENT',
      `philoxFill: counter must have 4 words and key 2, found ${counter.length} and ${key.length}`,
    );
  }
  [...counter, ...key].forEach((w, i) =>
    checkInt(`philoxFill: ${i < 4 ? `counter[${i}]` : `key[${i - 4}]`}`, w, 0, 0xffffffff),
  );
  const [c0, c1, c2, c3] = counter;
  const [k0, k1] = key;
  engine.run(KERNEL.philox4x32_fill, [out.ptr, nBlocks, c0, c1, c2, c3, k0, k1]);
}

/** out[0:n] = standard normal samples at elements offset … offset+n−1 of (seed, stream). */
export function randn(engine: Engine, out: Tensor, n: number, r: RandomAddress): void {
  checkInt('randn: n', n, 0);
  checkTensor(engine, out, 'randn: out', n);
  engine.run(KERNEL.randn_f32, [out.ptr, n, ...addressArgs('randn', r)]);
}

export interface QSampleArgs {
  /** Batch size and elements per sample (C·H·W). */
  N: number;
  D: number;
  x0: Tensor; // (N, D)
  /** sqrt(ᾱ_t) per sample, f32. */
  sqrtAlphasCumprod: Tensor; // (N)
  /** sqrt(1 − ᾱ_t) per sample, f32. */
  sqrtOneMinusAlphasCumprod: Tensor; // (N)
  out: Tensor; // (N, D)
  /** Given ε; when absent, ε is drawn from `random`. */
  noise?: Tensor; // (N, D)
  random?: RandomAddress;
  /** Receives the drawn ε (training's target). */
  noiseOut?: Tensor; // (N, D)
}

/** x_t = sqrt(ᾱ_t)·x_0 + sqrt(1 − ᾱ_t)·ε, per-sample coefficients (DDPM eq. 4). */
export function qSample(engine: Engine, a: QSampleArgs): void {
  checkInt('qSample: N', a.N, 0);
  checkInt('qSample: D', a.D, 1);
  const total = a.N * a.D;
  checkTensor(engine, a.x0, 'qSample: x0', total);
  checkTensor(engine, a.sqrtAlphasCumprod, 'qSample: sqrtAlphasCumprod', a.N);
  checkTensor(engine, a.sqrtOneMinusAlphasCumprod, 'qSample: sqrtOneMinusAlphasCumprod', a.N);
  checkTensor(engine, a.out, 'qSample: out', total);
  if (a.noise) checkTensor(engine, a.noise, 'qSample: noise', total);
  else if (!a.random)
    throw new DdpmError('INVALID_ARGUMENT', 'qSample: give either noise or random (seed, stream, offset)');
  if (a.noiseOut) {
    if (a.noise)
      throw new DdpmError(
        'INVALID_ARGUMENT',
        'qSample: noiseOut is only written when the noise is drawn (noise absent)',
      );
    checkTensor(engine, a.noiseOut, 'qSample: noiseOut', total);
  }
  const rand = a.noise ? NO_ADDRESS : addressArgs('qSample', a.random!);
  engine.run(KERNEL.q_sample_f32, [
    a.N,
    a.D,
    a.x0.ptr,
    a.sqrtAlphasCumprod.ptr,
    a.sqrtOneMinusAlphasCumprod.ptr,
    a.noise?.ptr ?? 0,
    a.noiseOut?.ptr ?? 0,
    a.out.ptr,
    ...rand,
  ]);
}

/** Per-step scalars of the fused reverse step (float64 here, rounded to f32 by the call). */
export interface StepCoefficients {
  /** x̂_0 = clamp(ax·x_t + am·m, −clip, clip); clip = Infinity for none. */
  ax: number;
  am: number;
  clip: number;
  /** x_{t−1} = c0·x̂_0 + c1·x_t + c2·m + σ·z */
  c0: number;
  c1: number;
  c2: number;
  /** σ: a number (fixed), or per element from the model output's second half. */
  sigma: number | { learned: 'learned' } | { learned: 'learned_range'; minLog: number; maxLog: number };
}

export interface GaussianStepArgs {
  N: number;
  D: number;
  /** Model output (N, D), or (N, 2D) with the variance channels second when sigma is learned. */
  modelOutput: Tensor;
  sample: Tensor; // (N, D)
  /** May be `sample` itself: each element is read before it is written. */
  prevSample: Tensor; // (N, D)
  predOriginalSample?: Tensor; // (N, D)
  /** z: given, drawn at `random`, or none (no noise term: σ is ignored). */
  noise?: Tensor; // (N, D)
  random?: RandomAddress;
  coef: StepCoefficients;
  /** Values per row of modelOutput: D, or 2D when it carries variance channels (required for learned σ,
   * optional otherwise: a fixed σ then skips them). Default: 2D for learned σ, else D. */
  mStride?: number;
}

/** One fused reverse-diffusion step (DDPM eq. 7 / DDIM eq. 12 through the coefficients). */
export function gaussianStep(engine: Engine, a: GaussianStepArgs): void {
  checkInt('gaussianStep: N', a.N, 0);
  checkInt('gaussianStep: D', a.D, 1);
  const total = a.N * a.D;
  const c = a.coef;
  const learned = typeof c.sigma === 'object';
  const mStride = a.mStride ?? (learned ? 2 * a.D : a.D);
  if (mStride !== 2 * a.D && (learned || mStride !== a.D)) {
    throw new DdpmError(
      'INVALID_ARGUMENT',
      `gaussianStep: mStride must be ${learned ? `2D = ${2 * a.D} for a learned sigma` : `D = ${a.D} or 2D = ${2 * a.D}`}, found ${mStride}`,
    );
  }
  checkTensor(engine, a.modelOutput, 'gaussianStep: modelOutput', a.N * mStride);
  checkTensor(engine, a.sample, 'gaussianStep: sample', total);
  checkTensor(engine, a.prevSample, 'gaussianStep: prevSample', total);
  if (a.predOriginalSample) checkTensor(engine, a.predOriginalSample, 'gaussianStep: predOriginalSample', total);
  if (a.noise) checkTensor(engine, a.noise, 'gaussianStep: noise', total);
  for (const k of ['ax', 'am', 'c0', 'c1', 'c2'] as const) checkScalar(`gaussianStep: ${k}`, c[k]);
  if (!(c.clip > 0))
    throw new DdpmError('INVALID_ARGUMENT', `gaussianStep: clip must be > 0 (Infinity for none), found ${c.clip}`);
  let varMode: number = VAR_FIXED,
    sigma = 0,
    minLog = 0,
    maxLog = 0;
  if (typeof c.sigma === 'number') {
    checkScalar('gaussianStep: sigma', c.sigma);
    sigma = c.sigma;
  } else if (c.sigma.learned === 'learned') varMode = VAR_LEARNED;
  else {
    varMode = VAR_LEARNED_RANGE;
    checkScalar('gaussianStep: minLog', c.sigma.minLog);
    checkScalar('gaussianStep: maxLog', c.sigma.maxLog);
    minLog = c.sigma.minLog;
    maxLog = c.sigma.maxLog;
  }
  const draw = !a.noise && a.random ? 1 : 0;
  const rand = draw ? addressArgs('gaussianStep', a.random!) : NO_ADDRESS;
  engine.run(KERNEL.gaussian_step_f32, [
    a.N,
    a.D,
    mStride,
    a.modelOutput.ptr,
    a.sample.ptr,
    a.noise?.ptr ?? 0,
    a.prevSample.ptr,
    a.predOriginalSample?.ptr ?? 0,
    c.ax,
    c.am,
    c.clip,
    c.c0,
    c.c1,
    c.c2,
    sigma,
    varMode,
    minLog,
    maxLog,
    draw,
    ...rand,
  ]);
}
