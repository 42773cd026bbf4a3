// Gaussian kernels: the Philox4x32-10 counter-based generator, standard normal samples, the forward
// process q(x_t | x_0) and the fused reverse (denoising) step.
//
// Random numbers (one definition, used by every kernel here):
//   key     = (seedLo, seedHi)                      the 64-bit seed
//   counter = (b mod 2^32, b div 2^32, streamLo, streamHi)
//   where   e = offset + i is the element's index in its logical stream (offset a 64-bit element index
//           given as offLo, offHi; i the element's index in this call) and b = e div 4 its Philox block.
// Block b gives four u32 x0..x3; Box–Muller turns (x0, x1) into lanes 0, 1 and (x2, x3) into lanes 2, 3;
// element e takes lane e mod 4. So a value depends only on (seed, stream, e): not on the thread count,
// the batch size or how a caller splits a range into calls.
//
// The math is float64 built from IEEE basic operations only (+ − × ÷ sqrt, nearest, bit casts): log, sin,
// cos and exp below are our own polynomials, so results are bit-identical in every runtime and in both
// builds (no relaxed_madd here). Their relative error is below 1e-15 on the ranges used (see each), far
// under float32's half-ulp (3e-8); the float32 normal is therefore the correctly rounded Box–Muller value
// except in rare near-ties (the tests allow 1 ulp against Math.log/Math.cos in float64).
import { sliceStart, sliceEnd, CHUNK } from './shared';

const PHILOX_M0: u32 = 0xd2511f53;
const PHILOX_M1: u32 = 0xcd9e8d57;
const PHILOX_W0: u32 = 0x9e3779b9; // golden ratio
const PHILOX_W1: u32 = 0xbb67ae85; // sqrt(3) - 1

const LN2: f64 = 0.6931471805599453;
const LN2_HI: f64 = 6.93147180369123816490e-1; // upper bits of ln 2: k·LN2_HI is exact for |k| < 2^11
const LN2_LO: f64 = 1.90821492927058770002e-10;
const SQRT2: f64 = 1.4142135623730951;
const TWO_PI: f64 = 6.283185307179586;
const TWO_POW_M32: f64 = 2.3283064365386963e-10; // 2^-32

// The last Philox block, in Wasm globals (scalars, one set per instance, so per worker): AS functions
// cannot return four values and kernels must not touch memory outside their arguments.
let px0: u32 = 0;
let px1: u32 = 0;
let px2: u32 = 0;
let px3: u32 = 0;
// The last block's four normals.
let pz0: f32 = 0;
let pz1: f32 = 0;
let pz2: f32 = 0;
let pz3: f32 = 0;

/** Philox4x32-10 (Salmon et al. 2011, "Parallel random numbers: as easy as 1, 2, 3"): 10 rounds of two
 * 32×32→64 multiplies, with the key bumped by the Weyl constants between rounds. Result in px0..px3. */
// @ts-ignore: decorator
@inline
function philox(c0: u32, c1: u32, c2: u32, c3: u32, k0: u32, k1: u32): void {
  for (let r = 0; r < 10; r++) {
    if (r > 0) {
      k0 += PHILOX_W0;
      k1 += PHILOX_W1;
    }
    const p0 = <u64>PHILOX_M0 * <u64>c0;
    const p1 = <u64>PHILOX_M1 * <u64>c2;
    const n0 = <u32>(p1 >> 32) ^ c1 ^ k0;
    const n2 = <u32>(p0 >> 32) ^ c3 ^ k1;
    c0 = n0;
    c1 = <u32>p1;
    c2 = n2;
    c3 = <u32>p0;
  }
  px0 = c0;
  px1 = c1;
  px2 = c2;
  px3 = c3;
}

/** ln x, both lanes, for normal positive finite x. x = 2^k·m with m in [√½, √2); ln m = 2·atanh(s),
 * s = (m−1)/(m+1), |s| ≤ 0.1716, series to s^21 (next term < 3e-19 relative). */
