// The layers of diffusers' UNet2DModel (and the MLP denoiser), each a forward pass over engine tensors
// followed by its backward pass. When the context is training, a forward records its backward as a
// closure on the context's tape; `Ctx.backward` replays the tape in reverse. Gradients of activations
// live in buffers keyed by the activation (accumulated: a tensor used twice, such as a skip source, sums
// both paths); parameter gradients go to the model's gradient block, which has the parameters' layout.
// Activations are allocated from the arena: the caller brackets a step with arena.mark/release. During
// backward, buffers are recycled (best fit, zero-filled when they hold a gradient): the gradient of an
// activation is dead once the entry that produced it has run, and a temporary once its entry returns —
// so a step's memory is the forward activations plus the gradients alive at once, not every gradient.
// Shape letters: N batch, C channels, H×W pixels, P = H·W, E time-embedding width.
import { DdpmError } from '../errors.js';
import type { Engine } from '../engine/engine.js';
import type { Tensor } from '../engine/memory.js';
import { conv2d, conv2dBackward, convOutSize } from '../kernels/conv.js';
import { conv2dWinograd, winogradTileFor } from '../kernels/winograd.js';
import {
  add,
  addChannelBias,
  addChannelBiasBackward,
  axpy,
  concatChannels,
  concatChannelsBackward,
  mul,
  mulAccumulate,
  scale,
  silu,
  siluBackward,
  softmax,
  softmaxBackward,
  upsampleNearest2x,
  upsampleNearest2xBackward,
} from '../kernels/elementwise.js';
import { gemm, gemmBatched } from '../kernels/gemm.js';
import { groupNorm, groupNormBackward } from '../kernels/norm.js';
import { groupNormSiluBackward, groupNormSiluFits } from '../kernels/norm-silu.js';
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
  return { ptr: t.ptr + 4 * offset, size, shape: [size], name, owner: t.owner };
}

/**
 * Profiling (src/nn/profile.ts): when a hook is set, every layer call and every backward step runs through
 * it with the layer's kind, so time and kernel dispatches can be charged per kind. null (the default): off.
 */
export type LayerHook = (kind: string, run: () => unknown) => unknown;
let layerHook: LayerHook | null = null;
let currentKind = '';

/** Installs (or with null removes) the profiling hook. @internal */
export function setLayerHook(hook: LayerHook | null): void {
  layerHook = hook;
}

/** Whether a profiling hook is set (UNet2DModel then runs every layer instead of replaying its kernels). @internal */
export function layerHookActive(): boolean {
  return layerHook !== null;
}

/** Runs f as a layer of the given kind (a plain call unless profiling). */
function span<T>(kind: string, f: () => T): T {
  if (!layerHook) return f();
  const prev = currentKind;
  currentKind = kind;
  try {
    return layerHook(kind, f) as T;
  } finally {
    currentKind = prev;
  }
}

export class Ctx {
  /** Backward closures in forward order, or null at inference. */
  private readonly tape: (() => void)[] | null;
  /** Per tape entry, the arena range [from, to) allocated in forward since the previous entry: its outputs. */
  private readonly ranges: [number, number][] = [];
  private lastTop: number;
  /** d(activation), keyed by the activation's tensor object (not its address: the arena reuses addresses). */
  private readonly grads = new WeakMap<Tensor, Tensor>();
  /** The same pairs in creation order, to recycle the gradients of an entry's outputs once it has run. */
  private gradList: [Tensor, Tensor][] = [];
  private readonly frozen = new WeakSet<Tensor>();
  private onesT: Tensor | null = null;
  /** Recycled backward buffers, the buffer behind each view handed out, and the current entry's temporaries. */
  private readonly free: Tensor[] = [];
  private readonly backing = new WeakMap<Tensor, Tensor>();
  private entryTmps: Tensor[] = [];

  constructor(
    readonly engine: Engine,
    readonly params: ParamBlock,
    readonly paramGrads: ParamBlock | null = null,
  ) {
    this.tape = paramGrads ? [] : null;
    this.lastTop = engine.arena.mark();
  }

