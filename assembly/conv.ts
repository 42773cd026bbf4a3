// conv2d over NCHW images, 1×1 and 3×3 kernels, stride 1 or 2, any zero padding. Weights are PyTorch's
// (Cout, Cin, kh, kw), which read row-major is the GEMM matrix W: (Cout, Cin·kh·kw).
//
// Forward: y = W · col(x) + bias with col(x): (Cin·kh·kw, N·Ho·Wo) the im2col matrix of the whole batch.
// It is never stored: the GEMM's B packer reads the patches straight from x (implicit im2col, gemm-core.ts).
// Backward, per image (the TS wrapper sequences the calls, each one a barrier):
//   dW (+)= dy · col(x)ᵀ      gemm_f32 with B = col(x) transposed, col from conv2d_im2col_f32
//   dcol  = Wᵀ · dy           gemm_f32 with A transposed
//   dx  (+)= col2im(dcol)     conv2d_col2im_f32 (each thread owns whole input channels: no races)
//   db  (+)= Σ_{n,p} dy       conv2d_bias_grad_f32
import { sliceStart, sliceEnd } from './shared';
import { gemmDriver, convGeometry, WORKSPACE_BYTES, B_CONV, BIAS_NONE, BIAS_ROW } from './gemm-core';

/**
 * y[n] = W · col(x[n]) + bias       x: (N, Cin, H, W)   w: (Cout, Cin, ksize, ksize)   bias: (Cout) or 0
 *                                   y: (N, Cout, Ho, Wo)
 * Output pixel (oy, ox) reads input rows oy·stride − padTop + ky and columns ox·stride − padLeft + kx;
 * anything outside the image is zero (so bottom/right padding is implied by Ho, Wo). ws/wsBytes as in
 * gemm_f32. Bit-identical for any nth.
 */
export function conv2d_f32(
  N: i32, Cin: i32, H: i32, W: i32, Cout: i32, ksize: i32, stride: i32, padTop: i32, padLeft: i32,
  Ho: i32, Wo: i32, x: usize, w: usize, bias: usize, y: usize, ws: usize, wsBytes: i32, ith: i32, nth: i32,
): void {
  if (<usize>wsBytes < WORKSPACE_BYTES) unreachable();
  const own = ws + <usize>ith * <usize>wsBytes;
  const g = convGeometry(own);
  g.H = H;
  g.W = W;
  g.Wo = Wo;
  g.Cin = Cin;
  g.ksize = ksize;
  g.stride = stride;
  g.padTop = padTop;
  g.padLeft = padLeft;
  g.P = Ho * Wo;
  // One GEMM for the whole batch: columns j = (n, oy, ox), C's image n at y + n·Cout·Ho·Wo.
  const K = Cin * ksize * ksize;
  gemmDriver(false, B_CONV, Cout, N * g.P, K, 1, w, K, x, 0, 0, y, g.P, bias, bias ? BIAS_ROW : BIAS_NONE, own, ith, nth);
}

/** First output column whose input column ox·stride − padLeft + kx is ≥ `bound` (clamped to [0, Wo]):
 * with bound 0 and W, [oxBegin(0), oxBegin(W)) are the output columns that read inside the image. */
// @ts-ignore: decorator
@inline
function oxBegin(bound: i32, stride: i32, padLeft: i32, kx: i32, Wo: i32): i32 {
  const need = bound + padLeft - kx; // ox·stride ≥ need
  return need <= 0 ? 0 : min(Wo, (need + stride - 1) / stride);
}

/**
 * col[(ci, ky, kx), (oy, ox)] = x[ci, oy·stride − padTop + ky, ox·stride − padLeft + kx] (0 outside)
 *   x: (Cin, H, W) one image    col: (Cin·ksize·ksize, Ho·Wo)
 * The explicit im2col the weight gradient multiplies by. Threads split the rows of col.
 */
export function conv2d_im2col_f32(
  Cin: i32, H: i32, W: i32, ksize: i32, stride: i32, padTop: i32, padLeft: i32, Ho: i32, Wo: i32,
  x: usize, col: usize, ith: i32, nth: i32,
): void {
  const rows = Cin * ksize * ksize;
  const r1 = sliceEnd(rows, ith, nth, 1);
  for (let r = sliceStart(rows, ith, nth, 1); r < r1; r++) {
    const ci = r / (ksize * ksize);
    const ky = (r / ksize) % ksize;
    const kx = r % ksize;
    const plane = x + (<usize>(ci * H * W) << 2);
    const dst = col + (<usize>r * <usize>(Ho * Wo) << 2);
    // Columns [lo, hi) read inside the image; the rest are padding.
    const lo = oxBegin(0, stride, padLeft, kx, Wo);
    const hi = max(lo, oxBegin(W, stride, padLeft, kx, Wo));
    for (let oy = 0; oy < Ho; oy++) {
      const iy = oy * stride - padTop + ky;
      const d = dst + (<usize>(oy * Wo) << 2);
      if (<u32>iy >= <u32>H) {
        memory.fill(d, 0, <usize>Wo << 2);
        continue;
      }
      memory.fill(d, 0, <usize>lo << 2);
      // (an empty range may point outside the image: bulk copies check bounds even for 0 bytes)
      if (hi > lo) {
        const src = plane + (<usize>(iy * W + lo * stride - padLeft + kx) << 2);
        if (stride == 1) memory.copy(d + (<usize>lo << 2), src, <usize>(hi - lo) << 2);
        else for (let ox = lo; ox < hi; ox++) store<f32>(d + (<usize>ox << 2), load<f32>(src + (<usize>((ox - lo) * stride) << 2)));
      }
      memory.fill(d + (<usize>hi << 2), 0, <usize>(Wo - hi) << 2);
    }
  }
}

