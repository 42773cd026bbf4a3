// The packed SGEMM engine shared by gemm.ts and conv.ts (GotoBLAS structure): B is packed into KC×NR
// panels, A into MR×KC panels, and a register-blocked MR×NR micro-kernel runs over them. Not re-exported
// by index.ts: the kernels that use it live in gemm.ts and conv.ts.
//
// Determinism: every element of C is computed by one thread, with K cut into blocks of the fixed size KC
// (never depending on nth), each block summed in order by the micro-kernel and added to C in order; the
// micro-kernels sum each element's k in the same order whichever computes it: the full MR×NR one, or for
// the leftover rows at the end of M microKernel4/microKernel2 (rows 0–3 / 0–1 of the same tile); panels
// past the matrix edge are zero-padded by the packers. A full tile inside one image of C (alpha = 1) is
// stored straight from the registers into C; otherwise the tile goes through a buffer and storeTiles
// writes its valid part. Which kernel and which store a tile gets depends on its position only (leftover
// rows exist only at the end of M), never on nth. So C is bit-identical for any thread count.
import { sliceStart, sliceEnd, madd } from './shared';

/** Rows of the micro-tile. V8 gives Wasm SIMD 15 XMM registers: MR·NR/4 accumulators + NR/4 B vectors
 * + 1 broadcast must fit, and mul+add needs one more temporary than the fused relaxed_madd. Measured on
 * the project's 2-core test machine: 6×8 with relaxed_madd (12 + 2 + 1 = 15) and 5×8 with mul+add (10 + 2 + 1 + 1 = 14). */
export const MR: i32 = ASC_FEATURE_RELAXED_SIMD ? 6 : 5;
/** Columns of the micro-tile: two v128 of B per k. */
export const NR: i32 = 8;
/** Depth of a packed block. Fixed (not derived from the thread count): it sets the summation order. */
export const KC: i32 = 256;
/** Rows of A packed at a time (a multiple of MR; MC×KC floats stay in L2). */
export const MC: i32 = MR * 16;
/** Columns of B packed at a time (a multiple of NR). */
export const NC: i32 = 512;

// Layout of one thread's workspace: [ConvGeometry | conv column offsets | tile MR×NR | A panels MC×KC |
// B panels KC×NC].
const GEOMETRY_BYTES: usize = 64;
// i32 (image, iy0, ix0) of each of the NR columns of a conv panel, then packPanelGather's NR lane masks
// and NR byte offsets
const COLUMNS_BYTES: usize = 192;
const TILE_BYTES: usize = 256; // MR×NR floats; with the above, keeps the panels 64-byte aligned
const A_PACK_BYTES: usize = <usize>(MC * KC) << 2;
const B_PACK_BYTES: usize = <usize>(KC * NC) << 2;
/** Bytes of workspace one thread needs (exported by index.ts: the TS side gets each build's value generated). */
export const WORKSPACE_BYTES: usize = GEOMETRY_BYTES + COLUMNS_BYTES + TILE_BYTES + A_PACK_BYTES + B_PACK_BYTES;

/** Where op(B) comes from. */
export const B_DENSE: i32 = 0; // op(B)[k, j] = B[k·ldb + j]
export const B_TRANS: i32 = 1; // op(B)[k, j] = B[j·ldb + k]
export const B_CONV: i32 = 2; // op(B)[k, j] = implicit im2col of an image, see ConvGeometry

/** Bias modes: none, bias[i] added to row i (conv output channels), bias[j] added to column j (linear). */
export const BIAS_NONE: i32 = 0;
export const BIAS_ROW: i32 = 1;
export const BIAS_COL: i32 = 2;

/**
 * Geometry of the implicit im2col (B_CONV), stored at the start of the calling thread's workspace by the
 * conv kernel. The batch is folded into the columns: op(B)[k, j] with k = (ci, ky, kx) and
 * j = (n, oy, ox) is x[n, ci, oy·stride − padTop + ky, ox·stride − padLeft + kx], or 0 outside the image
 *   x: (batch, Cin, H, W)
 * and C's column j is y[n, :, oy, ox] of y: (batch, M, Ho, Wo), i.e. image n of C starts at n·M·ldc
 * with ldc = Ho·Wo. Folding the batch in lets one packed block of weights serve every image (small
 * images would otherwise re-pack the weights for a few dozen columns).
 */
// @ts-ignore: decorator
@unmanaged
export class ConvGeometry {
  H: i32;
  W: i32;
  Wo: i32;
  Cin: i32;
  ksize: i32;
  stride: i32;
  padTop: i32;
  padLeft: i32;
  /** Ho·Wo: columns per image. */
  P: i32;
}

/** The geometry slot of thread-owned workspace `ws`. */
// @ts-ignore: decorator
@inline
export function convGeometry(ws: usize): ConvGeometry {
  return changetype<ConvGeometry>(ws);
}

/**
 * Stores one row of a tile, two v128: d[0:8] = c (the tile buffer, or C's first K block without bias),
 * c + bias (C's first block with a row bias), or d + c (C's later K blocks). These are storeTile's
 * operations for alpha = 1, beta = 0 in the same order, so storing from the registers gives the same bits.
 */