  /** n elements: the front of the smallest recycled buffer that holds them (best fit), else a new arena tensor. */
  private take(n: number, name: string): Tensor {
    let best = -1;
    for (let i = 0; i < this.free.length; i++)
      if (this.free[i].size >= n && (best < 0 || this.free[i].size < this.free[best].size)) best = i;
    const buf = best >= 0 ? this.free.splice(best, 1)[0] : this.engine.alloc(n, name);
    const t: Tensor = { ptr: buf.ptr, size: n, shape: [n], name };
    this.backing.set(t, buf);
    return t;
  }

  private recycle(t: Tensor): void {
    this.free.push(this.backing.get(t) ?? t);
  }

  get training(): boolean {
    return this.tape !== null;
  }

  p(name: string): Tensor {
    return this.params.get(name);
  }

  /** The gradient of parameter `name`. */
  g(name: string): Tensor {
    return this.paramGrads!.get(name);
  }

  act(N: number, C: number, H: number, W: number, name: string): Act {
    return { t: this.engine.alloc([N, C, H, W], name), N, C, H, W };
  }

  /** Records a backward step (training only). */
  record(backward: () => void): void {
    if (!this.tape) return;
    if (layerHook && currentKind) {
      const kind = `${currentKind} backward`;
      this.tape.push(() => span(kind, backward));
    } else this.tape.push(backward);
    const top = this.engine.arena.mark();
    this.ranges.push([this.lastTop, top]);
    this.lastTop = top;
  }

  /** Marks t as not needing a gradient (the input sample, the sinusoidal projection). */
  noGrad(t: Tensor): void {
    this.frozen.add(t);
  }

  needsGrad(t: Tensor): boolean {
    return !this.frozen.has(t);
  }

  /**
   * The gradient buffer of activation t, zero-filled on first use. Every backward step adds into it (the
   * one convention of the *_backward kernels), so an activation read by several layers sums their parts.
   */
  grad(t: Tensor): Tensor {
    let g = this.grads.get(t);
    if (!g) {
      g = this.take(t.size, `d(${t.name})`);
      this.gradList.push([t, g]);
      this.engine.view(g).fill(0);
      this.grads.set(t, g);
    } else if (g.size !== t.size) {
      throw new DdpmError(
        'SHAPE_MISMATCH',
        `Ctx.grad: the gradient of ${t.name} holds ${g.size} values, the tensor ${t.size}`,
      );
    }
    return g;
  }

  /** A temporary of n elements (contents undefined), valid until the current backward entry returns. */
  tmp(n: number, name: string): Tensor {
    const t = this.take(n, name);
    this.entryTmps.push(t);
    return t;
  }

  /** A vector of n ones (for bias gradients as GEMMs with a ones vector). */
  ones(n: number): Tensor {
    if (!this.onesT || this.onesT.size < n) {
      this.onesT = this.engine.alloc(n, 'ones');
      this.engine.view(this.onesT).fill(1);
    }
    return this.onesT;
  }

  /** Seeds d(out) with `dOut` and runs the tape backwards, accumulating parameter gradients. */
  backward(out: Tensor, dOut: Tensor): void {
    if (!this.tape) throw new DdpmError('INVALID_ARGUMENT', 'backward: this forward pass was not run in training mode');
    add(this.engine, out.size, this.grad(out), dOut, this.grad(out));
    for (let i = this.tape.length - 1; i >= 0; i--) {
      this.tape[i]();
      // entry i's temporaries, and the gradients of what it produced (every consumer ran before it), are free
      for (const t of this.entryTmps) this.recycle(t);
      this.entryTmps = [];
      const [from, to] = this.ranges[i];
      this.gradList = this.gradList.filter(([t, g]) => {
        if (t.ptr < from || t.ptr >= to) return true;
        this.grads.delete(t);
        this.recycle(g);
        return false;
      });
    }
    this.tape.length = 0;
    this.ranges.length = 0;
  }
}

