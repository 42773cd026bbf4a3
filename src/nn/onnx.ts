// ONNX export of the networks (opset 17, standard ops only) so a model runs in onnxruntime, WebGPU and
// WebNN engines. The graph mirrors forwardActs in unet.ts / mlp.ts layer for layer:
//   inputs  sample (N, C, H, W) float32, timestep (N) float32, class_labels (N) int64 (class-conditional only)
//   output  out (N, out_channels, H, W)        N is dynamic ('N')
// The sinusoidal time embedding is computed in the graph (Mul, Sin, Cos, Concat), GroupNorm is the
// Reshape → InstanceNormalization → Reshape → Mul/Add form (GroupNormalization's per-channel scale only
// arrives in opset 21), SiLU is Sigmoid·Mul, upsampling Resize (nearest, asymmetric, floor), attention
// MatMul → Softmax → MatMul over the H·W positions. Parameters keep diffusers' names; the norm scales
// and biases are stored (C, 1, 1) and attention biases (C, 1) so they broadcast.
import { OnnxGraphBuilder, ONNX_INT64 } from '../io/onnx-proto.js';
import type { MLPConfig } from './mlp.js';
import type { UNet2DConfig } from './unet-config.js';

/** A parameter's values and shape by name (diffusers' names). */
export type WeightSource = (name: string) => { data: Float32Array; shape: readonly number[] };

/** freq_i as timestepEmbedding computes them in float32: exp(−ln(10000)·i/(half − shift)). */
function timestepFrequencies(dim: number, freqShift: number): Float32Array {
  const f = Math.fround;
  const half = Math.floor(dim / 2);
  const out = new Float32Array(half);
  for (let i = 0; i < half; i++) out[i] = f(Math.exp(f(f(-Math.log(10000) * i) / (half - freqShift))));
  return out;
}

/** Writes one network: the layer helpers over an OnnxGraphBuilder. */
class Writer {
  readonly g = new OnnxGraphBuilder();
  constructor(private readonly weight: WeightSource) {}

  param(name: string, shape?: number[]): string {
    const p = this.weight(name);
    return this.g.constant(name, shape ?? p.shape, p.data);
  }

  /** emb (N, dim) from t (N): [sin(t·freq), cos(t·freq)], or [cos, sin] when flipped. */
  timeProj(t: string, dim: number, flip: boolean, shift: number): string {
    const g = this.g;
    const half = Math.floor(dim / 2);
    const freqs = g.constant('time_proj.freqs', [1, half], timestepFrequencies(dim, shift));
    const arg = g.op('Mul', [g.op('Unsqueeze', [t, g.ints([1])]), freqs]); // (N, half)
    const sin = g.op('Sin', [arg]);
    const cos = g.op('Cos', [arg]);
    return g.op('Concat', flip ? [cos, sin] : [sin, cos], { axis: 1 }, 'time_proj');
  }

  /** torch.nn.Linear on (N, in): Gemm with W (out, in) transposed. */
  linear(prefix: string, x: string): string {
    return this.g.op('Gemm', [x, this.param(`${prefix}.weight`), this.param(`${prefix}.bias`)], { transB: 1 });
  }

  silu(x: string): string {
    return this.g.op('Mul', [x, this.g.op('Sigmoid', [x])]);
  }

  conv(
    prefix: string,
    x: string,
    kernel: number,
    stride = 1,
    pads: number[] = kernel === 3 ? [1, 1, 1, 1] : [0, 0, 0, 0],
  ): string {
    return this.g.op('Conv', [x, this.param(`${prefix}.weight`), this.param(`${prefix}.bias`)], {
      kernel_shape: [kernel, kernel],
      strides: [stride, stride],
      pads,
      dilations: [1, 1],
    });
  }

  /** GroupNorm over (N, C, H, W) with C channels in `groups` groups. */
  groupNorm(prefix: string, x: string, C: number, groups: number, eps: number): string {
    const g = this.g;
    const grouped = g.op('Reshape', [x, g.ints([0, groups, -1])]); // (N, G, C/G·H·W)
    const ones = g.constant(`groupnorm.ones.${groups}`, [groups], new Float32Array(groups).fill(1));
    const zeros = g.constant(`groupnorm.zeros.${groups}`, [groups], new Float32Array(groups));
    const normed = g.op('InstanceNormalization', [grouped, ones, zeros], { epsilon: { float: eps } });
    const back = g.op('Reshape', [normed, g.op('Shape', [x])]);
    const scaled = g.op('Mul', [back, this.param(`${prefix}.weight`, [C, 1, 1])]);
    return g.op('Add', [scaled, this.param(`${prefix}.bias`, [C, 1, 1])]);
  }

