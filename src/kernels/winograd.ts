// Typed wrappers for assembly/winograd.ts: Winograd F(m×m, 3×3) convolution (m = 2 or 4) for 3×3, stride 1,
// padding 1 convs. Same result as conv2d up to rounding (the transforms reassociate the sums; see
// docs/winograd.md for the measured errors): a filter transform (once per weights), the input transform,
// α² = (m + 2)² GEMMs over channels in one batched dispatch, the output transform with the bias.
import { DdpmError } from '../errors.js';
import type { Engine } from '../engine/engine.js';
import type { Tensor } from '../engine/memory.js';
import { KERNEL } from '../engine/wasm-interface.generated.js';
import { checkInt, checkTensor } from './check.js';
import { checkGemmWorkspace } from './gemm.js';

/** Output tile size m of F(m×m, 3×3): 2 (16 GEMMs, 2.25× fewer multiplies) or 4 (36 GEMMs, 4×). */
export type WinogradTile = 2 | 4;

export interface WinogradFilterArgs {
  tile: WinogradTile;
  Cout: number;
  Cin: number;
  weight: Tensor; // (Cout, Cin, 3, 3)
  /** (α², Cout, Cin), α = tile + 2: G g Gᵀ per filter, overwritten. */
  filter: Tensor;
}

export interface Conv2dWinogradArgs {
  tile: WinogradTile;
  N: number;
  Cin: number;
  H: number;
  W: number;
  Cout: number;
  x: Tensor; // (N, Cin, H, W)
  /** The transformed filter from winogradFilter (cache it per weights); or `weight` to transform per call. */
  filter?: Tensor; // (α², Cout, Cin)
  weight?: Tensor; // (Cout, Cin, 3, 3)
  bias?: Tensor; // (Cout)
  y: Tensor; // (N, Cout, H, W), overwritten (or added to, with accumulate)
  accumulate?: boolean;
}

/**
 * Floats from one of the α² matrices of U, V, M to the next: n + 4 rounded up to an odd multiple of 16, so
 * the α² values of one tile fall in different L1 sets (assembly/winograd.ts, "Planes"), and the output
 * transform's overread of up to 3 floats past a matrix stays inside the buffer.
 */
function planeStride(n: number): number {
  const k = Math.ceil((n + 4) / 16);
  return 16 * (k % 2 === 1 ? k : k + 1);
}

/** Elements of the transformed filter of a (Cout, Cin, 3, 3) weight: α² matrices (Cout, Cin), padded. */
export function winogradFilterSize(tile: WinogradTile, Cout: number, Cin: number): number {
  return (tile + 2) ** 2 * planeStride(Cout * Cin);
}

/**
 * Arena bytes conv2dWinograd allocates for the duration of one call (released when it returns): the
 * filter (unless given), V and M, each rounded up to the arena's 64-byte alignment. For memory plans.
 */
export function winogradTempBytes(
  tile: WinogradTile,
  g: { N: number; Cin: number; H: number; W: number; Cout: number },
  withFilter = true,
): number {
  const a2 = (tile + 2) ** 2;
  const T = g.N * Math.ceil(g.H / tile) * Math.ceil(g.W / tile);
  const bytes = (n: number) => Math.ceil((4 * n) / 64) * 64;
  return (
    (withFilter ? bytes(winogradFilterSize(tile, g.Cout, g.Cin)) : 0) +
    bytes(a2 * planeStride(g.Cin * T)) +
    bytes(a2 * planeStride(g.Cout * T))
  );
}

/** Workspace bytes per thread the transforms need for images W pixels wide (assembly/winograd.ts). */
function transformWorkspaceBytes(m: number, W: number): number {
  const a = m + 2;
  const L = ((Math.ceil(W / m) + 3) & ~3) + 4;
  return Math.max(4 * a * m * L + 16 * (a + a * a), 4 * m * m * L + 16 * a * a);
}

function checkTile(what: string, tile: unknown): asserts tile is WinogradTile {
  if (tile !== 2 && tile !== 4)
    throw new DdpmError('INVALID_ARGUMENT', `${what}: tile must be 2 or 4, found ${String(tile)}`);
}

