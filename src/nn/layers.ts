// The layers of diffusers' UNet2DModel as forward passes over engine tensors. Activations are allocated
// from the arena (the caller brackets a forward with arena.mark/release), parameters are views into the
// model's flat ParamBlock. Shape letters: N batch, C channels, H×W pixels, P = H·W, E time-embedding width.
import type { Engine } from '../engine/engine.js';
import type { Tensor } from '../engine/memory.js';
import { conv2d } from '../kernels/conv.js';
import { add, addChannelBias, concatChannels, scale, silu, softmax, upsampleNearest2x } from '../kernels/elementwise.js';
import { gemm } from '../kernels/gemm.js';
import { groupNorm } from '../kernels/norm.js';
import type { ParamBlock } from './params.js';

/** A tensor with its NCHW shape. */
export interface Act {
  t: Tensor;
  N: number;
  C: number;
  H: number;
  W: number;
}

/** A view of `size` elements of t starting at element `offset` (for per-image and per-head GEMMs). */
export function sub(t: Tensor, offset: number, size: number, name = t.name): Tensor {
  return { ptr: t.ptr + 4 * offset, size, shape: [size], name };
}

export class Ctx {
  constructor(readonly engine: Engine, readonly params: ParamBlock) {}
  p(name: string): Tensor {
    return this.params.get(name);
  }
  act(N: number, C: number, H: number, W: number, name: string): Act {
    return { t: this.engine.alloc([N, C, H, W], name), N, C, H, W };
  }
}

/** y = x·Wᵀ + b for x (N, in), W (out, in) — torch.nn.Linear. */
export function linear(ctx: Ctx, prefix: string, x: Tensor, N: number, inF: number, outF: number): Tensor {
  const y = ctx.engine.alloc([N, outF], prefix); // (N, out)
  gemm(ctx.engine, { M: N, N: outF, K: inF, A: x, B: ctx.p(`${prefix}.weight`), transB: true, C: y, bias: ctx.p(`${prefix}.bias`), biasOn: 'col' });
  return y;
}

export function conv(ctx: Ctx, prefix: string, x: Act, Cout: number, kernel: 1 | 3, stride: 1 | 2 = 1, pad: number | [number, number, number, number] = kernel === 3 ? 1 : 0): Act {
  const [pt, pl, pb, pr] = typeof pad === 'number' ? [pad, pad, pad, pad] : pad;
  const Ho = Math.floor((x.H + pt + pb - kernel) / stride) + 1;
  const Wo = Math.floor((x.W + pl + pr - kernel) / stride) + 1;
  const y = ctx.act(x.N, Cout, Ho, Wo, prefix);
  conv2d(ctx.engine, {
    x: x.t, weight: ctx.p(`${prefix}.weight`), bias: ctx.p(`${prefix}.bias`), y: y.t,
    N: x.N, Cin: x.C, H: x.H, W: x.W, Cout, kernel, stride, pad,
  });
  return y;
}

export function groupNormAct(ctx: Ctx, prefix: string, x: Act, groups: number, eps: number, withSilu: boolean): Act {
  const y = ctx.act(x.N, x.C, x.H, x.W, prefix);
  const mean = ctx.engine.alloc([x.N, groups], `${prefix}.mean`);
  const rstd = ctx.engine.alloc([x.N, groups], `${prefix}.rstd`);
  groupNorm(ctx.engine, { ...x, x: x.t, groups, eps, gamma: ctx.p(`${prefix}.weight`), beta: ctx.p(`${prefix}.bias`), y: y.t, mean, rstd });
  if (withSilu) silu(ctx.engine, y.t.size, y.t, y.t);
  return y;
}

export interface BlockOpts {
  groups: number;
  eps: number;
  /** (N, E): SiLU of the time embedding, shared by every ResNet block. */
  tembAct: Tensor;
  tembDim: number;
}

/** diffusers ResnetBlock2D ('default' time scale shift): (x + conv2(silu(norm2(conv1(silu(norm1 x)) + proj(temb)))))/s. */
export function resnet(ctx: Ctx, prefix: string, x: Act, Cout: number, o: BlockOpts, outputScale = 1): Act {
  const e = ctx.engine;
  let h = groupNormAct(ctx, `${prefix}.norm1`, x, o.groups, o.eps, true);
  h = conv(ctx, `${prefix}.conv1`, h, Cout, 3);
  const proj = linear(ctx, `${prefix}.time_emb_proj`, o.tembAct, x.N, o.tembDim, Cout); // (N, Cout)
  addChannelBias(e, { N: h.N, C: h.C, H: h.H, W: h.W, bias: proj, x: h.t });
  h = groupNormAct(ctx, `${prefix}.norm2`, h, o.groups, o.eps, true);
  // dropout: identity at inference
  h = conv(ctx, `${prefix}.conv2`, h, Cout, 3);
  const shortcut = x.C !== Cout ? conv(ctx, `${prefix}.conv_shortcut`, x, Cout, 1) : x;
  add(e, h.t.size, shortcut.t, h.t, h.t);
  if (outputScale !== 1) scale(e, h.t.size, 1 / outputScale, h.t, h.t);
  return h;
}

