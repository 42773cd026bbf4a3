// Typed wrapper for assembly/norm-silu.ts: the backward pass of SiLU(GroupNorm(x)) in one kernel.
import { DdpmError } from '../errors.js';
import type { Engine } from '../engine/engine.js';
import type { Tensor } from '../engine/memory.js';
import { KERNEL } from '../engine/wasm-interface.generated.js';
import { checkInt, checkTensor } from './check.js';
import { checkNCHW, checkNoOverlap } from './layout.js';
import type { GroupNormShape } from './norm.js';

export interface GroupNormSiluBackwardArgs extends GroupNormShape {
  /** (N, C, H, W): the gradient of y = SiLU(GroupNorm(x)). */
  dy: Tensor;
  /** (N, C, H, W): the forward input. */
  x: Tensor;
  /** (N, G), (N, G): as saved by groupNorm (with or without `silu`). */
  mean: Tensor;
  rstd: Tensor;
  /** (C): the forward's gamma and beta (beta is needed to recompute the normalized values). */
  gamma: Tensor;
  beta: Tensor;
  /** (N, C, H, W), overwritten, or added to with accumulate; must not alias dy or x. */
  dx: Tensor;
  accumulate?: boolean;
  /** (C), accumulated (+=). */
  dgamma: Tensor;
  /** (C), accumulated (+=). */
  dbeta: Tensor;
}

/** Whether groupNormSiluBackward can run this shape: one group's C/G·H·W floats must fit a thread's workspace. */
export function groupNormSiluFits(engine: Engine, s: GroupNormShape): boolean {
  return (s.C / s.groups) * s.H * s.W * 4 <= engine.workspace.bytesPerThread;
}

/**
 * The backward pass of y = SiLU(groupNorm(x)): dx, dgamma, dbeta — the same bits as siluBackward onto a
 * zeroed gradient of the normalized values followed by groupNormBackward, without storing those values
 * (the kernel recomputes them from x and the statistics). Bit-identical for any thread count.
 */
export function groupNormSiluBackward(engine: Engine, a: GroupNormSiluBackwardArgs): void {
  const op = 'groupNormSiluBackward';
  const n = checkNCHW(op, a);
  checkInt(`${op}: groups`, a.groups, 1);
  if (a.C % a.groups !== 0) {
    throw new DdpmError('INVALID_ARGUMENT', `${op}: num_groups (${a.groups}) must divide num_channels (${a.C})`);
  }
  if (!groupNormSiluFits(engine, a)) {
    throw new DdpmError(
      'INVALID_ARGUMENT',
      `${op}: a group of ${(a.C / a.groups) * a.H * a.W} values does not fit the ${engine.workspace.bytesPerThread}-byte workspace per thread (Engine.create scratchPerThread)`,
    );
  }
  const NG = a.N * a.groups;
  checkTensor(engine, a.dy, `${op}: dy (N, C, H, W)`, n);
  checkTensor(engine, a.x, `${op}: x (N, C, H, W)`, n);
  checkTensor(engine, a.mean, `${op}: mean (N, G)`, NG);
  checkTensor(engine, a.rstd, `${op}: rstd (N, G)`, NG);
  checkTensor(engine, a.gamma, `${op}: gamma (C)`, a.C);
  checkTensor(engine, a.beta, `${op}: beta (C)`, a.C);
  checkTensor(engine, a.dx, `${op}: dx (N, C, H, W)`, n);
  checkTensor(engine, a.dgamma, `${op}: dgamma (C)`, a.C);
  checkTensor(engine, a.dbeta, `${op}: dbeta (C)`, a.C);
  const stats: [string, Tensor, number][] = [
    ['mean', a.mean, NG],
    ['rstd', a.rstd, NG],
    ['gamma', a.gamma, a.C],
    ['beta', a.beta, a.C],
  ];
  const ins: [string, Tensor, number][] = [
    ['dy', a.dy, n],
    ['x', a.x, n],
  ];
  checkNoOverlap(op, ['dx', a.dx, n], [...ins, ...stats], false);
  for (const out of [
    ['dgamma', a.dgamma, a.C],
    ['dbeta', a.dbeta, a.C],
  ] as const) {
    checkNoOverlap(op, out, [...ins, ['dx', a.dx, n], ...stats], false);
  }
  checkNoOverlap(op, ['dgamma', a.dgamma, a.C], [['dbeta', a.dbeta, a.C]], false);
  const mark = engine.arena.mark();
  try {
    const sums = engine.alloc([a.N, a.C, 2], 'groupNormSiluBackward sums'); // (N, C, 2)
    engine.run(KERNEL.group_norm_silu_backward_f32, [
      a.N,
      a.C,
      a.H * a.W,
      a.groups,
      a.dy.ptr,
      a.x.ptr,
      a.mean.ptr,
      a.rstd.ptr,
      a.gamma.ptr,
      a.beta.ptr,
      a.dx.ptr,
      sums.ptr,
      a.accumulate ? 1 : 0,
      engine.workspace.ptr,
      engine.workspace.bytesPerThread,
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
