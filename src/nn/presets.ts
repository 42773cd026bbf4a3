// UNet2DModel sizes for small images (diffusers config keys; sample_size and channels come from the data).
// `mnist` is the configuration of the model shipped in models/mnist/ (see its TRAINING.md).
export const UNET_PRESETS = {
  tiny: {
    block_out_channels: [16, 32],
    layers_per_block: 1,
    norm_num_groups: 8,
    attention_head_dim: null,
    down_block_types: ['DownBlock2D', 'AttnDownBlock2D'],
    up_block_types: ['AttnUpBlock2D', 'UpBlock2D'],
  },
  small: {
    block_out_channels: [32, 64],
    layers_per_block: 1,
    norm_num_groups: 8,
    attention_head_dim: null,
    down_block_types: ['DownBlock2D', 'AttnDownBlock2D'],
    up_block_types: ['AttnUpBlock2D', 'UpBlock2D'],
  },
  // 28 → 14 → 7: attention at 14×14 and in the mid block (7×7)
  mnist: {
    block_out_channels: [16, 32, 32],
    layers_per_block: 1,
    norm_num_groups: 8,
    attention_head_dim: null,
    down_block_types: ['DownBlock2D', 'AttnDownBlock2D', 'DownBlock2D'],
    up_block_types: ['UpBlock2D', 'AttnUpBlock2D', 'UpBlock2D'],
    flip_sin_to_cos: true,
    freq_shift: 0,
    downsample_padding: 1,
  },
} as const satisfies Record<string, Record<string, unknown>>;

export type UNetPreset = keyof typeof UNET_PRESETS;

/**
 * How the shipped models/mnist was trained (its TRAINING.md): the single source of `ddpm train --data
 * mnist --preset mnist`'s defaults and of scripts/train-mnist.mjs, so a user's own run matches the shipped
 * model's. Plain values (diffusers scheduler options, Trainer options) so that nn/ needs nothing above it.
 */
export const MNIST_RECIPE = {
  preset: 'mnist',
  /** DDPMScheduler options: linear β 1e-4 … 0.02, T = 1000, x̂_0 clipped to [−1, 1]. */
  scheduler: {
    numTrainTimesteps: 1000,
    betaSchedule: 'linear',
    betaStart: 1e-4,
    betaEnd: 0.02,
    clipSample: true,
    varianceType: 'fixed_small',
  },
  /** Trainer options: ε-prediction, L_simple, AdamW with a 200-step warmup then constant; EMA with diffusers' warmup. */
  trainer: {
    batchSize: 32,
    learningRate: 5e-4,
    lrWarmupSteps: 200,
    lrScheduler: 'constant',
    maxTrainSteps: 0,
    maxGradNorm: 1,
    ema: { maxDecay: 0.9995, useEmaWarmup: true, invGamma: 1, power: 2 / 3 },
    seed: 20261128,
  },
  /** Seed of the initial weights (the shipped run used 0 with the trainer seed above). */
  initSeed: 0,
  /** The shipped model's step count (13,000 × 32 digits, 87 minutes on 2 cores). */
  steps: 13000,
  checkpointEvery: 250,
  /**
   * Below this many steps samples are noise rather than digits (the shipped model's digits were still
   * malformed at 9,900 steps): `ddpm train` warns.
   */
  minUsefulSteps: 2000,
} as const;

/**
 * The recipe the ablation chose (docs/training.md, docs/ablations.json): MNIST_RECIPE with the three
 * one-change winners of stage 1 — v-prediction, min-SNR-5 weighting and a larger learning rate decaying
 * by a cosine to 0 — which add up in stage 2, where the 16/32/32 network also beat a 32/64/64 one at the
 * same compute. Trained by
 * `node scripts/train-mnist.mjs --recipe next` in training/mnist-next (committed in steps); it becomes
 * MNIST_RECIPE when its model replaces models/mnist.
 */
export const MNIST_RECIPE_NEXT = {
  ...MNIST_RECIPE,
  scheduler: { ...MNIST_RECIPE.scheduler, predictionType: 'v_prediction' },
  trainer: {
    ...MNIST_RECIPE.trainer,
    predictionType: 'v_prediction',
    snrGamma: 5,
    learningRate: 1e-3,
    lrScheduler: 'cosine',
    seed: 20261201,
  },
  /** ~2.3 h on 2 threads at the measured 164 ms per step. */
  steps: 50000,
} as const;