/**
 * diffusers Attention over the H·W positions (AttnProcessor2_0, residual connection). Everything stays
 * channel-major per image — Qᵀ, Kᵀ, Vᵀ are (C, P) — so no transposes are needed:
 *   S_h = Q_hᵀᵀ·K_hᵀ (P, P), softmax over rows with 1/√d, O_hᵀ = V_hᵀ·S_hᵀ (d, P).
 */
export function attention(ctx: Ctx, prefix: string, x: Act, headDim: number, o: BlockOpts, outputScale = 1): Act {
  const e = ctx.engine;
  const { N, C, H, W } = x;
  const P = H * W;
  const heads = C / headDim;
  const h = groupNormAct(ctx, `${prefix}.group_norm`, x, o.groups, o.eps, false);
  const q = ctx.act(N, C, H, W, `${prefix}.q`); // (N, C, P)
  const k = ctx.act(N, C, H, W, `${prefix}.k`);
  const v = ctx.act(N, C, H, W, `${prefix}.v`);
  const ao = ctx.act(N, C, H, W, `${prefix}.heads`); // (N, C, P): heads concatenated, channel-major
  const out = ctx.act(N, C, H, W, prefix);
  const s = e.alloc([P, P], `${prefix}.scores`); // (P, P), reused per image and head
  for (let n = 0; n < N; n++) {
    const img = (t: Tensor) => sub(t, n * C * P, C * P);
    for (const [name, dst] of [['to_q', q], ['to_k', k], ['to_v', v]] as const) {
      // (C, P) = W (C, C) · h (C, P) + b per row
      gemm(e, { M: C, N: P, K: C, A: ctx.p(`${prefix}.${name}.weight`), B: img(h.t), C: img(dst.t), bias: ctx.p(`${prefix}.${name}.bias`), biasOn: 'row' });
    }
    for (let hd = 0; hd < heads; hd++) {
      const rows = (t: Tensor) => sub(t, (n * C + hd * headDim) * P, headDim * P);
      gemm(e, { M: P, N: P, K: headDim, A: rows(q.t), transA: true, B: rows(k.t), C: s });
      softmax(e, { rows: P, cols: P, x: s, y: s, scale: 1 / Math.sqrt(headDim) });
      gemm(e, { M: headDim, N: P, K: P, A: rows(v.t), B: s, transB: true, C: rows(ao.t) });
    }
    gemm(e, { M: C, N: P, K: C, A: ctx.p(`${prefix}.to_out.0.weight`), B: img(ao.t), C: img(out.t), bias: ctx.p(`${prefix}.to_out.0.bias`), biasOn: 'row' });
  }
  add(e, out.t.size, out.t, x.t, out.t);
  if (outputScale !== 1) scale(e, out.t.size, 1 / outputScale, out.t, out.t);
  return out;
}

/** Downsample2D with a conv: padding 0 means diffusers' (0, 1, 0, 1) pad (right and bottom) then stride 2. */
export function downsample(ctx: Ctx, prefix: string, x: Act, padding: number): Act {
  return conv(ctx, `${prefix}.conv`, x, x.C, 3, 2, padding === 0 ? [0, 0, 1, 1] : 1);
}

/** Upsample2D with a conv: nearest 2× then 3×3 conv. */
export function upsample(ctx: Ctx, prefix: string, x: Act): Act {
  const up = ctx.act(x.N, x.C, 2 * x.H, 2 * x.W, `${prefix}.nearest`);
  upsampleNearest2x(ctx.engine, { N: x.N, C: x.C, H: x.H, W: x.W, x: x.t, y: up.t });
  return conv(ctx, `${prefix}.conv`, up, x.C, 3);
}

export function concat(ctx: Ctx, a: Act, b: Act, name: string): Act {
  const y = ctx.act(a.N, a.C + b.C, a.H, a.W, name);
  concatChannels(ctx.engine, { N: a.N, C1: a.C, C2: b.C, H: a.H, W: a.W, a: a.t, b: b.t, y: y.t });
  return y;
}
