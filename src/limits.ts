// Caps on the counts a config, a state or a file header may ask for, and the budget for what the library
// allocates outside Wasm memory. A few hundred bytes of JSON can otherwise ask for terabytes (a
// num_train_timesteps of 2³¹ took a whole 24 GB machine): every size is computed as a number first and
// checked against these and against the engine's memoryLimit before anything is allocated.
import { DdpmError } from './errors.js';
import { formatBytes } from './engine/memory.js';

export const LIMITS = {
  /** num_train_timesteps: diffusers' models use 1000 (improved DDPM 4000); a schedule is ~15 float64 arrays of T. */
  maxTrainTimesteps: 100_000,
  /** UNet2DModel: entries of block_out_channels (each halves the resolution). */
  maxBlocks: 8,
  /** UNet2DModel: layers_per_block. */
  maxLayersPerBlock: 32,
  /** UNet2DModel / MLP: channels of one block, in/out channels. */
  maxChannels: 16_384,
  /** UNet2DModel: sample_size (the side of the square image). */
  maxSampleSize: 4096,
  /** UNet2DModel: num_class_embeds. */
  maxClassEmbeds: 1_000_000,
  /** Elements of one tensor described by a state or a header (2³⁰ float32 = 4 GiB, wasm32's ceiling). */
  maxTensorElements: 2 ** 30,
  /** Typed arrays one call allocates outside Wasm memory (decoded images, a state's sample …). */
  jsBytes: 2 ** 30,
} as const;

/**
 * Throws OUT_OF_MEMORY when `bytes` (computed, not yet allocated) exceed the JS-side budget: the memory the
 * library would take on the JavaScript heap, beside the engine's Wasm memory.
 */
export function checkJsBudget(bytes: number, what: string, budget: number = LIMITS.jsBytes): void {
  if (!(bytes <= budget)) {
    throw new DdpmError(
      'OUT_OF_MEMORY',
      `${what} needs ${Number.isFinite(bytes) ? formatBytes(bytes) : 'more than 2^53 bytes'} outside Wasm memory, over the ${formatBytes(budget)} budget`,
    );
  }
}
