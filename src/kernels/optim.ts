// Typed wrappers for assembly/optim.ts: AdamW, the global gradient norm, the EMA of the weights.
import { DdpmError } from '../errors.js';
import type { Engine } from '../engine/engine.js';
import type { Tensor } from '../engine/memory.js';
import { KERNEL, NORM_BLOCK } from '../engine/wasm-interface.generated.js';
import { checkInt, checkScalar, checkTensor } from './check.js';
import { checkNoOverlap } from './layout.js';

export interface AdamwArgs {
  /** (n) parameters, updated in place. */
  params: Tensor;
  /** (n) gradients. */
  grads: Tensor;
  /** (n) first moment, updated in place (zeros before step 1). */
  m: Tensor;
  /** (n) second moment, updated in place (zeros before step 1). */
  v: Tensor;
  n: number;
  /** The step number t ≥ 1 of this update (1 on the first), for the bias corrections. */
  step: number;
  lr: number;
  beta1: number;
  beta2: number;
  /** Added after the square root, as torch does. */
  eps: number;
  /** Decoupled weight decay: p ← p·(1 − lr·weightDecay) before the Adam step. */
  weightDecay: number;
}

function checkRange(what: string, v: number, lo: number, hi: number, hiOpen: boolean): void {
  checkScalar(what, v);
  if (v < lo || (hiOpen ? v >= hi : v > hi)) {
    throw new DdpmError('INVALID_ARGUMENT', `${what} must be in [${lo}, ${hi}${hiOpen ? ')' : ']'}, found ${v}`);
  }
}

/** One step of torch.optim.AdamW (amsgrad=False, maximize=False) over a flat parameter block. */
export function adamw(engine: Engine, a: AdamwArgs): void {
  const op = 'adamw';
  checkInt(`${op}: n`, a.n, 0);
  checkInt(`${op}: step`, a.step, 1);
  checkRange(`${op}: lr`, a.lr, 0, Infinity, false);
  checkRange(`${op}: beta1`, a.beta1, 0, 1, true);
  checkRange(`${op}: beta2`, a.beta2, 0, 1, true);
  checkRange(`${op}: eps`, a.eps, 0, Infinity, false);
  checkRange(`${op}: weightDecay`, a.weightDecay, 0, Infinity, false);
  const spans: [string, Tensor, number][] = [
    ['params', a.params, a.n],
    ['grads', a.grads, a.n],
    ['m', a.m, a.n],
    ['v', a.v, a.n],
  ];
  for (const [what, t] of spans) checkTensor(engine, t, `${op}: ${what} (n)`, a.n);
  spans.forEach((s, i) => checkNoOverlap(op, s, spans.slice(i + 1), false));
  // Scalars in float64, as torch computes them in Python; the kernel receives them rounded to float32.
  const biasCorrection1 = 1 - a.beta1 ** a.step;
  const biasCorrection2 = 1 - a.beta2 ** a.step;
  const stepSize = a.lr / biasCorrection1;
  const bc2Sqrt = Math.sqrt(biasCorrection2);
  const decay = 1 - a.lr * a.weightDecay;
  engine.run(KERNEL.adamw_f32, [
    a.n,
    decay,
    1 - a.beta1,
    a.beta2,
    1 - a.beta2,
    stepSize,
    bc2Sqrt,
    a.eps,
    a.params.ptr,
    a.grads.ptr,
    a.m.ptr,
    a.v.ptr,
  ]);
}

/**
 * ‖grads[0:n]‖₂ with a reduction order that does not depend on the thread count: squares summed in
 * float32 per 4096-element block (one thread per block), the blocks added here in order in float64.
 * NaN or Infinity when a gradient is not finite.
 */
export function gradNorm(engine: Engine, grads: Tensor, n: number): number {
  checkInt('gradNorm: n', n, 0);
  checkTensor(engine, grads, 'gradNorm: grads (n)', n);
  if (n === 0) return 0;
  const blocks = Math.ceil(n / NORM_BLOCK);
  const mark = engine.arena.mark();
  try {
    const partials = engine.alloc(2 * blocks, 'gradNorm partials'); // (blocks) float64, 64-byte aligned
    engine.run(KERNEL.sum_squares_blocks_f32, [n, grads.ptr, partials.ptr]);
    const sums = new Float64Array(engine.memory.buffer, partials.ptr, blocks);
    let total = 0;
    for (let b = 0; b < blocks; b++) total += sums[b];
    return Math.sqrt(total);
  } finally {
    engine.arena.release(mark);
  }
}

export interface EmaArgs {
  /** (n) the moving average, updated in place. */
  ema: Tensor;
  /** (n) the current parameters. */
  params: Tensor;
  n: number;
  /** In [0, 1]: 1 keeps ema unchanged, 0 copies params. */
  decay: number;
}

/** ema ← decay·ema + (1 − decay)·params, computed as diffusers' EMAModel does: ema − (1 − decay)·(ema − params). */
export function emaUpdate(engine: Engine, a: EmaArgs): void {
  const op = 'emaUpdate';
  checkInt(`${op}: n`, a.n, 0);
  checkRange(`${op}: decay`, a.decay, 0, 1, false);
  checkTensor(engine, a.ema, `${op}: ema (n)`, a.n);
  checkTensor(engine, a.params, `${op}: params (n)`, a.n);
  checkNoOverlap(op, ['ema', a.ema, a.n], [['params', a.params, a.n]], false);
  engine.run(KERNEL.ema_update_f32, [a.n, 1 - a.decay, a.ema.ptr, a.params.ptr]);
}
