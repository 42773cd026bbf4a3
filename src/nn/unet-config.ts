// diffusers' UNet2DModel configuration (config.json keys), validated before anything is allocated.
import { DdpmError } from '../errors.js';

export type DownBlockType = 'DownBlock2D' | 'AttnDownBlock2D';
export type UpBlockType = 'UpBlock2D' | 'AttnUpBlock2D';

export interface UNet2DConfig {
  sample_size: number;
  in_channels: number;
  out_channels: number;
  block_out_channels: number[];
  layers_per_block: number;
  down_block_types: DownBlockType[];
  up_block_types: UpBlockType[];
  norm_num_groups: number;
  norm_eps: number;
  act_fn: 'silu';
  /** null: one head spanning the block's width; n: heads of width n. */
  attention_head_dim: number | null;
  time_embedding_type: 'positional';
  flip_sin_to_cos: boolean;
  freq_shift: number;
  downsample_padding: number;
  mid_block_scale_factor: number;
  center_input_sample: boolean;
  resnet_time_scale_shift: 'default';
  dropout: number;
  num_class_embeds: number | null;
}

const DEFAULTS: UNet2DConfig = {
  sample_size: 32,
  in_channels: 3,
  out_channels: 3,
  block_out_channels: [224, 448, 672, 896],
  layers_per_block: 2,
  down_block_types: ['DownBlock2D', 'AttnDownBlock2D', 'AttnDownBlock2D', 'AttnDownBlock2D'],
  up_block_types: ['AttnUpBlock2D', 'AttnUpBlock2D', 'AttnUpBlock2D', 'UpBlock2D'],
  norm_num_groups: 32,
  norm_eps: 1e-5,
  act_fn: 'silu',
  attention_head_dim: 8,
  time_embedding_type: 'positional',
  flip_sin_to_cos: true,
  freq_shift: 0,
  downsample_padding: 1,
  mid_block_scale_factor: 1,
  center_input_sample: false,
  resnet_time_scale_shift: 'default',
  dropout: 0,
  num_class_embeds: null,
};

/** Keys diffusers writes whose only supported value is the one given (anything else is refused by name). */
export const FIXED_KEYS: Record<string, unknown> = {
  add_attention: true,
  attn_norm_num_groups: null,
  class_embed_type: null,
  downsample_type: 'conv',
  upsample_type: 'conv',
  time_embedding_dim: null,
  num_train_timesteps: null,
};

function bad(file: string, key: string, expected: string, found: unknown): never {
  throw new DdpmError('FORMAT', `${file}: ${key} must be ${expected}, found ${JSON.stringify(found)}`);
}

const posInt = (v: unknown) => Number.isInteger(v) && (v as number) > 0;

