// The weight gradient of conv2d, dW (Cout, Cin·k·k) (+)= Σ_{n,p} dy[n, :, p] ⊗ col(x)[:, (n, p)], without
// an explicit im2col. It is the GEMM dWᵀ = col(x) · dyᵀ with the pixels l = (n, oy, ox) as K, run by a
// micro-kernel that broadcasts the im2col values straight from a zero-padded copy of x and takes dy from
// KC×8 panels packed per K block:
//   xp   = pad(x)                conv2d_pad_input_f32 (one dispatch; every thread reads all of it)
//   dW (+)= Σ_blocks colᵀ·dyᵀ   conv2d_weight_grad_f32 (threads split the rows of dWᵀ)
// Rows of dWᵀ come in groups of three whose im2col values sit at consecutive floats of xp for every pixel:
// k = 3: the group (ci, ky) is kx = 0, 1, 2 of a channel-major xp (N, Cin, Hp, Wp); k = 1: three
// consecutive ci of a channels-last xp (N, Hp, Wp, Cin). So a pixel needs one offset (a per-block table),
// and a group its base pointer; the three loads are immediate offsets 0, 4, 8.
//
// Same bits as the im2col + gemm_f32 formulation it replaces: each element of dW is, per chunk of nb
// images, per block of KC pixels (from the chunk's start), an fma chain over the block's pixels in order
// from zero, the blocks added to dW in order (the first onto beta·dW). The multiply's operands are swapped
// (x·dy instead of dy·x), which fma does not see. Threads own whole elements: bit-identical for any nth.
import { sliceStart, sliceEnd, madd } from './shared';
import { KC, WORKSPACE_BYTES, transpose4x4 } from './gemm-core';

// One thread's workspace: [pixel offset table, KC u32 | two tiles, 6×8 f32 | dy panels, KC × CO_GROUP f32]
const TABLE_BYTES: usize = <usize>KC << 2;
const TILE_BYTES: usize = 512; // two 6×8 tile buffers
/** Output channels packed per block of dy: KC·CO_GROUP floats (256 KiB) of the GEMM workspace. */
const CO_GROUP: i32 = 256;
/** Groups of three rows per tile: 6×8 tiles (12 accumulators) with relaxed_madd, 3×8 with mul+add
 * (which needs a temporary per product: 12 accumulators would not fit V8's 15 registers). */
const GROUPS: i32 = ASC_FEATURE_RELAXED_SIMD ? 2 : 1;
/** The whole layout of one thread's workspace: table, tiles, dy panels. */
const LAYOUT_BYTES: usize = TABLE_BYTES + TILE_BYTES + ((<usize>KC * <usize>CO_GROUP) << 2);

/**
 * xp = x with zero padding, for conv2d_weight_grad_f32:
 *   x: (N, Cin, H, W)   xp: (N, Cin, Hp, Wp) (channelsLast 0) or (N, Hp, Wp, Cin) (channelsLast 1)
 * with xp[n, ci, iy + padTop, ix + padLeft] = x[n, ci, iy, ix] and zeros elsewhere (Hp ≥ H + padTop,
 * Wp ≥ W + padLeft). Threads split planes (channel-major) or rows (channels-last).
 */
