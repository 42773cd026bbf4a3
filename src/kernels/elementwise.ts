// Typed wrappers for assembly/elementwise.ts: each checks sizes, scalars and aliasing, naming the argument,
// before its kernel runs.
import type { Engine } from '../engine/engine.js';
import type { Tensor } from '../engine/memory.js';
import { KERNEL } from '../engine/wasm-interface.generated.js';
import { checkNCHW, checkNoOverlap, type NCHW } from './layout.js';
import { checkInt, checkScalar, checkTensor } from './check.js';

/**
 * Elements below which a cheap elementwise kernel runs on the calling thread alone: waking the pool and
 * waiting for the slowest thread costs more than splitting a few thousand values saves (a U-Net forward
 * makes dozens of such calls on small activations). Every kernel is bit-identical for any thread count,
 * so this changes no result. SiLU's exp makes it ~5× costlier per element, hence its lower bound.
 */
export const SERIAL_BELOW = 1 << 15;
const SERIAL_BELOW_EXP = 1 << 13;

/** y[0:n] += a · x[0:n] */
export function axpy(engine: Engine, n: number, a: number, x: Tensor, y: Tensor): void {
  checkInt('axpy: n', n, 0);
  checkScalar('axpy: a', a);
  checkTensor(engine, x, 'axpy: x', n);
  checkTensor(engine, y, 'axpy: y', n);
  engine.run(KERNEL.axpy_f32, [n, a, x.ptr, y.ptr], n >= SERIAL_BELOW);
}

/** z[0:n] = x + y; z may be x or y. */
export function add(engine: Engine, n: number, x: Tensor, y: Tensor, z: Tensor): void {
  binary(engine, 'add', KERNEL.add_f32, n, x, y, z);
}

/** z[0:n] = x ⊙ y; z may be x or y. */
export function mul(engine: Engine, n: number, x: Tensor, y: Tensor, z: Tensor): void {
  binary(engine, 'mul', KERNEL.mul_f32, n, x, y, z);
}

function binary(
  engine: Engine,
  op: string,
  kernel: typeof KERNEL.add_f32 | typeof KERNEL.mul_f32,
  n: number,
  x: Tensor,
  y: Tensor,
  z: Tensor,
): void {
  checkInt(`${op}: n`, n, 0);
  checkTensor(engine, x, `${op}: x`, n);
  checkTensor(engine, y, `${op}: y`, n);
  checkTensor(engine, z, `${op}: z`, n);
  checkNoOverlap(
    op,
    ['z', z, n],
    [
      ['x', x, n],
      ['y', y, n],
    ],
    true,
  );
  engine.run(kernel, [n, x.ptr, y.ptr, z.ptr], n >= SERIAL_BELOW);
}

/** y[0:n] = a · x; y may be x (gradient clipping scales in place). */
export function scale(engine: Engine, n: number, a: number, x: Tensor, y: Tensor): void {
  checkInt('scale: n', n, 0);
  checkScalar('scale: a', a);
  checkTensor(engine, x, 'scale: x', n);
  checkTensor(engine, y, 'scale: y', n);
  checkNoOverlap('scale', ['y', y, n], [['x', x, n]], true);
  engine.run(KERNEL.scale_f32, [n, a, x.ptr, y.ptr], n >= SERIAL_BELOW);
}

/** y[0:n] = SiLU(x) = x·σ(x); y may be x. */
export function silu(engine: Engine, n: number, x: Tensor, y: Tensor): void {
  checkInt('silu: n', n, 0);
  checkTensor(engine, x, 'silu: x', n);
  checkTensor(engine, y, 'silu: y', n);
  checkNoOverlap('silu', ['y', y, n], [['x', x, n]], true);
  engine.run(KERNEL.silu_f32, [n, x.ptr, y.ptr], n >= SERIAL_BELOW_EXP);
}

/**
 * dx[0:n] = dy·σ(x)·(1 + x·(1 − σ(x))), x the forward input: overwritten (dx may be dy), or with
 * `accumulate` added to dx (which must then not overlap x or dy).
 */
