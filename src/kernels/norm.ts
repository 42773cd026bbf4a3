// Typed wrappers for assembly/norm.ts: group normalization forward and backward.
import { DdpmError } from '../errors.js';
import type { Engine } from '../engine/engine.js';
import type { Tensor } from '../engine/memory.js';
import { KERNEL } from '../engine/wasm-interface.generated.js';
import { checkInt, checkScalar, checkTensor } from './check.js';
import { checkNCHW, checkNoOverlap, type NCHW } from './layout.js';

export interface GroupNormShape extends NCHW {
  /** Number of groups G; must divide C. */
  groups: number;
}

export interface GroupNormArgs extends GroupNormShape {
  /** Added to the variance; torch's default is 1e-5, diffusers' ResNet blocks use 1e-6. Default 1e-5. */
  eps?: number;
  /** (N, C, H, W) */
  x: Tensor;
  /** (C) */
  gamma: Tensor;
  /** (C) */
  beta: Tensor;
  /** (N, C, H, W); may be x. */
  y: Tensor;
  /** (N, G), written: the group means, for the backward pass. */
  mean: Tensor;
  /** (N, G), written: 1/√(var + eps), for the backward pass. */
  rstd: Tensor;
  /** y = SiLU(norm(x)) in the same pass (inference: same bits as silu after groupNorm; no backward). */
  silu?: boolean;
}

export interface GroupNormBackwardArgs extends GroupNormShape {
  /** (N, C, H, W) */
  dy: Tensor;
  /** (N, C, H, W): the forward input. */
  x: Tensor;
  /** (N, G), (N, G): as saved by groupNorm. */
  mean: Tensor;
  rstd: Tensor;
  /** (C) */
  gamma: Tensor;
  /** (N, C, H, W), overwritten (may then be dy or x), or added to with accumulate (no aliasing). */
  dx: Tensor;
  accumulate?: boolean;
  /** (C), accumulated (+=). */
  dgamma: Tensor;
  /** (C), accumulated (+=). */
  dbeta: Tensor;
}

function checkGroups(op: string, s: GroupNormShape): number {
  const n = checkNCHW(op, s);
  checkInt(`${op}: groups`, s.groups, 1);
  if (s.C % s.groups !== 0) {
    throw new DdpmError('INVALID_ARGUMENT', `${op}: num_groups (${s.groups}) must divide num_channels (${s.C})`);
  }
  return n;
}

/** torch.nn.functional.group_norm(x, G, gamma, beta, eps), saving the statistics for the backward pass. */
export function groupNorm(engine: Engine, a: GroupNormArgs): void {
  const op = 'groupNorm';
  const n = checkGroups(op, a);
  const eps = a.eps ?? 1e-5;
  checkScalar(`${op}: eps`, eps);
  if (!(eps > 0)) throw new DdpmError('INVALID_ARGUMENT', `${op}: eps must be > 0, found ${eps}`);
  const NG = a.N * a.groups;
  checkTensor(engine, a.x, `${op}: x (N, C, H, W)`, n);
  checkTensor(engine, a.gamma, `${op}: gamma (C)`, a.C);
  checkTensor(engine, a.beta, `${op}: beta (C)`, a.C);
  checkTensor(engine, a.y, `${op}: y (N, C, H, W)`, n);
  checkTensor(engine, a.mean, `${op}: mean (N, G)`, NG);
  checkTensor(engine, a.rstd, `${op}: rstd (N, G)`, NG);
  const params: [string, Tensor, number][] = [
    ['gamma', a.gamma, a.C],
    ['beta', a.beta, a.C],
  ];
  checkNoOverlap(op, ['y', a.y, n], [['x', a.x, n]], true);
  checkNoOverlap(op, ['y', a.y, n], params, false);
  for (const out of [
    ['mean', a.mean, NG],
    ['rstd', a.rstd, NG],
  ] as const) {
    checkNoOverlap(op, out, [['x', a.x, n], ['y', a.y, n], ...params], false);
  }
  checkNoOverlap(op, ['mean', a.mean, NG], [['rstd', a.rstd, NG]], false);
  // small activations on the calling thread alone (see SERIAL_BELOW in elementwise.ts; same bits). GroupNorm
  // (+ SiLU) costs ~1.5 ns an element on one thread: from 4096 elements (~6 µs) half of it saves more than
  // the pool round trip (~2-3 µs) costs (docs/scaling-notes.md)
  engine.run(
    KERNEL.group_norm_f32,
    [
      a.N,
      a.C,
      a.H * a.W,
      a.groups,
      eps,
      a.x.ptr,
      a.gamma.ptr,
      a.beta.ptr,
      a.y.ptr,
      a.mean.ptr,
      a.rstd.ptr,
      a.silu ? 1 : 0,
    ],
    n >= 1 << 12,
  );
}

