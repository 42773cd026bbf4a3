// Quality numbers for a set of digits from the classifier's outputs: the fraction classified confidently,
// the class histogram, and the Fréchet distance between Gaussians fitted to penultimate features (FID's
// formula, Heusel et al. 2017, with our classifier in place of Inception). All statistics in float64.
import { DdpmError } from '../errors.js';
import { CLASSES, argmax } from './classifier.js';

/** Fraction of rows of (N, K) probabilities whose largest probability is ≥ threshold. */
export function confidentFraction(probs: Float32Array, threshold = 0.9): number {
  const N = probs.length / CLASSES;
  let confident = 0;
  for (let n = 0; n < N; n++) if (probs[n * CLASSES + argmax(probs, n)] >= threshold) confident++;
  return confident / N;
}

/** (K) fraction of rows of (N, K) probabilities whose most probable class is k. */
export function classHistogram(probs: Float32Array): Float64Array {
  const N = probs.length / CLASSES;
  const h = new Float64Array(CLASSES);
  for (let n = 0; n < N; n++) h[argmax(probs, n)] += 1 / N;
  return h;
}

/** A Gaussian fitted to d-dimensional points. */
export interface FeatureStats {
  d: number;
  /** (d) mean. */
  mu: Float64Array;
  /** (d, d) covariance with the unbiased 1/(N − 1), as numpy.cov and FID implementations use. */
  sigma: Float64Array;
  /** Points it was fitted to. */
  N: number;
}

/** Mean and covariance of the rows of x (N, d), N ≥ 2. */
export function featureStats(x: ArrayLike<number>, d: number): FeatureStats {
  const N = x.length / d;
  if (!Number.isInteger(N) || N < 2)
    throw new DdpmError(
      'SHAPE_MISMATCH',
      `featureStats: ${x.length} values are not N ≥ 2 rows of ${d} (a covariance needs two points)`,
    );
  const mu = new Float64Array(d);
  for (let n = 0; n < N; n++) for (let i = 0; i < d; i++) mu[i] += x[n * d + i];
  for (let i = 0; i < d; i++) mu[i] /= N;
  const sigma = new Float64Array(d * d); // (d, d)
  const c = new Float64Array(d); // one centred row
  for (let n = 0; n < N; n++) {
    for (let i = 0; i < d; i++) c[i] = x[n * d + i] - mu[i];
    for (let i = 0; i < d; i++) for (let j = i; j < d; j++) sigma[i * d + j] += c[i] * c[j];
  }
  for (let i = 0; i < d; i++) {
    for (let j = i; j < d; j++) sigma[j * d + i] = sigma[i * d + j] /= N - 1;
  }
  return { d, mu, sigma, N };
}

/**
 * Eigen-decomposition of a symmetric (d, d) matrix by cyclic Jacobi rotations (Golub & Van Loan §8.5):
 * A = V·diag(λ)·Vᵀ, V's columns the eigenvectors. Accurate to a small multiple of the machine epsilon
 * times ‖A‖ whatever the conditioning; O(d³) per sweep, converging quadratically in a handful of sweeps.
 */