export function siluBackward(engine: Engine, n: number, x: Tensor, dy: Tensor, dx: Tensor, accumulate = false): void {
  checkInt('siluBackward: n', n, 0);
  checkTensor(engine, x, 'siluBackward: x', n);
  checkTensor(engine, dy, 'siluBackward: dy', n);
  checkTensor(engine, dx, 'siluBackward: dx', n);
  checkNoOverlap(
    'siluBackward',
    ['dx', dx, n],
    [
      ['x', x, n],
      ['dy', dy, n],
    ],
    !accumulate,
  );
  engine.run(KERNEL.silu_backward_f32, [n, x.ptr, dy.ptr, dx.ptr, accumulate ? 1 : 0], n >= SERIAL_BELOW_EXP);
}

/** z[0:n] += x ⊙ y (the product rounded, then added): an accumulated gradient of a product. */
export function mulAccumulate(engine: Engine, n: number, x: Tensor, y: Tensor, z: Tensor): void {
  checkInt('mulAccumulate: n', n, 0);
  checkTensor(engine, x, 'mulAccumulate: x', n);
  checkTensor(engine, y, 'mulAccumulate: y', n);
  checkTensor(engine, z, 'mulAccumulate: z', n);
  checkNoOverlap(
    'mulAccumulate',
    ['z', z, n],
    [
      ['x', x, n],
      ['y', y, n],
    ],
    false,
  );
  engine.run(KERNEL.mul_acc_f32, [n, x.ptr, y.ptr, z.ptr], n >= SERIAL_BELOW);
}

export interface SoftmaxArgs {
  /** Rows of the (rows, cols) matrix, each normalized on its own. */
  rows: number;
  cols: number;
  /** (rows, cols) */
  x: Tensor;
  /** (rows, cols); may be x. */
  y: Tensor;
  /** Applied to x first: attention's 1/√d. Default 1. */
  scale?: number;
}

/** y[r] = softmax(scale · x[r]) per row, the row max subtracted first. */
export function softmax(engine: Engine, a: SoftmaxArgs): void {
  const scale = a.scale ?? 1;
  const n = checkRows(engine, 'softmax', a.rows, a.cols, scale, [
    ['x', a.x],
    ['y', a.y],
  ]);
  checkNoOverlap('softmax', ['y', a.y, n], [['x', a.x, n]], true);
  engine.run(KERNEL.softmax_f32, [a.rows, a.cols, scale, a.x.ptr, a.y.ptr]);
}

export interface SoftmaxBackwardArgs {
  rows: number;
  cols: number;
  /** (rows, cols): the forward output. */
  y: Tensor;
  /** (rows, cols) */
  dy: Tensor;
  /** (rows, cols), overwritten; may be dy. */
  dx: Tensor;
  /** The forward pass's scale. Default 1. */
  scale?: number;
}

/** dx[r] = scale · y[r] ⊙ (dy[r] − Σ_j dy[r,j]·y[r,j]) per row. */
export function softmaxBackward(engine: Engine, a: SoftmaxBackwardArgs): void {
  const scale = a.scale ?? 1;
  const n = checkRows(engine, 'softmaxBackward', a.rows, a.cols, scale, [
    ['y', a.y],
    ['dy', a.dy],
    ['dx', a.dx],
  ]);
  checkNoOverlap(
    'softmaxBackward',
    ['dx', a.dx, n],
    [
      ['y', a.y, n],
      ['dy', a.dy, n],
    ],
    true,
  );
  engine.run(KERNEL.softmax_backward_f32, [a.rows, a.cols, scale, a.y.ptr, a.dy.ptr, a.dx.ptr]);
}

function checkRows(
  engine: Engine,
  op: string,
  rows: number,
  cols: number,
  scale: number,
  ts: [string, Tensor][],
): number {
  checkInt(`${op}: rows`, rows, 0);
  checkInt(`${op}: cols`, cols, 1);
  checkScalar(`${op}: scale`, scale);
  const n = rows * cols;
  for (const [what, t] of ts) checkTensor(engine, t, `${op}: ${what} (${rows}×${cols})`, n);
  return n;
}