// @ts-ignore: decorator
@inline
function storeRow(d: usize, c0: v128, c1: v128, bias: usize, acc: bool): void {
  if (acc) {
    v128.store(d, f32x4.add(v128.load(d), c0));
    v128.store(d, f32x4.add(v128.load(d, 16), c1), 16);
  } else if (bias) {
    const b = v128.load32_splat(bias);
    v128.store(d, f32x4.add(c0, b));
    v128.store(d, f32x4.add(c1, b), 16);
  } else {
    v128.store(d, c0);
    v128.store(d, c1, 16);
  }
}

/**
 * d (MR rows of NR, row stride ldd floats) = Σ_k pa[k, 0:MR] ⊗ pb[k, 0:NR] over kc steps, stored as
 * storeRow says: into the tile buffer (ldd = NR, no bias), or straight into C for a full tile when
 * alpha = 1 and beta = 0 (bias: row 0's bias or 0; acc: a later K block, added to C).
 * Kept out of the driver on purpose: inlined there, V8 runs out of registers and spills accumulators.
 * The k loop is not unrolled in source either (V8 then hoists loads and spills). Rows ≥ 5 vanish at
 * compile time when MR = 5.
 */
function microKernel(kc: i32, pa: usize, pb: usize, d: usize, ldd: i32, bias: usize, acc: bool): void {
  const zero = f32x4.splat(0);
  let c00 = zero, c01 = zero, c10 = zero, c11 = zero, c20 = zero, c21 = zero;
  let c30 = zero, c31 = zero, c40 = zero, c41 = zero, c50 = zero, c51 = zero;
  for (let k = 0; k < kc; k++) {
    const b0 = v128.load(pb);
    const b1 = v128.load(pb, 16);
    // v128.load32_splat broadcasts straight from memory (f32x4.splat(load) is 10–25% slower).
    let a = v128.load32_splat(pa);
    c00 = madd(a, b0, c00);
    c01 = madd(a, b1, c01);
    a = v128.load32_splat(pa, 4);
    c10 = madd(a, b0, c10);
    c11 = madd(a, b1, c11);
    a = v128.load32_splat(pa, 8);
    c20 = madd(a, b0, c20);
    c21 = madd(a, b1, c21);
    a = v128.load32_splat(pa, 12);
    c30 = madd(a, b0, c30);
    c31 = madd(a, b1, c31);
    a = v128.load32_splat(pa, 16);
    c40 = madd(a, b0, c40);
    c41 = madd(a, b1, c41);
    if (MR > 5) {
      a = v128.load32_splat(pa, 20);
      c50 = madd(a, b0, c50);
      c51 = madd(a, b1, c51);
    }
    pa += <usize>MR << 2;
    pb += <usize>NR << 2;
  }
  const step = <usize>ldd << 2;
  const bstep: usize = bias ? 4 : 0;
  storeRow(d, c00, c01, bias, acc);
  storeRow(d + step, c10, c11, bias + bstep, acc);
  storeRow(d + 2 * step, c20, c21, bias + 2 * bstep, acc);
  storeRow(d + 3 * step, c30, c31, bias + 3 * bstep, acc);
  storeRow(d + 4 * step, c40, c41, bias + 4 * bstep, acc);
  if (MR > 5) storeRow(d + 5 * step, c50, c51, bias + 5 * bstep, acc);
}

/**
 * Rows 0–3 of microKernel (pa keeps its MR-row panel layout): the leftover tile when ≤ 4 rows are left
 * (Cout = 16 is 6 + 6 + 4 rows). Each accumulator sums its k in the same order as in microKernel, so a
 * row gets the same bits whichever kernel computes it.
 */
function microKernel4(kc: i32, pa: usize, pb: usize, d: usize, ldd: i32, bias: usize, acc: bool): void {
  const zero = f32x4.splat(0);
  let c00 = zero, c01 = zero, c10 = zero, c11 = zero, c20 = zero, c21 = zero, c30 = zero, c31 = zero;
  for (let k = 0; k < kc; k++) {
    const b0 = v128.load(pb);
    const b1 = v128.load(pb, 16);
    let a = v128.load32_splat(pa);
    c00 = madd(a, b0, c00);
    c01 = madd(a, b1, c01);
    a = v128.load32_splat(pa, 4);
    c10 = madd(a, b0, c10);
    c11 = madd(a, b1, c11);
    a = v128.load32_splat(pa, 8);
    c20 = madd(a, b0, c20);
    c21 = madd(a, b1, c21);
    a = v128.load32_splat(pa, 12);
    c30 = madd(a, b0, c30);
    c31 = madd(a, b1, c31);
    pa += <usize>MR << 2;
    pb += <usize>NR << 2;
  }
  const step = <usize>ldd << 2;
  const bstep: usize = bias ? 4 : 0;
  storeRow(d, c00, c01, bias, acc);
  storeRow(d + step, c10, c11, bias + bstep, acc);
  storeRow(d + 2 * step, c20, c21, bias + 2 * bstep, acc);
  storeRow(d + 3 * step, c30, c31, bias + 3 * bstep, acc);
}