// @ts-ignore: decorator
@inline
function log64x2(x: v128): v128 {
  // k + 1023 from the exponent bits, converted exactly by the 2^52 trick (no i64→f64 SIMD conversion).
  const magic = f64x2.splat(4503599627370496.0); // 2^52
  const kBiased = f64x2.sub(v128.or(i64x2.shr_u(x, 52), magic), magic);
  let m = v128.or(v128.and(x, i64x2.splat(0x000fffffffffffff)), i64x2.splat(0x3ff0000000000000)); // [1, 2)
  const big = f64x2.gt(m, f64x2.splat(SQRT2));
  m = v128.bitselect(f64x2.mul(m, f64x2.splat(0.5)), m, big);
  const k = f64x2.add(f64x2.sub(kBiased, f64x2.splat(1023.0)), v128.and(big, f64x2.splat(1.0)));
  const one = f64x2.splat(1.0);
  const s = f64x2.div(f64x2.sub(m, one), f64x2.add(m, one)); // m − 1 is exact (Sterbenz)
  const s2 = f64x2.mul(s, s);
  let p = f64x2.splat(1.0 / 21.0);
  p = f64x2.add(f64x2.mul(p, s2), f64x2.splat(1.0 / 19.0));
  p = f64x2.add(f64x2.mul(p, s2), f64x2.splat(1.0 / 17.0));
  p = f64x2.add(f64x2.mul(p, s2), f64x2.splat(1.0 / 15.0));
  p = f64x2.add(f64x2.mul(p, s2), f64x2.splat(1.0 / 13.0));
  p = f64x2.add(f64x2.mul(p, s2), f64x2.splat(1.0 / 11.0));
  p = f64x2.add(f64x2.mul(p, s2), f64x2.splat(1.0 / 9.0));
  p = f64x2.add(f64x2.mul(p, s2), f64x2.splat(1.0 / 7.0));
  p = f64x2.add(f64x2.mul(p, s2), f64x2.splat(1.0 / 5.0));
  p = f64x2.add(f64x2.mul(p, s2), f64x2.splat(1.0 / 3.0));
  const two_s = f64x2.mul(f64x2.splat(2.0), s);
  return f64x2.add(f64x2.mul(k, f64x2.splat(LN2)), f64x2.add(two_s, f64x2.mul(f64x2.mul(two_s, s2), p)));
}

/** e^y (y clamped to ±700). y = k·ln2 + r, |r| ≤ ln2/2, Taylor to r^13 (next term < 5e-18), scaled by 2^k. */
function exp64(y: f64): f64 {
  y = min(max(y, -700.0), 700.0); // keeps 2^k normal; far outside float32's range either way
  const k = nearest(y / LN2);
  const r = y - k * LN2_HI - k * LN2_LO;
  let p = 1.0 / 6227020800.0; // 1/13!
  p = p * r + 1.0 / 479001600.0;
  p = p * r + 1.0 / 39916800.0;
  p = p * r + 1.0 / 3628800.0;
  p = p * r + 1.0 / 362880.0;
  p = p * r + 1.0 / 40320.0;
  p = p * r + 1.0 / 5040.0;
  p = p * r + 1.0 / 720.0;
  p = p * r + 1.0 / 120.0;
  p = p * r + 1.0 / 24.0;
  p = p * r + 1.0 / 6.0;
  p = p * r + 0.5;
  p = p * r + 1.0;
  p = p * r + 1.0;
  return p * reinterpret<f64>(<u64>(<i64>k + 1023) << 52);
}

/**
 * Four standard normals for Philox block (c0, c1) of stream (s0, s1) under key (k0, k1), into pz0..pz3.
 * Box–Muller on both pairs at once (f64x2 lane j = pair j): r = sqrt(−2 ln u1), (r cos 2πu2, r sin 2πu2),
 * u1 = (x + ½)·2^-32 in (0, 1) so ln never sees 0 (|z| ≤ 6.8), u2 = x·2^-32 in [0, 1). sin/cos: 2πu2 is
 * reduced exactly on u2 (quarter turns q = round(4u2), remainder |u2 − q/4| ≤ 1/8, i.e. |x| ≤ π/4) and
 * the Taylor series run to x^17 / x^16 (error < 1e-15).
 */
