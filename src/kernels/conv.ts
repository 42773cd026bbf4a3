// Typed wrappers for assembly/conv.ts: conv2d forward (implicit-im2col GEMM) and backward.
import { DdpmError } from '../errors.js';
import type { Engine } from '../engine/engine.js';
import type { Tensor } from '../engine/memory.js';
import { KERNEL } from '../engine/wasm-interface.generated.js';
import { checkInt, checkTensor } from './check.js';
import { checkGemmWorkspace, gemmRaw } from './gemm.js';

export interface Conv2dGeometry {
  /** Batch size. */
  N: number;
  Cin: number;
  H: number;
  W: number;
  Cout: number;
  kernel: 1 | 3;
  stride: 1 | 2;
  /** Zero padding: one number for all sides, or [top, left, bottom, right] (diffusers' Downsample2D
   * pads (0, 0, 1, 1): right and bottom only). */
  pad: number | readonly [number, number, number, number];
}

export interface Conv2dArgs extends Conv2dGeometry {
  x: Tensor; // (N, Cin, H, W)
  weight: Tensor; // (Cout, Cin, kernel, kernel)
  bias?: Tensor; // (Cout)
  y: Tensor; // (N, Cout, Ho, Wo), overwritten (or added to, with accumulate)
  accumulate?: boolean;
}

export interface Conv2dBackwardArgs extends Conv2dGeometry {
  x: Tensor; // (N, Cin, H, W), the forward input (needed for dweight)
  weight: Tensor; // (Cout, Cin, kernel, kernel)
  dy: Tensor; // (N, Cout, Ho, Wo)
  dx?: Tensor; // (N, Cin, H, W)
  dweight?: Tensor; // (Cout, Cin, kernel, kernel)
  dbias?: Tensor; // (Cout)
  /** true (default, as PyTorch): gradients are added to dx, dweight, dbias; false: overwritten. */
  accumulate?: boolean;
  /** Floats per chunk of images (default CONV_BACKWARD_CHUNK); small values force several chunks. @internal */
  chunkFloats?: number;
}

/**
 * Floats of (Kw + Cout)·P per image one chunk of the conv backward counts (16 MiB): the strided dx path's
 * dyᵀ and dcol scratch of nb images. The weight gradient has no such scratch any more — it reads a padded
 * copy of the whole batch, N·Cin·Hp·Wp floats, so its memory grows with N — and uses its nb only as the
 * point where the KC blocks of its pixel sum restart (the im2col GEMM's chunks it replaced), which fixes
 * its bits: changing this value changes dweight's rounding.
 */
export const CONV_BACKWARD_CHUNK = 1 << 22;

/** Images per chunk (see CONV_BACKWARD_CHUNK): the strided dx's scratch, dW's block restarts. Shapes only. */
function chunkImages(g: Geometry, Kw: number, P: number, chunkFloats = CONV_BACKWARD_CHUNK): number {
  return Math.max(1, Math.min(g.N, Math.floor(chunkFloats / ((Kw + g.Cout) * P))));
}

/** Output size of a conv: floor((size + padBefore + padAfter − kernel) / stride) + 1. */
export function convOutSize(size: number, padBefore: number, padAfter: number, kernel: number, stride: number): number {
  return Math.floor((size + padBefore + padAfter - kernel) / stride) + 1;
}

interface Geometry {
  N: number;
  Cin: number;
  H: number;
  W: number;
  Cout: number;
  k: number;
  stride: number;
  top: number;
  left: number;
  Ho: number;
  Wo: number;
}

const SIDES = ['top', 'left', 'bottom', 'right'];

