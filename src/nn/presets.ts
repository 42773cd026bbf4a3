// UNet2DModel sizes for small images (diffusers config keys; sample_size and channels come from the data).
// `mnist` is the configuration of the model shipped in models/mnist/ (see its TRAINING.md).

// 28 → 14 → 7: attention at 14×14 and in the mid block (7×7)
const MNIST_UNET = {
  block_out_channels: [16, 32, 32],
  layers_per_block: 1,
  norm_num_groups: 8,
  attention_head_dim: null,
  down_block_types: ['DownBlock2D', 'AttnDownBlock2D', 'DownBlock2D'],
  up_block_types: ['UpBlock2D', 'AttnUpBlock2D', 'UpBlock2D'],
  flip_sin_to_cos: true,
  freq_shift: 0,
  downsample_padding: 1,
} as const;

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
  mnist: MNIST_UNET,
  /**
   * `mnist` at twice the width (32/64/64, 1.1M parameters): trained in training/mnist-wide at the shipped
   * run's compute, where it drew worse digits than `mnist` (docs/training.md) — kept to reproduce that.
   */
  'mnist-wide': { ...MNIST_UNET, block_out_channels: [32, 64, 64] },
  /**
   * `mnist` at half the width (8/16/16, ~70k parameters): a small, briefly trained model to guide `mnist`
   * with (autoguidance, docs/autoguidance.md; training/mnist-guide-xs).
   */
  'mnist-xs': { ...MNIST_UNET, block_out_channels: [8, 16, 16], norm_num_groups: 4 },
} as const satisfies Record<string, Record<string, unknown>>;

export type UNetPreset = keyof typeof UNET_PRESETS;

/**
 * How the first shipped models/mnist (until 2026-12-01: 69.9% confident digits) was trained: linear β,
 * ε-prediction, plain L_simple, lr 5e-4 constant, 13,000 steps. The `base` row of the recipe ablation
 * (docs/training.md); `node scripts/train-mnist.mjs --recipe v1` still trains it. Plain values (diffusers
 * scheduler options, Trainer options) so that nn/ needs nothing above it.
 */
export const MNIST_RECIPE_V1 = {
  preset: 'mnist',
  /** DDPMScheduler options: linear β 1e-4 … 0.02, T = 1000, x̂_0 clipped to [−1, 1]. */
  scheduler: {
    numTrainTimesteps: 1000,
    betaSchedule: 'linear',
    betaStart: 1e-4,
    betaEnd: 0.02,
    clipSample: true,
    varianceType: 'fixed_small',
    predictionType: 'epsilon',
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
  /** 13,000 × 32 digits, 87 minutes on 2 cores. */
  steps: 13000,
  checkpointEvery: 250,
  /**
   * Below this many steps samples are noise rather than digits (the first model's digits were still
   * malformed at 9,900 steps): `ddpm train` warns.
   */
  minUsefulSteps: 2000,
  /** No warm start: `--class-conditional` trains from the seeded initialisation, with the same options. */
  conditional: null,
} as const;

/**
 * How the shipped models/mnist was trained (its TRAINING.md) — the recipe the ablation chose
 * (docs/training.md, docs/ablations.json): MNIST_RECIPE_V1 with the three one-change winners of stage 1 —
 * v-prediction, min-SNR-5 weighting and a larger learning rate decaying by a cosine to 0 at the last step —
 * which add up in stage 2, where the 16/32/32 network also beat a 32/64/64 one at the same compute.
 * The single source of `ddpm train --data mnist --preset mnist`'s defaults and of scripts/train-mnist.mjs,
 * so a user's own run matches the shipped model's.
 */
export const MNIST_RECIPE = {
  ...MNIST_RECIPE_V1,
  scheduler: { ...MNIST_RECIPE_V1.scheduler, predictionType: 'v_prediction' },
  trainer: {
    ...MNIST_RECIPE_V1.trainer,
    predictionType: 'v_prediction',
    snrGamma: 5,
    learningRate: 1e-3,
    /** decays to 0 at the run's last step: maxTrainSteps is set to the step count by whoever trains */
    lrScheduler: 'cosine',
    seed: 20261201,
  },
  /** 50,000 × 32 digits: ~2.2 h on 2 threads at the measured ~0.16 s per step. */
  steps: 50000,
  /**
   * models/mnist-cond: the shipped unconditional model warm-started into a class-conditional one (every
   * weight copied, the class embedding seeded) and fine-tuned with the labels — docs/conditional.md.
   * Same options otherwise, 4,000 steps.
   */
  conditional: { initFrom: 'models/mnist', learningRate: 1e-3, steps: 4000 },
} as const;