/** Rows 0–1 of microKernel, as microKernel4 (Cout = 32 is 5·6 + 2 rows; Cout = 1, the output conv). */
function microKernel2(kc: i32, pa: usize, pb: usize, d: usize, ldd: i32, bias: usize, acc: bool): void {
  const zero = f32x4.splat(0);
  let c00 = zero, c01 = zero, c10 = zero, c11 = zero;
  for (let k = 0; k < kc; k++) {
    const b0 = v128.load(pb);
    const b1 = v128.load(pb, 16);
    let a = v128.load32_splat(pa);
    c00 = madd(a, b0, c00);
    c01 = madd(a, b1, c01);
    a = v128.load32_splat(pa, 4);
    c10 = madd(a, b0, c10);
    c11 = madd(a, b1, c11);
    pa += <usize>MR << 2;
    pb += <usize>NR << 2;
  }
  const step = <usize>ldd << 2;
  storeRow(d, c00, c01, bias, acc);
  storeRow(d + step, c10, c11, bias ? bias + 4 : 0, acc);
}

/**
 * C[0:mr, 0:nr] ← alpha·t + beta·C + bias on the first K block (C is not read when beta = 0, as in BLAS),
 * C ← C + alpha·t on later ones. (i0, j0): the tile's place in C, to index the bias.
 */
function storeTile(
  t: usize, mr: i32, nr: i32, c: usize, ldc: i32, alpha: f32, beta: f32, first: bool,
  bias: usize, biasMode: i32, i0: i32, j0: i32,
): void {
  const va = f32x4.splat(alpha);
  if (!first && nr == NR) {
    // The bulk of the stores when K spans several blocks: full-width C rows += alpha·t.
    for (let r = 0; r < mr; r++) {
      const crow = c + (<usize>(r * ldc) << 2);
      const trow = t + (<usize>(r * NR) << 2);
      v128.store(crow, f32x4.add(v128.load(crow), f32x4.mul(va, v128.load(trow))));
      v128.store(crow, f32x4.add(v128.load(crow, 16), f32x4.mul(va, v128.load(trow, 16))), 16);
    }
    return;
  }
  const vb = f32x4.splat(beta);
  for (let r = 0; r < mr; r++) {
    const crow = c + (<usize>(r * ldc) << 2);
    const trow = t + (<usize>(r * NR) << 2);
    const rowBias: f32 = first && biasMode == BIAS_ROW ? load<f32>(bias + (<usize>(i0 + r) << 2)) : 0;
    let j = 0;
    for (; j + 4 <= nr; j += 4) {
      const p = crow + (<usize>j << 2);
      let v = f32x4.mul(va, v128.load(trow + (<usize>j << 2)));
      if (!first) v = f32x4.add(v128.load(p), v);
      else {
        if (beta != 0) v = f32x4.add(v, f32x4.mul(vb, v128.load(p)));
        if (biasMode == BIAS_ROW) v = f32x4.add(v, f32x4.splat(rowBias));
        else if (biasMode == BIAS_COL) v = f32x4.add(v, v128.load(bias + (<usize>(j0 + j) << 2)));
      }
      v128.store(p, v);
    }
    for (; j < nr; j++) {
      const p = crow + (<usize>j << 2);
      let v = alpha * load<f32>(trow + (<usize>j << 2));
      if (!first) v = load<f32>(p) + v;
      else {
        if (beta != 0) v = v + beta * load<f32>(p);
        if (biasMode == BIAS_ROW) v = v + rowBias;
        else if (biasMode == BIAS_COL) v = v + load<f32>(bias + (<usize>(j0 + j) << 2));
      }
      store<f32>(p, v);
    }
  }
}

/**
 * Stores tile t (rows i…i+mr, columns j…j+nr of C) where C's columns come in images of P columns, image
 * n starting at C + n·M·ldc: a tile that straddles images is stored in pieces.
 */
// @ts-ignore: decorator
@inline
function storeTiles(
  t: usize, mr: i32, nr: i32, i: i32, j: i32, P: i32, M: i32, C: usize, ldc: i32,
  alpha: f32, beta: f32, first: bool, bias: usize, biasMode: i32,
): void {
  let c = 0;
  while (c < nr) {
    const jj = j + c;
    const n = jj / P;
    const p = jj - n * P;
    const count = min(nr - c, P - p);
    const at = C + ((<usize>n * <usize>M * <usize>ldc + <usize>(i * ldc + p)) << 2);
    storeTile(t + (<usize>c << 2), mr, count, at, ldc, alpha, beta, first, bias, biasMode, i, jj);
    c += count;
  }
}

/**
 * Transposes the 4×4 block whose rows are 4 floats at s, s + sStride, s + 2·sStride, s + 3·sStride into
 * the rows d, d + dStride, … (d[i][r] = s[r][i]). Packing panels is a transpose; doing it 4×4 in
 * registers instead of element by element matters when the packed matrix is reused for few flops
 * (N = 64 columns, or a conv's weights per 8×8 image). Also used by conv-weight-grad.ts's dy panels and
 * winograd.ts's phase split.
 */