function normals4(c0: u32, c1: u32, s0: u32, s1: u32, k0: u32, k1: u32): void {
  philox(c0, c1, s0, s1, k0, k1);
  const xa = f64x2.replace_lane(f64x2.splat(<f64>px0), 1, <f64>px2);
  const xb = f64x2.replace_lane(f64x2.splat(<f64>px1), 1, <f64>px3);
  const u1 = f64x2.mul(f64x2.add(xa, f64x2.splat(0.5)), f64x2.splat(TWO_POW_M32));
  const u2 = f64x2.mul(xb, f64x2.splat(TWO_POW_M32));
  const r = f64x2.sqrt(f64x2.mul(f64x2.splat(-2.0), log64x2(u1)));
  const q = f64x2.nearest(f64x2.mul(u2, f64x2.splat(4.0))); // 0…4, exact
  const x = f64x2.mul(f64x2.sub(u2, f64x2.mul(q, f64x2.splat(0.25))), f64x2.splat(TWO_PI));
  const x2 = f64x2.mul(x, x);
  let s = f64x2.splat(-1.0 / 355687428096000.0); // −1/17!
  s = f64x2.add(f64x2.mul(s, x2), f64x2.splat(1.0 / 1307674368000.0));
  s = f64x2.add(f64x2.mul(s, x2), f64x2.splat(-1.0 / 6227020800.0));
  s = f64x2.add(f64x2.mul(s, x2), f64x2.splat(1.0 / 39916800.0));
  s = f64x2.add(f64x2.mul(s, x2), f64x2.splat(-1.0 / 362880.0));
  s = f64x2.add(f64x2.mul(s, x2), f64x2.splat(1.0 / 5040.0));
  s = f64x2.add(f64x2.mul(s, x2), f64x2.splat(-1.0 / 120.0));
  s = f64x2.add(f64x2.mul(s, x2), f64x2.splat(1.0 / 6.0));
  s = f64x2.sub(x, f64x2.mul(f64x2.mul(x, x2), s)); // sin x (the sign flip folds the series' alternation)
  let c = f64x2.splat(1.0 / 20922789888000.0); // 1/16!
  c = f64x2.add(f64x2.mul(c, x2), f64x2.splat(-1.0 / 87178291200.0));
  c = f64x2.add(f64x2.mul(c, x2), f64x2.splat(1.0 / 479001600.0));
  c = f64x2.add(f64x2.mul(c, x2), f64x2.splat(-1.0 / 3628800.0));
  c = f64x2.add(f64x2.mul(c, x2), f64x2.splat(1.0 / 40320.0));
  c = f64x2.add(f64x2.mul(c, x2), f64x2.splat(-1.0 / 720.0));
  c = f64x2.add(f64x2.mul(c, x2), f64x2.splat(1.0 / 24.0));
  c = f64x2.add(f64x2.mul(c, x2), f64x2.splat(-0.5));
  c = f64x2.add(f64x2.splat(1.0), f64x2.mul(x2, c)); // cos x
  // Rotate by the quarter turns: q ≡ 1: (−sin, cos); 2: (−cos, −sin); 3: (sin, −cos) (q = 4 is q = 0).
  const q1 = f64x2.eq(q, f64x2.splat(1.0));
  const q2 = f64x2.eq(q, f64x2.splat(2.0));
  const q3 = f64x2.eq(q, f64x2.splat(3.0));
  const negS = f64x2.neg(s), negC = f64x2.neg(c);
  const cosv = v128.bitselect(negS, v128.bitselect(negC, v128.bitselect(s, c, q3), q2), q1);
  const sinv = v128.bitselect(c, v128.bitselect(negS, v128.bitselect(negC, s, q3), q2), q1);
  const zc = f64x2.mul(r, cosv);
  const zs = f64x2.mul(r, sinv);
  pz0 = <f32>f64x2.extract_lane(zc, 0);
  pz1 = <f32>f64x2.extract_lane(zs, 0);
  pz2 = <f32>f64x2.extract_lane(zc, 1);
  pz3 = <f32>f64x2.extract_lane(zs, 1);
}