function overlaps(a: Tensor, b: Tensor | undefined): boolean {
  return !!b && a.size > 0 && b.size > 0 && a.ptr < b.ptr + 4 * b.size && b.ptr < a.ptr + 4 * a.size;
}

/** filter = G g Gᵀ for every (co, ci) of weight, computed in float64 and rounded once. */
export function winogradFilter(engine: Engine, args: WinogradFilterArgs): void {
  const { tile, Cout, Cin, weight, filter } = args;
  checkTile('winogradFilter', tile);
  checkInt('winogradFilter: Cout', Cout, 1);
  checkInt('winogradFilter: Cin', Cin, 1);
  checkTensor(engine, weight, `winogradFilter: weight (Cout, Cin, 3, 3) = (${Cout}, ${Cin}, 3, 3)`, Cout * Cin * 9);
  const a = tile + 2;
  checkTensor(
    engine,
    filter,
    `winogradFilter: filter (α², Cout, Cin) = (${a * a}, ${Cout}, ${Cin}), padded`,
    winogradFilterSize(tile, Cout, Cin),
  );
  if (overlaps(filter, weight))
    throw new DdpmError(
      'INVALID_ARGUMENT',
      `winogradFilter: filter (tensor ${filter.name}) overlaps weight (tensor ${weight.name})`,
    );
  engine.run(KERNEL.winograd_filter_f32, [
    tile,
    Cout,
    Cin,
    weight.ptr,
    filter.ptr,
    planeStride(Cout * Cin),
    engine.workspace.ptr,
    engine.workspace.bytesPerThread,
  ]);
}

/**
 * y = conv2d(x, weight) + bias for a 3×3 kernel, stride 1, padding 1 (NCHW), by Winograd F(tile×tile, 3×3).
 * Bit-identical for any thread count (not to conv2d: the sums are reassociated).
 */
export function conv2dWinograd(engine: Engine, args: Conv2dWinogradArgs): void {
  const { tile: m, N, Cin, H, W, Cout, x, filter, weight, bias, y } = args;
  const what = 'conv2dWinograd';
  checkTile(what, m);
  checkInt(`${what}: N`, N, 1);
  checkInt(`${what}: Cin`, Cin, 1);
  checkInt(`${what}: H`, H, 1);
  checkInt(`${what}: W`, W, 1);
  checkInt(`${what}: Cout`, Cout, 1);
  const a = m + 2;
  const T = N * Math.ceil(H / m) * Math.ceil(W / m); // tiles
  const biggest = Math.max(N * Cin * H * W, N * Cout * H * W, a * a * Math.max(Cin, Cout) * T + 4);
  if (biggest >= 2 ** 31)
    throw new DdpmError('INVALID_ARGUMENT', `${what}: tensors of ${biggest} elements exceed the 2^31 limit`);
  checkTensor(engine, x, `${what}: x (N, Cin, H, W) = (${N}, ${Cin}, ${H}, ${W})`, N * Cin * H * W);
  checkTensor(engine, y, `${what}: y (N, Cout, H, W) = (${N}, ${Cout}, ${H}, ${W})`, N * Cout * H * W);
  if (bias) checkTensor(engine, bias, `${what}: bias (Cout) = (${Cout})`, Cout);
  if (filter) {
    checkTensor(
      engine,
      filter,
      `${what}: filter (α², Cout, Cin) = (${a * a}, ${Cout}, ${Cin}), padded`,
      winogradFilterSize(m, Cout, Cin),
    );
  } else if (weight) {
    checkTensor(engine, weight, `${what}: weight (Cout, Cin, 3, 3) = (${Cout}, ${Cin}, 3, 3)`, Cout * Cin * 9);
  } else {
    throw new DdpmError('INVALID_ARGUMENT', `${what}: give the transformed filter or the weight`);
  }
  for (const [name, t] of [
    ['x', x],
    ['filter', filter],
    ['weight', weight],
    ['bias', bias],
  ] as const) {
    if (overlaps(y, t))
      throw new DdpmError(
        'INVALID_ARGUMENT',
        `${what}: y (tensor ${y.name}) overlaps ${name} (tensor ${t!.name}); outputs must not alias other tensors`,
      );
  }
  checkGemmWorkspace(engine, what);
  const need = transformWorkspaceBytes(m, W);
  if (engine.workspace.bytesPerThread < need) {
    throw new DdpmError(
      'INVALID_ARGUMENT',
      `${what}: images ${W} pixels wide need ${need} bytes of workspace per thread, the engine has ${engine.workspace.bytesPerThread}`,
    );
  }
  const ws = engine.workspace.ptr,
    wsBytes = engine.workspace.bytesPerThread;
  const mark = engine.arena.mark();
  try {
    const [pU, pV, pM] = [planeStride(Cout * Cin), planeStride(Cin * T), planeStride(Cout * T)];
    let U = filter;
    if (!U) {
      U = engine.alloc(winogradFilterSize(m, Cout, Cin), 'conv2dWinograd filter'); // (α², Cout, Cin)
      engine.run(KERNEL.winograd_filter_f32, [m, Cout, Cin, weight!.ptr, U.ptr, pU, ws, wsBytes]);
    }
    const V = engine.alloc(a * a * pV, 'conv2dWinograd V'); // (α², Cin, T)
    const M = engine.alloc(a * a * pM, 'conv2dWinograd M'); // (α², Cout, T); the padding covers the 3-float overread
    engine.run(KERNEL.winograd_input_f32, [m, N, Cin, H, W, x.ptr, V.ptr, pV, ws, wsBytes]);
    // M[ξ] (Cout, T) = U[ξ] (Cout, Cin) · V[ξ] (Cin, T), ξ < α²
    engine.run(KERNEL.gemm_batched_f32, [
      a * a,
      pU,
      pV,
      pM,
      0,
      0,
      Cout,
      T,
      Cin,
      1,
      U.ptr,
      Cin,
      V.ptr,
      T,
      0,
      M.ptr,
      T,
      ws,
      wsBytes,
    ]);
    engine.run(KERNEL.winograd_output_f32, [
      m,
      N,
      Cout,
      H,
      W,
      M.ptr,
      pM,
      bias ? bias.ptr : 0,
      y.ptr,
      args.accumulate ? 1 : 0,
      ws,
      wsBytes,
    ]);
  } finally {
    engine.arena.release(mark);
  }
}

