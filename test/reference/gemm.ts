// Plain float64 reference for assembly/gemm.ts: the test oracle.

export interface RefGemm {
  M: number;
  N: number;
  K: number;
  A: ArrayLike<number>;
  B: ArrayLike<number>;
  /** Initial C (only read when beta ≠ 0); the result is returned as a new array of the same length. */
  C: ArrayLike<number>;
  transA?: boolean;
  transB?: boolean;
  alpha?: number;
  beta?: number;
  bias?: ArrayLike<number>;
  biasOn?: 'row' | 'col';
  lda?: number;
  ldb?: number;
  ldc?: number;
}

/**
 * C = alpha·op(A)·op(B) + beta·C + bias in float64, row-major with strides. Also returns, per element,
 * Σ|alpha·a·b| + |beta·c| + |bias| (the scale an honest float32 rounding error is relative to).
 */
export function gemmRef(p: RefGemm): { C: Float64Array; scale: Float64Array } {
  const { M, N, K, A, B, transA = false, transB = false, alpha = 1, beta = 0, bias, biasOn = 'col' } = p;
  const lda = p.lda ?? (transA ? M : K);
  const ldb = p.ldb ?? (transB ? K : N);
  const ldc = p.ldc ?? N;
  const C = Float64Array.from(p.C);
  const scale = new Float64Array(C.length);
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      let s = 0;
      let abs = 0;
      for (let k = 0; k < K; k++) {
        const a = transA ? A[k * lda + i] : A[i * lda + k]; // op(A)[i, k]
        const b = transB ? B[j * ldb + k] : B[k * ldb + j]; // op(B)[k, j]
        s += a * b;
        abs += Math.abs(a * b);
      }
      const c = i * ldc + j;
      const old = beta === 0 ? 0 : beta * C[c];
      const bv = bias ? bias[biasOn === 'row' ? i : j] : 0;
      C[c] = alpha * s + old + bv;
      scale[c] = Math.abs(alpha) * abs + Math.abs(old) + Math.abs(bv);
    }
  }
  return { C, scale };
}