function checkGeometry(what: string, g: Conv2dGeometry): Geometry {
  checkInt(`${what}: N`, g.N, 1);
  checkInt(`${what}: Cin`, g.Cin, 1);
  checkInt(`${what}: H`, g.H, 1);
  checkInt(`${what}: W`, g.W, 1);
  checkInt(`${what}: Cout`, g.Cout, 1);
  if (g.kernel !== 1 && g.kernel !== 3)
    throw new DdpmError('INVALID_ARGUMENT', `${what}: kernel must be 1 or 3, found ${g.kernel}`);
  if (g.stride !== 1 && g.stride !== 2)
    throw new DdpmError('INVALID_ARGUMENT', `${what}: stride must be 1 or 2, found ${g.stride}`);
  const pad = typeof g.pad === 'number' ? [g.pad, g.pad, g.pad, g.pad] : g.pad;
  if (!Array.isArray(pad) || pad.length !== 4) {
    throw new DdpmError(
      'INVALID_ARGUMENT',
      `${what}: pad must be a number or [top, left, bottom, right], found ${JSON.stringify(g.pad)}`,
    );
  }
  for (let i = 0; i < 4; i++) {
    const v = pad[i];
    if (!Number.isInteger(v) || v < 0 || v > g.kernel) checkInt(`${what}: pad ${SIDES[i]}`, v, 0, g.kernel);
  }
  const [top, left, bottom, right] = pad;
  const Ho = convOutSize(g.H, top, bottom, g.kernel, g.stride);
  const Wo = convOutSize(g.W, left, right, g.kernel, g.stride);
  if (Ho < 1 || Wo < 1) {
    throw new DdpmError(
      'SHAPE_MISMATCH',
      `${what}: a ${g.H}×${g.W} input with padding [${pad}] is smaller than the ${g.kernel}×${g.kernel} kernel`,
    );
  }
  // Kernels index with i32: keep every tensor's element count below 2^31.
  const biggest = Math.max(g.N * g.Cin * g.H * g.W, g.N * g.Cout * Ho * Wo, g.Cin * g.kernel * g.kernel * Ho * Wo);
  if (biggest >= 2 ** 31)
    throw new DdpmError('INVALID_ARGUMENT', `${what}: tensors of ${biggest} elements exceed the 2^31 limit`);
  return { N: g.N, Cin: g.Cin, H: g.H, W: g.W, Cout: g.Cout, k: g.kernel, stride: g.stride, top, left, Ho, Wo };
}

function checkDisjoint(what: string, out: [string, Tensor], ins: [string, Tensor | undefined][]): void {
  const [oName, o] = out;
  for (const [iName, t] of ins) {
    if (!t || t.size === 0 || o.size === 0) continue;
    if (o.ptr < t.ptr + 4 * t.size && t.ptr < o.ptr + 4 * o.size) {
      throw new DdpmError(
        'INVALID_ARGUMENT',
        `${what}: ${oName} (tensor ${o.name}) overlaps ${iName} (tensor ${t.name}); outputs must not alias other tensors`,
      );
    }
  }
}

/**
 * checkTensor, with the message (which names the shape) built only when a check fails: conv2d runs ~50
 * times per U-Net forward, and four eagerly built strings per call showed in small-batch profiles.
 */
function checkLazy(engine: Engine, t: Tensor, what: () => string, need: number): void {
  try {
    engine.check(t, 'conv2d');
  } catch {
    checkTensor(engine, t, what(), need); // throws the same error, named
  }
  if (t.size < need) checkTensor(engine, t, what(), need);
}

/** y = conv2d(x, weight) + bias, NCHW; bit-identical for any thread count. */
export function conv2d(engine: Engine, args: Conv2dArgs): void {
  const g = checkGeometry('conv2d', args);
  const { x, weight, bias, y } = args;
  checkLazy(engine, x, () => `conv2d: x (N, Cin, H, W) = (${g.N}, ${g.Cin}, ${g.H}, ${g.W})`, g.N * g.Cin * g.H * g.W);
  checkLazy(
    engine,
    weight,
    () => `conv2d: weight (Cout, Cin, k, k) = (${g.Cout}, ${g.Cin}, ${g.k}, ${g.k})`,
    g.Cout * g.Cin * g.k * g.k,
  );
  if (bias) checkLazy(engine, bias, () => `conv2d: bias (Cout) = (${g.Cout})`, g.Cout);
  checkLazy(
    engine,
    y,
    () => `conv2d: y (N, Cout, Ho, Wo) = (${g.N}, ${g.Cout}, ${g.Ho}, ${g.Wo})`,
    g.N * g.Cout * g.Ho * g.Wo,
  );
  checkDisjoint(
    'conv2d',
    ['y', y],
    [
      ['x', x],
      ['weight', weight],
      ['bias', bias],
    ],
  );
  checkGemmWorkspace(engine, 'conv2d');
  engine.run(KERNEL.conv2d_f32, [
    g.N,
    g.Cin,
    g.H,
    g.W,
    g.Cout,
    g.k,
    g.stride,
    g.top,
    g.left,
    g.Ho,
    g.Wo,
    x.ptr,
    weight.ptr,
    bias ? bias.ptr : 0,
    y.ptr,
    engine.workspace.ptr,
    engine.workspace.bytesPerThread,
    args.accumulate ? 1 : 0,
  ]);
}

