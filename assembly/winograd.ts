// Winograd convolution F(m×m, 3×3) for 3×3, stride 1, padding 1 convs (Lavin & Gray 2016, "Fast Algorithms
// for Convolutional Neural Networks"), m = 2 (α = 4) or m = 4 (α = 6), α = m + 2 the input tile size.
// Output tile (ty, tx) of image n covers pixels [m·ty, m·ty + m) × [m·tx, m·tx + m) and reads the α×α
// input patch d whose corner is (m·ty − 1, m·tx − 1) (zero outside the image). Per output tile:
//   Y = Aᵀ [ Σ_ci (G g Gᵀ) ⊙ (Bᵀ d B) ] A
// The sum over input channels at each of the α² tile positions ξ is a GEMM, so a conv is four steps:
//   winograd_filter_f32   U[ξ] = G g Gᵀ          U: (α², Cout, Cin)   once per weights (cacheable)
//   winograd_input_f32    V[ξ] = Bᵀ d B          V: (α², Cin, T)      T = N·tilesY·tilesX tiles
//   gemm_batched_f32      M[ξ] = U[ξ] · V[ξ]     M: (α², Cout, T)     α² GEMMs, the packed core of gemm-core.ts
//   winograd_output_f32   y = Aᵀ M A + bias (+ y)                      y: (N, Cout, H, W)
// The transforms run on four horizontally adjacent tiles at once, one tile per SIMD lane: the input rows
// are first split into m phase arrays (Q_p[i] = row[m·i + p − 1]), so the j-th patch column of tiles
// tx … tx+3 is one unaligned vector load. Matrices (Lavin's):
//   F(2,3): Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1], G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1],
//           Aᵀ = [1 1 1 0; 0 1 −1 −1]
//   F(4,3): Bᵀ = [4 0 −5 0 1 0; 0 −4 −4 1 1 0; 0 4 −4 −1 1 0; 0 −2 −1 2 1 0; 0 2 −1 −2 1 0; 0 4 0 −5 0 1],
//           G = [¼ 0 0; −⅙ −⅙ −⅙; −⅙ ⅙ −⅙; 1/24 1/12 ⅙; 1/24 −1/12 ⅙; 0 0 1],
//           Aᵀ = [1 1 1 1 1 0; 0 1 −1 2 −2 0; 0 1 1 4 4 0; 0 1 −1 8 −8 1]
// Planes: U, V and M hold α² matrices one after the other, `plane` floats apart. The TS side pads plane to
// an odd multiple of 16 floats: with Cin·T a multiple of 1024 (power-of-two sizes), the α² values of one tile
// would otherwise sit at the same offset modulo 4 KiB and evict each other from one L1 set (measured: the
// F(4,3) filter transform of 256×256 weights went from 8 ms to 1.4 ms; see docs/winograd.md).
// Determinism: every element of U, V and y is computed by one thread in a fixed order (units are whole
// rows of tiles), and the GEMM is bit-identical for any thread count, so the conv is too. The transforms
// use plain mul and add (no relaxed_madd), so only the GEMM differs between the plain and relaxed builds.
import { sliceStart, sliceEnd } from './shared';
import { transpose4x4 } from './gemm-core';

/** Floats of one phase array for images W pixels wide. The transforms' workspace per thread is α·m (input)
 * or m·m (output) of them plus a few tiles (mirrored in src/kernels/winograd.ts transformWorkspaceBytes). */
// @ts-ignore: decorator
@inline
function phaseLength(m: i32, W: i32): i32 {
  const tilesX = (W + m - 1) / m;
  return ((tilesX + 3) & ~3) + 4; // a multiple of 4 tiles, plus the one-tile overlap of the next patch
}

/** d[k·step] ← (G s)[k] for the 3 vectors s = (a0, a1, a2) (k < α), two filters per f64x2: one line of the
 * filter transform, in float64. */