/** The normal at element e of stream (s0, s1) under key (k0, k1). Recomputes the block only when e
 * enters a new one, which callers walking e upwards get for free: `last` is the block in pz0..pz3. */
// @ts-ignore: decorator
@inline
function normalAt(e: u64, last: u64, s0: u32, s1: u32, k0: u32, k1: u32): f32 {
  const b = e >> 2;
  if (b != last) normals4(<u32>b, <u32>(b >> 32), s0, s1, k0, k1);
  const lane = <i32>e & 3;
  return lane == 0 ? pz0 : lane == 1 ? pz1 : lane == 2 ? pz2 : pz3;
}

/** Raw Philox4x32-10 output: out[4b .. 4b+3] (u32) = philox(counter + b, key) for b in [0, nBlocks),
 * the addition carrying from c0 into c1. (nBlocks·4) u32 */
export function philox4x32_fill(out: usize, nBlocks: i32, c0: u32, c1: u32, c2: u32, c3: u32, k0: u32, k1: u32, ith: i32, nth: i32): void {
  const lo = sliceStart(nBlocks, ith, nth, 1);
  const hi = sliceEnd(nBlocks, ith, nth, 1);
  const base = (<u64>c1 << 32) | <u64>c0;
  for (let b = lo; b < hi; b++) {
    const c = base + <u64>b;
    philox(<u32>c, <u32>(c >> 32), c2, c3, k0, k1);
    const o = out + (<usize>b << 4);
    store<u32>(o, px0);
    store<u32>(o, px1, 4);
    store<u32>(o, px2, 8);
    store<u32>(o, px3, 12);
  }
}

/** out[i] = N(0, 1) sample at element offset + i of stream (streamLo, streamHi) under seed (seedLo,
 * seedHi); see the header for the definition.   out: (n) */
export function randn_f32(out: usize, n: i32, seedLo: u32, seedHi: u32, streamLo: u32, streamHi: u32, offLo: u32, offHi: u32, ith: i32, nth: i32): void {
  const lo = sliceStart(n, ith, nth, CHUNK);
  const hi = sliceEnd(n, ith, nth, CHUNK);
  const off = (<u64>offHi << 32) | <u64>offLo;
  let last: u64 = u64.MAX_VALUE; // no block computed yet (e div 4 < 2^62)
  for (let i = lo; i < hi; i++) {
    const e = off + <u64>i;
    store<f32>(out + (<usize>i << 2), normalAt(e, last, streamLo, streamHi, seedLo, seedHi));
    last = e >> 2;
  }
}

/**
 * q_sample, the forward process in closed form (Ho et al. 2020, eq. 4):
 *   x_t = sqrt(ᾱ_t)·x_0 + sqrt(1 − ᾱ_t)·ε
 * with per-sample scalars a[n] = sqrt(ᾱ_{t_n}), b[n] = sqrt(1 − ᾱ_{t_n}). ε is read from `eps` when it is
 * not 0; otherwise drawn at element offset + i (i = n·D + d) and, when epsOut is not 0, written there
 * (training regresses on it).
 *   x0, eps, epsOut, xt: (N, D)   a, b: (N)
 */
