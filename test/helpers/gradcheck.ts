// Directional finite-difference checks of a Denoiser's parameter gradients: for each parameter tensor, a
// random unit direction u supported on it, and (L(θ + h·u) − L(θ − h·u))/2h against ⟨∇L, u⟩, with
// L = Σ w ⊙ out summed in float64. One direction per tensor checks that layer's gradient and everything
// the gradient flows through on its way there.
import type { Engine } from '../../src/index.js';
import type { Denoiser } from '../../src/nn/denoiser.js';
import { randomF32 } from './rng.js';

export interface GradCheckRow {
  name: string;
  analytic: number;
  numeric: number;
}

export function gradCheck(
  engine: Engine,
  model: Denoiser,
  x: Float32Array,
  timesteps: number[],
  opts: { h?: number; seed?: number; classLabels?: number[] } = {},
): GradCheckRow[] {
  const h = opts.h ?? 1e-2;
  const N = timesteps.length;
  const loss = (w: Float32Array): number => {
    const mark = engine.arena.mark();
    const xt = engine.upload(x, [N, model.sampleSize], 'x');
    const { out } = model.trainForward(xt, timesteps, { classLabels: opts.classLabels });
    const o = engine.view(out);
    let sum = 0;
    for (let i = 0; i < o.length; i++) sum += w[i] * o[i];
    engine.arena.release(mark);
    return sum;
  };
  // analytic gradients of L = Σ w·out
  const grads = model.grads();
  engine.view(grads.all).fill(0);
  const mark = engine.arena.mark();
  const xt = engine.upload(x, [N, model.sampleSize], 'x');
  const { out, backward } = model.trainForward(xt, timesteps, { classLabels: opts.classLabels });
  const w = randomF32(out.size, opts.seed ?? 7);
  backward(engine.upload(w, out.size, 'w'));
  engine.arena.release(mark);

  const rows: GradCheckRow[] = [];
  let k = 0;
  for (const { name } of model.params.specs) {
    const p = engine.view(model.params.get(name));
    const g = engine.read(grads.get(name));
    const u = randomF32(p.length, 1000 + k++);
    const norm = Math.hypot(...u);
    u.forEach((v, i) => (u[i] = v / norm));
    const p0 = p.slice();
    let analytic = 0;
    for (let i = 0; i < p.length; i++) analytic += g[i] * u[i];
    const at = (s: number) => {
      const view = engine.view(model.params.get(name));
      for (let i = 0; i < view.length; i++) view[i] = p0[i] + s * u[i];
      return loss(w);
    };
    const numeric = (at(h) - at(-h)) / (2 * h);
    engine.view(model.params.get(name)).set(p0);
    rows.push({ name, analytic, numeric });
  }
  return rows;
}