/**
 * Gradients of y = conv2d(x, weight) + bias given dy: any of dx, dweight, dbias (each optional), added to
 * the given buffers (accumulate, default) or overwriting them. The batch is folded into the GEMMs (a few
 * dispatches per chunk of images, not four per image); the weight gradient sums chunks in order, so it is
 * bit-identical for any thread count. Scratch from the arena: for dweight a zero-padded copy of all of x
 * (N·Cin·Hp·Wp floats: it grows with the batch), for a strided dx dyᵀ and dcol of one chunk of images.
 */
export function conv2dBackward(engine: Engine, args: Conv2dBackwardArgs): void {
  const g = checkGeometry('conv2dBackward', args);
  const { x, weight, dy, dx, dweight, dbias, accumulate = true } = args;
  const xSize = g.N * g.Cin * g.H * g.W;
  const wSize = g.Cout * g.Cin * g.k * g.k;
  const P = g.Ho * g.Wo; // output pixels per image
  const Kw = g.Cin * g.k * g.k; // rows of col(x)
  checkTensor(engine, x, `conv2dBackward: x (N, Cin, H, W) = (${g.N}, ${g.Cin}, ${g.H}, ${g.W})`, xSize);
  checkTensor(
    engine,
    weight,
    `conv2dBackward: weight (Cout, Cin, k, k) = (${g.Cout}, ${g.Cin}, ${g.k}, ${g.k})`,
    wSize,
  );
  checkTensor(
    engine,
    dy,
    `conv2dBackward: dy (N, Cout, Ho, Wo) = (${g.N}, ${g.Cout}, ${g.Ho}, ${g.Wo})`,
    g.N * g.Cout * P,
  );
  if (dx) checkTensor(engine, dx, `conv2dBackward: dx (N, Cin, H, W) = (${g.N}, ${g.Cin}, ${g.H}, ${g.W})`, xSize);
  if (dweight)
    checkTensor(
      engine,
      dweight,
      `conv2dBackward: dweight (Cout, Cin, k, k) = (${g.Cout}, ${g.Cin}, ${g.k}, ${g.k})`,
      wSize,
    );
  if (dbias) checkTensor(engine, dbias, `conv2dBackward: dbias (Cout) = (${g.Cout})`, g.Cout);
  if (typeof accumulate !== 'boolean')
    throw new DdpmError(
      'INVALID_ARGUMENT',
      `conv2dBackward: accumulate must be a boolean, found ${String(accumulate)}`,
    );
  const inputs: [string, Tensor | undefined][] = [
    ['x', x],
    ['weight', weight],
    ['dy', dy],
  ];
  const outputs: [string, Tensor | undefined][] = [
    ['dx', dx],
    ['dweight', dweight],
    ['dbias', dbias],
  ];
  for (const [name, t] of outputs) {
    if (t) checkDisjoint('conv2dBackward', [name, t], [...inputs, ...outputs.filter(([n]) => n !== name)]);
  }
  checkGemmWorkspace(engine, 'conv2dBackward');

  const beta = accumulate ? 1 : 0;
  const geo = [g.Cin, g.H, g.W, g.k, g.stride, g.top, g.left, g.Ho, g.Wo] as const;
  if (dbias) engine.run(KERNEL.conv2d_bias_grad_f32, [g.N, g.Cout, P, dy.ptr, dbias.ptr, beta]);
  if (!dx && !dweight) return;
  // The batch is folded into each gradient's GEMM (one dispatch for the whole batch, or one per chunk of
  // nb images where a scratch matrix would be large); nb depends only on the shapes, never on the thread
  // count, so the summation order of dW is fixed.
  const mark = engine.arena.mark();
  try {
    // Stride 1: dx is the transposed convolution, i.e. conv2d(dy, flipped weights) with padding k−1−pad,
    // run on the forward kernel (implicit im2col, the whole batch in one GEMM) — no dcol, no col2im.
    const transposed = dx !== undefined && g.stride === 1;
    if (transposed) {
      const wt = engine.alloc([g.Cin, g.Cout, g.k, g.k], 'conv2dBackward flipped weights');
      engine.run(KERNEL.conv2d_flip_weights_f32, [g.Cout, g.Cin, g.k, weight.ptr, wt.ptr]);
      engine.run(KERNEL.conv2d_f32, [
        g.N,
        g.Cout,
        g.Ho,
        g.Wo,
        g.Cin,
        g.k,
        1,
        g.k - 1 - g.top,
        g.k - 1 - g.left,
        g.H,
        g.W,
        dy.ptr,
        wt.ptr,
        0,
        dx.ptr,
        engine.workspace.ptr,
        engine.workspace.bytesPerThread,
        beta,
      ]);
    }
    if (dweight) {
      // dW from a zero-padded copy of x (channel-major for 3×3, channels-last for 1×1), no im2col. nb only
      // fixes where the KC blocks restart (the summation order of the im2col GEMM this replaced, so the
      // same bits), never the thread count.
      const nbW = chunkImages(g, Kw, P, args.chunkFloats);
      const Hp = Math.max(g.H + g.top, (g.Ho - 1) * g.stride + g.k);
      const Wp = Math.max(g.W + g.left, (g.Wo - 1) * g.stride + g.k);
      const channelsLast = g.k === 1 ? 1 : 0;
      const xp = engine.alloc(g.N * g.Cin * Hp * Wp + 4, 'conv2dBackward padded x'); // + the 1×1 groups' slack
      engine.run(KERNEL.conv2d_pad_input_f32, [
        g.N,
        g.Cin,
        g.H,
        g.W,
        g.top,
        g.left,
        Hp,
        Wp,
        channelsLast,
        x.ptr,
        xp.ptr,
      ]);
      engine.run(KERNEL.conv2d_weight_grad_f32, [
        g.N,
        g.Cin,
        g.Cout,
        g.k,
        g.stride,
        g.Ho,
        g.Wo,
        Hp,
        Wp,
        nbW,
        xp.ptr,
        dy.ptr,
        dweight.ptr,
        beta,
        engine.workspace.ptr,
        engine.workspace.bytesPerThread,
      ]);
    }
    if (dx === undefined || transposed) return;
    // Strided dx: dcol (Kw, nb·P) = Wᵀ (Kw, Cout) · dyᵀ (Cout, nb·P), scattered back onto dx by col2im,
    // nb images at a time (dyᵀ is dy's chunk laid out channel by channel).
    const nb = chunkImages(g, Kw, P, args.chunkFloats);
    const dyT = engine.alloc([g.Cout, nb * P], 'conv2dBackward dyT'); // (Cout, nb·P)
    const col = engine.alloc([Kw, nb * P], 'conv2dBackward dcol'); // (Cin·k·k, nb·P)
    for (let n0 = 0; n0 < g.N; n0 += nb) {
      const m = Math.min(nb, g.N - n0);
      const L = m * P; // columns of this chunk
      engine.run(KERNEL.batch_to_rows_f32, [m, g.Cout, P, dy.ptr + 4 * n0 * g.Cout * P, dyT.ptr]);
      gemmRaw(engine, true, false, Kw, L, g.Cout, 1, weight.ptr, Kw, dyT.ptr, L, 0, col.ptr, L, 0, 0);
      engine.run(KERNEL.conv2d_col2im_batch_f32, [m, ...geo, col.ptr, dx.ptr + 4 * n0 * g.Cin * g.H * g.W, beta]);
    }
  } finally {
    engine.arena.release(mark);
  }
}