/** Which convs the layers run by Winograd: 'measured' (the rule below), 'always' (every eligible conv, for
 * tests), 'never' (the direct conv only). Not in the public `kernels` namespace. */
export type WinogradPolicy = 'measured' | 'always' | 'never';
let policy: WinogradPolicy = 'measured';

/** Sets the policy; returns the previous one. For tests and bench/ (not in the public `kernels` namespace). */
export function setWinogradPolicy(p: WinogradPolicy): WinogradPolicy {
  const old = policy;
  policy = p;
  return old;
}

/** The current policy (part of what UNet2DModel's inference replays are keyed by). */
export function winogradPolicy(): WinogradPolicy {
  return policy;
}

/**
 * The Winograd tile to use for an inference conv with this geometry, or 0 for the direct conv. Only 3×3,
 * stride 1, padding 1. The rule never looks at the batch size, so image i's result does not depend on
 * the batch (docs/reliability.md). It is measured (bench/winograd.mjs, docs/winograd.md: 1 thread, relaxed,
 * interleaved medians) with the filter transformed per call: F(4×4) beats the direct conv 2.5–2.7× from
 * 64 input channels on images ≥ 16×16, where even one image has enough tiles to amortise the filter
 * transform (∝ Cout·Cin); at 8×8 it wins only for batches (1.5–1.8× at N = 8, 0.4× at N = 1), and for
 * 16/32 channels, or 64 at 14×14, the gain is within noise. F(2×2) never beat F(4×4) where either won.
 */
export function winogradTileFor(g: {
  Cin: number;
  H: number;
  W: number;
  kernel: number;
  stride: number;
  pad: number | readonly number[];
}): 0 | WinogradTile {
  const pad1 = typeof g.pad === 'number' ? g.pad === 1 : g.pad.every((p) => p === 1);
  if (policy === 'never' || g.kernel !== 3 || g.stride !== 1 || !pad1) return 0;
  if (policy === 'always') return 4;
  return g.Cin >= 64 && Math.min(g.H, g.W) >= 16 ? 4 : 0;
}
