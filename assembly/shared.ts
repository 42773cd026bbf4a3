// Helpers shared by all kernels. Every kernel takes (ith, nth) and computes its own slice.

/** Elements per v128 of f32. Slices are cut at multiples of CHUNK so that every element goes through the
 * same code path (vector body or scalar tail) whatever the thread count: that is what keeps results
 * bit-identical for 1…N threads when a kernel uses relaxed_madd. */
export const CHUNK: i32 = 16;

/** First index of thread ith's slice of [0, n), with slice edges on multiples of `align`. */
// @ts-ignore: decorator
@inline
export function sliceStart(n: i32, ith: i32, nth: i32, align: i32): i32 {
  const blocks = (n + align - 1) / align;
  const per = (blocks + nth - 1) / nth;
  return min(n, per * ith * align);
}

/** One past the last index of thread ith's slice; see sliceStart. */
// @ts-ignore: decorator
@inline
export function sliceEnd(n: i32, ith: i32, nth: i32, align: i32): i32 {
  return sliceStart(n, ith + 1, nth, align);
}

/** a*b + c in one instruction where the build has relaxed SIMD (fused on x86 with FMA), else mul+add. */
// @ts-ignore: decorator
@inline
export function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(f32x4.mul(a, b), c);
}
