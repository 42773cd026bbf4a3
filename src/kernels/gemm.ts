// Typed wrapper for assembly/gemm.ts: row-major SGEMM with transposes, strides and a fused bias.
import { DdpmError } from '../errors.js';
import type { Engine } from '../engine/engine.js';
import type { Tensor } from '../engine/memory.js';
import { BIAS_COL, BIAS_NONE, BIAS_ROW, KERNEL, WORKSPACE_BYTES } from '../engine/wasm-interface.generated.js';
import { checkInt, checkScalar, checkTensor } from './check.js';

const BIAS_MODE = { row: BIAS_ROW, col: BIAS_COL } as const;

export interface GemmArgs {
  M: number;
  N: number;
  K: number;
  /** op(A): (M, K); stored (M, K) or, with transA, (K, M); row stride lda. */
  A: Tensor;
  /** op(B): (K, N); stored (K, N) or, with transB, (N, K); row stride ldb. */
  B: Tensor;
  /** (M, N), row stride ldc. With beta = 0 it is only written (it may hold garbage or NaN). */
  C: Tensor;
  transA?: boolean;
  transB?: boolean;
  alpha?: number;
  beta?: number;
  /** Added after alpha·op(A)·op(B) + beta·C: per row (M values, e.g. conv output channels) or per
   * column (N values, e.g. a linear layer's outputs). */
  bias?: Tensor;
  /** Which way the bias runs; default 'col'. */
  biasOn?: 'row' | 'col';
  lda?: number;
  ldb?: number;
  ldc?: number;
}

/** Elements a row-major (rows, cols) matrix with row stride ld spans. */
function span(rows: number, cols: number, ld: number): number {
  return rows === 0 || cols === 0 ? 0 : (rows - 1) * ld + cols;
}

function checkStride(what: string, ld: number | undefined, cols: number): number {
  const v = ld ?? Math.max(1, cols);
  checkInt(what, v, Math.max(1, cols));
  return v;
}

/**
 * Throws unless the workspace holds what the packed GEMM needs per thread (assembly/gemm-core.ts
 * WORKSPACE_BYTES: this build's value, generated). @internal (used by conv)
 */
export function checkGemmWorkspace(engine: Engine, what: string): void {
  const have = engine.workspace.bytesPerThread;
  const need = WORKSPACE_BYTES[engine.info.build];
  if (have < need) {
    throw new DdpmError(
      'INVALID_ARGUMENT',
      `${what}: the engine's workspace has ${have} bytes per thread, the packed GEMM needs ${need} in the ${engine.info.build} build: create the engine with scratchPerThread >= ${need}`,
    );
  }
}

/** Throws unless the byte ranges of `out` and `inp` (as far as the operation touches them) are disjoint. */
function checkNoOverlap(what: string, out: Tensor, outSpan: number, inp: Tensor, inSpan: number, inName: string): void {
  if (outSpan === 0 || inSpan === 0) return;
  const a0 = out.ptr,
    a1 = out.ptr + 4 * outSpan,
    b0 = inp.ptr,
    b1 = inp.ptr + 4 * inSpan;
  if (a0 < b1 && b0 < a1) {
    throw new DdpmError(
      'INVALID_ARGUMENT',
      `${what}: C (tensor ${out.name}) overlaps ${inName} (tensor ${inp.name}); the output must not alias an input`,
    );
  }
}

/** C = alpha·op(A)·op(B) + beta·C (+ bias), row-major; bit-identical for any thread count. */
export function gemm(engine: Engine, args: GemmArgs): void {
  const { M, N, K, A, B, C, transA = false, transB = false, alpha = 1, beta = 0, bias, biasOn = 'col' } = args;
  checkInt('gemm: M', M, 0, 2 ** 31 - 1);
  checkInt('gemm: N', N, 0, 2 ** 31 - 1);
  checkInt('gemm: K', K, 0, 2 ** 31 - 1);
  checkScalar('gemm: alpha', alpha);
  checkScalar('gemm: beta', beta);
  // Stored shapes: A is (M, K) or (K, M); B is (K, N) or (N, K).
  const [aRows, aCols] = transA ? [K, M] : [M, K];
  const [bRows, bCols] = transB ? [N, K] : [K, N];
  const lda = checkStride('gemm: lda', args.lda, aCols);
  const ldb = checkStride('gemm: ldb', args.ldb, bCols);
  const ldc = checkStride('gemm: ldc', args.ldc, N);
  const aSpan = span(aRows, aCols, lda),
    bSpan = span(bRows, bCols, ldb),
    cSpan = span(M, N, ldc);
  checkTensor(engine, A, `gemm: A (${transA ? 'K×M' : 'M×K'} = ${aRows}×${aCols}, lda ${lda})`, aSpan);
  checkTensor(engine, B, `gemm: B (${transB ? 'N×K' : 'K×N'} = ${bRows}×${bCols}, ldb ${ldb})`, bSpan);
  checkTensor(engine, C, `gemm: C (M×N = ${M}×${N}, ldc ${ldc})`, cSpan);
  if (biasOn !== 'row' && biasOn !== 'col') {
    throw new DdpmError('INVALID_ARGUMENT', `gemm: biasOn must be 'row' or 'col', found ${String(biasOn)}`);
  }
  if (bias) checkTensor(engine, bias, `gemm: bias (on ${biasOn}s)`, biasOn === 'row' ? M : N);
  checkNoOverlap('gemm', C, cSpan, A, aSpan, 'A');
  checkNoOverlap('gemm', C, cSpan, B, bSpan, 'B');
  if (bias) checkNoOverlap('gemm', C, cSpan, bias, biasOn === 'row' ? M : N, 'bias');
  checkGemmWorkspace(engine, 'gemm');
  gemmRaw(
    engine,
    transA,
    transB,
    M,
    N,
    K,
    alpha,
    A.ptr,
    lda,
    B.ptr,
    ldb,
    beta,
    C.ptr,
    ldc,
    bias ? bias.ptr : 0,
    bias ? BIAS_MODE[biasOn] : BIAS_NONE,
  );
}

