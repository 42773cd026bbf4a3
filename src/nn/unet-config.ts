// diffusers' UNet2DModel configuration (config.json keys), validated before anything is allocated.
import { DdpmError } from '../errors.js';
import { LIMITS } from '../limits.js';
import { hasOwn, show } from '../validate.js';

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
  throw new DdpmError('FORMAT', `${file}: ${key} must be ${expected}, found ${show(found)}`);
}

const posInt = (v: unknown, max = Number.MAX_SAFE_INTEGER) =>
  Number.isInteger(v) && (v as number) > 0 && (v as number) <= max;

/** Caps on the counts of a config (see src/limits.ts): they bound the parameter list before it is built. */
const CAPS = {
  sample_size: LIMITS.maxSampleSize,
  in_channels: LIMITS.maxChannels,
  out_channels: LIMITS.maxChannels,
  layers_per_block: LIMITS.maxLayersPerBlock,
  norm_num_groups: LIMITS.maxChannels,
} as const;

/** Checks a parsed config.json and fills diffusers' defaults; `file` names it in errors. */
export function parseUNetConfig(json: unknown, file = 'config.json'): UNet2DConfig {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) bad(file, 'the config', 'a JSON object', json);
  const raw = json as Record<string, unknown>;
  const cls = hasOwn(raw, '_class_name') ? raw._class_name : undefined;
  if (cls !== undefined && cls !== 'UNet2DModel') bad(file, '_class_name', '"UNet2DModel"', cls);
  const c: Record<string, unknown> = { ...DEFAULTS };
  for (const [k, v] of Object.entries(raw)) {
    if (k.startsWith('_')) continue;
    // own-property lookups: a key named toString or constructor is unknown, not Object.prototype's
    if (hasOwn(FIXED_KEYS, k)) {
      if (v !== FIXED_KEYS[k]) bad(file, k, `${JSON.stringify(FIXED_KEYS[k])} (the only value supported)`, v);
      continue;
    }
    if (!hasOwn(DEFAULTS, k))
      throw new DdpmError('FORMAT', `${file}: unsupported UNet2DModel key ${JSON.stringify(k)}`);
    c[k] = v;
  }
  const cfg = c as unknown as UNet2DConfig;
  for (const k of ['sample_size', 'in_channels', 'out_channels', 'layers_per_block', 'norm_num_groups'] as const) {
    if (!posInt(cfg[k], CAPS[k])) bad(file, k, `a positive integer (at most ${CAPS[k]})`, cfg[k]);
  }
  const boc = cfg.block_out_channels;
  if (
    !Array.isArray(boc) ||
    boc.length === 0 ||
    boc.length > LIMITS.maxBlocks ||
    !boc.every((ch) => posInt(ch, LIMITS.maxChannels))
  ) {
    bad(
      file,
      'block_out_channels',
      `an array of 1 to ${LIMITS.maxBlocks} positive integers (each at most ${LIMITS.maxChannels})`,
      boc,
    );
  }
  for (const ch of boc) {
    if (ch % cfg.norm_num_groups !== 0) {
      throw new DdpmError(
        'FORMAT',
        `${file}: norm_num_groups (${cfg.norm_num_groups}) must divide every block_out_channels entry, found ${ch}`,
      );
    }
  }
  if (!Array.isArray(cfg.down_block_types) || cfg.down_block_types.length !== boc.length) {
    bad(
      file,
      'down_block_types',
      `an array of ${boc.length} block types (one per block_out_channels entry)`,
      cfg.down_block_types,
    );
  }
  if (!Array.isArray(cfg.up_block_types) || cfg.up_block_types.length !== boc.length) {
    bad(
      file,
      'up_block_types',
      `an array of ${boc.length} block types (one per block_out_channels entry)`,
      cfg.up_block_types,
    );
  }
  cfg.down_block_types.forEach((t, i) => {
    if (t !== 'DownBlock2D' && t !== 'AttnDownBlock2D')
      bad(file, `down_block_types[${i}]`, '"DownBlock2D" or "AttnDownBlock2D"', t);
  });
  cfg.up_block_types.forEach((t, i) => {
    if (t !== 'UpBlock2D' && t !== 'AttnUpBlock2D')
      bad(file, `up_block_types[${i}]`, '"UpBlock2D" or "AttnUpBlock2D"', t);
  });
  // The kernels compute in float32: a value that rounds to 0 or ∞ there gives non-finite outputs.
  const f32Positive = (v: unknown) => typeof v === 'number' && Math.fround(v) > 0 && Number.isFinite(Math.fround(v));
  if (!f32Positive(cfg.norm_eps))
    bad(file, 'norm_eps', 'a positive number that float32 holds (not 0 or ∞ once rounded)', cfg.norm_eps);
  if (cfg.act_fn !== 'silu') bad(file, 'act_fn', '"silu"', cfg.act_fn);
  if (cfg.time_embedding_type !== 'positional')
    bad(file, 'time_embedding_type', '"positional"', cfg.time_embedding_type);
  if (cfg.resnet_time_scale_shift !== 'default')
    bad(file, 'resnet_time_scale_shift', '"default"', cfg.resnet_time_scale_shift);
  if (typeof cfg.flip_sin_to_cos !== 'boolean') bad(file, 'flip_sin_to_cos', 'a boolean', cfg.flip_sin_to_cos);
  if (typeof cfg.center_input_sample !== 'boolean')
    bad(file, 'center_input_sample', 'a boolean', cfg.center_input_sample);
  if (!(typeof cfg.freq_shift === 'number' && Number.isFinite(cfg.freq_shift)))
    bad(file, 'freq_shift', 'a number', cfg.freq_shift);
  if (cfg.downsample_padding !== 0 && cfg.downsample_padding !== 1)
    bad(file, 'downsample_padding', '0 or 1', cfg.downsample_padding);
  // The mid block divides its activations by it three times (two resnets, the attention): outside
  // [1e-3, 1e3] the activations reach 1e9× or 1e-9× their size and float32 overflows (1e-30 gave ∞).
  const s = cfg.mid_block_scale_factor;
  if (typeof s !== 'number' || !(s >= 1e-3 && s <= 1e3)) {
    bad(
      file,
      'mid_block_scale_factor',
      'a number in [0.001, 1000] (the mid block divides by it three times; outside, float32 overflows or the result rounds to 0)',
      s,
    );
  }
  if (!(typeof cfg.dropout === 'number' && cfg.dropout >= 0 && cfg.dropout < 1))
    bad(file, 'dropout', 'a number in [0, 1)', cfg.dropout);
  if (cfg.num_class_embeds !== null && !posInt(cfg.num_class_embeds, LIMITS.maxClassEmbeds))
    bad(
      file,
      'num_class_embeds',
      `null or a positive integer (at most ${LIMITS.maxClassEmbeds})`,
      cfg.num_class_embeds,
    );
  if (cfg.attention_head_dim !== null) {
    if (!posInt(cfg.attention_head_dim))
      bad(file, 'attention_head_dim', 'null or a positive integer', cfg.attention_head_dim);
    boc.forEach((ch, i) => {
      const attn =
        cfg.down_block_types[i] === 'AttnDownBlock2D' ||
        cfg.up_block_types[boc.length - 1 - i] === 'AttnUpBlock2D' ||
        i === boc.length - 1;
      if (attn && ch % cfg.attention_head_dim! !== 0) {
        throw new DdpmError(
          'FORMAT',
          `${file}: attention_head_dim (${cfg.attention_head_dim}) must divide the attention width ${ch}`,
        );
      }
    });
  }
  if (boc[0] % 2 !== 0) bad(file, 'block_out_channels[0]', 'even (it is the sinusoidal time embedding width)', boc[0]);
  // freq_i = exp(−ln(10000)·i/(half − freq_shift)): at half − freq_shift ≤ 0 the frequencies are 0/0 or
  // grow without bound, and sin/cos of them are NaN.
  if (cfg.freq_shift >= boc[0] / 2) {
    bad(
      file,
      'freq_shift',
      `below half the time embedding width (block_out_channels[0]/2 = ${boc[0] / 2}); at or above it the sinusoidal embedding is NaN`,
      cfg.freq_shift,
    );
  }
  return {
    ...cfg,
    block_out_channels: [...boc],
    down_block_types: [...cfg.down_block_types],
    up_block_types: [...cfg.up_block_types],
  };
}