export function conv2d_pad_input_f32(
  N: i32, Cin: i32, H: i32, W: i32, padTop: i32, padLeft: i32, Hp: i32, Wp: i32, channelsLast: i32,
  x: usize, xp: usize, ith: i32, nth: i32,
): void {
  const z = f32x4.splat(0);
  if (channelsLast == 0) {
    const u1 = sliceEnd(N * Cin, ith, nth, 1);
    for (let u = sliceStart(N * Cin, ith, nth, 1); u < u1; u++) {
      const src = x + (<usize>u * <usize>(H * W) << 2);
      const dst = xp + (<usize>u * <usize>(Hp * Wp) << 2);
      for (let r = 0; r < Hp; r++) {
        const d = dst + (<usize>(r * Wp) << 2);
        const iy = r - padTop;
        let c = 0;
        if (<u32>iy < <u32>H) {
          for (; c < padLeft; c++) store<f32>(d + (<usize>c << 2), 0);
          const s = src + (<usize>(iy * W) << 2) - (<usize>padLeft << 2); // s + 4c is x[iy, c − padLeft]
          const end = padLeft + W;
          for (; c + 4 <= end; c += 4) v128.store(d + (<usize>c << 2), v128.load(s + (<usize>c << 2)));
          for (; c < end; c++) store<f32>(d + (<usize>c << 2), load<f32>(s + (<usize>c << 2)));
        }
        for (; c + 4 <= Wp; c += 4) v128.store(d + (<usize>c << 2), z);
        for (; c < Wp; c++) store<f32>(d + (<usize>c << 2), 0);
      }
    }
    return;
  }
  if (padTop == 0 && padLeft == 0 && Hp == H && Wp == W) {
    // no padding (every 1×1 conv here): a transpose (Cin, P) → (P, Cin) per image, 4×4 blocks in registers
    const P = H * W;
    const cin4 = Cin & ~3;
    const p4 = P & ~3;
    const srcStride = <usize>P << 2;
    const dstStride = <usize>Cin << 2;
    const n1 = sliceEnd(N, ith, nth, 1);
    for (let n = sliceStart(N, ith, nth, 1); n < n1; n++) {
      const src = x + <usize>n * <usize>Cin * srcStride;
      const dst = xp + <usize>n * <usize>P * dstStride;
      for (let ci = 0; ci < cin4; ci += 4) {
        for (let p = 0; p < p4; p += 4) {
          transpose4x4(src + <usize>ci * srcStride + (<usize>p << 2), srcStride, dst + <usize>p * dstStride + (<usize>ci << 2), dstStride);
        }
        for (let p = p4; p < P; p++) {
          for (let c = ci; c < ci + 4; c++) store<f32>(dst + <usize>p * dstStride + (<usize>c << 2), load<f32>(src + <usize>c * srcStride + (<usize>p << 2)));
        }
      }
      for (let c = cin4; c < Cin; c++) {
        for (let p = 0; p < P; p++) store<f32>(dst + <usize>p * dstStride + (<usize>c << 2), load<f32>(src + <usize>c * srcStride + (<usize>p << 2)));
      }
    }
    return;
  }
  const u1 = sliceEnd(N * Hp, ith, nth, 1);
  for (let u = sliceStart(N * Hp, ith, nth, 1); u < u1; u++) {
    const n = u / Hp;
    const iy = u - n * Hp - padTop;
    const d = xp + (<usize>u * <usize>(Wp * Cin) << 2);
    const inside = <u32>iy < <u32>H;
    for (let c = 0; c < Wp; c++) {
      const ix = c - padLeft;
      const dc = d + (<usize>(c * Cin) << 2);
      if (inside && <u32>ix < <u32>W) {
        const s = x + (<usize>((n * Cin * H + iy) * W + ix) << 2);
        const planeBytes = <usize>(H * W) << 2;
        for (let ci = 0; ci < Cin; ci++) store<f32>(dc + (<usize>ci << 2), load<f32>(s + <usize>ci * planeBytes));
      } else {
        for (let ci = 0; ci < Cin; ci++) store<f32>(dc + (<usize>ci << 2), 0);
      }
    }
  }
}

/**
 * The 6×8 (3×8 without relaxed SIMD) tile t[r][c] = Σ_k colᵀ[k, r] · dyᵀ[k, c] over kc pixels, written to
 * t (rows of 8 floats). Row r < 3 is group 1's value at b1 + tab[k] + 4r, row 3 + r group 2's at
 * b2 + tab[k] + 4r; pb is a KC×8 dy panel. Kept out of the driver, as gemm-core's microKernel.
 */
