// The Fréchet distance against closed forms, the Jacobi eigen-decomposition against its definition, and
// the confidence / histogram counts on crafted probabilities.
import { describe, expect, it } from 'vitest';
import {
  classHistogram,
  confidentFraction,
  featureStats,
  frechetDistance,
  sqrtPsd,
  symmetricEigen,
  type FeatureStats,
} from '../src/eval/metrics';
import { randomF32 } from './helpers/rng';

/** Stats made directly from μ and Σ (no sampling), for closed forms. */
const stats = (mu: number[], sigma: number[]): FeatureStats => ({
  d: mu.length,
  mu: Float64Array.from(mu),
  sigma: Float64Array.from(sigma),
  N: 0,
});

/** A random symmetric PSD (d, d) matrix B·Bᵀ/d + εI from a seed. */
function randomPsd(d: number, seed: number, rank = d): Float64Array {
  const b = randomF32(d * rank, seed);
  const s = new Float64Array(d * d);
  for (let i = 0; i < d; i++)
    for (let j = 0; j < d; j++) for (let k = 0; k < rank; k++) s[i * d + j] += (b[i * rank + k] * b[j * rank + k]) / d;
  return s;
}

const diag = (v: number[]) => {
  const d = v.length,
    m = new Array<number>(d * d).fill(0);
  v.forEach((x, i) => (m[i * d + i] = x));
  return m;
};

describe('symmetric eigen-decomposition (Jacobi) and the PSD square root', () => {
  it('A·v = λ·v with orthonormal V, on a 17×17 matrix; √A·√A = A, also for a rank-deficient A', () => {
    const d = 17;
    const A = randomPsd(d, 3);
    const { values, vectors: V } = symmetricEigen(A, d);
    let worst = 0;
    for (let k = 0; k < d; k++) {
      for (let i = 0; i < d; i++) {
        let av = 0;
        for (let j = 0; j < d; j++) av += A[i * d + j] * V[j * d + k];
        worst = Math.max(worst, Math.abs(av - values[k] * V[i * d + k]));
      }
      for (let l = 0; l < d; l++) {
        let dot = 0;
        for (let i = 0; i < d; i++) dot += V[i * d + k] * V[i * d + l];
        worst = Math.max(worst, Math.abs(dot - (k === l ? 1 : 0)));
      }
    }
    expect(worst).toBeLessThan(1e-12);
    for (const [m, name] of [
      [A, 'full'],
      [randomPsd(d, 4, 5), 'rank 5'],
    ] as const) {
      const r = sqrtPsd(m, d);
      let err = 0;
      for (let i = 0; i < d; i++) {
        for (let j = 0; j < d; j++) {
          let s = 0;
          for (let k = 0; k < d; k++) s += r[i * d + k] * r[k * d + j];
          err = Math.max(err, Math.abs(s - m[i * d + j]));
        }
      }
      expect(err, name).toBeLessThan(1e-10);
    }
  });
});

describe('Fréchet distance', () => {
  it('identical statistics → 0; equal covariances and shifted means → ‖Δμ‖²', () => {
    const d = 9;
    const sigma = Array.from(randomPsd(d, 5));
    const mu = Array.from(randomF32(d, 6));
    expect(Math.abs(frechetDistance(stats(mu, sigma), stats(mu, sigma)))).toBeLessThan(1e-10);
    const shift = Array.from(randomF32(d, 7));
    const expected = shift.reduce((s, v) => s + v * v, 0);
    expect(
      frechetDistance(
        stats(mu, sigma),
        stats(
          mu.map((m, i) => m + shift[i]),
          sigma,
        ),
      ),
    ).toBeCloseTo(expected, 10);
  });

  it('diagonal covariances → Σ(σ1 − σ2)² + ‖Δμ‖², in either order', () => {
    const v1 = [1, 4, 0.25, 9, 2],
      v2 = [4, 1, 1, 0.01, 2];
    const mu1 = [0, 1, 2, 3, 4],
      mu2 = [1, 1, 0, 3, 4.5];
    const expected =
      v1.reduce((s, v, i) => s + (Math.sqrt(v) - Math.sqrt(v2[i])) ** 2, 0) +
      mu1.reduce((s, m, i) => s + (m - mu2[i]) ** 2, 0);
    expect(expected).toBeCloseTo(1 + 1 + 0.25 + 8.41 + 0 + 1 + 4 + 0.25, 12);
    expect(frechetDistance(stats(mu1, diag(v1)), stats(mu2, diag(v2)))).toBeCloseTo(expected, 10);
    expect(frechetDistance(stats(mu2, diag(v2)), stats(mu1, diag(v1)))).toBeCloseTo(expected, 10);
  });

  it('a rotation of both covariances leaves it unchanged (the diagonal case, rotated into full matrices)', () => {
    const v1 = [1, 4, 0.25],
      v2 = [4, 1, 1];
    const c = Math.cos(0.7),
      s = Math.sin(0.7);
    const R = [c, -s, 0, s, c, 0, 0, 0, 1];
    const rot = (v: number[]) => {
      const m = new Array<number>(9).fill(0);
      for (let i = 0; i < 3; i++)
        for (let j = 0; j < 3; j++) for (let k = 0; k < 3; k++) m[i * 3 + j] += R[i * 3 + k] * v[k] * R[j * 3 + k];
      return m;
    };
    const expected = v1.reduce((acc, v, i) => acc + (Math.sqrt(v) - Math.sqrt(v2[i])) ** 2, 0);
    expect(frechetDistance(stats([0, 0, 0], rot(v1)), stats([0, 0, 0], rot(v2)))).toBeCloseTo(expected, 10);
  });

  it('featureStats: mean and unbiased covariance of rows', () => {
    // rows (1, 2), (3, 2), (2, 5): μ = (2, 3); Σ = [[1, 0], [0, 3]]
    const st = featureStats([1, 2, 3, 2, 2, 5], 2);
    expect(Array.from(st.mu)).toEqual([2, 3]);
    expect(Array.from(st.sigma)).toEqual([1, 0, 0, 3]);
    expect(() => featureStats([1, 2], 2)).toThrow(/N ≥ 2 rows of 2/);
  });
});

describe('confidence and class histogram', () => {
  it('count rows by their top class and its probability', () => {
    const rows = [
      [0.95, 0.05, 0, 0, 0, 0, 0, 0, 0, 0], // class 0, confident
      [0, 0, 0, 0.9, 0.1, 0, 0, 0, 0, 0], // class 3; 0.9 in float32 is 0.8999999762 < 0.9: not confident
      [0, 0, 0, 0.5, 0.4, 0.1, 0, 0, 0, 0], // class 3, not confident
      [0, 0, 0, 0, 0, 0, 0, 0, 0.01, 0.99], // class 9, confident
    ];
    const p = Float32Array.from(rows.flat());
    expect(confidentFraction(p)).toBe(0.5);
    expect(confidentFraction(p, 0.96)).toBe(0.25);
    expect(confidentFraction(p, 0.5)).toBe(1);
    expect(Array.from(classHistogram(p))).toEqual([0.25, 0, 0, 0.5, 0, 0, 0, 0, 0, 0.25]);
  });
});