// @ts-ignore: decorator
@inline
function filterLine(m: i32, a0: v128, a1: v128, a2: v128, d: usize, step: usize): void {
  const even = f64x2.add(a0, a2);
  if (m == 2) {
    const half = f64x2.splat(0.5);
    v128.store(d, a0);
    v128.store(d + step, f64x2.mul(half, f64x2.add(even, a1)));
    v128.store(d + 2 * step, f64x2.mul(half, f64x2.sub(even, a1)));
    v128.store(d + 3 * step, a2);
    return;
  }
  const sixth = f64x2.splat(-1.0 / 6.0);
  const p = f64x2.add(f64x2.mul(f64x2.splat(1.0 / 24.0), a0), f64x2.mul(f64x2.splat(1.0 / 6.0), a2));
  const q = f64x2.mul(f64x2.splat(1.0 / 12.0), a1);
  v128.store(d, f64x2.mul(f64x2.splat(0.25), a0));
  v128.store(d + step, f64x2.mul(sixth, f64x2.add(even, a1)));
  v128.store(d + 2 * step, f64x2.mul(sixth, f64x2.sub(even, a1)));
  v128.store(d + 3 * step, f64x2.add(p, q));
  v128.store(d + 4 * step, f64x2.sub(p, q));
  v128.store(d + 5 * step, a2);
}

/**
 * U[(i·α + j), co, ci] = (G g Gᵀ)[i][j] with g = w[co, ci] (3×3)    w: (Cout, Cin, 3, 3)   U: (α², Cout, Cin)
 * with `plane` (≥ Cout·Cin) floats from one ξ to the next (see "Planes" above).
 * Computed in float64 (two filters per f64x2) and rounded once. Threads split Cout; ws/wsBytes: the
 * engine's workspace (3α + α² f64x2 per thread).
 */
export function winograd_filter_f32(
  m: i32, Cout: i32, Cin: i32, w: usize, U: usize, plane: i32, ws: usize, wsBytes: i32, ith: i32, nth: i32,
): void {
  if ((m != 2 && m != 4) || plane < Cout * Cin) unreachable();
  // one copy per m, so that m is a constant inside (the branches of filterLine fold away)
  if (m == 2) filterTransform(2, Cout, Cin, w, U, plane, ws + <usize>ith * <usize>wsBytes, ith, nth);
  else filterTransform(4, Cout, Cin, w, U, plane, ws + <usize>ith * <usize>wsBytes, ith, nth);
}

// @ts-ignore: decorator
@inline
function filterTransform(m: i32, Cout: i32, Cin: i32, w: usize, U: usize, plane: i32, own: usize, ith: i32, nth: i32): void {
  const a = m + 2;
  const h = own; // (G g)ᵀ: h[kx][i], 3·α f64x2
  const u = own + (<usize>(3 * a) << 4); // G g Gᵀ: u[i][j], α² f64x2
  const c1 = sliceEnd(Cout, ith, nth, 1);
  for (let co = sliceStart(Cout, ith, nth, 1); co < c1; co++) {
    for (let ci = 0; ci < Cin; ci += 2) {
      const two = ci + 1 < Cin;
      const g0 = w + (<usize>(co * Cin + ci) * 9 << 2);
      const g1 = two ? g0 + 36 : g0; // an odd last channel is paired with itself; lane 1 not stored
      // column kx of g (rows ky = 0, 1, 2) → column kx of G g
      for (let kx = 0; kx < 3; kx++) {
        const a0 = f64x2.replace_lane(f64x2.splat(<f64>load<f32>(g0 + (<usize>kx << 2))), 1, <f64>load<f32>(g1 + (<usize>kx << 2)));
        const a1 = f64x2.replace_lane(f64x2.splat(<f64>load<f32>(g0 + (<usize>(3 + kx) << 2))), 1, <f64>load<f32>(g1 + (<usize>(3 + kx) << 2)));
        const a2 = f64x2.replace_lane(f64x2.splat(<f64>load<f32>(g0 + (<usize>(6 + kx) << 2))), 1, <f64>load<f32>(g1 + (<usize>(6 + kx) << 2)));
        filterLine(m, a0, a1, a2, h + (<usize>(kx * a) << 4), 16);
      }
      // row i of G g → row i of G g Gᵀ
      for (let i = 0; i < a; i++) {
        const s = h + (<usize>i << 4);
        filterLine(m, v128.load(s), v128.load(s + (<usize>a << 4)), v128.load(s + (<usize>(2 * a) << 4)), u + (<usize>(i * a) << 4), 16);
      }
      const dst = U + ((<usize>co * <usize>Cin + <usize>ci) << 2);
      for (let xi = 0; xi < a * a; xi++) {
        const v = f32x4.demote_f64x2_zero(v128.load(u + (<usize>xi << 4)));
        const p = dst + ((<usize>xi * <usize>plane) << 2);
        if (two) v128.store64_lane(p, v, 0);
        else v128.store32_lane(p, v, 0);
      }
    }
  }
}

