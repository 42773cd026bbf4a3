// The machine's SIMD ceiling, for the benchmarks' "fraction of peak": an FMA loop with 12 independent
// accumulators (enough to hide the latency of a fused multiply-add), nothing loaded or stored inside.
import { madd } from './shared';

/**
 * Each thread runs `iters` iterations of 12 f32x4 multiply-adds (96 flops per iteration, relaxed_madd in
 * the relaxed build, mul + add in the plain one) and stores a sum of its accumulators at out + 16·ith so
 * the loop is not optimised away. Not a numerical kernel: its output means nothing.
 */
export function fma_peak_f32(iters: i32, out: usize, ith: i32, nth: i32): void {
  const a = f32x4.splat(0.999);
  const b = f32x4.splat(0.001);
  let c0 = f32x4.splat(<f32>ith), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0;
  let c6 = c0, c7 = c0, c8 = c0, c9 = c0, c10 = c0, c11 = c0;
  for (let i = 0; i < iters; i++) {
    c0 = madd(c0, a, b);
    c1 = madd(c1, a, b);
    c2 = madd(c2, a, b);
    c3 = madd(c3, a, b);
    c4 = madd(c4, a, b);
    c5 = madd(c5, a, b);
    c6 = madd(c6, a, b);
    c7 = madd(c7, a, b);
    c8 = madd(c8, a, b);
    c9 = madd(c9, a, b);
    c10 = madd(c10, a, b);
    c11 = madd(c11, a, b);
  }
  const s = f32x4.add(f32x4.add(f32x4.add(c0, c1), f32x4.add(c2, c3)), f32x4.add(f32x4.add(f32x4.add(c4, c5), f32x4.add(c6, c7)), f32x4.add(f32x4.add(c8, c9), f32x4.add(c10, c11))));
  v128.store(out + (<usize>ith << 4), s);
}
