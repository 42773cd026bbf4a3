// Test helpers: sampling a Denoiser with the library's DDPMScheduler, and the energy distance between point
// sets.
import type { Engine } from '../../src/index.js';
import { DDPMScheduler, SamplingChain } from '../../src/diffusion/index.js';
import type { Denoiser } from '../../src/nn/denoiser.js';

/**
 * DDPM ancestral sampling (DDPMScheduler, linear schedule over T, `fixed_small`, no clipping: toy data is
 * not confined to [−1, 1]) of N samples from a Denoiser, respaced to numSteps with 'leading' spacing.
 */
export async function ddpmSample(
  engine: Engine,
  model: Denoiser,
  T: number,
  N: number,
  seed: number,
  numSteps = T,
): Promise<Float32Array> {
  const mark = engine.arena.mark();
  try {
    const scheduler = new DDPMScheduler({ numTrainTimesteps: T, betaSchedule: 'linear', clipSample: false });
    const chain = SamplingChain.start(engine, scheduler, {
      shape: [N, model.sampleSize],
      numInferenceSteps: numSteps,
      seed,
    });
    const eps = engine.alloc([N, model.sampleSize], 'eps');
    const x0 = await chain.run(async (x, t) => {
      engine.write(eps, await model.forward(engine.read(x), t));
      return eps;
    });
    return engine.read(x0);
  } finally {
    engine.arena.release(mark);
  }
}

/** Energy distance 2E‖X−Y‖ − E‖X−X'‖ − E‖Y−Y'‖ (Székely & Rizzo) between point sets (n, D) and (m, D), V-statistic form. */
export function energyDistance(a: Float32Array, b: Float32Array, D: number): number {
  const meanDist = (p: Float32Array, q: Float32Array) => {
    const n = p.length / D;
    const m = q.length / D;
    let s = 0;
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < m; j++) {
        let d2 = 0;
        for (let k = 0; k < D; k++) {
          const d = p[i * D + k] - q[j * D + k];
          d2 += d * d;
        }
        s += Math.sqrt(d2);
      }
    }
    return s / (n * m);
  };
  return 2 * meanDist(a, b) - meanDist(a, a) - meanDist(b, b);
}
