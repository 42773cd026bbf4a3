// Optimizer kernels over one flat parameter block: parameters, gradients and both Adam moments share one
// layout, so each update is a single elementwise pass.
import { sliceStart, sliceEnd, CHUNK, madd } from './shared';
import { reduce_f32, RED_SQ_DEV } from './math';

/**
 * One AdamW step (Loshchilov & Hutter 2019) in the order of torch.optim.AdamW (single-tensor path):
 *   p ← p·(1 − lr·wd)                          decay      = 1 − lr·wd
 *   m ← lerp(m, g, 1 − β₁)                     w1         = 1 − β₁
 *   v ← v·β₂ + ((1 − β₂)·g)·g                  w2         = 1 − β₂
 *   p ← p + (−step_size·m) / (√v / bc2_sqrt + ε)   step_size = lr / (1 − β₁ᵗ), bc2_sqrt = √(1 − β₂ᵗ)
 * The scalars are computed in float64 by the caller. torch's lerp is m + w·(g − m) for w < 0.5 and
 * g − (g − m)·(1 − w) otherwise; both are followed here.   p, g, m, v: (n); p, m, v updated in place.
 */
export function adamw_f32(
  n: i32, decay: f32, w1: f32, beta2: f32, w2: f32, step_size: f32, bc2_sqrt: f32, eps: f32,
  p: usize, g: usize, m: usize, v: usize,
  ith: i32, nth: i32,
): void {
  const lo = sliceStart(n, ith, nth, CHUNK);
  const hi = sliceEnd(n, ith, nth, CHUNK);
  // lerp(m, g, w) = base + wt·(g − m) with (base, wt) = (m, w) or (g, −(1 − w))
  const fromEnd = w1 >= 0.5;
  const wt: f32 = fromEnd ? -(1 - w1) : w1;
  const pick = i32x4.splat(fromEnd ? -1 : 0); // all ones: take g as the base
  const vdecay = f32x4.splat(decay);
  const vwt = f32x4.splat(wt);
  const vb2 = f32x4.splat(beta2);
  const vw2 = f32x4.splat(w2);
  const vneg = f32x4.splat(-step_size);
  const vbc2 = f32x4.splat(bc2_sqrt);
  const veps = f32x4.splat(eps);
  let i = lo;
  for (; i + 4 <= hi; i += 4) {
    const o = <usize>i << 2;
    const gi = v128.load(g + o);
    let mi = v128.load(m + o);
    let vi = v128.load(v + o);
    const pi = f32x4.mul(v128.load(p + o), vdecay);
    mi = madd(vwt, f32x4.sub(gi, mi), v128.bitselect(gi, mi, pick));
    vi = madd(f32x4.mul(vw2, gi), gi, f32x4.mul(vi, vb2));
    const denom = f32x4.add(f32x4.div(f32x4.sqrt(vi), vbc2), veps);
    v128.store(m + o, mi);
    v128.store(v + o, vi);
    v128.store(p + o, f32x4.add(pi, f32x4.div(f32x4.mul(vneg, mi), denom)));
  }
  for (; i < hi; i++) {
    const o = <usize>i << 2;
    const gi = load<f32>(g + o);
    let mi = load<f32>(m + o);
    let vi = load<f32>(v + o);
    const pi = load<f32>(p + o) * decay;
    mi = wt * (gi - mi) + (fromEnd ? gi : mi);
    vi = (w2 * gi) * gi + vi * beta2;
    const denom = sqrt<f32>(vi) / bc2_sqrt + eps;
    store<f32>(m + o, mi);
    store<f32>(v + o, vi);
    store<f32>(p + o, pi + (-step_size * mi) / denom);
  }
}

/** Elements per block of the gradient-norm reduction; fixed, so the sum's order ignores the thread count. */
export const NORM_BLOCK: i32 = 4096;

/**
 * partials[b] = Σ g[i]² over block b = [b·4096, (b+1)·4096) ∩ [0, n), as float64; the caller adds the
 * partials in block order.   g: (n); partials: (⌈n/4096⌉) float64 (8 bytes each).
 */
export function sum_squares_blocks_f32(n: i32, g: usize, partials: usize, ith: i32, nth: i32): void {
  const blocks = (n + NORM_BLOCK - 1) / NORM_BLOCK;
  const lo = sliceStart(blocks, ith, nth, 1);
  const hi = sliceEnd(blocks, ith, nth, 1);
  for (let b = lo; b < hi; b++) {
    const start = b * NORM_BLOCK;
    const len = min(NORM_BLOCK, n - start);
    store<f64>(partials + (<usize>b << 3), reduce_f32(RED_SQ_DEV, g + (<usize>start << 2), 0, 0, len));
  }
}

/**
 * ema ← ema − (1 − decay)·(ema − p), the form of diffusers' EMAModel.step (= decay·ema + (1 − decay)·p).
 * ema, p: (n); ema updated in place.
 */
export function ema_update_f32(n: i32, one_minus_decay: f32, ema: usize, p: usize, ith: i32, nth: i32): void {
  const lo = sliceStart(n, ith, nth, CHUNK);
  const hi = sliceEnd(n, ith, nth, CHUNK);
  const vw = f32x4.splat(one_minus_decay);
  let i = lo;
  for (; i + 4 <= hi; i += 4) {
    const o = <usize>i << 2;
    const e = v128.load(ema + o);
    v128.store(ema + o, f32x4.sub(e, f32x4.mul(vw, f32x4.sub(e, v128.load(p + o)))));
  }
  for (; i < hi; i++) {
    const o = <usize>i << 2;
    const e = load<f32>(ema + o);
    store<f32>(ema + o, e - one_minus_decay * (e - load<f32>(p + o)));
  }
}