export interface GemmBatchedArgs extends Omit<GemmArgs, 'bias' | 'biasOn'> {
  /** Number of products; item b uses A + b·strideA, B + b·strideB, C + b·strideC (elements). */
  count: number;
  strideA: number;
  strideB: number;
  strideC: number;
}

/**
 * `count` GEMMs C_b = alpha·op(A_b)·op(B_b) + beta·C_b in one dispatch (same bits as separate gemm calls).
 * The C_b must not overlap each other or any A_b, B_b.
 */
export function gemmBatched(engine: Engine, args: GemmBatchedArgs): void {
  const {
    count,
    strideA,
    strideB,
    strideC,
    M,
    N,
    K,
    A,
    B,
    C,
    transA = false,
    transB = false,
    alpha = 1,
    beta = 0,
  } = args;
  checkInt('gemmBatched: count', count, 1, 2 ** 31 - 1);
  checkInt('gemmBatched: M', M, 0, 2 ** 31 - 1);
  checkInt('gemmBatched: N', N, 0, 2 ** 31 - 1);
  checkInt('gemmBatched: K', K, 0, 2 ** 31 - 1);
  checkScalar('gemmBatched: alpha', alpha);
  checkScalar('gemmBatched: beta', beta);
  const [aRows, aCols] = transA ? [K, M] : [M, K];
  const [bRows, bCols] = transB ? [N, K] : [K, N];
  const lda = checkStride('gemmBatched: lda', args.lda, aCols);
  const ldb = checkStride('gemmBatched: ldb', args.ldb, bCols);
  const ldc = checkStride('gemmBatched: ldc', args.ldc, N);
  const aSpan = span(aRows, aCols, lda),
    bSpan = span(bRows, bCols, ldb),
    cSpan = span(M, N, ldc);
  checkInt('gemmBatched: strideA', strideA, 0);
  checkInt('gemmBatched: strideB', strideB, 0);
  checkInt('gemmBatched: strideC', strideC, cSpan); // the C_b do not overlap
  const all = (s: number, one: number) => (one === 0 ? 0 : (count - 1) * s + one);
  checkTensor(
    engine,
    A,
    `gemmBatched: A (${count} × ${transA ? 'K×M' : 'M×K'} = ${aRows}×${aCols}, stride ${strideA})`,
    all(strideA, aSpan),
  );
  checkTensor(
    engine,
    B,
    `gemmBatched: B (${count} × ${transB ? 'N×K' : 'K×N'} = ${bRows}×${bCols}, stride ${strideB})`,
    all(strideB, bSpan),
  );
  checkTensor(engine, C, `gemmBatched: C (${count} × M×N = ${M}×${N}, stride ${strideC})`, all(strideC, cSpan));
  checkNoOverlap('gemmBatched', C, all(strideC, cSpan), A, all(strideA, aSpan), 'A');
  checkNoOverlap('gemmBatched', C, all(strideC, cSpan), B, all(strideB, bSpan), 'B');
  checkGemmWorkspace(engine, 'gemmBatched');
  engine.run(KERNEL.gemm_batched_f32, [
    count,
    strideA,
    strideB,
    strideC,
    transA ? 1 : 0,
    transB ? 1 : 0,
    M,
    N,
    K,
    alpha,
    A.ptr,
    lda,
    B.ptr,
    ldb,
    beta,
    C.ptr,
    ldc,
    engine.workspace.ptr,
    engine.workspace.bytesPerThread,
  ]);
}

/** The kernel call without checks, for wrappers (conv) that have checked their own arguments. @internal */
export function gemmRaw(
  engine: Engine,
  transA: boolean,
  transB: boolean,
  M: number,
  N: number,
  K: number,
  alpha: number,
  A: number,
  lda: number,
  B: number,
  ldb: number,
  beta: number,
  C: number,
  ldc: number,
  bias: number,
  biasMode: number,
): void {
  engine.run(KERNEL.gemm_f32, [
    transA ? 1 : 0,
    transB ? 1 : 0,
    M,
    N,
    K,
    alpha,
    A,
    lda,
    B,
    ldb,
    beta,
    C,
    ldc,
    bias,
    biasMode,
    engine.workspace.ptr,
    engine.workspace.bytesPerThread,
  ]);
}
