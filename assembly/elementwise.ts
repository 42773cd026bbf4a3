// Elementwise kernels over f32 vectors of length n. Pointers are byte addresses into linear memory.
import { sliceStart, sliceEnd, CHUNK, madd } from './shared';

/** y[i] += a * x[i]   (n) */
export function axpy_f32(n: i32, a: f32, x: usize, y: usize, ith: i32, nth: i32): void {
  const lo = sliceStart(n, ith, nth, CHUNK);
  const hi = sliceEnd(n, ith, nth, CHUNK);
  const va = f32x4.splat(a);
  let i = lo;
  for (; i + 4 <= hi; i += 4) {
    const o = <usize>i << 2;
    v128.store(y + o, madd(va, v128.load(x + o), v128.load(y + o)));
  }
  for (; i < hi; i++) {
    const o = <usize>i << 2;
    store<f32>(y + o, a * load<f32>(x + o) + load<f32>(y + o));
  }
}
