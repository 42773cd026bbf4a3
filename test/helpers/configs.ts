// The small UNet2DModel configs the tests share (seconds to build, train or sample).

/** 1×8×8 images, two levels (8, 16 channels), attention at the 4×4 level: the tests' default U-Net. */
export const TINY_UNET = {
  sample_size: 8,
  in_channels: 1,
  out_channels: 1,
  block_out_channels: [8, 16],
  layers_per_block: 1,
  down_block_types: ['DownBlock2D', 'AttnDownBlock2D'],
  up_block_types: ['AttnUpBlock2D', 'UpBlock2D'],
  norm_num_groups: 4,
  attention_head_dim: null,
} as const;

/** 1×28×28 digits (what `ddpm eval` scores), two levels (8, 16 channels), no attention: seconds to sample. */
export const TINY_DIGITS_UNET = {
  ...TINY_UNET,
  sample_size: 28,
  down_block_types: ['DownBlock2D', 'DownBlock2D'],
  up_block_types: ['UpBlock2D', 'UpBlock2D'],
} as const;