// @ts-ignore: decorator
@inline
export function transpose4x4(s: usize, sStride: usize, d: usize, dStride: usize): void {
  const v0 = v128.load(s);
  const v1 = v128.load(s + sStride);
  const v2 = v128.load(s + 2 * sStride);
  const v3 = v128.load(s + 3 * sStride);
  const t0 = f32x4.shuffle(v0, v1, 0, 4, 1, 5); // a0 b0 a1 b1
  const t1 = f32x4.shuffle(v0, v1, 2, 6, 3, 7); // a2 b2 a3 b3
  const t2 = f32x4.shuffle(v2, v3, 0, 4, 1, 5); // c0 d0 c1 d1
  const t3 = f32x4.shuffle(v2, v3, 2, 6, 3, 7); // c2 d2 c3 d3
  v128.store(d, f32x4.shuffle(t0, t2, 0, 1, 4, 5));
  v128.store(d + dStride, f32x4.shuffle(t0, t2, 2, 3, 6, 7));
  v128.store(d + 2 * dStride, f32x4.shuffle(t1, t3, 0, 1, 4, 5));
  v128.store(d + 3 * dStride, f32x4.shuffle(t1, t3, 2, 3, 6, 7));
}

/** Packs op(A)[i0 : i0+mc, k0 : k0+kc] into MR-row panels pa[panel][k][r], zero rows past mc. */
function packA(transA: bool, A: usize, lda: i32, i0: i32, mc: i32, k0: i32, kc: i32, pa: usize): void {
  const ldaBytes = <usize>lda << 2;
  for (let ir = 0; ir < mc; ir += MR) {
    const mr = min(MR, mc - ir);
    const dst = pa + (<usize>(ir * kc) << 2);
    if (transA) {
      // op(A)[i, k] = A[k·lda + i]: each k reads mr consecutive values.
      for (let k = 0; k < kc; k++) {
        const src = A + (<usize>(k0 + k) * ldaBytes) + (<usize>(i0 + ir) << 2);
        const d = dst + (<usize>(k * MR) << 2);
        let r = 0;
        if (mr == MR) {
          v128.store(d, v128.load(src));
          r = 4;
        }
        for (; r < mr; r++) store<f32>(d + (<usize>r << 2), load<f32>(src + (<usize>r << 2)));
        for (; r < MR; r++) store<f32>(d + (<usize>r << 2), 0);
      }
    } else if (mr == MR) {
      // op(A)[i, k] = A[i·lda + k]: rows 0–3 transposed 4×4 in registers, the other rows lane by lane.
      const src = A + (<usize>(i0 + ir) * ldaBytes) + (<usize>k0 << 2);
      const dStride = <usize>MR << 2;
      let k = 0;
      for (; k + 4 <= kc; k += 4) {
        const s = src + (<usize>k << 2);
        const d = dst + (<usize>(k * MR) << 2);
        transpose4x4(s, ldaBytes, d, dStride);
        for (let r = 4; r < MR; r++) {
          const v = v128.load(s + <usize>r * ldaBytes);
          const dr = d + (<usize>r << 2);
          v128.store32_lane(dr, v, 0);
          v128.store32_lane(dr + dStride, v, 1);
          v128.store32_lane(dr + 2 * dStride, v, 2);
          v128.store32_lane(dr + 3 * dStride, v, 3);
        }
      }
      for (; k < kc; k++) {
        for (let r = 0; r < MR; r++) {
          store<f32>(dst + (<usize>(k * MR + r) << 2), load<f32>(src + <usize>r * ldaBytes + (<usize>k << 2)));
        }
      }
    } else {
      for (let r = 0; r < MR; r++) {
        const d = dst + (<usize>r << 2);
        const src = A + (<usize>(i0 + ir + r) * ldaBytes) + (<usize>k0 << 2);
        for (let k = 0; k < kc; k++) store<f32>(d + (<usize>(k * MR) << 2), r < mr ? load<f32>(src + (<usize>k << 2)) : 0);
      }
    }
  }
}

/** One NR-column panel of a dense op(B): pb[k][c] = op(B)[k0 + k, j0 + c], zero columns past nr (full
 * panels of a non-transposed B are packed by packRowsB instead). */
function packPanelDense(trans: bool, B: usize, ldb: i32, k0: i32, kc: i32, j0: i32, nr: i32, d: usize): void {
  const ldbBytes = <usize>ldb << 2;
  const dStride = <usize>NR << 2;
  if (trans && nr == NR) {
    // op(B)[k, j] = B[j·ldb + k]: two 4×4 transposes (columns 0–3 and 4–7) per 4 values of k.
    const src = B + <usize>j0 * ldbBytes + (<usize>k0 << 2);
    let k = 0;
    for (; k + 4 <= kc; k += 4) {
      const s = src + (<usize>k << 2);
      const dk = d + (<usize>(k * NR) << 2);
      transpose4x4(s, ldbBytes, dk, dStride);
      transpose4x4(s + 4 * ldbBytes, ldbBytes, dk + 16, dStride);
    }
    for (; k < kc; k++) {
      for (let c = 0; c < NR; c++) {
        store<f32>(d + (<usize>(k * NR + c) << 2), load<f32>(src + <usize>c * ldbBytes + (<usize>k << 2)));
      }
    }
  } else if (trans) {
    for (let c = 0; c < NR; c++) {
      const dc = d + (<usize>c << 2);
      const src = B + <usize>(j0 + c) * ldbBytes + (<usize>k0 << 2);
      for (let k = 0; k < kc; k++) store<f32>(dc + (<usize>(k * NR) << 2), c < nr ? load<f32>(src + (<usize>k << 2)) : 0);
    }
  } else {
    for (let k = 0; k < kc; k++) {
      const src = B + <usize>(k0 + k) * ldbBytes + (<usize>j0 << 2);
      const dk = d + (<usize>(k * NR) << 2);
      for (let c = 0; c < NR; c++) store<f32>(dk + (<usize>c << 2), c < nr ? load<f32>(src + (<usize>c << 2)) : 0);
    }
  }
}