/**
 * The backward pass of groupNorm: dx (overwritten, or added to with `accumulate`), dgamma and dbeta (accumulated). Two kernels: one
 * thread per (n, g) for dx, then one per channel to sum dgamma/dbeta over n in order, from per-(n, c)
 * sums kept in a temporary (N, C, 2) buffer.
 */
export function groupNormBackward(engine: Engine, a: GroupNormBackwardArgs): void {
  const op = 'groupNormBackward';
  const n = checkGroups(op, a);
  const NG = a.N * a.groups;
  checkTensor(engine, a.dy, `${op}: dy (N, C, H, W)`, n);
  checkTensor(engine, a.x, `${op}: x (N, C, H, W)`, n);
  checkTensor(engine, a.mean, `${op}: mean (N, G)`, NG);
  checkTensor(engine, a.rstd, `${op}: rstd (N, G)`, NG);
  checkTensor(engine, a.gamma, `${op}: gamma (C)`, a.C);
  checkTensor(engine, a.dx, `${op}: dx (N, C, H, W)`, n);
  checkTensor(engine, a.dgamma, `${op}: dgamma (C)`, a.C);
  checkTensor(engine, a.dbeta, `${op}: dbeta (C)`, a.C);
  const stats: [string, Tensor, number][] = [
    ['mean', a.mean, NG],
    ['rstd', a.rstd, NG],
    ['gamma', a.gamma, a.C],
  ];
  checkNoOverlap(
    op,
    ['dx', a.dx, n],
    [
      ['dy', a.dy, n],
      ['x', a.x, n],
    ],
    !a.accumulate,
  );
  checkNoOverlap(op, ['dx', a.dx, n], stats, false);
  for (const out of [
    ['dgamma', a.dgamma, a.C],
    ['dbeta', a.dbeta, a.C],
  ] as const) {
    checkNoOverlap(op, out, [['dy', a.dy, n], ['x', a.x, n], ['dx', a.dx, n], ...stats], false);
  }
  checkNoOverlap(op, ['dgamma', a.dgamma, a.C], [['dbeta', a.dbeta, a.C]], false);
  const mark = engine.arena.mark();
  try {
    const sums = engine.alloc([a.N, a.C, 2], 'groupNormBackward sums'); // (N, C, 2)
    const HW = a.H * a.W;
    engine.run(KERNEL.group_norm_backward_f32, [
      a.N,
      a.C,
      HW,
      a.groups,
      a.dy.ptr,
      a.x.ptr,
      a.mean.ptr,
      a.rstd.ptr,
      a.gamma.ptr,
      a.dx.ptr,
      sums.ptr,
      a.accumulate ? 1 : 0,
    ]);
    engine.run(KERNEL.group_norm_backward_params_f32, [
      a.N,
      a.C,
      a.groups,
      sums.ptr,
      a.rstd.ptr,
      a.dgamma.ptr,
      a.dbeta.ptr,
    ]);
  } finally {
    engine.arena.release(mark);
  }
}
