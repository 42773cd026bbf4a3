// diffusers' UNet2DModel: config.json + diffusion_pytorch_model.safetensors in, ε (or x0, v) out.
import { DdpmError } from '../errors.js';
import type { Engine } from '../engine/engine.js';
import type { Tensor } from '../engine/memory.js';
import { silu } from '../kernels/elementwise.js';
import { readSafetensors, writeSafetensors, type SafeTensor } from '../io/safetensors.js';
import { Ctx, attention, concat, conv, downsample, groupNormAct, linear, resnet, upsample, type Act, type BlockOpts } from './layers.js';
import { ParamBlock } from './params.js';
import { parseUNetConfig, type UNet2DConfig } from './unet-config.js';
import { unetParamSpecs } from './unet-params.js';

export const WEIGHTS_FILE = 'diffusion_pytorch_model.safetensors';

/** Legacy attention parameter names (diffusers < 0.14 checkpoints, e.g. google/ddpm-*) → current ones. */
const LEGACY_ATTENTION: [RegExp, string][] = [
  [/\.query\.(weight|bias)$/, '.to_q.$1'],
  [/\.key\.(weight|bias)$/, '.to_k.$1'],
  [/\.value\.(weight|bias)$/, '.to_v.$1'],
  [/\.proj_attn\.(weight|bias)$/, '.to_out.0.$1'],
];

/** Called with each block's output during forward, under diffusers' module names (for parity checks). */
export type ForwardHook = (name: string, values: Float32Array, shape: number[]) => void;

export interface ForwardOptions {
  /** Class labels (N) for a class-conditional model (num_class_embeds). */
  classLabels?: ArrayLike<number>;
  hook?: ForwardHook;
}

/**
 * Sinusoidal timestep embedding as diffusers' get_timestep_embedding computes it in float32:
 * freq_i = exp(−ln(10000)·i/(half − freq_shift)), emb = [sin(t·freq), cos(t·freq)] ([cos, sin] if flipped).
 */
export function timestepEmbedding(timesteps: ArrayLike<number>, dim: number, flipSinToCos: boolean, freqShift: number): Float32Array {
  const f = Math.fround;
  const half = Math.floor(dim / 2);
  const out = new Float32Array(timesteps.length * dim);
  for (let n = 0; n < timesteps.length; n++) {
    for (let i = 0; i < half; i++) {
      const exponent = f(f(-Math.log(10000) * i) / (half - freqShift));
      const arg = f(f(timesteps[n]) * f(Math.exp(exponent)));
      const [first, second] = flipSinToCos ? [Math.cos(arg), Math.sin(arg)] : [Math.sin(arg), Math.cos(arg)];
      out[n * dim + i] = first;
      out[n * dim + half + i] = second;
    }
  }
  return out;
}

export class UNet2DModel {
  readonly config: UNet2DConfig;
  readonly params: ParamBlock;

  constructor(readonly engine: Engine, config: UNet2DConfig) {
    this.config = config;
    const specs = unetParamSpecs(config);
    const bytes = specs.reduce((s, p) => s + 4 * p.shape.reduce((a, b) => a * b, 1), 0);
    engine.arena.plan(bytes, `UNet2DModel parameters (${bytes / 4} floats)`);
    this.params = new ParamBlock(engine, specs, 'unet.params');
  }

  /** Builds the model from a diffusers folder's config.json text/object and safetensors bytes. */
  static fromFiles(engine: Engine, configJson: unknown, weights: Uint8Array, names = { config: 'config.json', weights: WEIGHTS_FILE }): UNet2DModel {
    const config = parseUNetConfig(typeof configJson === 'string' ? parseJson(configJson, names.config) : configJson, names.config);
    const model = new UNet2DModel(engine, config);
    model.loadStateDict(readSafetensors(weights, names.weights).tensors, names.weights);
    return model;
  }

  /** Reads a diffusers folder (Node, Deno, Bun): config.json + diffusion_pytorch_model.safetensors. */
  static async fromPretrained(engine: Engine, dir: string): Promise<UNet2DModel> {
    const { readFile } = await import('node:fs/promises');
    const { join } = await import('node:path');
    const read = async (name: string) => {
      try {
        return await readFile(join(dir, name));
      } catch (e) {
        throw new DdpmError('FORMAT', `${join(dir, name)}: cannot read (${(e as Error).message})`, { cause: e });
      }
    };
    const cfgPath = join(dir, 'config.json');
    const weightsPath = join(dir, WEIGHTS_FILE);
    const cfgText = (await read('config.json')).toString('utf8');
    return UNet2DModel.fromFiles(engine, cfgText, new Uint8Array(await read(WEIGHTS_FILE)), { config: cfgPath, weights: weightsPath });
  }

