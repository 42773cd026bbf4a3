// conv2d over NCHW images, 1×1 and 3×3 kernels, stride 1 or 2, any zero padding. Weights are PyTorch's
// (Cout, Cin, kh, kw), which read row-major is the GEMM matrix W: (Cout, Cin·kh·kw).
//
// Forward: y = W · col(x) + bias with col(x): (Cin·kh·kw, N·Ho·Wo) the im2col matrix of the whole batch.
// It is never stored: the GEMM's B packer reads the patches straight from x (implicit im2col, gemm-core.ts).
// Backward, over chunks of nb images at once (the TS wrapper sequences the calls, each one a barrier):
//   dyᵀ   = rows(dy)          batch_to_rows_f32: (Cout, nb·Ho·Wo)
//   col   = im2col(x)         conv2d_im2col_batch_f32: (Cin·kh·kw, nb·Ho·Wo)
//   dW (+)= dyᵀ · colᵀ        one gemm_f32 with B transposed, K = nb·Ho·Wo
//   dcol  = Wᵀ · dyᵀ          one gemm_f32 with A transposed
//   dx  (+)= col2im(dcol)     conv2d_col2im_batch_f32 (each thread owns whole (image, channel) planes)
//   db  (+)= Σ_{n,p} dy       conv2d_bias_grad_f32
import { sliceStart, sliceEnd } from './shared';
import { gemmDriver, convGeometry, WORKSPACE_BYTES, B_CONV, BIAS_NONE, BIAS_ROW } from './gemm-core';

/**
 * y[n] = W · col(x[n]) + bias + beta·y   x: (N, Cin, H, W)   w: (Cout, Cin, ksize, ksize)   bias: (Cout) or 0
 *                                        y: (N, Cout, Ho, Wo); beta 0 (y not read) or 1 (accumulate)
 * Output pixel (oy, ox) reads input rows oy·stride − padTop + ky and columns ox·stride − padLeft + kx;
 * anything outside the image is zero (so bottom/right padding is implied by Ho, Wo). ws/wsBytes as in
 * gemm_f32. Bit-identical for any nth.
 */
export function conv2d_f32(
  N: i32, Cin: i32, H: i32, W: i32, Cout: i32, ksize: i32, stride: i32, padTop: i32, padLeft: i32,
  Ho: i32, Wo: i32, x: usize, w: usize, bias: usize, y: usize, ws: usize, wsBytes: i32, beta: f32, ith: i32, nth: i32,
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
  gemmDriver(false, B_CONV, Cout, N * g.P, K, 1, w, K, x, 0, beta, y, g.P, bias, bias ? BIAS_ROW : BIAS_NONE, own, ith, nth);
}

/**
 * wt[ci, co, ky, kx] = w[co, ci, k−1−ky, k−1−kx]   w: (Cout, Cin, k, k), wt: (Cin, Cout, k, k)
 * The weights of the transposed convolution: for stride 1, dx = conv2d(dy, wt) with padding k−1−pad, so
 * the input gradient runs on the forward conv's implicit-im2col GEMM (no col2im). Threads split ci.
 */
export function conv2d_flip_weights_f32(Cout: i32, Cin: i32, ksize: i32, w: usize, wt: usize, ith: i32, nth: i32): void {
  const kk = ksize * ksize;
  const c1 = sliceEnd(Cin, ith, nth, 1);
  for (let ci = sliceStart(Cin, ith, nth, 1); ci < c1; ci++) {
    for (let co = 0; co < Cout; co++) {
      const src = w + (<usize>((co * Cin + ci) * kk) << 2);
      const dst = wt + (<usize>((ci * Cout + co) * kk) << 2);
      for (let t = 0; t < kk; t++) store<f32>(dst + (<usize>t << 2), load<f32>(src + (<usize>(kk - 1 - t) << 2)));
    }
  }
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
    im2colRow(r, H, W, ksize, stride, padTop, padLeft, Ho, Wo, x, col + (<usize>r * <usize>(Ho * Wo) << 2));
  }
}

/**
 * col[(ci, ky, kx), (n, oy, ox)] = x[n, ci, oy·stride − padTop + ky, ox·stride − padLeft + kx] (0 outside)
 *   x: (nb, Cin, H, W)    col: (Cin·ksize·ksize, nb·Ho·Wo)
 * The im2col of nb images side by side, so the weight gradient of a whole batch is one GEMM (K = nb·Ho·Wo)
 * and the input gradient's dcol one GEMM too. Threads split the (row, image) pieces.
 */
export function conv2d_im2col_batch_f32(
  nb: i32, Cin: i32, H: i32, W: i32, ksize: i32, stride: i32, padTop: i32, padLeft: i32, Ho: i32, Wo: i32,
  x: usize, col: usize, ith: i32, nth: i32,
): void {
  const P = Ho * Wo;
  const units = Cin * ksize * ksize * nb;
  const u1 = sliceEnd(units, ith, nth, 1);
  const imageBytes = <usize>(Cin * H * W) << 2;
  for (let u = sliceStart(units, ith, nth, 1); u < u1; u++) {
    const r = u / nb;
    const n = u - r * nb;
    im2colRow(r, H, W, ksize, stride, padTop, padLeft, Ho, Wo, x + <usize>n * imageBytes, col + ((<usize>r * <usize>(nb * P) + <usize>(n * P)) << 2));
  }
}