/** y = x·Wᵀ + b for x (N, in), W (out, in) — torch.nn.Linear. */
export function linear(ctx: Ctx, prefix: string, x: Tensor, N: number, inF: number, outF: number): Tensor {
  return span('linear', () => {
    const e = ctx.engine;
    const y = e.alloc([N, outF], prefix); // (N, out)
    const W = ctx.p(`${prefix}.weight`);
    gemm(e, { M: N, N: outF, K: inF, A: x, B: W, transB: true, C: y, bias: ctx.p(`${prefix}.bias`), biasOn: 'col' });
    ctx.record(() => {
      const dy = ctx.grad(y); // (N, out)
      gemm(e, { M: outF, N: inF, K: N, A: dy, transA: true, B: x, C: ctx.g(`${prefix}.weight`), beta: 1 }); // dW += dyᵀ·x
      gemm(e, { M: 1, N: outF, K: N, A: ctx.ones(N), B: dy, C: ctx.g(`${prefix}.bias`), beta: 1 }); // db += 1ᵀ·dy
      if (ctx.needsGrad(x)) gemm(e, { M: N, N: inF, K: outF, A: dy, B: W, C: ctx.grad(x), beta: 1 }); // dx += dy·W
    });
    return y;
  });
}

/** y = x·σ(x), a new tensor. */
export function siluT(ctx: Ctx, x: Tensor, name: string): Tensor {
  return span('silu', () => {
    const y = ctx.engine.alloc(x.size, name);
    silu(ctx.engine, x.size, x, y);
    ctx.record(() => siluBackward(ctx.engine, x.size, x, ctx.grad(y), ctx.grad(x), true));
    return y;
  });
}

export function siluAct(ctx: Ctx, x: Act, name: string): Act {
  return { ...x, t: siluT(ctx, x.t, name) };
}

/** Profile kinds by [kernel 1 | 3][stride 1 | 2]. */
const CONV_KIND = [
  ['conv 1x1', 'conv 1x1 stride 2'],
  ['conv 3x3', 'conv 3x3 stride 2'],
];

export function conv(
  ctx: Ctx,
  prefix: string,
  x: Act,
  Cout: number,
  kernel: 1 | 3,
  stride: 1 | 2 = 1,
  pad: number | [number, number, number, number] = kernel === 3 ? 1 : 0,
): Act {
  return span(CONV_KIND[kernel === 3 ? 1 : 0][stride === 2 ? 1 : 0], () => {
    // pad [top, left, bottom, right] read into numbers (no arrays per call: this runs ~50 times a forward)
    const uniform = typeof pad === 'number';
    const Ho = convOutSize(x.H, uniform ? pad : pad[0], uniform ? pad : pad[2], kernel, stride);
    const Wo = convOutSize(x.W, uniform ? pad : pad[1], uniform ? pad : pad[3], kernel, stride);
    const y = ctx.act(x.N, Cout, Ho, Wo, prefix);
    const weight = ctx.p(`${prefix}.weight`);
    const bias = ctx.p(`${prefix}.bias`);
    const geometry = { N: x.N, Cin: x.C, H: x.H, W: x.W, Cout, kernel, stride, pad };
    // Winograd where it measured faster (inference only: training keeps the direct forward its backward mirrors)
    const tile = ctx.training ? 0 : winogradTileFor(geometry);
    if (tile) conv2dWinograd(ctx.engine, { ...geometry, tile, x: x.t, weight, bias, y: y.t });
    else conv2d(ctx.engine, { ...geometry, x: x.t, weight, bias, y: y.t });
    ctx.record(() => {
      conv2dBackward(ctx.engine, {
        ...geometry,
        x: x.t,
        weight,
        dy: ctx.grad(y.t),
        accumulate: true,
        dx: ctx.needsGrad(x.t) ? ctx.grad(x.t) : undefined,
        dweight: ctx.g(`${prefix}.weight`),
        dbias: ctx.g(`${prefix}.bias`),
      });
    });
    return y;
  });
}