export interface UpsampleArgs extends NCHW {
  /** (N, C, H, W) */
  x: Tensor;
  /** (N, C, 2H, 2W); must not overlap x. */
  y: Tensor;
}

/** Nearest-neighbour 2× upsampling, (N, C, H, W) → (N, C, 2H, 2W). */
export function upsampleNearest2x(engine: Engine, a: UpsampleArgs): void {
  const n = checkNCHW('upsampleNearest2x', a);
  checkTensor(engine, a.x, 'upsampleNearest2x: x (N, C, H, W)', n);
  checkTensor(engine, a.y, 'upsampleNearest2x: y (N, C, 2H, 2W)', 4 * n);
  checkNoOverlap('upsampleNearest2x', ['y', a.y, 4 * n], [['x', a.x, n]], false);
  engine.run(KERNEL.upsample_nearest2x_f32, [a.N * a.C, a.H, a.W, a.x.ptr, a.y.ptr], n >= SERIAL_BELOW);
}

export interface UpsampleBackwardArgs extends NCHW {
  /** (N, C, 2H, 2W) */
  dy: Tensor;
  /** (N, C, H, W), overwritten (or added to, with accumulate); must not overlap dy. */
  dx: Tensor;
  accumulate?: boolean;
}

/** dx (+)= the sum of the four dy values each x value was copied to. */
export function upsampleNearest2xBackward(engine: Engine, a: UpsampleBackwardArgs): void {
  const n = checkNCHW('upsampleNearest2xBackward', a);
  checkTensor(engine, a.dy, 'upsampleNearest2xBackward: dy (N, C, 2H, 2W)', 4 * n);
  checkTensor(engine, a.dx, 'upsampleNearest2xBackward: dx (N, C, H, W)', n);
  checkNoOverlap('upsampleNearest2xBackward', ['dx', a.dx, n], [['dy', a.dy, 4 * n]], false);
  engine.run(
    KERNEL.upsample_nearest2x_backward_f32,
    [a.N * a.C, a.H, a.W, a.dy.ptr, a.dx.ptr, a.accumulate ? 1 : 0],
    n >= SERIAL_BELOW,
  );
}

export interface ChannelBiasArgs extends NCHW {
  /** (N, C): one value per image and channel (a ResNet block's projected time embedding). */
  bias: Tensor;
  /** (N, C, H, W), updated in place. */
  x: Tensor;
}

/** x[n,c,h,w] += bias[n,c] */
export function addChannelBias(engine: Engine, a: ChannelBiasArgs): void {
  const n = checkNCHW('addChannelBias', a);
  checkTensor(engine, a.bias, 'addChannelBias: bias (N, C)', a.N * a.C);
  checkTensor(engine, a.x, 'addChannelBias: x (N, C, H, W)', n);
  checkNoOverlap('addChannelBias', ['x', a.x, n], [['bias', a.bias, a.N * a.C]], false);
  engine.run(KERNEL.add_channel_bias_f32, [a.N * a.C, a.H * a.W, a.bias.ptr, a.x.ptr], n >= SERIAL_BELOW);
}

export interface ChannelBiasBackwardArgs extends NCHW {
  /** (N, C, H, W) */
  dy: Tensor;
  /** (N, C), overwritten (or added to, with accumulate). */
  dbias: Tensor;
  accumulate?: boolean;
}

/** dbias[n,c] (+)= Σ_hw dy[n,c,h,w] */
export function addChannelBiasBackward(engine: Engine, a: ChannelBiasBackwardArgs): void {
  const n = checkNCHW('addChannelBiasBackward', a);
  checkTensor(engine, a.dy, 'addChannelBiasBackward: dy (N, C, H, W)', n);
  checkTensor(engine, a.dbias, 'addChannelBiasBackward: dbias (N, C)', a.N * a.C);
  checkNoOverlap('addChannelBiasBackward', ['dbias', a.dbias, a.N * a.C], [['dy', a.dy, n]], false);
  engine.run(
    KERNEL.add_channel_bias_backward_f32,
    [a.N * a.C, a.H * a.W, a.dy.ptr, a.dbias.ptr, a.accumulate ? 1 : 0],
    n >= SERIAL_BELOW,
  );
}