/** d[k·step] ← (Bᵀ s)[k] for the α vectors s[j·step] (k, j < α): the input transform of one patch line. */
// @ts-ignore: decorator
@inline
function inputLine(m: i32, s: usize, d: usize, step: usize): void {
  const d0 = v128.load(s), d1 = v128.load(s + step), d2 = v128.load(s + 2 * step), d3 = v128.load(s + 3 * step);
  if (m == 2) {
    v128.store(d, f32x4.sub(d0, d2));
    v128.store(d + step, f32x4.add(d1, d2));
    v128.store(d + 2 * step, f32x4.sub(d2, d1));
    v128.store(d + 3 * step, f32x4.sub(d1, d3));
    return;
  }
  const d4 = v128.load(s + 4 * step), d5 = v128.load(s + 5 * step);
  const four = f32x4.splat(4), five = f32x4.splat(5), two = f32x4.splat(2);
  const a = f32x4.sub(d4, f32x4.mul(four, d2)); // d4 − 4d2
  const b = f32x4.sub(f32x4.mul(four, d1), d3); // 4d1 − d3
  const c = f32x4.sub(d4, d2); // d4 − d2
  const e = f32x4.mul(two, f32x4.sub(d3, d1)); // 2(d3 − d1)
  v128.store(d, f32x4.add(f32x4.sub(f32x4.mul(four, d0), f32x4.mul(five, d2)), d4));
  v128.store(d + step, f32x4.sub(a, b));
  v128.store(d + 2 * step, f32x4.add(a, b));
  v128.store(d + 3 * step, f32x4.add(c, e));
  v128.store(d + 4 * step, f32x4.sub(c, e));
  v128.store(d + 5 * step, f32x4.add(f32x4.sub(f32x4.mul(four, d1), f32x4.mul(five, d3)), d5));
}

/** d[k·step] ← (Aᵀ s)[k] for the α vectors s[j·step] (k < m): the output transform of one tile line. */
// @ts-ignore: decorator
@inline
function outputLine(m: i32, s: usize, d: usize, step: usize): void {
  const d0 = v128.load(s), d1 = v128.load(s + step), d2 = v128.load(s + 2 * step), d3 = v128.load(s + 3 * step);
  if (m == 2) {
    v128.store(d, f32x4.add(f32x4.add(d0, d1), d2));
    v128.store(d + step, f32x4.sub(f32x4.sub(d1, d2), d3));
    return;
  }
  const d4 = v128.load(s + 4 * step), d5 = v128.load(s + 5 * step);
  const p = f32x4.add(d1, d2), q = f32x4.sub(d1, d2);
  const r = f32x4.add(d3, d4), t = f32x4.sub(d3, d4);
  v128.store(d, f32x4.add(f32x4.add(d0, p), r));
  v128.store(d + step, f32x4.add(q, f32x4.mul(f32x4.splat(2), t)));
  v128.store(d + 2 * step, f32x4.add(p, f32x4.mul(f32x4.splat(4), r)));
  v128.store(d + 3 * step, f32x4.add(f32x4.add(q, f32x4.mul(f32x4.splat(8), t)), d5));
}

/** Stores lanes [0, n) of v at p (n < 4: the last tiles of a row, whose neighbours belong to other units). */
// @ts-ignore: decorator
@inline
function storeLanes(p: usize, v: v128, n: i32): void {
  if (n >= 4) {
    v128.store(p, v);
    return;
  }
  v128.store32_lane(p, v, 0);
  if (n > 1) v128.store32_lane(p, v, 1, 4);
  if (n > 2) v128.store32_lane(p, v, 2, 8);
}

/**
 * Splits one input row into m phase arrays: q[p·L + i] = row[m·i + p − 1] for i < L, 0 outside [0, W).
 * The interior, four tiles at a time, is a de-interleave (m = 2: even/odd lanes of two vectors; m = 4: a
 * 4×4 transpose); the edges (the left padding column, the right end) go lane by lane.
 */
