// A residual MLP denoiser for low-dimensional data (2-D toy sets such as two moons), the usual network of
// small diffusion experiments: the same time conditioning as UNet2DModel (sinusoidal projection → linear →
// SiLU) added inside every block, the way ResnetBlock2D adds its time_emb_proj.
//
//   temb  = SiLU(time_embedding.linear_1(sinusoid(t)))                       (N, H)
//   h     = input_proj(x)                                                   (N, H)
//   block = h + linear_2(SiLU(linear_1(h) + time_emb_proj(temb)))           (N, H), num_blocks times
//   out   = output_proj(SiLU(h))                                            (N, D)
//
// Shape letters: N batch, D data dimension, H hidden width, F sinusoid width.
import { DdpmError } from '../errors.js';
import type { Engine } from '../engine/engine.js';
import type { Tensor } from '../engine/memory.js';
import { blockTensors, loadBlock } from './param-tensors.js';
import { readSafetensors, writeSafetensors } from '../io/safetensors.js';
import { modelLayout, openSource, readModelFiles, type ModelSource } from '../io/sources.js';
import type { Denoiser, TrainForward } from './denoiser.js';
import { Ctx, linear, residual, siluT } from './layers.js';
import { ParamBlock, initializeParams, type ParamSpec } from './params.js';
import { timestepEmbedding } from './unet.js';
import { mlpToOnnx } from './onnx.js';

export const MLP_CONFIG_VERSION = 1;
export const MLP_WEIGHTS_FILE = 'model.safetensors';

export interface MLPConfig {
  _class_name: 'MLPDenoiser';
  /** Version of this config format (MLP_CONFIG_VERSION). */
  format_version: number;
  /** D: elements per sample. */
  data_dim: number;
  /** H: width of the residual stream and the time embedding. */
  hidden_dim: number;
  num_blocks: number;
  /** F: width of the sinusoidal projection (even). */
  time_proj_dim: number;
  flip_sin_to_cos: boolean;
  freq_shift: number;
}

const DEFAULTS: MLPConfig = {
  _class_name: 'MLPDenoiser',
  format_version: MLP_CONFIG_VERSION,
  data_dim: 2,
  hidden_dim: 128,
  num_blocks: 3,
  time_proj_dim: 32,
  flip_sin_to_cos: true,
  freq_shift: 0,
};

/** Fills defaults and checks every value before anything is allocated; `file` names the source in errors. */
export function parseMLPConfig(json: unknown, file = 'config.json'): MLPConfig {
  if (json === null || typeof json !== 'object' || Array.isArray(json))
    throw new DdpmError('FORMAT', `${file}: the MLP config must be a JSON object`);
  const raw = json as Record<string, unknown>;
  const c: MLPConfig = { ...DEFAULTS };
  const known = new Set(Object.keys(DEFAULTS));
  const extra = Object.keys(raw).filter((k) => !known.has(k));
  if (extra.length) throw new DdpmError('FORMAT', `${file}: unknown MLPDenoiser config keys: ${extra.join(', ')}`);
  for (const k of Object.keys(DEFAULTS) as (keyof MLPConfig)[])
    if (Object.hasOwn(raw, k)) (c as unknown as Record<string, unknown>)[k] = raw[k];
  if (c._class_name !== 'MLPDenoiser')
    throw new DdpmError('FORMAT', `${file}: _class_name must be "MLPDenoiser", found ${JSON.stringify(c._class_name)}`);
  if (c.format_version !== MLP_CONFIG_VERSION) {
    throw new DdpmError(
      'FORMAT',
      `${file}: format_version ${JSON.stringify(c.format_version)} is not supported (this build reads ${MLP_CONFIG_VERSION})`,
    );
  }
  const positive = (k: 'data_dim' | 'hidden_dim' | 'num_blocks' | 'time_proj_dim', max: number) => {
    const v = c[k];
    if (!Number.isInteger(v) || v < 1 || v > max)
      throw new DdpmError('FORMAT', `${file}: ${k} must be an integer in [1, ${max}], found ${JSON.stringify(v)}`);
  };
  positive('data_dim', 1 << 20);
  positive('hidden_dim', 1 << 14);
  positive('num_blocks', 256);
  positive('time_proj_dim', 1 << 14);
  if (c.time_proj_dim % 2 !== 0)
    throw new DdpmError('FORMAT', `${file}: time_proj_dim must be even, found ${c.time_proj_dim}`);
  if (typeof c.flip_sin_to_cos !== 'boolean')
    throw new DdpmError(
      'FORMAT',
      `${file}: flip_sin_to_cos must be a boolean, found ${JSON.stringify(c.flip_sin_to_cos)}`,
    );
  if (typeof c.freq_shift !== 'number' || !Number.isFinite(c.freq_shift) || c.freq_shift >= c.time_proj_dim / 2) {
    throw new DdpmError(
      'FORMAT',
      `${file}: freq_shift must be a finite number below time_proj_dim/2 = ${c.time_proj_dim / 2}, found ${JSON.stringify(c.freq_shift)}`,
    );
  }
  return c;
}