export function symmetricEigen(A: Float64Array, d: number): { values: Float64Array; vectors: Float64Array } {
  const a = Float64Array.from(A); // (d, d), rotated towards diagonal
  const V = new Float64Array(d * d); // (d, d)
  for (let i = 0; i < d; i++) V[i * d + i] = 1;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0,
      total = 0;
    for (let i = 0; i < d; i++) {
      for (let j = 0; j < d; j++) {
        total += a[i * d + j] ** 2;
        if (i !== j) off += a[i * d + j] ** 2;
      }
    }
    if (off <= 1e-30 * total || off === 0) break;
    for (let p = 0; p < d - 1; p++) {
      for (let q = p + 1; q < d; q++) {
        const apq = a[p * d + q];
        if (apq === 0) continue;
        // the rotation (c, s) that zeroes a_pq: t = tan θ, the smaller root of t² + 2τt − 1 = 0
        const tau = (a[q * d + q] - a[p * d + p]) / (2 * apq);
        const t = Math.sign(tau || 1) / (Math.abs(tau) + Math.sqrt(1 + tau * tau));
        const c = 1 / Math.sqrt(1 + t * t),
          s = t * c;
        for (let k = 0; k < d; k++) {
          // columns p and q: A ← A·J
          const akp = a[k * d + p],
            akq = a[k * d + q];
          a[k * d + p] = c * akp - s * akq;
          a[k * d + q] = s * akp + c * akq;
        }
        for (let k = 0; k < d; k++) {
          // rows p and q: A ← Jᵀ·A
          const apk = a[p * d + k],
            aqk = a[q * d + k];
          a[p * d + k] = c * apk - s * aqk;
          a[q * d + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < d; k++) {
          const vkp = V[k * d + p],
            vkq = V[k * d + q];
          V[k * d + p] = c * vkp - s * vkq;
          V[k * d + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const values = new Float64Array(d);
  for (let i = 0; i < d; i++) values[i] = a[i * d + i];
  return { values, vectors: V };
}

/**
 * The square root of a symmetric positive semi-definite (d, d) matrix, V·diag(√λ)·Vᵀ; eigenvalues that
 * rounding made slightly negative count as 0.
 */
export function sqrtPsd(A: Float64Array, d: number): Float64Array {
  const { values, vectors: V } = symmetricEigen(A, d);
  const r = new Float64Array(d * d);
  for (let k = 0; k < d; k++) {
    const s = Math.sqrt(Math.max(values[k], 0));
    if (s === 0) continue;
    for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) r[i * d + j] += s * V[i * d + k] * V[j * d + k];
  }
  return r;
}

/**
 * Fréchet distance between N(μ1, Σ1) and N(μ2, Σ2):
 *   ‖μ1 − μ2‖² + tr(Σ1) + tr(Σ2) − 2·tr((Σ1·Σ2)^{1/2}),
 * where tr((Σ1Σ2)^{1/2}) = tr((Σ1^{1/2}·Σ2·Σ1^{1/2})^{1/2}): Σ1Σ2 is similar to the symmetric PSD
 * Σ1^{1/2}Σ2Σ1^{1/2}, so both have the same non-negative eigenvalues, and the symmetric form needs only
 * Jacobi, not a general (complex) matrix square root as scipy's sqrtm.
 */
export function frechetDistance(a: FeatureStats, b: FeatureStats): number {
  if (a.d !== b.d)
    throw new DdpmError('SHAPE_MISMATCH', `frechetDistance: ${a.d}-dimensional against ${b.d}-dimensional statistics`);
  const d = a.d;
  let meanTerm = 0,
    traces = 0;
  for (let i = 0; i < d; i++) {
    meanTerm += (a.mu[i] - b.mu[i]) ** 2;
    traces += a.sigma[i * d + i] + b.sigma[i * d + i];
  }
  const s1 = sqrtPsd(a.sigma, d);
  const m = matmul(matmul(s1, b.sigma, d), s1, d);
  // symmetrise away the rounding of the two products before the eigen-decomposition
  for (let i = 0; i < d; i++)
    for (let j = 0; j < i; j++) m[i * d + j] = m[j * d + i] = (m[i * d + j] + m[j * d + i]) / 2;
  const { values } = symmetricEigen(m, d);
  let traceSqrt = 0;
  for (const v of values) traceSqrt += Math.sqrt(Math.max(v, 0));
  // not clamped at 0: for identical sets rounding leaves a value of order 1e-12·tr(Σ), either sign
  return meanTerm + traces - 2 * traceSqrt;
}

/** (d, d) = A·B in float64. */
function matmul(A: Float64Array, B: Float64Array, d: number): Float64Array {
  const C = new Float64Array(d * d);
  for (let i = 0; i < d; i++) {
    for (let k = 0; k < d; k++) {
      const aik = A[i * d + k];
      if (aik === 0) continue;
      for (let j = 0; j < d; j++) C[i * d + j] += aik * B[k * d + j];
    }
  }
  return C;
}
