// The backward pass of SiLU(GroupNorm(x)) in one kernel, for training: the forward runs group_norm_f32
// with act = 1 (the normalized values h are not kept), and this kernel recomputes h per group from x and
// the saved statistics, takes dh = SiLU'(h)·dy into the thread's workspace, and runs group norm's
// backward on it — one pass over dy and x instead of silu_backward_f32 (read h and dy, write dh) followed
// by group_norm_backward_f32 (read dh and x), and no h or dh buffers.
//
// Same bits as the two kernels: h is computed by group_norm_f32's expressions (vector madd per plane,
// scalar tail), dh by silu_backward_f32's (accumulated onto a zeroed gradient: 0 + SiLU'(h)·dy, with the
// shared silu_backward_f32x4), and the rest is group_norm_backward_f32's per-group helper run on dh. One thread owns each (n, g): bit-identical for any nth.
import { sliceStart, sliceEnd, madd } from './shared';
import { silu_backward_f32x4 } from './math';
import { groupNormBackwardGroup } from './norm';

/**
 * With h = GroupNorm(x; γ, β) and y = h·σ(h): dx (+)= ∂L/∂x given dy = ∂L/∂y, and the per-(n, c) sums
 * [Σ_hw dh, Σ_hw dh·(x − μ)] that group_norm_backward_params_f32 turns into dgamma, dbeta.
 *   dy, x, dx: (N, C, HW); mean, rstd: (N, G) from group_norm_f32; gamma, beta: (C); sums: (N, C, 2)
 * beta0 is the accumulate flag: 0 overwrites dx (which must not alias dy or x), 1 adds to it. ws/wsBytes:
 * the engine's workspace; each thread needs (C/G)·HW floats of it (the TS wrapper checks).
 */
export function group_norm_silu_backward_f32(
  N: i32, C: i32, HW: i32, G: i32,
  dy: usize, x: usize, mean: usize, rstd: usize, gamma: usize, beta: usize, dx: usize, sums: usize, beta0: f32,
  ws: usize, wsBytes: i32, ith: i32, nth: i32,
): void {
  const Cg = C / G;
  const M = Cg * HW;
  if (<usize>wsBytes < (<usize>M << 2)) unreachable();
  const dh = ws + <usize>ith * <usize>wsBytes; // (Cg, HW): this group's dh
  const zero = f32x4.splat(0);
  const lo = sliceStart(N * G, ith, nth, 1);
  const hi = sliceEnd(N * G, ith, nth, 1);
  for (let ng = lo; ng < hi; ng++) {
    const span = (<usize>ng * <usize>M) << 2;
    const mu = load<f32>(mean + (<usize>ng << 2));
    const rs = load<f32>(rstd + (<usize>ng << 2));
    const c0 = (ng % G) * Cg;
    const nc0 = ng * Cg;
    const vmu = f32x4.splat(mu);
    // dh = 0 + SiLU'(h)·dy, h = (x − μ)·(rstd·γ) + β as group_norm_f32 computes it
    for (let k = 0; k < Cg; k++) {
      const a = rs * load<f32>(gamma + (<usize>(c0 + k) << 2));
      const b = load<f32>(beta + (<usize>(c0 + k) << 2));
      const va = f32x4.splat(a);
      const vb = f32x4.splat(b);
      const plane = span + ((<usize>k * <usize>HW) << 2);
      const xc = x + plane;
      const dyc = dy + plane;
      const dhc = dh + ((<usize>k * <usize>HW) << 2);
      let i = 0;
      for (; i + 4 <= HW; i += 4) {
        const o = <usize>i << 2;
        const h = madd(f32x4.sub(v128.load(xc + o), vmu), va, vb);
        v128.store(dhc + o, f32x4.add(zero, silu_backward_f32x4(h, v128.load(dyc + o))));
      }
      for (; i < HW; i++) {
        const o = <usize>i << 2;
        const h = f32x4.splat((load<f32>(xc + o) - mu) * a + b);
        store<f32>(dhc + o, <f32>0 + f32x4.extract_lane(silu_backward_f32x4(h, f32x4.splat(load<f32>(dyc + o))), 0));
      }
    }
    // group_norm_backward_f32 on dh
    groupNormBackwardGroup(Cg, HW, dh, x + span, dx + span, mu, rs, gamma + (<usize>c0 << 2), sums + (<usize>nc0 << 3), beta0);
  }
}
