// UNet2DModel sizes for small images (diffusers config keys; sample_size and channels come from the data).
// `mnist` is the configuration of the model shipped in models/mnist/ (see its TRAINING.md).
export const UNET_PRESETS = {
  tiny: {
    block_out_channels: [16, 32], layers_per_block: 1, norm_num_groups: 8, attention_head_dim: null,
    down_block_types: ['DownBlock2D', 'AttnDownBlock2D'], up_block_types: ['AttnUpBlock2D', 'UpBlock2D'],
  },
  small: {
    block_out_channels: [32, 64], layers_per_block: 1, norm_num_groups: 8, attention_head_dim: null,
    down_block_types: ['DownBlock2D', 'AttnDownBlock2D'], up_block_types: ['AttnUpBlock2D', 'UpBlock2D'],
  },
  // 28 → 14 → 7: attention at 14×14 and in the mid block (7×7)
  mnist: {
    block_out_channels: [16, 32, 32], layers_per_block: 1, norm_num_groups: 8, attention_head_dim: null,
    down_block_types: ['DownBlock2D', 'AttnDownBlock2D', 'DownBlock2D'], up_block_types: ['UpBlock2D', 'AttnUpBlock2D', 'UpBlock2D'],
    flip_sin_to_cos: true, freq_shift: 0, downsample_padding: 1,
  },
} as const satisfies Record<string, Record<string, unknown>>;

export type UNetPreset = keyof typeof UNET_PRESETS;