/**
 * dk[0:NR] = row[ix + c·s] for c < NR, 0 where ix + c·s falls outside [0, W): one k of a conv panel
 * whose NR output pixels lie in one output row, reading input row `row` (W values).
 */
// @ts-ignore: decorator
@inline
function packRow(row: usize, ix: i32, s: i32, W: i32, dk: usize): void {
  if (s == 1 && ix >= 0 && ix + NR <= W) {
    const src = row + (<usize>ix << 2);
    v128.store(dk, v128.load(src));
    v128.store(dk, v128.load(src, 16), 16);
  } else if (s == 1 && ix == -1 && NR - 1 <= W) {
    // left edge of a pad-1 conv: 0, x[0 … 6]
    v128.store(dk, f32x4.shuffle(f32x4.splat(0), v128.load(row), 0, 4, 5, 6));
    v128.store(dk, v128.load(row, 12), 16);
  } else if (s == 1 && ix >= 0 && ix + NR == W + 1) {
    // right edge of a pad-1 conv: x[ix … W−1], 0 (without reading past the row)
    const src = row + (<usize>ix << 2);
    v128.store(dk, v128.load(src));
    v128.store(dk, f32x4.shuffle(v128.load(src, 12), f32x4.splat(0), 1, 2, 3, 4), 16);
  } else if (s == 2 && ix >= 0 && ix + 2 * NR <= W) {
    // stride 2 (down-sampling): every other value of 16
    const src = row + (<usize>ix << 2);
    v128.store(dk, f32x4.shuffle(v128.load(src), v128.load(src, 16), 0, 2, 4, 6));
    v128.store(dk, f32x4.shuffle(v128.load(src, 32), v128.load(src, 48), 0, 2, 4, 6), 16);
  } else {
    for (let c = 0; c < NR; c++) {
      const ixc = ix + c * s;
      store<f32>(dk + (<usize>c << 2), <u32>ixc < <u32>W ? load<f32>(row + (<usize>ixc << 2)) : 0);
    }
  }
}

/** One NR-column panel of the implicit im2col of x (see ConvGeometry), zero columns past nr.
 * `cols` (3·NR i32) holds the panel's per-column offsets. */
function packPanelConv(x: usize, g: ConvGeometry, cols: usize, k0: i32, kc: i32, j0: i32, nr: i32, d: usize): void {
  const H = g.H, W = g.W, Wo = g.Wo, ks = g.ksize, s = g.stride, P = g.P;
  const HW = H * W;
  const n0 = j0 / P;
  const p0 = j0 - n0 * P;
  const oy0 = p0 / Wo;
  const ox0 = p0 - oy0 * Wo;
  // A panel inside one output row (the common case when Wo is a multiple of NR): one input row per k.
  const oneRow = nr == NR && ox0 + NR <= Wo;
  // A full panel that wraps to the next output row(s) of the same image, in a stride-1 conv that keeps
  // the width (Wo = W: 3×3 pad 1, 1×1): input pixel (oy + ky − padTop, ox + kx − padLeft) is then at
  // flat offset j − n·P + (ky − padTop)·W + (kx − padLeft), the same shift for all 8 columns, so each k
  // is two vector loads masked by which columns fall inside the image (small images: 14×14, 7×7).
  // Taken for one-row panels too: its inner loop is cheaper than packRow's edge cases.
  const flat = nr == NR && s == 1 && Wo == W && (j0 + NR - 1) / P == n0;
  const imageBytes = <usize>(g.Cin * HW) << 2;
  if (flat) {
    for (let c = 0; c < NR; c++) {
      const oy = (p0 + c) / Wo;
      store<i32>(cols + (<usize>c << 2), oy);
      store<i32>(cols + (<usize>(NR + c) << 2), p0 + c - oy * Wo);
    }
    packPanelFlat(x + <usize>n0 * imageBytes, g, cols, p0, k0, kc, d);
    return;
  }
  if (!oneRow) {
    // Columns may straddle rows and images: look each one up once, not once per k.
    for (let c = 0; c < NR; c++) {
      const j = min(j0 + c, j0 + nr - 1);
      const n = j / P;
      const p = j - n * P;
      const oy = p / Wo;
      store<i32>(cols + (<usize>c << 2), n);
      // columns past nr get a row that no tap reaches, so they read as zero
      store<i32>(cols + (<usize>(NR + c) << 2), c < nr ? oy * s - g.padTop : -(1 << 20));
      store<i32>(cols + (<usize>(2 * NR + c) << 2), (p - oy * Wo) * s - g.padLeft);
    }
    packPanelGather(x, g, cols, k0, kc, d);
    return;
  }
  const xn = x + <usize>n0 * imageBytes;
  const iyRow = oy0 * s - g.padTop;
  const ixRow = ox0 * s - g.padLeft;
  let ci = k0 / (ks * ks);
  let ky = (k0 - ci * ks * ks) / ks;
  let kx = k0 - ci * ks * ks - ky * ks;
  for (let k = 0; k < kc; k++) {
    const dk = d + (<usize>(k * NR) << 2);
    const planeOff = <usize>(ci * HW) << 2;
    {
      const iy = iyRow + ky;
      if (<u32>iy >= <u32>H) {
        v128.store(dk, f32x4.splat(0));
        v128.store(dk, f32x4.splat(0), 16);
      } else {
        packRow(xn + planeOff + (<usize>(iy * W) << 2), ixRow + kx, s, W, dk);
      }
    }
    if (++kx == ks) {
      kx = 0;
      if (++ky == ks) {
        ky = 0;
        ci++;
      }
    }
  }
}

