// Batched sampling for the ddpm command: n samples in batches of at most B, sample i's chain addressed at
// element offset i·D of every Philox stream, so sample i does not depend on the batch size or on n.
import { DdpmError } from '../errors.js';
import type { Engine } from '../engine/engine.js';
import type { Tensor } from '../engine/memory.js';
import type { DDIMScheduler } from '../diffusion/ddim.js';
import type { DDPMScheduler } from '../diffusion/ddpm.js';
import { SamplingChain } from '../diffusion/sampling.js';

/** A model as the command calls it: Float32Array in, Float32Array out (UNet2DModel.forward, MLPDenoiser.forward). */
export type ArrayModel = (x: Float32Array, t: number, N: number) => Promise<Float32Array>;

export interface GenerateOptions {
  /** One sample's shape: (C, H, W) or (D). */
  sampleShape: number[];
  n: number;
  batch: number;
  steps: number;
  seed: number;
  eta?: number;
  /** Record x_t and x̂_0 of sample 0 after these step counts (1-based). */
  trajectorySteps?: number[];
  onStep?: (done: number) => void;
}

export interface Generated {
  /** (n, …sampleShape). */
  samples: Float32Array;
  /** Per recorded step: x_t after it and its x̂_0, sample 0 only. */
  trajectory: { step: number; t: number; xt: Float32Array; x0: Float32Array }[];
}

/**
 * Runs the chains. Memory stays bounded by one batch: the first batch's buffers are kept (the model's
 * output buffer is sized by it, the largest) and every later batch's are released after it.
 */
export async function generate(engine: Engine, scheduler: DDPMScheduler | DDIMScheduler, model: ArrayModel, o: GenerateOptions): Promise<Generated> {
  const D = o.sampleShape.reduce((a, b) => a * b, 1);
  const B = Math.min(o.batch, o.n);
  const samples = new Float32Array(o.n * D);
  const trajectory: Generated['trajectory'] = [];
  const record = new Set(o.trajectorySteps ?? []);
  let eps: Tensor | null = null; // (B, …) the model's output, reused
  let mark = -1;
  let done = 0;
  for (let i0 = 0; i0 < o.n; i0 += B) {
    const nb = Math.min(B, o.n - i0);
    const chain = SamplingChain.start(engine, scheduler, { shape: [nb, ...o.sampleShape], numInferenceSteps: o.steps, seed: o.seed, offset: i0 * D, eta: o.eta });
    await chain.run(async (x, t) => {
      const out = await model(engine.read(x), t, nb);
      if (out.length % nb !== 0) throw new DdpmError('SHAPE_MISMATCH', `the model returned ${out.length} values for ${nb} samples`);
      eps ??= engine.alloc([B * (out.length / nb)], 'model output');
      const view: Tensor = { ...eps, size: out.length, shape: [nb, out.length / nb] };
      engine.view(view).set(out);
      return view;
    }, {
      onStep: (index, t) => {
        if (i0 === 0 && record.has(index)) {
          trajectory.push({ step: index, t, xt: engine.read(chain.sample).slice(0, D), x0: engine.read(chain.predOriginalSample).slice(0, D) });
        }
        o.onStep?.(++done);
      },
    });
    samples.set(engine.read(chain.sample), i0 * D);
    if (mark < 0) mark = engine.arena.mark();
    else engine.arena.release(mark);
  }
  return { samples, trajectory };
}

/** ~k step counts spread over 1 … steps, always including the last. */
export function spreadSteps(steps: number, k: number): number[] {
  if (steps <= k) return Array.from({ length: steps }, (_, i) => i + 1);
  return Array.from({ length: k }, (_, i) => Math.round(1 + (i * (steps - 1)) / (k - 1)));
}
