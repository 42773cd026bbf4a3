// Math helpers for the kernels: a SIMD exp (Wasm has no exp instruction), the sigmoid, and fixed-order
// reductions. index.ts does not re-export this file: these are building blocks that kernel files import,
// not Wasm exports.
import { madd } from './shared';

// Cody–Waite split of ln 2: LN2_HI has 9 significant bits, so n·LN2_HI is exact for |n| < 2^15 and the
// reduced argument r = x − n·ln 2 loses nothing to cancellation.
const LOG2E: f32 = 1.44269504088896341;
const LN2_HI: f32 = 0.693359375;
const LN2_LO: f32 = -2.12194440e-4;
// Minimax coefficients of (e^r − 1 − r) / r² on |r| ≤ ln2/2 (Cephes expf): about 1 ulp over the range.
const P0: f32 = 1.9875691500e-4;
const P1: f32 = 1.3981999507e-3;
const P2: f32 = 8.3334519073e-3;
const P3: f32 = 4.1665795894e-2;
const P4: f32 = 1.6666665459e-1;
const P5: f32 = 5.0000001201e-1;
// Inputs are clamped to [EXP_MIN, EXP_MAX]: below, e^x is under half the smallest subnormal and the
// result is 0; above, 2^n overflows to +Inf, as Math.exp would in float32. NaN stays NaN.
const EXP_MIN: f32 = -104.0;
const EXP_MAX: f32 = 89.0;

/** e^x per lane, within a few ulp; 0 for x < −103.97, +Inf for x > 88.73, NaN for NaN. */
// @ts-ignore: decorator
@inline
export function exp_f32x4(x: v128): v128 {
  // pmin/pmax (one minps/maxps each; Wasm's min/max are several instructions for their NaN and ±0 rules)
  // return their first operand when a comparison with NaN fails, so a NaN input stays NaN below.
  const xc = f32x4.pmax(f32x4.pmin(x, f32x4.splat(EXP_MAX)), f32x4.splat(EXP_MIN));
  const n = f32x4.nearest(f32x4.mul(xc, f32x4.splat(LOG2E)));
  const r = f32x4.sub(f32x4.sub(xc, f32x4.mul(n, f32x4.splat(LN2_HI))), f32x4.mul(n, f32x4.splat(LN2_LO)));
  let p = madd(f32x4.splat(P0), r, f32x4.splat(P1));
  p = madd(p, r, f32x4.splat(P2));
  p = madd(p, r, f32x4.splat(P3));
  p = madd(p, r, f32x4.splat(P4));
  p = madd(p, r, f32x4.splat(P5));
  const er = f32x4.add(madd(p, f32x4.mul(r, r), r), f32x4.splat(1.0));
  // 2^n with n in [−150, 129] does not fit one exponent field (bias 127): scale by 2^n1 · 2^n2 with
  // n1 = ⌊n/2⌋, n2 = n − n1, both in [−75, 65]. Powers of two multiply exactly; only the last product
  // rounds, into the subnormal range or to +Inf where e^x itself does.
  // n is integral and in [−150, 129]: the plain truncation (one cvttps2dq in the relaxed build) is exact;
  // for NaN, er is NaN and so is the product whatever n becomes.
  const ni = ASC_FEATURE_RELAXED_SIMD ? i32x4.relaxed_trunc_f32x4_s(n) : i32x4.trunc_sat_f32x4_s(n);
  const n1 = i32x4.shr_s(ni, 1);
  const n2 = i32x4.sub(ni, n1);
  const bias = i32x4.splat(127);
  const s1 = i32x4.shl(i32x4.add(n1, bias), 23);
  const s2 = i32x4.shl(i32x4.add(n2, bias), 23);
  return f32x4.mul(f32x4.mul(er, s1), s2);
}

/** Scalar e^x through the same lanes as exp_f32x4, so a kernel's scalar tail gives the same bits. */
// @ts-ignore: decorator
@inline
export function exp_f32(x: f32): f32 {
  return f32x4.extract_lane(exp_f32x4(f32x4.splat(x)), 0);
}

/**
 * Logistic sigmoid per lane. With t = e^−|x| ∈ (0, 1], σ(x) = 1/(1 + t) for x ≥ 0 and t/(1 + t) for
 * x < 0: the exponent is never positive, so nothing overflows and σ keeps full relative accuracy down to
 * the subnormals (1/(1 + e^−x) would round to 0 once e^−x overflows, near x = −88.7). NaN stays NaN.
 */