/**
 * The general case of packPanelConv: columns that straddle output rows or images, or a strided conv.
 * cols holds each column's image, first input row and column (a row no tap reaches past nr). As in
 * packPanelFlat, taps are outside and channels inside: per tap, each column's byte offset in its image
 * (0 where it falls outside, then masked) and the lane masks are worked out once; per channel, the 8
 * values are loaded lane by lane into two vectors.
 */
function packPanelGather(x: usize, g: ConvGeometry, cols: usize, k0: i32, kc: i32, d: usize): void {
  const H = g.H, W = g.W, ks = g.ksize;
  const HW = H * W;
  const kk = ks * ks;
  const planeBytes = <usize>HW << 2;
  const imageBytes = <usize>g.Cin * planeBytes;
  const rowStep = <usize>(kk * NR) << 2;
  const kEnd = k0 + kc;
  const valid = cols + (<usize>(3 * NR) << 2); // NR lane masks, then NR byte offsets
  for (let tap = 0; tap < kk; tap++) {
    const ciLo = k0 > tap ? (k0 - tap + kk - 1) / kk : 0;
    const ciHi = kEnd > tap ? (kEnd - 1 - tap) / kk + 1 : 0;
    if (ciLo >= ciHi) continue;
    const ky = tap / ks;
    const kx = tap - ky * ks;
    for (let c = 0; c < NR; c++) {
      const iy = load<i32>(cols + (<usize>(NR + c) << 2)) + ky;
      const ix = load<i32>(cols + (<usize>(2 * NR + c) << 2)) + kx;
      const inside = <u32>iy < <u32>H && <u32>ix < <u32>W;
      store<i32>(valid + (<usize>c << 2), inside ? -1 : 0);
      store<i32>(valid + (<usize>(NR + c) << 2), inside ? <i32>(<usize>load<i32>(cols + (<usize>c << 2)) * imageBytes + (<usize>(iy * W + ix) << 2)) : 0);
    }
    const mA = v128.load(valid), mB = v128.load(valid, 16);
    const offs = valid + (<usize>NR << 2);
    const o0 = <usize>load<i32>(offs), o1 = <usize>load<i32>(offs, 4), o2 = <usize>load<i32>(offs, 8), o3 = <usize>load<i32>(offs, 12);
    const o4 = <usize>load<i32>(offs, 16), o5 = <usize>load<i32>(offs, 20), o6 = <usize>load<i32>(offs, 24), o7 = <usize>load<i32>(offs, 28);
    let dk = d + (<usize>((ciLo * kk + tap - k0) * NR) << 2);
    let src = x + <usize>ciLo * planeBytes;
    for (let ci = ciLo; ci < ciHi; ci++) {
      let a = v128.load32_zero(src + o0);
      a = v128.load32_lane(src + o1, a, 1);
      a = v128.load32_lane(src + o2, a, 2);
      a = v128.load32_lane(src + o3, a, 3);
      let b = v128.load32_zero(src + o4);
      b = v128.load32_lane(src + o5, b, 1);
      b = v128.load32_lane(src + o6, b, 2);
      b = v128.load32_lane(src + o7, b, 3);
      v128.store(dk, v128.and(a, mA));
      v128.store(dk, v128.and(b, mB), 16);
      dk += rowStep;
      src += planeBytes;
    }
  }
}

/**
 * The `flat` case of packPanelConv: xn is the image, cols holds the panel's 8 oy then 8 ox.
 * k = (ci, ky, kx) is walked with the kernel tap t = (ky, kx) outside and ci inside: the lane masks, the
 * flat offset and the edge test depend on t only, so the inner loop is two masked loads and two stores
 * per k (the panel's rows are written with a stride of ks² rows, all inside one 8 KiB panel).
 */
