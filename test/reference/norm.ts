// Plain float64 reference for group normalization (torch.nn.functional.group_norm), NCHW flattened to
// (N, C, HW): the test oracle for assembly/norm.ts.
type Arr = ArrayLike<number>;

export interface GroupNormOut {
  y: Float64Array; // (N, C, HW)
  mean: Float64Array; // (N, G)
  rstd: Float64Array; // (N, G)
}

export function groupNorm(
  x: Arr,
  gamma: Arr,
  beta: Arr,
  N: number,
  C: number,
  HW: number,
  G: number,
  eps: number,
): GroupNormOut {
  const Cg = C / G;
  const M = Cg * HW;
  const y = new Float64Array(N * C * HW);
  const mean = new Float64Array(N * G);
  const rstd = new Float64Array(N * G);
  for (let ng = 0; ng < N * G; ng++) {
    const base = ng * M;
    let s = 0;
    for (let i = 0; i < M; i++) s += x[base + i];
    const mu = s / M;
    let q = 0;
    for (let i = 0; i < M; i++) q += (x[base + i] - mu) ** 2;
    const r = 1 / Math.sqrt(q / M + eps);
    mean[ng] = mu;
    rstd[ng] = r;
    for (let i = 0; i < M; i++) {
      const c = (ng % G) * Cg + Math.floor(i / HW);
      y[base + i] = (x[base + i] - mu) * r * gamma[c] + beta[c];
    }
  }
  return { y, mean, rstd };
}

export interface GroupNormGrads {
  dx: Float64Array; // (N, C, HW)
  dgamma: Float64Array; // (C)
  dbeta: Float64Array; // (C)
}

/**
 * Gradients of Σ dy ⊙ groupNorm(x) by the chain rule through x̂ = (x − μ)·rstd:
 * dx = rstd/M · (M·dx̂ − Σ dx̂ − x̂·Σ dx̂·x̂),  dx̂ = dy·γ;  dγ = Σ_{n,hw} dy·x̂;  dβ = Σ_{n,hw} dy.
 */
export function groupNormBackward(
  dy: Arr,
  x: Arr,
  gamma: Arr,
  N: number,
  C: number,
  HW: number,
  G: number,
  eps: number,
): GroupNormGrads {
  const Cg = C / G;
  const M = Cg * HW;
  const { mean, rstd } = groupNorm(x, gamma, new Float64Array(C), N, C, HW, G, eps);
  const dx = new Float64Array(N * C * HW);
  const dgamma = new Float64Array(C);
  const dbeta = new Float64Array(C);
  for (let ng = 0; ng < N * G; ng++) {
    const base = ng * M;
    const chan = (i: number) => (ng % G) * Cg + Math.floor(i / HW);
    const xhat = (i: number) => (x[base + i] - mean[ng]) * rstd[ng];
    let sum = 0;
    let sumXhat = 0;
    for (let i = 0; i < M; i++) {
      const dxhat = dy[base + i] * gamma[chan(i)];
      sum += dxhat;
      sumXhat += dxhat * xhat(i);
      dgamma[chan(i)] += dy[base + i] * xhat(i);
      dbeta[chan(i)] += dy[base + i];
    }
    for (let i = 0; i < M; i++) {
      dx[base + i] = (rstd[ng] / M) * (M * dy[base + i] * gamma[chan(i)] - sum - xhat(i) * sumXhat);
    }
  }
  return { dx, dgamma, dbeta };
}
