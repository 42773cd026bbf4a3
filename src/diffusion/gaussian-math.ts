// Float64 Gaussian helpers for the variational bound (Ho et al. 2020, §3.3 and eq. 5; Nichol & Dhariwal
// 2021, §2 and Appendix for the discretized decoder). All results in nats.

const LN2 = Math.LN2;

/** KL(N(μ1, e^{logvar1}) ‖ N(μ2, e^{logvar2})) for one dimension, in nats. */
export function normalKl(mean1: number, logvar1: number, mean2: number, logvar2: number): number {
  const d = mean1 - mean2;
  return 0.5 * (-1 + logvar2 - logvar1 + Math.exp(logvar1 - logvar2) + d * d * Math.exp(-logvar2));
}

/**
 * erfc(x) with relative error < 1.2e-7 everywhere (Numerical Recipes' Chebyshev fit `erfcc`). Written
 * as t·exp(poly), so its logarithm stays accurate deep in the tail, which the decoder's edge bins need.
 */
function logErfcPositive(x: number): number {
  // x ≥ 0
  const t = 1 / (1 + 0.5 * x);
  const poly =
    -x * x -
    1.26551223 +
    t *
      (1.00002368 +
        t *
          (0.37409196 +
            t *
              (0.09678418 +
                t *
                  (-0.18628806 +
                    t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
  return Math.log(t) + poly;
}

/** log Φ(x) for the standard normal CDF Φ, accurate in both tails. */
export function logStdNormalCdf(x: number): number {
  // Φ(x) = erfc(-x/√2)/2
  const z = -x / Math.SQRT2;
  if (z >= 0) return logErfcPositive(z) - LN2;
  // Φ(x) = 1 − erfc(x/√2)/2 for x > 0
  return Math.log1p(-0.5 * Math.exp(logErfcPositive(-z)));
}

/**
 * log P(bin of x) under N(mean, e^{2·logScale}), for data x in [−1, 1] quantized to 256 levels: the bin is
 * [x − 1/255, x + 1/255], except that the first bin extends to −∞ and the last to +∞ (so the 256 bin
 * probabilities sum to 1). Differences of CDFs are taken on whichever side of the mean is more accurate.
 */
export function discretizedGaussianLogLikelihood(x: number, mean: number, logScale: number): number {
  const invStd = Math.exp(-logScale);
  const centered = x - mean;
  const plus = (centered + 1 / 255) * invStd;
  const minus = (centered - 1 / 255) * invStd;
  if (x < -0.999) return logStdNormalCdf(plus);
  if (x > 0.999) return logStdNormalCdf(-minus);
  // P = Φ(plus) − Φ(minus). For bins above the mean, use the upper tail: Φ(−minus) − Φ(−plus).
  const [hi, lo] = centered > 0 ? [-minus, -plus] : [plus, minus];
  const logHi = logStdNormalCdf(hi);
  const logLo = logStdNormalCdf(lo);
  return logHi + Math.log1p(-Math.exp(logLo - logHi));
}

/** Nats per dimension → bits per dimension. */
export function natsToBits(nats: number): number {
  return nats / LN2;
}

/** log φ(z) of the standard normal density. */
function logStdNormalPdf(z: number): number {
  return -0.5 * z * z - 0.5 * Math.log(2 * Math.PI);
}

/**
 * discretizedGaussianLogLikelihood and its partial derivatives, for the decoder term's backward pass. With
 * plus/minus the bin's edges in standard units, P = Φ(plus) − Φ(minus) (or one tail at the edge bins) and
 *   ∂ log P/∂plus = φ(plus)/P,   ∂ log P/∂minus = −φ(minus)/P,
 *   ∂plus/∂mean = −1/σ,          ∂plus/∂logScale = −plus   (the same for minus).
 * The ratios φ/P are taken as exp(log φ − log P), which stays finite deep in the tails.
 */
export function discretizedGaussianLogLikelihoodGrad(
  x: number,
  mean: number,
  logScale: number,
): { logLikelihood: number; dMean: number; dLogScale: number } {
  const invStd = Math.exp(-logScale);
  const centered = x - mean;
  const plus = (centered + 1 / 255) * invStd;
  const minus = (centered - 1 / 255) * invStd;
  const ll = discretizedGaussianLogLikelihood(x, mean, logScale);
  // r_plus = φ(plus)/P (0 for the first bin's missing upper-tail edge, etc.), r_minus = φ(minus)/P
  const rPlus = x > 0.999 ? 0 : Math.exp(logStdNormalPdf(plus) - ll);
  const rMinus = x < -0.999 ? 0 : Math.exp(logStdNormalPdf(minus) - ll);
  return { logLikelihood: ll, dMean: -invStd * (rPlus - rMinus), dLogScale: -plus * rPlus + minus * rMinus };
}