function packPanelFlat(xn: usize, g: ConvGeometry, cols: usize, p0: i32, k0: i32, kc: i32, d: usize): void {
  const H = g.H, W = g.W, ks = g.ksize;
  const HW = H * W;
  const kk = ks * ks;
  const oyA = v128.load(cols), oyB = v128.load(cols, 16);
  const oxA = v128.load(cols, 32), oxB = v128.load(cols, 48);
  const vH = i32x4.splat(H), vW = i32x4.splat(W);
  const planeBytes = <usize>HW << 2;
  const rowStep = <usize>(kk * NR) << 2; // from (ci, t) to (ci + 1, t) in the panel
  const kEnd = k0 + kc;
  for (let tap = 0; tap < kk; tap++) {
    // channels whose k = ci·kk + tap falls in [k0, kEnd)
    const ciLo = k0 > tap ? (k0 - tap + kk - 1) / kk : 0;
    const ciHi = kEnd > tap ? (kEnd - 1 - tap) / kk + 1 : 0;
    if (ciLo >= ciHi) continue;
    const ky = tap / ks;
    const kx = tap - ky * ks;
    const dy = ky - g.padTop, dx = kx - g.padLeft;
    const vdy = i32x4.splat(dy), vdx = i32x4.splat(dx);
    // lanes whose input pixel lies inside the image (unsigned compare: negative → huge)
    const mA = v128.and(i32x4.lt_u(i32x4.add(oyA, vdy), vH), i32x4.lt_u(i32x4.add(oxA, vdx), vW));
    const mB = v128.and(i32x4.lt_u(i32x4.add(oyB, vdy), vH), i32x4.lt_u(i32x4.add(oxB, vdx), vW));
    const off = p0 + dy * W + dx; // flat offset of column 0's input pixel in a channel plane
    let dk = d + (<usize>((ciLo * kk + tap - k0) * NR) << 2);
    let src = xn + <usize>ciLo * planeBytes + (<usize>off << 2); // wraps when off < 0: not read then
    if (off >= 0 && off + NR <= HW) {
      for (let ci = ciLo; ci < ciHi; ci++) {
        v128.store(dk, v128.and(v128.load(src), mA));
        v128.store(dk, v128.and(v128.load(src, 16), mB), 16);
        dk += rowStep;
        src += planeBytes;
      }
    } else {
      // near the plane's first or last row the 8 values may run past it: only valid lanes are read
      for (let ci = ciLo; ci < ciHi; ci++) {
        const plane = xn + <usize>ci * planeBytes;
        for (let c = 0; c < NR; c++) {
          const iy = load<i32>(cols + (<usize>c << 2)) + dy;
          const ix = load<i32>(cols + (<usize>(NR + c) << 2)) + dx;
          store<f32>(dk + (<usize>c << 2), <u32>iy < <u32>H && <u32>ix < <u32>W ? load<f32>(plane + (<usize>(off + c) << 2)) : 0);
        }
        dk += rowStep;
      }
    }
  }
}

/**
 * The full panels of a non-transposed B, four rows at a time: B is read as four sequential streams and
 * each panel gets 128 contiguous bytes per step. (Panel by panel would read 32 bytes from each of kc
 * rows; row by row would write with the panel stride, kc·NR·4 = 8 KiB, which thrashes one L1 set.)
 * Returns the columns packed.
 */
function packRowsB(B: usize, ldb: i32, k0: i32, kc: i32, j0: i32, nc: i32, pb: usize): i32 {
  const full = nc - nc % NR;
  const ldbBytes = <usize>ldb << 2;
  const panelBytes = <usize>(kc * NR) << 2;
  let k = 0;
  for (; k + 4 <= kc; k += 4) {
    const s0 = B + <usize>(k0 + k) * ldbBytes + (<usize>j0 << 2);
    let d = pb + (<usize>(k * NR) << 2);
    for (let jr = 0; jr < full; jr += NR) {
      const s = s0 + (<usize>jr << 2);
      v128.store(d, v128.load(s));
      v128.store(d, v128.load(s, 16), 16);
      v128.store(d, v128.load(s + ldbBytes), 32);
      v128.store(d, v128.load(s + ldbBytes, 16), 48);
      v128.store(d, v128.load(s + 2 * ldbBytes), 64);
      v128.store(d, v128.load(s + 2 * ldbBytes, 16), 80);
      v128.store(d, v128.load(s + 3 * ldbBytes), 96);
      v128.store(d, v128.load(s + 3 * ldbBytes, 16), 112);
      d += panelBytes;
    }
  }
  for (; k < kc; k++) {
    const s0 = B + <usize>(k0 + k) * ldbBytes + (<usize>j0 << 2);
    let d = pb + (<usize>(k * NR) << 2);
    for (let jr = 0; jr < full; jr += NR) {
      const s = s0 + (<usize>jr << 2);
      v128.store(d, v128.load(s));
      v128.store(d, v128.load(s, 16), 16);
      d += panelBytes;
    }
  }
  return full;
}

/** Packs op(B)[k0 : k0+kc, j0 : j0+nc] into NR-column panels pb[panel][k][c]. */
function packB(bMode: i32, B: usize, ldb: i32, g: ConvGeometry, k0: i32, kc: i32, j0: i32, nc: i32, pb: usize): void {
  const cols = changetype<usize>(g) + GEOMETRY_BYTES;
  const done = bMode == B_DENSE ? packRowsB(B, ldb, k0, kc, j0, nc, pb) : 0;
  for (let jr = done; jr < nc; jr += NR) {
    const nr = min(NR, nc - jr);
    const d = pb + (<usize>(jr * kc) << 2);
    if (bMode == B_CONV) packPanelConv(B, g, cols, k0, kc, j0 + jr, nr, d);
    else packPanelDense(bMode == B_TRANS, B, ldb, k0, kc, j0 + jr, nr, d);
  }
}

/**
 * Thread ith's share of C = alpha·op(A)·op(B) + beta·C (+ bias), C: (M, N) row-major with leading
 * dimension ldc; op(A): (M, K); op(B): (K, N) as described by bMode. `ws` is this thread's own workspace
 * (WORKSPACE_BYTES; for B_CONV its ConvGeometry already filled in). The threads split M (in multiples of
 * MR) or N (in multiples of NR), whichever has more tiles; each packs what it needs, so no barrier.
 */
