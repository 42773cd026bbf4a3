// SGEMM kernel: row-major C = alpha·op(A)·op(B) + beta·C (+ bias), op ∈ {N, T}. The packed engine it runs
// on (tiles, packing, thread split, determinism) is in gemm-core.ts, shared with conv.ts.
import { gemmDriver, WORKSPACE_BYTES, B_DENSE, B_TRANS } from './gemm-core';

/**
 * C = alpha·op(A)·op(B) + beta·C + bias      C: (M, N) with row stride ldc
 *   op(A): (M, K) = transA ? Aᵀ (A stored (K, M), row stride lda) : A (stored (M, K), row stride lda)
 *   op(B): (K, N) = transB ? Bᵀ (B stored (N, K), row stride ldb) : B (stored (K, N), row stride ldb)
 * beta = 0 means C is not read (may hold NaN). biasMode 0: no bias (bias = 0), 1: bias (M) added to each
 * row i, 2: bias (N) added to each column j. ws/wsBytes: the engine's workspace base and bytes per
 * thread; thread ith uses ws + ith·wsBytes and traps if wsBytes is too small (the TS wrapper checks first).
 * Bit-identical for any nth.
 */
export function gemm_f32(
  transA: i32, transB: i32, M: i32, N: i32, K: i32, alpha: f32,
  A: usize, lda: i32, B: usize, ldb: i32, beta: f32, C: usize, ldc: i32,
  bias: usize, biasMode: i32, ws: usize, wsBytes: i32, ith: i32, nth: i32,
): void {
  if (<usize>wsBytes < WORKSPACE_BYTES) unreachable();
  gemmDriver(transA != 0, transB != 0 ? B_TRANS : B_DENSE, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc,
    bias, biasMode, ws + <usize>ith * <usize>wsBytes, ith, nth);
}

/**
 * `count` independent GEMMs in one dispatch: item b is gemm_f32 on A + b·strideA, B + b·strideB,
 * C + b·strideC (strides in elements; no bias). Each thread computes its share of every item, as gemm_f32
 * would, so the result is the same bits as `count` separate calls, for any nth. For the many small
 * per-image, per-head products of attention, where a dispatch per product costs more than the product.
 */
export function gemm_batched_f32(
  count: i32, strideA: i32, strideB: i32, strideC: i32,
  transA: i32, transB: i32, M: i32, N: i32, K: i32, alpha: f32,
  A: usize, lda: i32, B: usize, ldb: i32, beta: f32, C: usize, ldc: i32,
  ws: usize, wsBytes: i32, ith: i32, nth: i32,
): void {
  if (<usize>wsBytes < WORKSPACE_BYTES) unreachable();
  const own = ws + <usize>ith * <usize>wsBytes;
  for (let b = 0; b < count; b++) {
    gemmDriver(transA != 0, transB != 0 ? B_TRANS : B_DENSE, M, N, K, alpha,
      A + (<usize>b * <usize>strideA << 2), lda, B + (<usize>b * <usize>strideB << 2), ldb, beta,
      C + (<usize>b * <usize>strideC << 2), ldc, 0, 0, own, ith, nth);
  }
}
