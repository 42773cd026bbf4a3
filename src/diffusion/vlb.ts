// The terms of the variational bound and their gradients with respect to the model's output, for the
// bound (bound.ts) and for training on it (the 'vlb' and 'hybrid' losses of train/trainer.ts).
//
//   L_{t−1} = KL(q(x_{t−1} | x_t, x_0) ‖ p_θ(x_{t−1} | x_t))      t > 0   (Ho et al. 2020, eq. 5)
//   L_0     = −log p_θ(x_0 | x_1), discretized Gaussian decoder   t = 0   (§3.3)
//
// each the mean over the D elements of a sample, in nats (0-based t as everywhere: index t here is the
// paper's t + 1). p_θ comes from pMeanVariance (posterior.ts). Per element, with μ̃, log β̃ the posterior's
// and μ = c0·x̂_0 + c1·x_t, s = log Σ_θ the model's:
//   KL      = ½(−1 + s − log β̃ + exp(log β̃ − s) + (μ̃ − μ)²·exp(−s))
//   ∂KL/∂μ  = (μ − μ̃)·exp(−s)
//   ∂KL/∂s  = ½(1 − exp(log β̃ − s) − (μ̃ − μ)²·exp(−s))
//   ∂μ/∂m   = c0·am (0 where x̂_0 is clipped)          m: the prediction channel (ε, x_0 or v)
//   ∂s/∂v   = ½(log β − log β̃) for learned_range (improved DDPM eq. 15), 1/v for learned
// and for the decoder, with log-scale ½s, the partials of discretizedGaussianLogLikelihoodGrad.
// In L_hybrid the mean's gradient is stopped (Nichol & Dhariwal 2021, §3.1): only v learns from L_vlb.
import { discretizedGaussianLogLikelihood, discretizedGaussianLogLikelihoodGrad, normalKl } from './gaussian-math.js';
import { modelLogVariance, type PMeanVariance } from './posterior.js';

/** Where the gradient of scale·L_t goes: accumulated into `grad`, laid out like the model output. */
export interface VlbGrad {
  grad: Float32Array | Float64Array;
  scale: number;
  /** L_hybrid: no gradient through the mean, only through the variance channels. */
  stopMeanGradient: boolean;
}

/**
 * L_t of one sample, nats per dimension, for its coefficients `p` (pMeanVariance with finalVariance
 * 'clipped', so the decoder's variance is finite). x0, xt: (D); out: (D) or (2D) with the variance channels
 * second (learned variances); grad, when given, has out's layout and receives ∂(scale·L_t)/∂out.
 */
export function vlbTerm(
  p: PMeanVariance,
  t: number,
  D: number,
  x0: ArrayLike<number>,
  xt: ArrayLike<number>,
  out: ArrayLike<number>,
  g?: VlbGrad,
): number {
  const v = p.variance;
  const learned = v.kind !== 'fixed';
  const trueLogVar = p.posterior.logVariance;
  const dsdv = v.kind === 'learned_range' ? 0.5 * (v.maxLog - v.minLog) : 0;
  const k = g ? g.scale / D : 0;
  let sum = 0;
  for (let d = 0; d < D; d++) {
    const x = xt[d];
    const m = out[d];
    const vOut = learned ? out[D + d] : 0;
    // x̂_0 from the model output (eq. 15, v), clipped when asked; μ_θ and log Σ_θ
    const raw = p.ax * x + p.am * m;
    const x0hat = Math.min(p.clip, Math.max(-p.clip, raw));
    const mean = p.c0 * x0hat + p.c1 * x;
    const logVar = modelLogVariance(v, vOut);
    let dMean: number, dLogVar: number;
    if (t === 0) {
      if (!g) {
        sum -= discretizedGaussianLogLikelihood(x0[d], mean, 0.5 * logVar);
        continue;
      }
      const r = discretizedGaussianLogLikelihoodGrad(x0[d], mean, 0.5 * logVar);
      sum -= r.logLikelihood;
      dMean = -r.dMean;
      dLogVar = -0.5 * r.dLogScale;
    } else {
      const trueMean = p.c0 * x0[d] + p.c1 * x;
      sum += normalKl(trueMean, trueLogVar, mean, logVar);
      if (!g) continue;
      const diff = trueMean - mean;
      const invVar = Math.exp(-logVar);
      dMean = -diff * invVar;
      dLogVar = 0.5 * (1 - Math.exp(trueLogVar - logVar) - diff * diff * invVar);
    }
    if (!g.stopMeanGradient && Math.abs(raw) <= p.clip) g.grad[d] += k * dMean * p.c0 * p.am;
    if (v.kind === 'learned_range') g.grad[D + d] += k * dLogVar * dsdv;
    else if (v.kind === 'learned') g.grad[D + d] += (k * dLogVar) / vOut;
  }
  return sum / D;
}