export function gemmDriver(
  transA: bool, bMode: i32, M: i32, N: i32, K: i32, alpha: f32,
  A: usize, lda: i32, B: usize, ldb: i32, beta: f32, C: usize, ldc: i32,
  bias: usize, biasMode: i32, ws: usize, ith: i32, nth: i32,
): void {
  let m0 = 0, m1 = M, n0 = 0, n1 = N;
  if ((M + MR - 1) / MR >= (N + NR - 1) / NR) {
    m0 = sliceStart(M, ith, nth, MR);
    m1 = sliceEnd(M, ith, nth, MR);
  } else {
    n0 = sliceStart(N, ith, nth, NR);
    n1 = sliceEnd(N, ith, nth, NR);
  }
  if (m0 >= m1 || n0 >= n1) return;
  const g = convGeometry(ws);
  // C is split into images of P columns each (one image, P = N, unless the batch is folded into N).
  const P = bMode == B_CONV ? g.P : max(N, 1);
  const t = ws + GEOMETRY_BYTES + COLUMNS_BYTES;
  const pa = t + TILE_BYTES;
  const pb = pa + A_PACK_BYTES;
  // When this thread's rows of op(A), all K blocks of them, fit the A workspace (the weights of every conv
  // of a small network), they are packed once, on the first column block, and reused by the others:
  // block pc at pa + pc·mpad (each earlier block is KC deep).
  const mpad = (m1 - m0 + MR - 1) / MR * MR;
  const resident = m1 - m0 <= MC && mpad * K <= MC * KC;
  // Full tiles go from the registers straight into C where that is the same arithmetic (alpha = 1, and
  // beta = 0 or a later K block; a column bias is added by storeTile).
  const direct = alpha == 1 && beta == 0 && biasMode != BIAS_COL;
  // Accumulating into C (beta = 1: the backward passes' dx += …) without a bias: the first K block's
  // C ← t + 1·C is storeRow's C + t, so those tiles go from the registers too.
  const accFirst = alpha == 1 && beta == 1 && biasMode == BIAS_NONE;
  for (let jc = n0; jc < n1; jc += NC) {
    const nc = min(NC, n1 - jc);
    // K = 0 still makes one (empty) block, so that C ← beta·C + bias happens.
    let pc = 0;
    do {
      const kc = min(KC, K - pc);
      const first = pc == 0;
      packB(bMode, B, ldb, g, pc, kc, jc, nc, pb);
      for (let ic = m0; ic < m1; ic += MC) {
        const mc = min(MC, m1 - ic);
        const paBlock = resident ? pa + (<usize>(pc * mpad) << 2) : pa;
        if (!resident || jc == n0) packA(transA, A, lda, ic, mc, pc, kc, paBlock);
        const rowBias = first && biasMode == BIAS_ROW ? bias : 0;
        for (let jr = 0; jr < nc; jr += NR) {
          const nr = min(NR, nc - jr);
          const j = jc + jr;
          const panelB = pb + (<usize>(jr * kc) << 2);
          // a full panel inside one image of C can be stored from the registers
          const n = j / P;
          const p = j - n * P;
          const inC = (direct || accFirst || !first) && alpha == 1 && nr == NR && p + NR <= P;
          const addC = !first || accFirst;
          const cAt = C + ((<usize>n * <usize>M * <usize>ldc + <usize>p) << 2);
          // Full row tiles, then the leftover rows (only at the end of M). Two call sites also keep
          // binaryen from inlining the micro-kernel here (it inlines any function with one caller).
          let ir = 0;
          for (; ir + MR <= mc; ir += MR) {
            const i = ic + ir;
            const panelA = paBlock + (<usize>(ir * kc) << 2);
            if (inC) microKernel(kc, panelA, panelB, cAt + (<usize>(i * ldc) << 2), ldc, rowBias ? rowBias + (<usize>i << 2) : 0, addC);
            else {
              microKernel(kc, panelA, panelB, t, NR, 0, false);
              storeTiles(t, MR, nr, i, j, P, M, C, ldc, alpha, beta, first, bias, biasMode);
            }
          }
          if (ir < mc) {
            // leftover rows (only at the end of M, so which kernel runs a row never depends on nth)
            const mr = mc - ir;
            const i = ic + ir;
            const panelA = paBlock + (<usize>(ir * kc) << 2);
            const rows = mr <= 2 ? 2 : mr <= 4 ? 4 : MR;
            const here = inC && mr == rows;
            const d = here ? cAt + (<usize>(i * ldc) << 2) : t;
            const ld = here ? ldc : NR;
            const rb: usize = here && rowBias ? rowBias + (<usize>i << 2) : 0;
            const acc = here && addC;
            if (rows == 2) microKernel2(kc, panelA, panelB, d, ld, rb, acc);
            else if (rows == 4) microKernel4(kc, panelA, panelB, d, ld, rb, acc);
            else microKernel(kc, panelA, panelB, d, ld, rb, acc);
            if (!here) storeTiles(t, mr, nr, i, j, P, M, C, ldc, alpha, beta, first, bias, biasMode);
          }
        }
      }
      pc += KC;
    } while (pc < K);
  }
}
