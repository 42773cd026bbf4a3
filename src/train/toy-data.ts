// Two-moons data (as scikit-learn's make_moons, with random rather than evenly spaced angles), generated
// from a seed so tests and examples get the same points in every runtime.
import { checkInt } from '../errors.js';
import { splitmix32 } from '../nn/params.js';

/**
 * n points (n, 2): half on the upper arc (cos θ, sin θ), half on the lower arc (1 − cos θ, 0.5 − sin θ),
 * θ ~ U[0, π], plus N(0, noise²) jitter; then centred on (0.5, 0.25) and divided by 0.7 so each
 * coordinate has roughly unit scale, like the unit-variance noise the diffusion adds.
 */
export function twoMoons(n: number, seed: number, noise = 0.05): Float32Array {
  checkInt('twoMoons: n', n, 1);
  const next = splitmix32(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next());
  const out = new Float32Array(2 * n); // (n, 2)
  for (let i = 0; i < n; i++) {
    const theta = Math.PI * next();
    const upper = i % 2 === 0;
    const x = upper ? Math.cos(theta) : 1 - Math.cos(theta);
    const y = upper ? Math.sin(theta) : 0.5 - Math.sin(theta);
    out[2 * i] = (x + noise * gauss() - 0.5) / 0.7;
    out[2 * i + 1] = (y + noise * gauss() - 0.25) / 0.7;
  }
  return out;
}