/** Parameters in creation order (torch's state_dict order for the equivalent nn.Module). */
export function mlpParamSpecs(c: MLPConfig): ParamSpec[] {
  const specs: ParamSpec[] = [];
  const lin = (prefix: string, inF: number, outF: number) => {
    specs.push({ name: `${prefix}.weight`, shape: [outF, inF] }, { name: `${prefix}.bias`, shape: [outF] });
  };
  const H = c.hidden_dim;
  lin('time_embedding.linear_1', c.time_proj_dim, H);
  lin('input_proj', c.data_dim, H);
  for (let b = 0; b < c.num_blocks; b++) {
    lin(`blocks.${b}.linear_1`, H, H);
    lin(`blocks.${b}.time_emb_proj`, H, H);
    lin(`blocks.${b}.linear_2`, H, H);
  }
  lin('output_proj', H, c.data_dim);
  return specs;
}

/** out = a + b for two (N, H) tensors, both receiving the gradient (residual() on 1×1 "images"). */
function sum(ctx: Ctx, a: Tensor, b: Tensor, N: number, H: number, name: string): Tensor {
  return residual(ctx, { t: a, N, C: H, H: 1, W: 1 }, { t: b, N, C: H, H: 1, W: 1 }, 1, name).t;
}

export class MLPDenoiser implements Denoiser {
  readonly config: MLPConfig;
  readonly params: ParamBlock;
  private gradBlock: ParamBlock | null = null;

  constructor(
    readonly engine: Engine,
    config: MLPConfig,
  ) {
    this.config = config;
    // one allocation for the whole block: the arena checks it against the memory limit first
    this.params = new ParamBlock(engine, mlpParamSpecs(config), 'mlp.params');
  }

  /** A freshly initialised model (PyTorch's default nn.Linear initialisation, reproducible from `seed`). */
  static create(engine: Engine, config: unknown = {}, seed = 0): MLPDenoiser {
    const model = new MLPDenoiser(engine, parseMLPConfig(config, 'config'));
    initializeParams(engine, model.params, seed);
    return model;
  }

  /** Builds the model from its config (JSON text or object) and safetensors weights. */
  static fromFiles(
    engine: Engine,
    configJson: unknown,
    weights: Uint8Array | ArrayBuffer,
    names = { config: 'config.json', weights: MLP_WEIGHTS_FILE },
  ): MLPDenoiser {
    let json = configJson;
    if (typeof json === 'string') {
      try {
        json = JSON.parse(json);
      } catch (e) {
        throw new DdpmError('FORMAT', `${names.config}: not valid JSON (${(e as Error).message})`, { cause: e });
      }
    }
    const model = new MLPDenoiser(engine, parseMLPConfig(json, names.config));
    loadBlock(
      engine,
      model.params,
      readSafetensors(weights, names.weights).tensors,
      names.weights,
      'this MLPDenoiser config',
    );
    return model;
  }

  /** Reads a model folder (config.json + model.safetensors) from any source, as UNet2DModel.fromPretrained. */
  static async fromPretrained(engine: Engine, source: ModelSource, o: { variant?: string } = {}): Promise<MLPDenoiser> {
    const { model } = await modelLayout(openSource(source));
    const f = await readModelFiles(model, MLP_WEIGHTS_FILE, o.variant);
    return MLPDenoiser.fromFiles(engine, f.config, f.weights, f.names);
  }

  /** The config as JSON text (what fromFiles reads back). */
  configJson(): string {
    return JSON.stringify(this.config, null, 2);
  }

  /** safetensors bytes of the weights. */
  weightsBytes(): Uint8Array {
    return writeSafetensors(blockTensors(this.engine, this.params), { format: 'pt' });
  }

  /** The model as ONNX bytes (inputs sample (N, D), timestep (N); output out). See src/nn/onnx.ts. */
  toOnnx(): Uint8Array {
    return mlpToOnnx(this.config, (name) => ({
      data: this.engine.read(this.params.get(name)),
      shape: this.params.get(name).shape,
    }));
  }

  get sampleSize(): number {
    return this.config.data_dim;
  }

  grads(): ParamBlock {
    this.gradBlock ??= new ParamBlock(this.engine, this.params.specs, 'mlp.grads');
    return this.gradBlock;
  }

  private checkInputs(length: number, timesteps: number | ArrayLike<number>): { N: number; ts: number[] } {
    const D = this.config.data_dim;
    const N = length / D;
    if (!Number.isInteger(N) || N < 1)
      throw new DdpmError(
        'SHAPE_MISMATCH',
        `MLPDenoiser: sample has ${length} values, expected N × ${D} (data_dim) with N ≥ 1`,
      );
    const ts = typeof timesteps === 'number' ? new Array<number>(N).fill(timesteps) : Array.from(timesteps);
    if (ts.length !== N)
      throw new DdpmError('SHAPE_MISMATCH', `MLPDenoiser: ${ts.length} timesteps for a batch of ${N}`);
    ts.forEach((t, i) => {
      if (!Number.isFinite(t))
        throw new DdpmError('INVALID_TIMESTEP', `MLPDenoiser: timesteps[${i}] = ${t} is not finite`);
    });
    return { N, ts };
  }