export function groupNormLayer(ctx: Ctx, prefix: string, x: Act, groups: number, eps: number): Act {
  return span('group norm', () => {
    const e = ctx.engine;
    const y = ctx.act(x.N, x.C, x.H, x.W, prefix);
    const mean = e.alloc([x.N, groups], `${prefix}.mean`); // (N, G)
    const rstd = e.alloc([x.N, groups], `${prefix}.rstd`); // (N, G)
    const gamma = ctx.p(`${prefix}.weight`);
    const shape = { N: x.N, C: x.C, H: x.H, W: x.W, groups };
    groupNorm(e, { ...shape, x: x.t, eps, gamma, beta: ctx.p(`${prefix}.bias`), y: y.t, mean, rstd });
    ctx.record(() => {
      groupNormBackward(e, {
        ...shape,
        dy: ctx.grad(y.t),
        x: x.t,
        mean,
        rstd,
        gamma,
        dx: ctx.grad(x.t),
        accumulate: true,
        dgamma: ctx.g(`${prefix}.weight`),
        dbeta: ctx.g(`${prefix}.bias`),
      });
    });
    return y;
  });
}

/**
 * SiLU(GroupNorm(x)): one fused pass (the same bits as the two layers). When training, its backward
 * (groupNormSiluBackward) recomputes the normalized values instead of keeping them: the same bits as the
 * two layers' backward passes. (The two layers where a group does not fit the per-thread workspace.)
 */
export function groupNormSilu(ctx: Ctx, prefix: string, x: Act, groups: number, eps: number, name: string): Act {
  if (ctx.training && !groupNormSiluFits(ctx.engine, { ...x, groups }))
    return siluAct(ctx, groupNormLayer(ctx, prefix, x, groups, eps), name);
  return span('group norm + silu', () => {
    const e = ctx.engine;
    const y = ctx.act(x.N, x.C, x.H, x.W, name);
    const mean = e.alloc([x.N, groups], `${prefix}.mean`);
    const rstd = e.alloc([x.N, groups], `${prefix}.rstd`);
    groupNorm(e, {
      N: x.N,
      C: x.C,
      H: x.H,
      W: x.W,
      groups,
      x: x.t,
      eps,
      gamma: ctx.p(`${prefix}.weight`),
      beta: ctx.p(`${prefix}.bias`),
      y: y.t,
      mean,
      rstd,
      silu: true,
    });
    ctx.record(() => {
      groupNormSiluBackward(e, {
        N: x.N,
        C: x.C,
        H: x.H,
        W: x.W,
        groups,
        dy: ctx.grad(y.t),
        x: x.t,
        mean,
        rstd,
        gamma: ctx.p(`${prefix}.weight`),
        beta: ctx.p(`${prefix}.bias`),
        dx: ctx.grad(x.t),
        accumulate: true,
        dgamma: ctx.g(`${prefix}.weight`),
        dbeta: ctx.g(`${prefix}.bias`),
      });
    });
    return y;
  });
}

/** out = (a + b)·(1/s), a new tensor; both inputs receive the gradient. */
export function residual(ctx: Ctx, a: Act, b: Act, s: number, name: string): Act {
  return span('residual add', () => {
    const e = ctx.engine;
    const out = ctx.act(a.N, a.C, a.H, a.W, name);
    add(e, out.t.size, a.t, b.t, out.t);
    if (s !== 1) scale(e, out.t.size, 1 / s, out.t, out.t);
    ctx.record(() => {
      const g = ctx.grad(out.t);
      for (const x of [a.t, b.t]) {
        const gx = ctx.grad(x);
        if (s === 1) add(e, x.size, gx, g, gx);
        else axpy(e, x.size, 1 / s, g, gx); // gx += g·(1/s)
      }
    });
    return out;
  });
}

export interface BlockOpts {
  groups: number;
  eps: number;
  /** (N, E): SiLU of the time embedding, shared by every ResNet block. */
  tembAct: Tensor;
  tembDim: number;
  /** Training-time dropout in ResNet blocks (diffusers' `dropout`); applied only when > 0 and training. */
  dropout?: { p: number; mask: (n: number, name: string) => Tensor };
}

