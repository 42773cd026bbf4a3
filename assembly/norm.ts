// Group normalization (Wu & He 2018), NCHW, as torch.nn.GroupNorm: the C channels are split into G
// groups of Cg = C/G; each (n, g) is normalized over its Cg·HW values, then scaled and shifted per
// channel. In NCHW a group is one contiguous span of Cg·HW values. One thread owns each (n, g) for the
// statistics and dx, and one thread owns each channel for dgamma/dbeta, so every reduction has a fixed
// order whatever the thread count.
import { sliceStart, sliceEnd, madd } from './shared';
import { reduce_f32, sum_f64, sigmoid_f32x4, RED_SUM, RED_SQ_DEV, RED_DOT_DEV } from './math';

/**
 * y = (x − μ)·rstd·γ[c] + β[c], μ and rstd = 1/√(σ² + eps) per (n, g), σ² the biased variance; with
 * act = 1 then y = y·σ(y) (SiLU, fused for inference: the same bits as silu_f32 on the normalized values).
 * x, y: (N, C, HW); gamma, beta: (C); mean, rstd: (N, G) saved for the backward pass. y may be x.
 */
export function group_norm_f32(
  N: i32, C: i32, HW: i32, G: i32, eps: f32,
  x: usize, gamma: usize, beta: usize, y: usize, mean: usize, rstd: usize, act: i32,
  ith: i32, nth: i32,
): void {
  const Cg = C / G;
  const M = Cg * HW; // values per group
  const lo = sliceStart(N * G, ith, nth, 1);
  const hi = sliceEnd(N * G, ith, nth, 1);
  for (let ng = lo; ng < hi; ng++) {
    const xg = x + ((<usize>ng * <usize>M) << 2);
    const yg = y + ((<usize>ng * <usize>M) << 2);
    // Two passes (mean, then the centred sum of squares) so that a large mean does not cancel the
    // variance away, as E[x²] − E[x]² would in float32; the mean summed in float64 so that its error
    // does not grow with its size.
    const mu = <f32>(sum_f64(xg, M) / <f64>M);
    const variance = reduce_f32(RED_SQ_DEV, xg, 0, mu, M) / <f64>M;
    const rs = <f32>(1.0 / Math.sqrt(variance + <f64>eps));
    store<f32>(mean + (<usize>ng << 2), mu);
    store<f32>(rstd + (<usize>ng << 2), rs);
    const vmu = f32x4.splat(mu);
    const c0 = (ng % G) * Cg;
    for (let k = 0; k < Cg; k++) {
      const a = rs * load<f32>(gamma + (<usize>(c0 + k) << 2));
      const b = load<f32>(beta + (<usize>(c0 + k) << 2));
      const va = f32x4.splat(a);
      const vb = f32x4.splat(b);
      const xc = xg + ((<usize>k * <usize>HW) << 2);
      const yc = yg + ((<usize>k * <usize>HW) << 2);
      let i = 0;
      if (act == 0) {
        for (; i + 4 <= HW; i += 4) {
          const o = <usize>i << 2;
          v128.store(yc + o, madd(f32x4.sub(v128.load(xc + o), vmu), va, vb));
        }
        for (; i < HW; i++) {
          const o = <usize>i << 2;
          store<f32>(yc + o, (load<f32>(xc + o) - mu) * a + b);
        }
      } else {
        for (; i + 4 <= HW; i += 4) {
          const o = <usize>i << 2;
          const v = madd(f32x4.sub(v128.load(xc + o), vmu), va, vb);
          v128.store(yc + o, f32x4.mul(v, sigmoid_f32x4(v)));
        }
        for (; i < HW; i++) {
          const o = <usize>i << 2;
          const v = f32x4.splat((load<f32>(xc + o) - mu) * a + b);
          store<f32>(yc + o, f32x4.extract_lane(f32x4.mul(v, sigmoid_f32x4(v)), 0));
        }
      }
    }
  }
}

/**
 * group_norm_backward_f32 for one group (n, g): dy, x, dx point at the group's first value, each (Cg, HW)
 * contiguous; gamma at γ[c0], sums at the group's first channel's pair. Shared with
 * group_norm_silu_backward_f32, which passes its dh (in the workspace) as dy: the same bits by construction.
 */