  /**
   * Copies tensors into the parameters. Missing, unexpected and wrong-shaped tensors are all listed in
   * one error; legacy attention names are accepted as aliases.
   */
  loadStateDict(tensors: Map<string, SafeTensor>, file = WEIGHTS_FILE): void {
    const missing: string[] = [];
    const unexpected: string[] = [];
    const wrong: string[] = [];
    const byName = new Map<string, SafeTensor>();
    for (const [name, t] of tensors) {
      let current = name;
      for (const [re, to] of LEGACY_ATTENTION) current = current.replace(re, to);
      if (!this.params.has(current)) unexpected.push(name);
      else byName.set(current, t);
    }
    for (const spec of this.params.specs) {
      const t = byName.get(spec.name);
      if (!t) missing.push(spec.name);
      else if (t.shape.length !== spec.shape.length || t.shape.some((d, i) => d !== spec.shape[i])) {
        wrong.push(`${spec.name} (expected [${spec.shape}], found [${t.shape}])`);
      }
    }
    if (missing.length || unexpected.length || wrong.length) {
      const parts = [];
      if (missing.length) parts.push(`missing ${missing.length}: ${missing.join(', ')}`);
      if (unexpected.length) parts.push(`unexpected ${unexpected.length}: ${unexpected.join(', ')}`);
      if (wrong.length) parts.push(`wrong shape ${wrong.length}: ${wrong.join(', ')}`);
      throw new DdpmError('FORMAT', `${file}: the weights do not fit this UNet2DModel config — ${parts.join('; ')}`);
    }
    for (const spec of this.params.specs) this.engine.write(this.params.get(spec.name), byName.get(spec.name)!.data);
  }

  /** The state dict as diffusers names it (current attention names), in state_dict() order. */
  stateDict(): [string, { shape: number[]; data: Float32Array }][] {
    return this.params.specs.map((s) => [s.name, { shape: s.shape, data: this.engine.read(this.params.get(s.name)) }]);
  }

  /** safetensors bytes of the weights, as diffusers writes them (metadata format: pt). */
  weightsBytes(): Uint8Array {
    return writeSafetensors(this.stateDict(), { format: 'pt' });
  }

  /**
   * ε_θ(x_t, t): sample (N, C, H, W) as a Float32Array, timesteps one per sample or one for all.
   * Returns a new (N, out_channels, H, W) array; activations are freed before returning.
   */
  async forward(sample: Float32Array, timesteps: number | ArrayLike<number>, opts: ForwardOptions = {}): Promise<Float32Array> {
    const c = this.config;
    const C = c.in_channels;
    const HW = sample.length / C;
    const side = c.sample_size;
    const factor = 2 ** (c.block_out_channels.length - 1);
    const N = sample.length / (C * side * side);
    if (!Number.isInteger(N) || N < 1 || !Number.isInteger(HW)) {
      throw new DdpmError('SHAPE_MISMATCH', `UNet2DModel.forward: sample has ${sample.length} values, expected N × ${C} × ${side} × ${side} (in_channels × sample_size²) with N ≥ 1`);
    }
    if (side % factor !== 0) throw new DdpmError('SHAPE_MISMATCH', `UNet2DModel.forward: sample_size ${side} is not divisible by the down-sampling factor ${factor}`);
    const ts = typeof timesteps === 'number' ? new Array(N).fill(timesteps) : Array.from(timesteps);
    if (ts.length !== N) throw new DdpmError('SHAPE_MISMATCH', `UNet2DModel.forward: ${ts.length} timesteps for a batch of ${N}`);
    ts.forEach((t, i) => {
      if (!Number.isFinite(t)) throw new DdpmError('INVALID_TIMESTEP', `UNet2DModel.forward: timesteps[${i}] = ${t} is not finite`);
    });
    for (let i = 0; i < sample.length; i++) {
      if (!Number.isFinite(sample[i])) throw new DdpmError('NON_FINITE', `UNet2DModel.forward: sample[${i}] = ${sample[i]} is not finite`);
    }
    if (c.num_class_embeds !== null) {
      const labels = opts.classLabels;
      if (!labels || labels.length !== N) throw new DdpmError('INVALID_ARGUMENT', `UNet2DModel.forward: a class-conditional model needs classLabels for each of the ${N} samples`);
      Array.from(labels).forEach((l, i) => {
        if (!Number.isInteger(l) || l < 0 || l >= c.num_class_embeds!) throw new DdpmError('INVALID_ARGUMENT', `UNet2DModel.forward: classLabels[${i}] = ${l} is not in [0, ${c.num_class_embeds})`);
      });
    }

    const e = this.engine;
    const mark = e.arena.mark();
    try {
      const ctx = new Ctx(e, this.params);
      const hook = opts.hook;
      const emit = (name: string, a: Act | Tensor, shape?: number[]) => {
        if (!hook) return;
        if ('t' in a) hook(name, e.read(a.t), [a.N, a.C, a.H, a.W]);
        else hook(name, e.read(a), shape!);
      };
      const out = this.forwardActs(ctx, sample, N, ts, opts.classLabels, emit);
      return e.read(out.t);
    } finally {
      e.arena.release(mark);
    }
  }