/** diffusers ResnetBlock2D ('default' time scale shift): (x + conv2(silu(norm2(conv1(silu(norm1 x)) + proj(temb)))))/s. */
export function resnet(ctx: Ctx, prefix: string, x: Act, Cout: number, o: BlockOpts, outputScale = 1): Act {
  const e = ctx.engine;
  let h = groupNormSilu(ctx, `${prefix}.norm1`, x, o.groups, o.eps, `${prefix}.act1`);
  h = conv(ctx, `${prefix}.conv1`, h, Cout, 3);
  // + time_emb_proj(silu(temb))[:, :, None, None], in place: the gradient passes through unchanged
  const proj = linear(ctx, `${prefix}.time_emb_proj`, o.tembAct, x.N, o.tembDim, Cout); // (N, Cout)
  const hb = h;
  span('time-embedding add', () => {
    addChannelBias(e, { N: hb.N, C: hb.C, H: hb.H, W: hb.W, bias: proj, x: hb.t });
    ctx.record(() =>
      addChannelBiasBackward(e, {
        N: hb.N,
        C: hb.C,
        H: hb.H,
        W: hb.W,
        dy: ctx.grad(hb.t),
        dbias: ctx.grad(proj),
        accumulate: true,
      }),
    );
  });
  h = groupNormSilu(ctx, `${prefix}.norm2`, h, o.groups, o.eps, `${prefix}.act2`);
  if (ctx.training && o.dropout && o.dropout.p > 0)
    h = dropout(ctx, h, o.dropout.mask(h.t.size, `${prefix}.dropout`), `${prefix}.dropout`);
  h = conv(ctx, `${prefix}.conv2`, h, Cout, 3);
  const shortcut = x.C !== Cout ? conv(ctx, `${prefix}.conv_shortcut`, x, Cout, 1) : x;
  return residual(ctx, shortcut, h, outputScale, prefix);
}

/** Inverted dropout with a given mask of 0 and 1/(1−p): y = x ⊙ mask. */
function dropout(ctx: Ctx, x: Act, mask: Tensor, name: string): Act {
  return span('dropout', () => {
    const e = ctx.engine;
    const y = ctx.act(x.N, x.C, x.H, x.W, name);
    mul(e, x.t.size, x.t, mask, y.t);
    ctx.record(() => mulAccumulate(e, x.t.size, ctx.grad(y.t), mask, ctx.grad(x.t)));
    return y;
  });
}

/**
 * diffusers Attention over the H·W positions (AttnProcessor2_0, residual connection). Everything stays
 * channel-major per image — Qᵀ, Kᵀ, Vᵀ are (C, P) — so no transposes are needed:
 *   S_h = softmax(Q_h·K_hᵀ/√d) (P, P) with Q_h = (Q_hᵀ)ᵀ, and O_hᵀ = V_hᵀ·S_hᵀ (d, P).
 */
export function attention(ctx: Ctx, prefix: string, x: Act, headDim: number, o: BlockOpts, outputScale = 1): Act {
  const h = groupNormLayer(ctx, `${prefix}.group_norm`, x, o.groups, o.eps);
  const out = span('attention', () => attentionCore(ctx, prefix, h, headDim));
  return residual(ctx, out, x, outputScale, prefix);
}

/**
 * Q, K, V projections, softmax(Q·Kᵀ/√d)·V per head, the output projection: attention without its norm and
 * residual. The projections are 1×1 convs over the whole batch; the per-(image, head) products are one
 * batched GEMM each — Q_h, K_h, V_h of image n are rows (n·heads + h)·d … of the (N, C, P) tensors, so the
 * N·heads items sit at a uniform stride d·P — and the softmax runs over all N·heads·P rows at once.
 */