/** Checks a parsed config.json and fills diffusers' defaults; `file` names it in errors. */
export function parseUNetConfig(json: unknown, file = 'config.json'): UNet2DConfig {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) bad(file, 'the config', 'a JSON object', json);
  const raw = json as Record<string, unknown>;
  if (raw._class_name !== undefined && raw._class_name !== 'UNet2DModel') bad(file, '_class_name', '"UNet2DModel"', raw._class_name);
  const c: Record<string, unknown> = { ...DEFAULTS };
  for (const [k, v] of Object.entries(raw)) {
    if (k.startsWith('_')) continue;
    if (k in FIXED_KEYS) {
      if (v !== FIXED_KEYS[k]) bad(file, k, `${JSON.stringify(FIXED_KEYS[k])} (the only value supported)`, v);
      continue;
    }
    if (!(k in DEFAULTS)) throw new DdpmError('FORMAT', `${file}: unsupported UNet2DModel key "${k}"`);
    c[k] = v;
  }
  const cfg = c as unknown as UNet2DConfig;
  for (const k of ['sample_size', 'in_channels', 'out_channels', 'layers_per_block', 'norm_num_groups'] as const) {
    if (!posInt(cfg[k])) bad(file, k, 'a positive integer', cfg[k]);
  }
  const boc = cfg.block_out_channels;
  if (!Array.isArray(boc) || boc.length === 0 || !boc.every(posInt)) bad(file, 'block_out_channels', 'a non-empty array of positive integers', boc);
  for (const ch of boc) {
    if (ch % cfg.norm_num_groups !== 0) {
      throw new DdpmError('FORMAT', `${file}: norm_num_groups (${cfg.norm_num_groups}) must divide every block_out_channels entry, found ${ch}`);
    }
  }
  if (!Array.isArray(cfg.down_block_types) || cfg.down_block_types.length !== boc.length) {
    bad(file, 'down_block_types', `an array of ${boc.length} block types (one per block_out_channels entry)`, cfg.down_block_types);
  }
  if (!Array.isArray(cfg.up_block_types) || cfg.up_block_types.length !== boc.length) {
    bad(file, 'up_block_types', `an array of ${boc.length} block types (one per block_out_channels entry)`, cfg.up_block_types);
  }
  cfg.down_block_types.forEach((t, i) => {
    if (t !== 'DownBlock2D' && t !== 'AttnDownBlock2D') bad(file, `down_block_types[${i}]`, '"DownBlock2D" or "AttnDownBlock2D"', t);
  });
  cfg.up_block_types.forEach((t, i) => {
    if (t !== 'UpBlock2D' && t !== 'AttnUpBlock2D') bad(file, `up_block_types[${i}]`, '"UpBlock2D" or "AttnUpBlock2D"', t);
  });
  if (!(typeof cfg.norm_eps === 'number' && cfg.norm_eps > 0)) bad(file, 'norm_eps', 'a positive number', cfg.norm_eps);
  if (cfg.act_fn !== 'silu') bad(file, 'act_fn', '"silu"', cfg.act_fn);
  if (cfg.time_embedding_type !== 'positional') bad(file, 'time_embedding_type', '"positional"', cfg.time_embedding_type);
  if (cfg.resnet_time_scale_shift !== 'default') bad(file, 'resnet_time_scale_shift', '"default"', cfg.resnet_time_scale_shift);
  if (typeof cfg.flip_sin_to_cos !== 'boolean') bad(file, 'flip_sin_to_cos', 'a boolean', cfg.flip_sin_to_cos);
  if (typeof cfg.center_input_sample !== 'boolean') bad(file, 'center_input_sample', 'a boolean', cfg.center_input_sample);
  if (!(typeof cfg.freq_shift === 'number' && Number.isFinite(cfg.freq_shift))) bad(file, 'freq_shift', 'a number', cfg.freq_shift);
  if (cfg.downsample_padding !== 0 && cfg.downsample_padding !== 1) bad(file, 'downsample_padding', '0 or 1', cfg.downsample_padding);
  if (!(typeof cfg.mid_block_scale_factor === 'number' && cfg.mid_block_scale_factor > 0)) bad(file, 'mid_block_scale_factor', 'a positive number', cfg.mid_block_scale_factor);
  if (!(typeof cfg.dropout === 'number' && cfg.dropout >= 0 && cfg.dropout < 1)) bad(file, 'dropout', 'a number in [0, 1)', cfg.dropout);
  if (cfg.num_class_embeds !== null && !posInt(cfg.num_class_embeds)) bad(file, 'num_class_embeds', 'null or a positive integer', cfg.num_class_embeds);
  if (cfg.attention_head_dim !== null) {
    if (!posInt(cfg.attention_head_dim)) bad(file, 'attention_head_dim', 'null or a positive integer', cfg.attention_head_dim);
    boc.forEach((ch, i) => {
      const attn = cfg.down_block_types[i] === 'AttnDownBlock2D' || cfg.up_block_types[boc.length - 1 - i] === 'AttnUpBlock2D' || i === boc.length - 1;
      if (attn && ch % cfg.attention_head_dim! !== 0) {
        throw new DdpmError('FORMAT', `${file}: attention_head_dim (${cfg.attention_head_dim}) must divide the attention width ${ch}`);
      }
    });
  }
  if (boc[0] % 2 !== 0) bad(file, 'block_out_channels[0]', 'even (it is the sinusoidal time embedding width)', boc[0]);
  return { ...cfg, block_out_channels: [...boc], down_block_types: [...cfg.down_block_types], up_block_types: [...cfg.up_block_types] };
}