// @ts-ignore: decorator
@inline
export function groupNormBackwardGroup(
  Cg: i32, HW: i32, dy: usize, x: usize, dx: usize, mu: f32, rs: f32, gamma: usize, sums: usize, beta: f32,
): void {
  const M = Cg * HW;
  let S1: f64 = 0;
  let S2: f64 = 0;
  for (let k = 0; k < Cg; k++) {
    const plane = (<usize>k * <usize>HW) << 2;
    const sdy = reduce_f32(RED_SUM, dy + plane, 0, 0, HW);
    const sdyx = reduce_f32(RED_DOT_DEV, dy + plane, x + plane, mu, HW);
    const s = sums + (<usize>k << 3);
    store<f32>(s, <f32>sdy);
    store<f32>(s + 4, <f32>sdyx);
    const g = <f64>load<f32>(gamma + (<usize>k << 2));
    S1 += g * sdy;
    S2 += g * sdyx;
  }
  const r = <f64>rs;
  const B = <f32>(-r * r * r * S2 / <f64>M);
  const D = <f32>(-r * S1 / <f64>M);
  const vmu = f32x4.splat(mu);
  const vB = f32x4.splat(B);
  const vD = f32x4.splat(D);
  for (let k = 0; k < Cg; k++) {
    const A = load<f32>(gamma + (<usize>k << 2)) * rs;
    const vA = f32x4.splat(A);
    const plane = (<usize>k * <usize>HW) << 2;
    const dyc = dy + plane;
    const xc = x + plane;
    const dxc = dx + plane;
    let i = 0;
    for (; i + 4 <= HW; i += 4) {
      const o = <usize>i << 2;
      const t = madd(f32x4.sub(v128.load(xc + o), vmu), vB, vD);
      const v = madd(v128.load(dyc + o), vA, t);
      v128.store(dxc + o, beta == 0 ? v : f32x4.add(v128.load(dxc + o), v));
    }
    for (; i < HW; i++) {
      const o = <usize>i << 2;
      const v = load<f32>(dyc + o) * A + ((load<f32>(xc + o) - mu) * B + D);
      store<f32>(dxc + o, beta == 0 ? v : load<f32>(dxc + o) + v);
    }
  }
}

/**
 * dx for group_norm_f32, and the per-(n, c) sums that group_norm_backward_params_f32 needs.
 * With x̂ = (x − μ)·rstd and dx̂ = dy·γ[c], over each group of M = Cg·HW values:
 *   dx = rstd·(dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂))
 *      = (γ[c]·rstd)·dy + (x − μ)·(−rstd³·S₂/M) − rstd·S₁/M,
 *   S₁ = Σ_c γ[c]·Σ_hw dy,  S₂ = Σ_c γ[c]·Σ_hw dy·(x − μ).
 * dy, x, dx: (N, C, HW); mean, rstd: (N, G); gamma: (C); sums: (N, C, 2) ← [Σ_hw dy, Σ_hw dy·(x − μ)].
 * beta 0: dx is overwritten and may be dy or x (each group is read whole before its dx is written);
 * beta 1: dx is accumulated into (the gradient convention) and must not alias dy or x.
 */
export function group_norm_backward_f32(
  N: i32, C: i32, HW: i32, G: i32,
  dy: usize, x: usize, mean: usize, rstd: usize, gamma: usize, dx: usize, sums: usize, beta: f32,
  ith: i32, nth: i32,
): void {
  const Cg = C / G;
  const M = Cg * HW;
  const lo = sliceStart(N * G, ith, nth, 1);
  const hi = sliceEnd(N * G, ith, nth, 1);
  for (let ng = lo; ng < hi; ng++) {
    const span = (<usize>ng * <usize>M) << 2;
    const mu = load<f32>(mean + (<usize>ng << 2));
    const rs = load<f32>(rstd + (<usize>ng << 2));
    const c0 = (ng % G) * Cg;
    const nc0 = ng * Cg; // (n·C + c0): the group's first channel plane
    groupNormBackwardGroup(Cg, HW, dy + span, x + span, dx + span, mu, rs, gamma + (<usize>c0 << 2), sums + (<usize>nc0 << 3), beta);
  }
}

/**
 * dgamma[c] += Σ_n rstd[n,g]·Σ_hw dy·(x − μ),  dbeta[c] += Σ_n Σ_hw dy, summed over n in order, from the
 * sums group_norm_backward_f32 left.   sums: (N, C, 2); rstd: (N, G); dgamma, dbeta: (C), accumulated.
 */
export function group_norm_backward_params_f32(
  N: i32, C: i32, G: i32, sums: usize, rstd: usize, dgamma: usize, dbeta: usize,
  ith: i32, nth: i32,
): void {
  const Cg = C / G;
  const lo = sliceStart(C, ith, nth, 1);
  const hi = sliceEnd(C, ith, nth, 1);
  for (let c = lo; c < hi; c++) {
    const g = c / Cg;
    let dg: f64 = 0;
    let db: f64 = 0;
    for (let n = 0; n < N; n++) {
      const s = sums + (<usize>(n * C + c) << 3);
      dg += <f64>load<f32>(rstd + (<usize>(n * G + g) << 2)) * <f64>load<f32>(s + 4);
      db += <f64>load<f32>(s);
    }
    const pg = dgamma + (<usize>c << 2);
    const pb = dbeta + (<usize>c << 2);
    store<f32>(pg, load<f32>(pg) + <f32>dg);
    store<f32>(pb, load<f32>(pb) + <f32>db);
  }
}