function attentionCore(ctx: Ctx, prefix: string, h: Act, headDim: number): Act {
  const e = ctx.engine;
  const { N, C, P } = { ...h, P: h.H * h.W };
  const heads = C / headDim;
  const items = N * heads;
  const dP = headDim * P; // stride between consecutive (image, head) blocks of q, k, v, ao
  const sc = 1 / Math.sqrt(headDim);
  const project = (name: string, src: Act) => conv(ctx, `${prefix}.${name}`, src, C, 1); // (N, C, P) = W·src + b
  const q = project('to_q', h);
  const k = project('to_k', h);
  const v = project('to_v', h);
  const ao = ctx.act(N, C, h.H, h.W, `${prefix}.heads`); // (N, C, P): heads stacked, channel-major
  // attention weights: one (P, P) matrix per image and head (kept for the backward pass)
  const probs = e.alloc([items, P, P], `${prefix}.probs`);
  const batched = { count: items, strideA: dP, strideB: dP };
  gemmBatched(e, { ...batched, strideC: P * P, M: P, N: P, K: headDim, A: q.t, transA: true, B: k.t, C: probs }); // S = Q_h·K_hᵀ
  softmax(e, { rows: items * P, cols: P, x: probs, y: probs, scale: sc });
  gemmBatched(e, {
    ...batched,
    strideB: P * P,
    strideC: dP,
    M: headDim,
    N: P,
    K: P,
    A: v.t,
    B: probs,
    transB: true,
    C: ao.t,
  }); // O_hᵀ = V_hᵀ·Sᵀ
  ctx.record(() => {
    const dAo = ctx.grad(ao.t);
    const [dq, dk, dv] = [ctx.grad(q.t), ctx.grad(k.t), ctx.grad(v.t)];
    const dS = ctx.tmp(items * P * P, `${prefix}.dscores`); // (N·heads, P, P)
    const sS = { count: items, strideA: dP, strideB: P * P, strideC: dP };
    gemmBatched(e, { ...sS, M: headDim, N: P, K: P, A: dAo, B: probs, C: dv, beta: 1 }); // dVᵀ += dOᵀ·S
    gemmBatched(e, {
      count: items,
      strideA: dP,
      strideB: dP,
      strideC: P * P,
      M: P,
      N: P,
      K: headDim,
      A: dAo,
      transA: true,
      B: v.t,
      C: dS,
    }); // dS = dO·Vᵀ
    softmaxBackward(e, { rows: items * P, cols: P, y: probs, dy: dS, dx: dS, scale: sc }); // dZ (scale included)
    gemmBatched(e, { ...sS, M: headDim, N: P, K: P, A: k.t, B: dS, transB: true, C: dq, beta: 1 }); // dQᵀ += Kᵀ·dZᵀ
    gemmBatched(e, { ...sS, M: headDim, N: P, K: P, A: q.t, B: dS, C: dk, beta: 1 }); // dKᵀ += Qᵀ·dZ
  });
  return conv(ctx, `${prefix}.to_out.0`, ao, C, 1);
}

/** Downsample2D with a conv: padding 0 means diffusers' (0, 1, 0, 1) pad (right and bottom) then stride 2. */
export function downsample(ctx: Ctx, prefix: string, x: Act, padding: number): Act {
  return conv(ctx, `${prefix}.conv`, x, x.C, 3, 2, padding === 0 ? [0, 0, 1, 1] : 1);
}

/** Upsample2D with a conv: nearest 2× then 3×3 conv. */
export function upsample(ctx: Ctx, prefix: string, x: Act): Act {
  const up = span('upsample', () => {
    const e = ctx.engine;
    const y = ctx.act(x.N, x.C, 2 * x.H, 2 * x.W, `${prefix}.nearest`);
    const shape = { N: x.N, C: x.C, H: x.H, W: x.W };
    upsampleNearest2x(e, { ...shape, x: x.t, y: y.t });
    ctx.record(() =>
      upsampleNearest2xBackward(e, { ...shape, dy: ctx.grad(y.t), dx: ctx.grad(x.t), accumulate: true }),
    );
    return y;
  });
  return conv(ctx, `${prefix}.conv`, up, x.C, 3);
}

/** torch.cat([a, b], dim=1) */
export function concat(ctx: Ctx, a: Act, b: Act, name: string): Act {
  return span('concat', () => {
    const y = ctx.act(a.N, a.C + b.C, a.H, a.W, name);
    const shape = { N: a.N, C1: a.C, C2: b.C, H: a.H, W: a.W };
    concatChannels(ctx.engine, { ...shape, a: a.t, b: b.t, y: y.t });
    ctx.record(() =>
      concatChannelsBackward(ctx.engine, {
        ...shape,
        dy: ctx.grad(y.t),
        da: ctx.grad(a.t),
        db: ctx.grad(b.t),
        accumulate: true,
      }),
    );
    return y;
  });
}