function fillPhases(m: i32, row: usize, W: i32, q: usize, L: i32): void {
  // vector blocks cover i ∈ [i0, i1): their reads row[m·i − 1 … m·(i + 4) − 2] must lie in [0, W)
  const i0 = 4; // keeps the block starts on multiples of 4 (and m·4 − 1 ≥ 0)
  const i1 = (W + 1) / m;
  for (let i = 0; i < min(i0, L); i++) phaseScalar(m, row, W, q, L, i);
  let i = i0;
  const qb = <usize>L << 2;
  for (; i + 4 <= i1; i += 4) {
    const s = row + (<usize>(m * i - 1) << 2);
    const d = q + (<usize>i << 2);
    if (m == 2) {
      const v0 = v128.load(s), v1 = v128.load(s, 16);
      v128.store(d, f32x4.shuffle(v0, v1, 0, 2, 4, 6));
      v128.store(d + qb, f32x4.shuffle(v0, v1, 1, 3, 5, 7));
    } else {
      transpose4x4(s, 16, d, qb); // the 4×4 block of rows s, s + 16, … (16 consecutive floats)
    }
  }
  for (; i < L; i++) phaseScalar(m, row, W, q, L, i);
}

/** Element i of every phase array of one row (see fillPhases). */
// @ts-ignore: decorator
@inline
function phaseScalar(m: i32, row: usize, W: i32, q: usize, L: i32, i: i32): void {
  for (let p = 0; p < m; p++) {
    const ix = m * i + p - 1;
    store<f32>(q + (<usize>(p * L + i) << 2), <u32>ix < <u32>W ? load<f32>(row + (<usize>ix << 2)) : 0);
  }
}

/**
 * V[ξ, ci, t] = (Bᵀ d B)[ξ] for every tile t = (n·tilesY + ty)·tilesX + tx   x: (N, Cin, H, W)   V: (α², Cin, T)
 * with `plane` (≥ Cin·T) floats from one ξ to the next; tilesY = ⌈H/m⌉, tilesX = ⌈W/m⌉, T = N·tilesY·tilesX;
 * d is the tile's α×α input patch (zero outside the image). Threads split the rows of tiles (n, ci, ty). ws/wsBytes: the engine's workspace.
 */
export function winograd_input_f32(
  m: i32, N: i32, Cin: i32, H: i32, W: i32, x: usize, V: usize, plane: i32, ws: usize, wsBytes: i32, ith: i32, nth: i32,
): void {
  if (m != 2 && m != 4) unreachable();
  // one copy per m, so that m is a constant inside (the branches of inputLine fold away)
  if (m == 2) inputTransform(2, N, Cin, H, W, x, V, plane, ws, wsBytes, ith, nth);
  else inputTransform(4, N, Cin, H, W, x, V, plane, ws, wsBytes, ith, nth);
}

// @ts-ignore: decorator
@inline
function inputTransform(
  m: i32, N: i32, Cin: i32, H: i32, W: i32, x: usize, V: usize, plane: i32, ws: usize, wsBytes: i32, ith: i32, nth: i32,
): void {
  const a = m + 2;
  const tilesY = (H + m - 1) / m, tilesX = (W + m - 1) / m;
  const T = N * tilesY * tilesX;
  if (plane < Cin * T) unreachable();
  const L = phaseLength(m, W);
  // workspace: Q[r][p][0:L] (α·m phase arrays), then line[α] and tile[α·α] (v128 each)
  const own = ws + <usize>ith * <usize>wsBytes;
  const Q = own;
  const line = Q + (<usize>(a * m * L) << 2);
  const tile = line + (<usize>a << 4);
  if ((<usize>(a * m * L) << 2) + (<usize>(a + a * a) << 4) > <usize>wsBytes) unreachable();
  const units = N * Cin * tilesY;
  const u1 = sliceEnd(units, ith, nth, 1);
  for (let u = sliceStart(units, ith, nth, 1); u < u1; u++) {
    const ty = u % tilesY;
    const nc = u / tilesY; // n·Cin + ci
    const n = nc / Cin;
    const ci = nc - n * Cin;
    const src = x + (<usize>nc * <usize>(H * W) << 2);
    // Q[r][p][i] = x[ci, m·ty − 1 + r, m·i + p − 1], 0 outside the image
    for (let r = 0; r < a; r++) {
      const iy = m * ty - 1 + r;
      const rowOk = <u32>iy < <u32>H;
      const row = src + (<usize>(iy * W) << 2);
      const q0 = Q + (<usize>(r * m * L) << 2); // Q[r][p] = q0 + p·L floats
      if (!rowOk) {
        for (let i = 0; i < m * L; i += 4) v128.store(q0 + (<usize>i << 2), f32x4.splat(0));
        continue;
      }
      fillPhases(m, row, W, q0, L);
    }
    const dstRow = V + ((<usize>ci * <usize>T + <usize>((n * tilesY + ty) * tilesX)) << 2);
    for (let tx = 0; tx < tilesX; tx += 4) {
      // rows: tile[r][k] = Σ_j Bᵀ[k][j]·d[r][j], where d[r][j] for tiles tx … tx+3 is Q[r][j mod m][tx + j/m …]
      for (let r = 0; r < a; r++) {
        for (let j = 0; j < a; j++) {
          const p = j < m ? j : j - m;
          const off = j < m ? tx : tx + 1;
          v128.store(line + (<usize>j << 4), v128.load(Q + (<usize>((r * m + p) * L + off) << 2)));
        }
        inputLine(m, line, tile + (<usize>(r * a) << 4), 16);
      }
      // columns: V[i·α + k] = Σ_r Bᵀ[i][r]·tile[r][k], transformed in place
      for (let k = 0; k < a; k++) inputLine(m, tile + (<usize>k << 4), tile + (<usize>k << 4), <usize>a << 4);
      const count = tilesX - tx;
      const dst = dstRow + (<usize>tx << 2);
      for (let xi = 0; xi < a * a; xi++) storeLanes(dst + ((<usize>xi * <usize>plane) << 2), v128.load(tile + (<usize>xi << 4)), count);
    }
  }
}