// @ts-ignore: decorator
@inline
export function sigmoid_f32x4(x: v128): v128 {
  const one = f32x4.splat(1.0);
  const t = exp_f32x4(f32x4.neg(f32x4.abs(x)));
  const negative = f32x4.lt(x, f32x4.splat(0));
  return f32x4.div(v128.bitselect(t, one, negative), f32x4.add(one, t));
}

/**
 * SiLU's backward per lane: dy·σ(x)·(1 + x·(1 − σ(x))), as d/dx x·σ(x) = σ(x)·(1 + x·(1 − σ(x))).
 * Shared by silu_backward_f32 and group_norm_silu_backward_f32, which must give the same bits.
 */
// @ts-ignore: decorator
@inline
export function silu_backward_f32x4(x: v128, dy: v128): v128 {
  const one = f32x4.splat(1.0);
  const s = sigmoid_f32x4(x);
  return f32x4.mul(f32x4.mul(dy, s), madd(x, f32x4.sub(one, s), one));
}

// ── Fixed-order reductions ───────────────────────────────────────────────────────────────────────────
// One thread reduces a whole span, always in the same order: four f32 lanes over blocks of SUM_BLOCK
// elements, lanes combined pairwise, blocks added in float64. The float32 part stays short (≤ 256 adds
// per lane), so the error stays near 1e-6 of Σ|terms| even for spans of millions of elements.

const SUM_BLOCK: i32 = 1024;

/** Σ a[i] */
export const RED_SUM: i32 = 0;
/** Σ (a[i] − c)²; with c = 0 the sum of squares. */
export const RED_SQ_DEV: i32 = 1;
/** Σ a[i]·(b[i] − c); with c = 0 the dot product. */
export const RED_DOT_DEV: i32 = 2;

// @ts-ignore: decorator
@inline
function term4(mode: i32, a: v128, b: v128, c: v128, acc: v128): v128 {
  if (mode == RED_SUM) return f32x4.add(acc, a);
  if (mode == RED_SQ_DEV) {
    const d = f32x4.sub(a, c);
    return madd(d, d, acc);
  }
  return madd(a, f32x4.sub(b, c), acc);
}

// @ts-ignore: decorator
@inline
function term1(mode: i32, a: f32, b: f32, c: f32): f32 {
  if (mode == RED_SUM) return a;
  if (mode == RED_SQ_DEV) return (a - c) * (a - c);
  return a * (b - c);
}

/** The reduction `mode` (RED_*) over a[0:len] (and b[0:len] for RED_DOT_DEV), float32 terms, float64 total. */
// @ts-ignore: decorator
@inline
export function reduce_f32(mode: i32, a: usize, b: usize, c: f32, len: i32): f64 {
  const vc = f32x4.splat(c);
  let total: f64 = 0;
  let i = 0;
  while (i + 4 <= len) {
    const end = min(len & ~3, i + SUM_BLOCK);
    let acc = f32x4.splat(0);
    for (; i < end; i += 4) {
      const o = <usize>i << 2;
      acc = term4(mode, v128.load(a + o), mode == RED_DOT_DEV ? v128.load(b + o) : vc, vc, acc);
    }
    const lanes = (f32x4.extract_lane(acc, 0) + f32x4.extract_lane(acc, 1)) + (f32x4.extract_lane(acc, 2) + f32x4.extract_lane(acc, 3));
    total += <f64>lanes;
  }
  let tail: f32 = 0;
  for (; i < len; i++) {
    const o = <usize>i << 2;
    tail += term1(mode, load<f32>(a + o), mode == RED_DOT_DEV ? load<f32>(b + o) : c, c);
  }
  return total + <f64>tail;
}

/**
 * Σ a[0:len] with float64 lanes: exact to float64 rounding whatever the data's offset (a float32 sum of
 * values near a large mean loses bits in proportion to the mean). Twice the work of reduce_f32, so used
 * where the sum must be accurate in absolute terms: norm statistics.
 */
export function sum_f64(a: usize, len: i32): f64 {
  let lo = f64x2.splat(0);
  let hi = f64x2.splat(0);
  let i = 0;
  for (; i + 4 <= len; i += 4) {
    const v = v128.load(a + (<usize>i << 2));
    lo = f64x2.add(lo, f64x2.promote_low_f32x4(v));
    hi = f64x2.add(hi, f64x2.promote_low_f32x4(i32x4.shuffle(v, v, 2, 3, 0, 1)));
  }
  let total = (f64x2.extract_lane(lo, 0) + f64x2.extract_lane(lo, 1)) + (f64x2.extract_lane(hi, 0) + f64x2.extract_lane(hi, 1));
  for (; i < len; i++) total += <f64>load<f32>(a + (<usize>i << 2));
  return total;
}
