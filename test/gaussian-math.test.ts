import { describe, expect, it } from 'vitest';
import { discretizedGaussianLogLikelihood, logStdNormalCdf, normalKl } from '../src/diffusion/gaussian-math.js';

describe('Gaussian math for the bound', () => {
  it('KL of identical Gaussians is 0; closed forms for simple cases', () => {
    expect(Math.abs(normalKl(0.3, -1.2, 0.3, -1.2))).toBeLessThan(1e-15);
    // KL(N(μ,1) ‖ N(0,1)) = μ²/2
    expect(normalKl(1.5, 0, 0, 0)).toBeCloseTo(1.125, 14);
    // KL(N(0,σ1²) ‖ N(0,σ2²)) = log(σ2/σ1) + σ1²/(2σ2²) − 1/2
    const s1 = 0.7,
      s2 = 1.9;
    expect(normalKl(0, 2 * Math.log(s1), 0, 2 * Math.log(s2))).toBeCloseTo(
      Math.log(s2 / s1) + s1 ** 2 / (2 * s2 ** 2) - 0.5,
      14,
    );
    // not symmetric, always ≥ 0
    expect(normalKl(0, 0, 1, 1)).not.toBeCloseTo(normalKl(1, 1, 0, 0), 3);
    expect(normalKl(-2, 3, 1, -1)).toBeGreaterThan(0);
  });

  it('log Φ matches known values and stays finite deep in the tails', () => {
    // Φ(0) = 1/2, Φ(1.959963985) = 0.975, Φ(-1) = 0.158655253931457
    expect(logStdNormalCdf(0)).toBeCloseTo(Math.log(0.5), 7);
    expect(Math.exp(logStdNormalCdf(1.959963984540054))).toBeCloseTo(0.975, 7);
    expect(Math.exp(logStdNormalCdf(-1))).toBeCloseTo(0.158655253931457, 7);
    // log Φ(-40) ≈ -40²/2 - log(40·√(2π)) (Mills ratio), to 1e-3 relative
    const asym = -800 - Math.log(40 * Math.sqrt(2 * Math.PI));
    expect(Math.abs(logStdNormalCdf(-40) - asym) / Math.abs(asym)).toBeLessThan(1e-3);
    expect(logStdNormalCdf(40)).toBeLessThanOrEqual(0);
    expect(logStdNormalCdf(40)).toBeGreaterThan(-1e-300);
  });

  it("the decoder's 256 bin probabilities sum to 1 for any mean and scale", () => {
    for (const [mean, logScale] of [
      [0, Math.log(0.01)],
      [0.4, Math.log(0.3)],
      [-0.98, Math.log(0.002)],
      [3, Math.log(2)],
      [0.0039, Math.log(1e-4)],
    ]) {
      let sum = 0;
      for (let k = 0; k < 256; k++) {
        const x = (2 * k) / 255 - 1;
        const lp = discretizedGaussianLogLikelihood(x, mean, logScale);
        expect(Number.isFinite(lp) || lp === -Infinity).toBe(true);
        sum += Math.exp(lp);
      }
      expect(Math.abs(sum - 1)).toBeLessThan(1e-6);
    }
  });

  it('a narrow decoder centred on a bin puts almost all mass in it', () => {
    const x = (2 * 100) / 255 - 1;
    expect(discretizedGaussianLogLikelihood(x, x, Math.log(1e-4))).toBeGreaterThan(-1e-12);
    expect(discretizedGaussianLogLikelihood(x + 2 / 255, x, Math.log(1e-4))).toBeLessThan(-700); // bin edge 39σ away: log Φ(−39.2) ≈ −773
  });
});