function tile(kc: i32, tab: usize, b1: usize, b2: usize, pb: usize, t: usize): void {
  const zero = f32x4.splat(0);
  let c00 = zero, c01 = zero, c10 = zero, c11 = zero, c20 = zero, c21 = zero;
  let c30 = zero, c31 = zero, c40 = zero, c41 = zero, c50 = zero, c51 = zero;
  for (let k = 0; k < kc; k++) {
    const off = <usize>load<u32>(tab);
    const p1 = b1 + off;
    const d0 = v128.load(pb);
    const d1 = v128.load(pb, 16);
    let a = v128.load32_splat(p1);
    c00 = madd(a, d0, c00);
    c01 = madd(a, d1, c01);
    a = v128.load32_splat(p1, 4);
    c10 = madd(a, d0, c10);
    c11 = madd(a, d1, c11);
    a = v128.load32_splat(p1, 8);
    c20 = madd(a, d0, c20);
    c21 = madd(a, d1, c21);
    if (GROUPS > 1) {
      const p2 = b2 + off;
      a = v128.load32_splat(p2);
      c30 = madd(a, d0, c30);
      c31 = madd(a, d1, c31);
      a = v128.load32_splat(p2, 4);
      c40 = madd(a, d0, c40);
      c41 = madd(a, d1, c41);
      a = v128.load32_splat(p2, 8);
      c50 = madd(a, d0, c50);
      c51 = madd(a, d1, c51);
    }
    tab += 4;
    pb += 32;
  }
  v128.store(t, c00);
  v128.store(t, c01, 16);
  v128.store(t, c10, 32);
  v128.store(t, c11, 48);
  v128.store(t, c20, 64);
  v128.store(t, c21, 80);
  if (GROUPS > 1) {
    v128.store(t, c30, 96);
    v128.store(t, c31, 112);
    v128.store(t, c40, 128);
    v128.store(t, c41, 144);
    v128.store(t, c50, 160);
    v128.store(t, c51, 176);
  }
}

/**
 * Four channels co … co + 3 of a dy panel: d[k·8 + c] = dy[n, co + c, p] for the kc pixels from (n, p) on,
 * zero for channels ≥ Cout. Runs inside one image go 4×4 through the registers.
 */
function packDy(dy: usize, Cout: i32, P: i32, co: i32, n: i32, p: i32, kc: i32, d: usize): void {
  const rowBytes = <usize>P << 2;
  let k = 0;
  while (k < kc) {
    const run = min(kc - k, P - p);
    const src = dy + (<usize>((n * Cout + co) * P + p) << 2);
    const dk = d + (<usize>(k * 8) << 2);
    let j = 0;
    if (co + 4 <= Cout) for (; j + 4 <= run; j += 4) transpose4x4(src + (<usize>j << 2), rowBytes, dk + (<usize>(j * 8) << 2), 32);
    for (; j < run; j++) {
      for (let c = 0; c < 4; c++) {
        store<f32>(dk + (<usize>(j * 8 + c) << 2), co + c < Cout ? load<f32>(src + <usize>c * rowBytes + (<usize>j << 2)) : 0);
      }
    }
    k += run;
    p += run;
    if (p == P) {
      p = 0;
      n++;
    }
  }
}

/** dW[co0 + c, kw0 + r] ← t[r][c] (+ dW: later blocks, or the first with beta = 1) for r < rows, c < cols. */
// @ts-ignore: decorator
@inline
function addTile(t: usize, rows: i32, cols: i32, dw: usize, Kw: i32, kw0: i32, co0: i32, overwrite: bool): void {
  for (let c = 0; c < cols; c++) {
    const d = dw + (<usize>((co0 + c) * Kw + kw0) << 2);
    for (let r = 0; r < rows; r++) {
      const v = load<f32>(t + (<usize>(r * 8 + c) << 2));
      const p = d + (<usize>r << 2);
      store<f32>(p, overwrite ? v : v + load<f32>(p));
    }
  }
}

/**
 * dW (Cout, Cin·k·k) = beta·dW + Σ_{n,oy,ox} dy[n, co, oy, ox] · x[n, ci, oy·stride − padTop + ky, ox·stride − padLeft + kx]
 *   xp: x padded by conv2d_pad_input_f32 — (N, Cin, Hp, Wp) for ksize 3, channels-last (N, Hp, Wp, Cin)
 *       plus 2 floats of slack for ksize 1   dy: (N, Cout, Ho, Wo)   beta: 0 (dW not read) or 1
 * nb: images per chunk (chunks restart the KC blocks; see the file comment). ws/wsBytes as in gemm_f32.
 * Bit-identical for any nth.
 */