  /** out = (a + b)·(1/s): the residual connections of ResnetBlock2D and Attention. */
  residual(a: string, b: string, s: number): string {
    const sum = this.g.op('Add', [a, b]);
    return s === 1 ? sum : this.g.op('Mul', [sum, this.g.scalar(1 / s)]);
  }
}

interface Shape {
  C: number;
  H: number;
}

/** The ONNX bytes of a UNet2DModel with this config and these weights. */
export function unetToOnnx(c: UNet2DConfig, weight: WeightSource): Uint8Array {
  const w = new Writer(weight);
  const g = w.g;
  const boc = c.block_out_channels;
  const C0 = boc[0];
  const E = 4 * C0;
  const side = c.sample_size;
  const groups = c.norm_num_groups;
  const eps = c.norm_eps;

  let x = g.input('sample', ['N', c.in_channels, side, side]);
  const t = g.input('timestep', ['N']);
  if (c.center_input_sample) x = g.op('Sub', [g.op('Mul', [x, g.scalar(2)]), g.scalar(1)]);

  // time embedding [+ class embedding], then SiLU shared by every ResNet block
  let emb = w.linear(
    'time_embedding.linear_2',
    w.silu(w.linear('time_embedding.linear_1', w.timeProj(t, C0, c.flip_sin_to_cos, c.freq_shift))),
  );
  if (c.num_class_embeds !== null) {
    const labels = g.input('class_labels', ['N'], ONNX_INT64);
    emb = g.op('Add', [
      emb,
      g.op('Gather', [w.param('class_embedding.weight', [c.num_class_embeds, E]), labels], { axis: 0 }),
    ]);
  }
  const tembAct = w.silu(emb); // (N, E)

  const resnet = (p: string, h: string, cin: number, cout: number, s = 1): string => {
    let y = w.conv(`${p}.conv1`, w.silu(w.groupNorm(`${p}.norm1`, h, cin, groups, eps)), 3);
    const proj = w.linear(`${p}.time_emb_proj`, tembAct); // (N, Cout)
    y = g.op('Add', [y, g.op('Unsqueeze', [proj, g.ints([2, 3])])]);
    y = w.conv(`${p}.conv2`, w.silu(w.groupNorm(`${p}.norm2`, y, cout, groups, eps)), 3);
    const shortcut = cin !== cout ? w.conv(`${p}.conv_shortcut`, h, 1) : h;
    return w.residual(shortcut, y, s);
  };

  // channel-major per image, as layers.ts: Qᵀ = Wq·h (C, P); S = softmax(Q·Kᵀ/√d); Oᵀ = Vᵀ·Sᵀ
  const attention = (p: string, h: string, { C }: Shape, s = 1): string => {
    const d = c.attention_head_dim ?? C;
    const heads = C / d;
    const normed = w.groupNorm(`${p}.group_norm`, h, C, groups, eps);
    const flat = g.op('Reshape', [normed, g.ints([0, C, -1])]); // (N, C, P)
    const project = (name: string, v: string) =>
      g.op('Add', [g.op('MatMul', [w.param(`${p}.${name}.weight`, [C, C]), v]), w.param(`${p}.${name}.bias`, [C, 1])]);
    const split = (v: string) => g.op('Reshape', [v, g.ints([0, heads, d, -1])]); // (N, heads, d, P)
    const q = split(project('to_q', flat));
    const k = split(project('to_k', flat));
    const v = split(project('to_v', flat));
    const scores = g.op('MatMul', [g.op('Transpose', [q], { perm: [0, 1, 3, 2] }), k]); // (N, heads, P, P)
    const probs = g.op('Softmax', [g.op('Mul', [scores, g.scalar(1 / Math.sqrt(d))])], { axis: -1 });
    const o = g.op('MatMul', [v, g.op('Transpose', [probs], { perm: [0, 1, 3, 2] })]); // (N, heads, d, P)
    const merged = g.op('Reshape', [o, g.ints([0, C, -1])]); // (N, C, P)
    const out = g.op('Reshape', [project('to_out.0', merged), g.op('Shape', [h])]);
    return w.residual(out, h, s);
  };

  // down
  let h = w.conv('conv_in', x, 3);
  let shape: Shape = { C: C0, H: side };
  const skips: [string, Shape][] = [[h, shape]];
  c.down_block_types.forEach((type, i) => {
    const p = `down_blocks.${i}`;
    for (let l = 0; l < c.layers_per_block; l++) {
      h = resnet(`${p}.resnets.${l}`, h, shape.C, boc[i]);
      shape = { C: boc[i], H: shape.H };
      if (type === 'AttnDownBlock2D') h = attention(`${p}.attentions.${l}`, h, shape);
      skips.push([h, shape]);
    }
    if (i !== boc.length - 1) {
      h = w.conv(`${p}.downsamplers.0.conv`, h, 3, 2, c.downsample_padding === 0 ? [0, 0, 1, 1] : [1, 1, 1, 1]);
      shape = { C: shape.C, H: shape.H / 2 };
      skips.push([h, shape]);
    }
  });

  // mid
  const last = boc[boc.length - 1];
  const sMid = c.mid_block_scale_factor;
  h = resnet('mid_block.resnets.0', h, shape.C, last, sMid);
  h = attention('mid_block.attentions.0', h, shape, sMid);
  h = resnet('mid_block.resnets.1', h, last, last, sMid);

  // up
  const rev = [...boc].reverse();
  c.up_block_types.forEach((type, i) => {
    const p = `up_blocks.${i}`;
    for (let l = 0; l < c.layers_per_block + 1; l++) {
      const [skip, skipShape] = skips.pop()!;
      const cat = g.op('Concat', [h, skip], { axis: 1 });
      h = resnet(`${p}.resnets.${l}`, cat, shape.C + skipShape.C, rev[i]);
      shape = { C: rev[i], H: shape.H };
      if (type === 'AttnUpBlock2D') h = attention(`${p}.attentions.${l}`, h, shape);
    }
    if (i !== boc.length - 1) {
      const up = g.op('Resize', [h, '', g.constant('resize.scales', [4], Float32Array.of(1, 1, 2, 2))], {
        mode: 'nearest',
        coordinate_transformation_mode: 'asymmetric',
        nearest_mode: 'floor',
      });
      h = w.conv(`${p}.upsamplers.0.conv`, up, 3);
      shape = { C: shape.C, H: shape.H * 2 };
    }
  });

  // out
  h = w.silu(w.groupNorm('conv_norm_out', h, shape.C, groups, eps));
  g.op(
    'Conv',
    [h, w.param('conv_out.weight'), w.param('conv_out.bias')],
    { kernel_shape: [3, 3], strides: [1, 1], pads: [1, 1, 1, 1], dilations: [1, 1] },
    'out',
  );
  g.output('out', ['N', c.out_channels, side, side]);
  return g.finish('UNet2DModel');
}

/** The ONNX bytes of an MLPDenoiser: inputs sample (N, D), timestep (N); output out (N, D). */
export function mlpToOnnx(c: MLPConfig, weight: WeightSource): Uint8Array {
  const w = new Writer(weight);
  const g = w.g;
  const x = g.input('sample', ['N', c.data_dim]);
  const t = g.input('timestep', ['N']);
  const temb = w.silu(
    w.linear('time_embedding.linear_1', w.timeProj(t, c.time_proj_dim, c.flip_sin_to_cos, c.freq_shift)),
  );
  let h = w.linear('input_proj', x);
  for (let b = 0; b < c.num_blocks; b++) {
    const p = `blocks.${b}`;
    const u = g.op('Add', [w.linear(`${p}.linear_1`, h), w.linear(`${p}.time_emb_proj`, temb)]);
    h = g.op('Add', [h, w.linear(`${p}.linear_2`, w.silu(u))]);
  }
  g.op('Gemm', [w.silu(h), w.param('output_proj.weight'), w.param('output_proj.bias')], { transB: 1 }, 'out');
  g.output('out', ['N', c.data_dim]);
  return g.finish('MLPDenoiser');
}