  private forwardActs(ctx: Ctx, sample: Float32Array, N: number, ts: number[], classLabels: ArrayLike<number> | undefined, emit: (name: string, a: Act | Tensor, shape?: number[]) => void): Act {
    const c = this.config;
    const e = this.engine;
    const boc = c.block_out_channels;
    const C0 = boc[0];
    const E = 4 * C0;
    const side = c.sample_size;

    // 0. center input
    const x = ctx.act(N, c.in_channels, side, side, 'sample');
    e.write(x.t, c.center_input_sample ? sample.map((v) => 2 * v - 1) : sample);

    // 1. time: sinusoidal projection → MLP (linear, SiLU, linear) [+ class embedding]
    const tproj = e.upload(timestepEmbedding(ts, C0, c.flip_sin_to_cos, c.freq_shift), [N, C0], 'time_proj');
    emit('time_proj', tproj, [N, C0]);
    const t1 = linear(ctx, 'time_embedding.linear_1', tproj, N, C0, E);
    silu(e, t1.size, t1, t1);
    const emb = linear(ctx, 'time_embedding.linear_2', t1, N, E, E); // (N, E)
    if (c.num_class_embeds !== null && classLabels) {
      const table = e.view(this.params.get('class_embedding.weight'));
      const v = e.view(emb);
      for (let n = 0; n < N; n++) for (let j = 0; j < E; j++) v[n * E + j] += table[classLabels[n] * E + j];
    }
    emit('time_embedding', emb, [N, E]);
    const tembAct = e.alloc([N, E], 'temb_act');
    silu(e, emb.size, emb, tembAct);
    const o: BlockOpts = { groups: c.norm_num_groups, eps: c.norm_eps, tembAct, tembDim: E };
    const headDim = (ch: number) => c.attention_head_dim ?? ch;

    // 2. down
    let h = conv(ctx, 'conv_in', x, C0, 3);
    emit('conv_in', h);
    const skips: Act[] = [h];
    c.down_block_types.forEach((type, i) => {
      const p = `down_blocks.${i}`;
      for (let l = 0; l < c.layers_per_block; l++) {
        h = resnet(ctx, `${p}.resnets.${l}`, h, boc[i], o);
        emit(`${p}.resnets.${l}`, h);
        if (type === 'AttnDownBlock2D') {
          h = attention(ctx, `${p}.attentions.${l}`, h, headDim(boc[i]), o);
          emit(`${p}.attentions.${l}`, h);
        }
        skips.push(h);
      }
      if (i !== boc.length - 1) {
        h = downsample(ctx, `${p}.downsamplers.0`, h, c.downsample_padding);
        emit(`${p}.downsamplers.0`, h);
        skips.push(h);
      }
      emit(p, h);
    });

    // 3. mid
    const last = boc[boc.length - 1];
    h = resnet(ctx, 'mid_block.resnets.0', h, last, o, c.mid_block_scale_factor);
    emit('mid_block.resnets.0', h);
    h = attention(ctx, 'mid_block.attentions.0', h, headDim(last), o, c.mid_block_scale_factor);
    emit('mid_block.attentions.0', h);
    h = resnet(ctx, 'mid_block.resnets.1', h, last, o, c.mid_block_scale_factor);
    emit('mid_block.resnets.1', h);
    emit('mid_block', h);

    // 4. up: each resnet takes the latest skip concatenated to its input
    const rev = [...boc].reverse();
    c.up_block_types.forEach((type, i) => {
      const p = `up_blocks.${i}`;
      for (let l = 0; l < c.layers_per_block + 1; l++) {
        const skip = skips.pop()!;
        h = resnet(ctx, `${p}.resnets.${l}`, concat(ctx, h, skip, `${p}.cat.${l}`), rev[i], o);
        emit(`${p}.resnets.${l}`, h);
        if (type === 'AttnUpBlock2D') {
          h = attention(ctx, `${p}.attentions.${l}`, h, headDim(rev[i]), o);
          emit(`${p}.attentions.${l}`, h);
        }
      }
      if (i !== boc.length - 1) {
        h = upsample(ctx, `${p}.upsamplers.0`, h);
        emit(`${p}.upsamplers.0`, h);
      }
      emit(p, h);
    });

    // 5. out
    h = groupNormAct(ctx, 'conv_norm_out', h, c.norm_num_groups, c.norm_eps, false);
    emit('conv_norm_out', h);
    silu(e, h.t.size, h.t, h.t);
    emit('conv_act', h);
    h = conv(ctx, 'conv_out', h, c.out_channels, 3);
    emit('conv_out', h);
    return h;
  }
}

function parseJson(text: string, file: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new DdpmError('FORMAT', `${file}: not valid JSON (${(e as Error).message})`, { cause: e });
  }
}