export function q_sample_f32(N: i32, D: i32, x0: usize, a: usize, b: usize, eps: usize, epsOut: usize, xt: usize, seedLo: u32, seedHi: u32, streamLo: u32, streamHi: u32, offLo: u32, offHi: u32, ith: i32, nth: i32): void {
  const total = N * D;
  const lo = sliceStart(total, ith, nth, CHUNK);
  const hi = sliceEnd(total, ith, nth, CHUNK);
  if (lo >= hi) return;
  const off = (<u64>offHi << 32) | <u64>offLo;
  let last: u64 = u64.MAX_VALUE;
  let n = lo / D;
  let d = lo - n * D;
  let an = load<f32>(a + (<usize>n << 2));
  let bn = load<f32>(b + (<usize>n << 2));
  for (let i = lo; i < hi; i++) {
    const o = <usize>i << 2;
    let z: f32;
    if (eps != 0) z = load<f32>(eps + o);
    else {
      const e = off + <u64>i;
      z = normalAt(e, last, streamLo, streamHi, seedLo, seedHi);
      last = e >> 2;
      if (epsOut != 0) store<f32>(epsOut + o, z);
    }
    store<f32>(xt + o, an * load<f32>(x0 + o) + bn * z);
    if (++d == D && i + 1 < hi) {
      d = 0;
      n++;
      an = load<f32>(a + (<usize>n << 2));
      bn = load<f32>(b + (<usize>n << 2));
    }
  }
}

/**
 * The fused reverse step shared by DDPM and DDIM, one pass over the elements:
 *   x̂_0      = clamp(ax·x_t + am·m, −clip, clip)      (clip = +∞: no clipping)
 *   x_{t−1}  = c0·x̂_0 + c1·x_t + c2·m + σ·z
 * m is the model output. The scheduler folds its equations into the per-step scalars (computed in
 * float64, rounded to f32): x̂_0 from ε, x_0 or v prediction (DDPM eq. 15), the posterior mean (DDPM eq. 7)
 * or DDIM's eq. 12 with its direction term through c1, c2.
 *
 * σ per element (varMode): VAR_FIXED `sigma`; VAR_LEARNED: σ = sqrt(v); VAR_LEARNED_RANGE (Nichol &
 * Dhariwal 2021, eq. 15): σ = exp(½·(f·maxLog + (1 − f)·minLog)), f = (v + 1)/2; v is the second half of
 * the model output's channels (mStride = 2D). z is read from `noise` when not 0, drawn from Philox at
 * element offset + i when draw != 0, else no noise is added. predX0 (optional, 0 = skip) receives x̂_0.
 *   m: (N, mStride) with the prediction in [0, D) of each row   x_t, noise, prev, predX0: (N, D)
 */
/** gaussian_step_f32's varMode: σ is the `sigma` argument. */
export const VAR_FIXED: i32 = 0;
/** gaussian_step_f32's varMode: σ = sqrt(v), v the model output's second half (diffusers' "learned"). */
export const VAR_LEARNED: i32 = 1;
/** gaussian_step_f32's varMode: σ interpolated in log space between minLog and maxLog ("learned_range"). */
export const VAR_LEARNED_RANGE: i32 = 2;

export function gaussian_step_f32(
  N: i32, D: i32, mStride: i32, m: usize, xt: usize, noise: usize, prev: usize, predX0: usize,
  ax: f32, am: f32, clip: f32, c0: f32, c1: f32, c2: f32, sigma: f32, varMode: i32, minLog: f32, maxLog: f32,
  draw: i32, seedLo: u32, seedHi: u32, streamLo: u32, streamHi: u32, offLo: u32, offHi: u32, ith: i32, nth: i32,
): void {
  const total = N * D;
  const lo = sliceStart(total, ith, nth, CHUNK);
  const hi = sliceEnd(total, ith, nth, CHUNK);
  if (lo >= hi) return;
  const off = (<u64>offHi << 32) | <u64>offLo;
  const noisy = noise != 0 || draw != 0;
  let last: u64 = u64.MAX_VALUE;
  let n = lo / D;
  let d = lo - n * D;
  for (let i = lo; i < hi; i++) {
    const o = <usize>i << 2;
    const mo = m + ((<usize>n * <usize>mStride + <usize>d) << 2);
    const x = load<f32>(xt + o);
    const mv = load<f32>(mo);
    const x0 = min(max(ax * x + am * mv, -clip), clip);
    if (predX0 != 0) store<f32>(predX0 + o, x0);
    let y = c0 * x0 + c1 * x + c2 * mv;
    if (noisy) {
      let z: f32;
      if (noise != 0) z = load<f32>(noise + o);
      else {
        const e = off + <u64>i;
        z = normalAt(e, last, streamLo, streamHi, seedLo, seedHi);
        last = e >> 2;
      }
      let s = sigma;
      if (varMode == VAR_LEARNED) s = <f32>sqrt<f64>(<f64>load<f32>(mo + (<usize>D << 2)));
      else if (varMode == VAR_LEARNED_RANGE) {
        const f = (<f64>load<f32>(mo + (<usize>D << 2)) + 1.0) * 0.5;
        s = <f32>exp64(0.5 * (f * <f64>maxLog + (1.0 - f) * <f64>minLog));
      }
      y += s * z;
    }
    store<f32>(prev + o, y);
    if (++d == D) {
      d = 0;
      n++;
    }
  }
}