/**
 * dx[ci, iy, ix] = beta·dx[ci, iy, ix] + Σ over the (ky, kx, oy, ox) that read it of dcol[(ci, ky, kx), (oy, ox)]
 *   dcol: (Cin·ksize·ksize, Ho·Wo)    dx: (Cin, H, W) one image
 * The adjoint of conv2d_im2col_f32. beta is 0 (overwrite) or 1 (accumulate). Each thread owns whole
 * channels, and the terms of every dx element are added in (ky, kx, oy) order: deterministic.
 */
export function conv2d_col2im_f32(
  Cin: i32, H: i32, W: i32, ksize: i32, stride: i32, padTop: i32, padLeft: i32, Ho: i32, Wo: i32,
  dcol: usize, dx: usize, beta: f32, ith: i32, nth: i32,
): void {
  const c1 = sliceEnd(Cin, ith, nth, 1);
  for (let ci = sliceStart(Cin, ith, nth, 1); ci < c1; ci++) {
    const plane = dx + (<usize>(ci * H * W) << 2);
    if (beta == 0) memory.fill(plane, 0, <usize>(H * W) << 2);
    for (let ky = 0; ky < ksize; ky++) {
      for (let kx = 0; kx < ksize; kx++) {
        const src = dcol + (<usize>((ci * ksize + ky) * ksize + kx) * <usize>(Ho * Wo) << 2);
        const lo = oxBegin(0, stride, padLeft, kx, Wo);
        const hi = max(lo, oxBegin(W, stride, padLeft, kx, Wo));
        for (let oy = 0; oy < Ho; oy++) {
          const iy = oy * stride - padTop + ky;
          if (<u32>iy >= <u32>H || hi == lo) continue;
          const s = src + (<usize>(oy * Wo + lo) << 2);
          const row = plane + (<usize>(iy * W + lo * stride - padLeft + kx) << 2);
          let t = 0;
          if (stride == 1) {
            for (; t + 4 <= hi - lo; t += 4) {
              const p = row + (<usize>t << 2);
              v128.store(p, f32x4.add(v128.load(p), v128.load(s + (<usize>t << 2))));
            }
          }
          for (; t < hi - lo; t++) {
            const p = row + (<usize>(t * stride) << 2);
            store<f32>(p, load<f32>(p) + load<f32>(s + (<usize>t << 2)));
          }
        }
      }
    }
  }
}

/**
 * dbias[co] = beta·dbias[co] + Σ_n Σ_p dy[n, co, p]      dy: (N, Cout, P)   dbias: (Cout)
 * beta is 0 (overwrite) or 1 (accumulate). Threads split channels; each sum runs over n, then over p in
 * four fixed lanes, so the order does not depend on nth.
 */
export function conv2d_bias_grad_f32(N: i32, Cout: i32, P: i32, dy: usize, dbias: usize, beta: f32, ith: i32, nth: i32): void {
  const c1 = sliceEnd(Cout, ith, nth, 1);
  for (let co = sliceStart(Cout, ith, nth, 1); co < c1; co++) {
    let total: f32 = 0;
    for (let n = 0; n < N; n++) {
      const src = dy + (<usize>(n * Cout + co) * <usize>P << 2);
      let acc = f32x4.splat(0);
      let p = 0;
      for (; p + 4 <= P; p += 4) acc = f32x4.add(acc, v128.load(src + (<usize>p << 2)));
      let tail: f32 = 0;
      for (; p < P; p++) tail += load<f32>(src + (<usize>p << 2));
      total += (f32x4.extract_lane(acc, 0) + f32x4.extract_lane(acc, 1)) + (f32x4.extract_lane(acc, 2) + f32x4.extract_lane(acc, 3)) + tail;
    }
    const p = dbias + (<usize>co << 2);
    store<f32>(p, beta == 0 ? total : beta * load<f32>(p) + total);
  }
}