/**
 * y[n, co, oy, ox] = (Aᵀ M A)[oy mod m][ox mod m] of tile (n, ⌊oy/m⌋, ⌊ox/m⌋) + bias[co] (+ y if beta = 1)
 *   Mt: (α², Cout, T) with `plane` (≥ Cout·T) floats per ξ, read up to 3 floats past its end (the TS side pads it)
 *   y: (N, Cout, H, W)   bias: (Cout) or 0   beta: 0 (y not read) or 1 (accumulate)
 * Threads split the rows of tiles (n, co, ty).
 */
export function winograd_output_f32(
  m: i32, N: i32, Cout: i32, H: i32, W: i32, Mt: usize, plane: i32, bias: usize, y: usize, beta: f32,
  ws: usize, wsBytes: i32, ith: i32, nth: i32,
): void {
  if (m != 2 && m != 4) unreachable();
  // one copy per m, so that m is a constant inside (the branches of outputLine fold away)
  if (m == 2) outputTransform(2, N, Cout, H, W, Mt, plane, bias, y, beta, ws, wsBytes, ith, nth);
  else outputTransform(4, N, Cout, H, W, Mt, plane, bias, y, beta, ws, wsBytes, ith, nth);
}

// @ts-ignore: decorator
@inline
function outputTransform(
  m: i32, N: i32, Cout: i32, H: i32, W: i32, Mt: usize, plane: i32, bias: usize, y: usize, beta: f32,
  ws: usize, wsBytes: i32, ith: i32, nth: i32,
): void {
  const a = m + 2;
  const tilesY = (H + m - 1) / m, tilesX = (W + m - 1) / m;
  const T = N * tilesY * tilesX;
  if (plane < Cout * T) unreachable();
  const L = phaseLength(m, W);
  // workspace: O[i][c][0:L] (m·m phase arrays of output rows), then tile[α·α] (v128)
  const own = ws + <usize>ith * <usize>wsBytes;
  const O = own;
  const tile = O + (<usize>(m * m * L) << 2);
  if ((<usize>(m * m * L) << 2) + (<usize>(a * a) << 4) > <usize>wsBytes) unreachable();
  const units = N * Cout * tilesY;
  const u1 = sliceEnd(units, ith, nth, 1);
  for (let u = sliceStart(units, ith, nth, 1); u < u1; u++) {
    const ty = u % tilesY;
    const nc = u / tilesY; // n·Cout + co
    const n = nc / Cout;
    const co = nc - n * Cout;
    const b = f32x4.splat(bias ? load<f32>(bias + (<usize>co << 2)) : 0);
    const srcRow = Mt + ((<usize>co * <usize>T + <usize>((n * tilesY + ty) * tilesX)) << 2);
    for (let tx = 0; tx < tilesX; tx += 4) {
      const src = srcRow + (<usize>tx << 2);
      for (let xi = 0; xi < a * a; xi++) v128.store(tile + (<usize>xi << 4), v128.load(src + ((<usize>xi * <usize>plane) << 2)));
      // rows: tile[r][c] = Σ_j Aᵀ[c][j]·M[r][j] (c < m), then columns: Y[i][c] = Σ_r Aᵀ[i][r]·tile[r][c]
      for (let r = 0; r < a; r++) outputLine(m, tile + (<usize>(r * a) << 4), tile + (<usize>(r * a) << 4), 16);
      for (let c = 0; c < m; c++) outputLine(m, tile + (<usize>c << 4), tile + (<usize>c << 4), <usize>a << 4);
      for (let i = 0; i < m; i++) {
        for (let c = 0; c < m; c++) {
          const v = f32x4.add(v128.load(tile + (<usize>(i * a + c) << 4)), b);
          v128.store(O + (<usize>((i * m + c) * L + tx) << 2), v);
        }
      }
    }
    // interleave the phases into the image rows: y[oy, ox] = O[i][ox mod m][ox / m]
    const dstPlane = y + (<usize>nc * <usize>(H * W) << 2);
    for (let i = 0; i < m; i++) {
      const oy = m * ty + i;
      if (oy >= H) break;
      const dst = dstPlane + (<usize>(oy * W) << 2);
      const o = O + (<usize>(i * m * L) << 2);
      let ox = 0;
      if (m == 2) {
        // 8 outputs from 4 tiles of each phase: zip the two phase vectors
        for (; ox + 8 <= W; ox += 8) {
          const e = v128.load(o + (<usize>(ox >> 1) << 2));
          const f = v128.load(o + (<usize>(L + (ox >> 1)) << 2));
          let lo = f32x4.shuffle(e, f, 0, 4, 1, 5);
          let hi = f32x4.shuffle(e, f, 2, 6, 3, 7);
          if (beta != 0) {
            lo = f32x4.add(v128.load(dst + (<usize>ox << 2)), lo);
            hi = f32x4.add(v128.load(dst + (<usize>ox << 2), 16), hi);
          }
          v128.store(dst + (<usize>ox << 2), lo);
          v128.store(dst + (<usize>ox << 2), hi, 16);
        }
      } else {
        // 16 outputs from 4 tiles of each of the 4 phases: a 4×4 transpose
        for (; ox + 16 <= W; ox += 16) {
          const t = ox >> 2;
          const p0 = v128.load(o + (<usize>t << 2));
          const p1 = v128.load(o + (<usize>(L + t) << 2));
          const p2 = v128.load(o + (<usize>(2 * L + t) << 2));
          const p3 = v128.load(o + (<usize>(3 * L + t) << 2));
          const t0 = f32x4.shuffle(p0, p1, 0, 4, 1, 5);
          const t1 = f32x4.shuffle(p0, p1, 2, 6, 3, 7);
          const t2 = f32x4.shuffle(p2, p3, 0, 4, 1, 5);
          const t3 = f32x4.shuffle(p2, p3, 2, 6, 3, 7);
          let r0 = f32x4.shuffle(t0, t2, 0, 1, 4, 5);
          let r1 = f32x4.shuffle(t0, t2, 2, 3, 6, 7);
          let r2 = f32x4.shuffle(t1, t3, 0, 1, 4, 5);
          let r3 = f32x4.shuffle(t1, t3, 2, 3, 6, 7);
          const d = dst + (<usize>ox << 2);
          if (beta != 0) {
            r0 = f32x4.add(v128.load(d), r0);
            r1 = f32x4.add(v128.load(d, 16), r1);
            r2 = f32x4.add(v128.load(d, 32), r2);
            r3 = f32x4.add(v128.load(d, 48), r3);
          }
          v128.store(d, r0);
          v128.store(d, r1, 16);
          v128.store(d, r2, 32);
          v128.store(d, r3, 48);
        }
      }
      for (; ox < W; ox++) {
        const q = ox / m;
        let v = load<f32>(o + (<usize>((ox - q * m) * L + q) << 2));
        if (beta != 0) v = load<f32>(dst + (<usize>ox << 2)) + v;
        store<f32>(dst + (<usize>ox << 2), v);
      }
    }
  }
}