// The one elementwise kernel every few-step solver shares (DPM-Solver++, UniPC, Euler, Euler ancestral,
// Heun): a linear combination of up to five tensors plus optional Gaussian noise,
//   out = clamp(a·x + b0·y0 + b1·y1 + b2·y2 + b3·y3 + c·z, −clip, clip)      (clip = +∞: no clamp)
// computed in float64 from float32 inputs and rounded once to float32 (the clamp is for x̂_0 with
// clip_sample, as Heun offers). A solver step is one or two calls:
// the data prediction x̂_0 = a·x_t + b0·m, then the update from x_t and the history of x̂_0's.
//
// Each output element reads only its own inputs, so `out` may be x or any y_i. Pointers that are 0 are
// absent (their coefficient is ignored). y0 alone may have a row stride s0 ≥ D: a model output with
// learned-variance channels (N, 2D) whose first D values per row are the prediction.
// z: read from `noise` when not 0, else drawn from Philox at element offset + i of (seed, stream) when
// draw != 0 (as defined in this file's header: a value depends only on (seed, stream, offset + i)),
// else no noise term.
//   x, y1, y2, y3, noise, out: (N, D)   y0: (N, s0)

export function solver_combine_f32(
  N: i32, D: i32, out: usize,
  x: usize, a: f64,
  y0: usize, s0: i32, b0: f64,
  y1: usize, b1: f64,
  y2: usize, b2: f64,
  y3: usize, b3: f64,
  noise: usize, c: f64, clip: f64,
  draw: i32, seedLo: u32, seedHi: u32, streamLo: u32, streamHi: u32, offLo: u32, offHi: u32,
  ith: i32, nth: i32,
): void {
  const total = N * D;
  const lo = sliceStart(total, ith, nth, CHUNK);
  const hi = sliceEnd(total, ith, nth, CHUNK);
  if (lo >= hi) return;
  const off = (<u64>offHi << 32) | <u64>offLo;
  const noisy = noise != 0 || draw != 0;
  let last: u64 = u64.MAX_VALUE;
  let n = lo / D;
  let d = lo - n * D;
  for (let i = lo; i < hi; i++) {
    const o = <usize>i << 2;
    // The sum in a fixed order, so the bits do not depend on which terms a caller leaves out as 0.
    let v: f64 = 0;
    if (x != 0) v = a * <f64>load<f32>(x + o);
    if (y0 != 0) v += b0 * <f64>load<f32>(y0 + ((<usize>n * <usize>s0 + <usize>d) << 2));
    if (y1 != 0) v += b1 * <f64>load<f32>(y1 + o);
    if (y2 != 0) v += b2 * <f64>load<f32>(y2 + o);
    if (y3 != 0) v += b3 * <f64>load<f32>(y3 + o);
    if (noisy) {
      let z: f32;
      if (noise != 0) z = load<f32>(noise + o);
      else {
        const e = off + <u64>i;
        z = normalAt(e, last, streamLo, streamHi, seedLo, seedHi);
        last = e >> 2;
      }
      v += c * <f64>z;
    }
    store<f32>(out + o, <f32>min(max(v, -clip), clip));
    if (++d == D) {
      d = 0;
      n++;
    }
  }
}