export function conv2d_weight_grad_f32(
  N: i32, Cin: i32, Cout: i32, ksize: i32, stride: i32, Ho: i32, Wo: i32, Hp: i32, Wp: i32, nb: i32,
  xp: usize, dy: usize, dw: usize, beta: f32, ws: usize, wsBytes: i32, ith: i32, nth: i32,
): void {
  // This kernel's own layout must fit in the GEMM workspace it is given (checked when compiling: the
  // condition is a constant, so the branch, and the error, exist only if the layout outgrows it).
  if (LAYOUT_BYTES > WORKSPACE_BYTES) ERROR('conv2d_weight_grad_f32: table + tiles + dy panels exceed WORKSPACE_BYTES');
  if (<usize>wsBytes < WORKSPACE_BYTES) unreachable();
  const own = ws + <usize>ith * <usize>wsBytes;
  const tab = own;
  const t = own + TABLE_BYTES;
  const panels = t + TILE_BYTES;
  const P = Ho * Wo;
  const Kw = Cin * ksize * ksize;
  const groups = ksize == 1 ? (Cin + 2) / 3 : Cin * ksize;
  const tiles = (groups + GROUPS - 1) / GROUPS;
  const tile0 = sliceStart(tiles, ith, nth, 1);
  const tile1 = sliceEnd(tiles, ith, nth, 1);
  if (tile0 >= tile1) return;
  const planeBytes = <usize>(Hp * Wp) << 2;
  const imageBytes = <usize>Cin * planeBytes;
  const rowBytes = <usize>Wp << 2;
  for (let n0 = 0; n0 < N; n0 += nb) {
    const L = min(nb, N - n0) * P;
    for (let l0 = 0; l0 < L; l0 += KC) {
      const kc = min(KC, L - l0);
      const overwrite = beta == 0 && n0 == 0 && l0 == 0;
      // each pixel's offset in xp: image, then its first input row and column (walked, not divided)
      {
        let n = n0 + l0 / P;
        const p0 = l0 % P;
        let oy = p0 / Wo;
        let ox = p0 - oy * Wo;
        for (let k = 0; k < kc; k++) {
          const pixel = <usize>(oy * stride * Wp + ox * stride);
          store<u32>(tab + (<usize>k << 2), <u32>(ksize == 1 ? ((<usize>n * <usize>(Hp * Wp) + pixel) * <usize>Cin) << 2 : <usize>n * imageBytes + (pixel << 2)));
          if (++ox == Wo) {
            ox = 0;
            if (++oy == Ho) {
              oy = 0;
              n++;
            }
          }
        }
      }
      for (let cg0 = 0; cg0 < Cout; cg0 += CO_GROUP) {
        const cgn = min(CO_GROUP, Cout - cg0);
        const npanels = (cgn + 7) >> 3;
        // dy panels: panels[q][k][c] = dy[n, cg0 + 8q + c, p] (0 past Cout), four channels at a time
        for (let q = 0; q < npanels; q++) {
          const pq = panels + (<usize>(q * kc * 8) << 2);
          for (let c4 = 0; c4 < 8; c4 += 4) packDy(dy, Cout, P, cg0 + 8 * q + c4, n0 + l0 / P, l0 % P, kc, pq + (<usize>c4 << 2));
        }
        for (let ti = tile0; ti < tile1; ti++) {
          const g1 = ti * GROUPS;
          const g2 = min(g1 + 1, groups - 1); // = g1 when the last tile has one group (computed twice, stored once)
          const b1 = xp + (ksize == 1 ? <usize>(12 * g1) : <usize>(g1 / 3) * planeBytes + <usize>(g1 % 3) * rowBytes);
          const b2 = xp + (ksize == 1 ? <usize>(12 * g2) : <usize>(g2 / 3) * planeBytes + <usize>(g2 % 3) * rowBytes);
          const rows1 = min(3, Kw - 3 * g1);
          const rows2 = GROUPS > 1 && g2 > g1 ? min(3, Kw - 3 * g2) : 0;
          for (let q = 0; q < npanels; q++) {
            // Two call sites with different arguments (odd panels use a second tile buffer) keep binaryen
            // from inlining the kernel into this loop, where V8 would spill its accumulators.
            const pb = panels + (<usize>(q * kc * 8) << 2);
            const tq = q & 1 ? t + 192 : t;
            if (q & 1) tile(kc, tab, b1, b2, pb, t + 192);
            else tile(kc, tab, b1, b2, pb, t);
            const co0 = cg0 + 8 * q;
            const cols = min(8, Cout - co0);
            addTile(tq, rows1, cols, dw, Kw, 3 * g1, co0, overwrite);
            if (rows2 > 0) addTile(tq + 96, rows2, cols, dw, Kw, 3 * g2, co0, overwrite);
          }
        }
      }
    }
  }
}
