// Two-moons data (as scikit-learn's make_moons, with random rather than evenly spaced angles), generated
// from a seed so tests and examples get the same points in every runtime.
import { checkInt } from '../errors.js';
import { splitmix32 } from '../random.js';

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

/**
 * n points (n, 2) on scikit-learn's make_swiss_roll seen from its axis: θ = 1.5π(1 + 2u), u ~ U[0, 1],
 * (θ cos θ, θ sin θ) plus N(0, noise²) jitter, divided by 10 so each coordinate has roughly unit scale.
 */
export function swissRoll(n: number, seed: number, noise = 0.3): Float32Array {
  checkInt('swissRoll: n', n, 1);
  const next = splitmix32(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next());
  const out = new Float32Array(2 * n); // (n, 2)
  for (let i = 0; i < n; i++) {
    const theta = 1.5 * Math.PI * (1 + 2 * next());
    out[2 * i] = (theta * Math.cos(theta) + noise * gauss()) / 10;
    out[2 * i + 1] = (theta * Math.sin(theta) + noise * gauss()) / 10;
  }
  return out;
}