  /** Arena bytes of one forward pass on N samples (forwardActs' allocations, each rounded to 64 B). */
  forwardBytes(N: number): number {
    const { data_dim: D, hidden_dim: H, time_proj_dim: F, num_blocks: B } = this.config;
    return 4 * N * (2 * D + F + 4 * H + 6 * B * H) + 64 * (6 + 6 * B);
  }

  /** The model's output for x (N·D values); a new array, activations freed before returning. */
  async forward(x: Float32Array, timesteps: number | ArrayLike<number>): Promise<Float32Array> {
    const { N, ts } = this.checkInputs(x.length, timesteps);
    const i = x.findIndex((v) => !Number.isFinite(v));
    if (i >= 0) throw new DdpmError('NON_FINITE', `MLPDenoiser.forward: sample[${i}] = ${x[i]} is not finite`);
    const e = this.engine;
    // planned from arithmetic before anything runs: the forward's allocations (forwardActs), each rounded to 64 B
    e.arena.plan(this.forwardBytes(N), `MLPDenoiser.forward on a batch of ${N}`);
    const mark = e.arena.mark();
    try {
      const xt = e.upload(x, [N, this.config.data_dim], 'sample');
      return e.read(this.forwardActs(new Ctx(e, this.params), xt, N, ts));
    } finally {
      e.arena.release(mark);
    }
  }

  /**
   * Inference on x (N, D) already in engine memory, for sampling loops: the output goes to `out` (or a new
   * arena tensor); activations are freed before returning.
   */
  forwardTensor(x: Tensor, timesteps: number | ArrayLike<number>, opts: { out?: Tensor } = {}): Tensor {
    const { N, ts } = this.checkInputs(x.size, timesteps);
    const e = this.engine;
    e.check(x, 'MLPDenoiser.forwardTensor: x');
    const D = this.config.data_dim;
    if (opts.out && opts.out.size < N * D)
      throw new DdpmError(
        'SHAPE_MISMATCH',
        `MLPDenoiser.forwardTensor: out (tensor ${opts.out.name}) holds ${opts.out.size} values, the output needs ${N * D}`,
      );
    const out: Tensor = opts.out ? { ...opts.out, size: N * D, shape: [N, D] } : e.alloc([N, D], 'mlp.out');
    const mark = e.arena.mark();
    try {
      const y = this.forwardActs(new Ctx(e, this.params), x, N, ts); // may grow memory: views after it
      e.view(out).set(e.view(y));
    } finally {
      e.arena.release(mark);
    }
    return out;
  }

  trainForward(x: Tensor, timesteps: ArrayLike<number>): TrainForward {
    const { N, ts } = this.checkInputs(x.size, timesteps);
    const ctx = new Ctx(this.engine, this.params, this.grads());
    ctx.noGrad(x);
    const out = this.forwardActs(ctx, x, N, ts);
    return { out, backward: (dOut: Tensor) => ctx.backward(out, dOut) };
  }

  private forwardActs(ctx: Ctx, x: Tensor, N: number, ts: number[]): Tensor {
    const c = this.config;
    const { data_dim: D, hidden_dim: H, time_proj_dim: F } = c;
    // 1. time: sinusoidal projection (no gradient) → linear → SiLU
    const tproj = this.engine.upload(timestepEmbedding(ts, F, c.flip_sin_to_cos, c.freq_shift), [N, F], 'time_proj'); // (N, F)
    ctx.noGrad(tproj);
    const temb = siluT(ctx, linear(ctx, 'time_embedding.linear_1', tproj, N, F, H), 'temb_act'); // (N, H)
    // 2. residual blocks, time added after the first linear as in ResnetBlock2D
    let h = linear(ctx, 'input_proj', x, N, D, H); // (N, H)
    for (let b = 0; b < c.num_blocks; b++) {
      const p = `blocks.${b}`;
      const u = sum(
        ctx,
        linear(ctx, `${p}.linear_1`, h, N, H, H),
        linear(ctx, `${p}.time_emb_proj`, temb, N, H, H),
        N,
        H,
        `${p}.pre_act`,
      ); // (N, H)
      const r = linear(ctx, `${p}.linear_2`, siluT(ctx, u, `${p}.act`), N, H, H); // (N, H)
      h = sum(ctx, h, r, N, H, p);
    }
    // 3. out
    return linear(ctx, 'output_proj', siluT(ctx, h, 'out_act'), N, H, D); // (N, D)
  }
}