/** Row r = (ci, ky, kx) of one image's im2col into dst (Ho·Wo values). */
// @ts-ignore: decorator
@inline
function im2colRow(r: i32, H: i32, W: i32, ksize: i32, stride: i32, padTop: i32, padLeft: i32, Ho: i32, Wo: i32, x: usize, dst: usize): void {
  const ci = r / (ksize * ksize);
  const ky = (r / ksize) % ksize;
  const kx = r % ksize;
  const plane = x + (<usize>(ci * H * W) << 2);
  // Columns [lo, hi) read inside the image; the rest are padding.
  const lo = oxBegin(0, stride, padLeft, kx, Wo);
  const hi = max(lo, oxBegin(W, stride, padLeft, kx, Wo));
  // Rows are short (Wo of 7 … 64): plain loops, not memory.copy/fill, whose per-call cost in V8 is larger
  // than a row's worth of vector stores.
  for (let oy = 0; oy < Ho; oy++) {
    const iy = oy * stride - padTop + ky;
    const d = dst + (<usize>(oy * Wo) << 2);
    if (<u32>iy >= <u32>H) {
      zeroRange(d, 0, Wo);
      continue;
    }
    zeroRange(d, 0, lo);
    if (hi > lo) {
      const src = plane + (<usize>(iy * W + lo * stride - padLeft + kx) << 2);
      const dl = d + (<usize>lo << 2);
      const n = hi - lo;
      let t = 0;
      if (stride == 1) for (; t + 4 <= n; t += 4) v128.store(dl + (<usize>t << 2), v128.load(src + (<usize>t << 2)));
      for (; t < n; t++) store<f32>(dl + (<usize>t << 2), load<f32>(src + (<usize>(t * stride) << 2)));
    }
    zeroRange(d, hi, Wo);
  }
}

/** d[a : b] = 0 (floats). */
// @ts-ignore: decorator
@inline
function zeroRange(d: usize, a: i32, b: i32): void {
  let i = a;
  const z = f32x4.splat(0);
  for (; i + 4 <= b; i += 4) v128.store(d + (<usize>i << 2), z);
  for (; i < b; i++) store<f32>(d + (<usize>i << 2), 0);
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
    col2imPlane(ci, H, W, ksize, stride, padTop, padLeft, Ho, Wo, dcol, Ho * Wo, dx + (<usize>(ci * H * W) << 2), beta);
  }
}

/**
 * dx[n, ci, iy, ix] = beta·dx + Σ over the (ky, kx, oy, ox) that read it of dcol[(ci, ky, kx), (n, oy, ox)]
 *   dcol: (Cin·ksize·ksize, nb·Ho·Wo)    dx: (nb, Cin, H, W)
 * The adjoint of conv2d_im2col_batch_f32. Each thread owns whole (image, channel) planes; terms are added
 * in (ky, kx, oy) order as in conv2d_col2im_f32: deterministic.
 */
export function conv2d_col2im_batch_f32(
  nb: i32, Cin: i32, H: i32, W: i32, ksize: i32, stride: i32, padTop: i32, padLeft: i32, Ho: i32, Wo: i32,
  dcol: usize, dx: usize, beta: f32, ith: i32, nth: i32,
): void {
  const P = Ho * Wo;
  const units = nb * Cin;
  const u1 = sliceEnd(units, ith, nth, 1);
  for (let u = sliceStart(units, ith, nth, 1); u < u1; u++) {
    const n = u / Cin;
    const ci = u - n * Cin;
    col2imPlane(ci, H, W, ksize, stride, padTop, padLeft, Ho, Wo, dcol + (<usize>(n * P) << 2), nb * P, dx + (<usize>(u * H * W) << 2), beta);
  }
}

/** One channel plane of col2im: rows (ci, ky, kx) of dcol (row stride ldcol) scattered onto `plane` (H×W). */
// @ts-ignore: decorator
@inline
function col2imPlane(
  ci: i32, H: i32, W: i32, ksize: i32, stride: i32, padTop: i32, padLeft: i32, Ho: i32, Wo: i32,
  dcol: usize, ldcol: i32, plane: usize, beta: f32,
): void {
  if (beta == 0) memory.fill(plane, 0, <usize>(H * W) << 2);
  for (let ky = 0; ky < ksize; ky++) {
    for (let kx = 0; kx < ksize; kx++) {
      const src = dcol + (<usize>((ci * ksize + ky) * ksize + kx) * <usize>ldcol << 2);
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

/**
 * dst[c, n·P + p] = src[n, c, p]   src: (nb, C, P), dst: (C, nb·P): a batch of channel-major images laid
 * side by side per channel (dy as the GEMM operand of the batch-folded conv backward). Threads split (c, n).
 */
export function batch_to_rows_f32(nb: i32, C: i32, P: i32, src: usize, dst: usize, ith: i32, nth: i32): void {
  const units = C * nb;
  const u1 = sliceEnd(units, ith, nth, 1);
  const bytes = <usize>P << 2;
  for (let u = sliceStart(units, ith, nth, 1); u < u1; u++) {
    const c = u / nb;
    const n = u - c * nb;
    memory.copy(dst + <usize>u * bytes, src + <usize>(n * C + c) * bytes, bytes);
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