/** Shapes of a channel concatenation (N, C1, H, W) ‖ (N, C2, H, W) → (N, C1 + C2, H, W). */
export interface ConcatShape {
  N: number;
  C1: number;
  C2: number;
  H: number;
  W: number;
}

function checkConcat(op: string, s: ConcatShape): [n1: number, n2: number] {
  checkInt(`${op}: N`, s.N, 1);
  checkInt(`${op}: C1`, s.C1, 1);
  checkInt(`${op}: C2`, s.C2, 1);
  checkInt(`${op}: H`, s.H, 1);
  checkInt(`${op}: W`, s.W, 1);
  const hw = s.H * s.W;
  return [s.N * s.C1 * hw, s.N * s.C2 * hw];
}

export interface ConcatArgs extends ConcatShape {
  /** (N, C1, H, W) */
  a: Tensor;
  /** (N, C2, H, W) */
  b: Tensor;
  /** (N, C1 + C2, H, W); must not overlap a or b. */
  y: Tensor;
}

/** y = concat(a, b) along channels, as torch.cat([a, b], dim=1). */
export function concatChannels(engine: Engine, s: ConcatArgs): void {
  const [n1, n2] = checkConcat('concatChannels', s);
  checkTensor(engine, s.a, 'concatChannels: a (N, C1, H, W)', n1);
  checkTensor(engine, s.b, 'concatChannels: b (N, C2, H, W)', n2);
  checkTensor(engine, s.y, 'concatChannels: y (N, C1 + C2, H, W)', n1 + n2);
  checkNoOverlap(
    'concatChannels',
    ['y', s.y, n1 + n2],
    [
      ['a', s.a, n1],
      ['b', s.b, n2],
    ],
    false,
  );
  engine.run(
    KERNEL.concat_channels_f32,
    [s.N, s.C1, s.C2, s.H * s.W, s.a.ptr, s.b.ptr, s.y.ptr],
    n1 + n2 >= SERIAL_BELOW,
  );
}

export interface ConcatBackwardArgs extends ConcatShape {
  /** (N, C1 + C2, H, W) */
  dy: Tensor;
  /** (N, C1, H, W) */
  da: Tensor;
  /** (N, C2, H, W) */
  db: Tensor;
  /** Add into da and db instead of overwriting them (a skip source's gradient sums both paths). Default false. */
  accumulate?: boolean;
}

/** da, db = the channel split of dy (overwritten, or added with accumulate). */
export function concatChannelsBackward(engine: Engine, s: ConcatBackwardArgs): void {
  const [n1, n2] = checkConcat('concatChannelsBackward', s);
  checkTensor(engine, s.dy, 'concatChannelsBackward: dy (N, C1 + C2, H, W)', n1 + n2);
  checkTensor(engine, s.da, 'concatChannelsBackward: da (N, C1, H, W)', n1);
  checkTensor(engine, s.db, 'concatChannelsBackward: db (N, C2, H, W)', n2);
  checkNoOverlap(
    'concatChannelsBackward',
    ['da', s.da, n1],
    [
      ['dy', s.dy, n1 + n2],
      ['db', s.db, n2],
    ],
    false,
  );
  checkNoOverlap('concatChannelsBackward', ['db', s.db, n2], [['dy', s.dy, n1 + n2]], false);
  engine.run(
    KERNEL.concat_channels_backward_f32,
    [s.N, s.C1, s.C2, s.H * s.W, s.dy.ptr, s.da.ptr, s.db.ptr, s.accumulate ? 1 : 0],
    n1 + n2 >= SERIAL_BELOW,
  );
}
