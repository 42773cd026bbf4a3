// What the trainer needs from a network (UNet2DModel, MLPDenoiser): a flat parameter block, a gradient
// block of the same layout, and a training forward that returns its own backward.
import type { Engine } from '../engine/engine.js';
import type { Tensor } from '../engine/memory.js';
import { philoxFill } from '../kernels/gaussian.js';
import { splitU64 } from '../random.js';
import type { ParamBlock } from './params.js';

export interface TrainForwardOptions {
  /** Class labels (N), for class-conditional models. */
  classLabels?: ArrayLike<number>;
  /** Seed of this step's dropout masks; no dropout when absent. */
  dropoutSeed?: number;
}

export interface TrainForward {
  /** The network's output (N, outputSize), in the arena. */
  out: Tensor;
  /** Backpropagates dL/d(out) (N, outputSize), accumulating into grads(). Call at most once. */
  backward(dOut: Tensor): void;
}

export interface Denoiser {
  readonly engine: Engine;
  readonly params: ParamBlock;
  /** Elements per sample (C·H·W, or the data dimension). */
  readonly sampleSize: number;
  /** (C, H, W) for image models (the trainer's random-shift augmentation needs it); absent otherwise. */
  readonly imageShape?: readonly [number, number, number];
  /** Gradients, same layout as params; allocated on first call. */
  grads(): ParamBlock;
  /** Inference: output for x (N·sampleSize values), one timestep per sample or one for all. */
  forward(
    x: Float32Array,
    timesteps: number | ArrayLike<number>,
    opts?: { classLabels?: ArrayLike<number> },
  ): Promise<Float32Array>;
  /**
   * Training forward on x (N, sampleSize) in engine memory. Activations are allocated from the arena:
   * the caller marks the arena before and releases it after backward.
   */
  trainForward(x: Tensor, timesteps: ArrayLike<number>, opts?: TrainForwardOptions): TrainForward;
}

/**
 * Dropout masks from Philox: mask element i of the k-th mask drawn this step is 0 with probability p and
 * 1/(1−p) otherwise, from (key = seed, counter = (i/4, k)): reproducible, thread-count independent.
 */
export function dropoutMaskFn(engine: Engine, p: number, seed: number): (n: number, name: string) => Tensor {
  let k = 0;
  const threshold = p * 2 ** 32;
  const keep = 1 / (1 - p);
  return (n, name) => {
    const blocks = Math.ceil(n / 4);
    const bits = engine.alloc(4 * blocks, `${name}.bits`);
    philoxFill(engine, bits, blocks, [0, 0, k++, 0], splitU64('dropout seed', seed));
    const view = engine.view(bits);
    const u = new Uint32Array(view.buffer, view.byteOffset, n);
    const mask = engine.alloc(n, name);
    const m = engine.view(mask);
    for (let i = 0; i < n; i++) m[i] = u[i] < threshold ? 0 : keep;
    return mask;
  };
}
