// Memory of a UNet2DModel computed from its config alone, before anything is built: the parameter count
// and the bytes one inference forward pass allocates from the arena. The walk below mirrors forwardActs
// (unet.ts) and the layers it calls (layers.ts) allocation by allocation, each rounded as Arena.alloc
// rounds it; layers that allocate less (a fused kernel) keep it an upper bound. A test compares it with
// the arena's actual growth.
import type { UNet2DConfig } from './unet-config.js';
import { winogradTempBytes, winogradTileFor } from '../kernels/winograd.js';

const ALIGN = 64;

/** Bytes Arena.alloc takes for n float32 values. */
const bytesOf = (n: number) => Math.ceil((n * 4) / ALIGN) * ALIGN;

/** Parameters of the config (the sum over unetParamSpecs, without building the list). */
export function unetParamCount(c: UNet2DConfig): number {
  const boc = c.block_out_channels;
  const last = boc.length - 1;
  const E = 4 * boc[0];
  const convP = (cout: number, cin: number, k: number) => cout * cin * k * k + cout;
  const resnetP = (cin: number, cout: number) =>
    2 * cin +
    convP(cout, cin, 3) +
    (cout * E + cout) +
    2 * cout +
    convP(cout, cout, 3) +
    (cin !== cout ? convP(cout, cin, 1) : 0);
  const attnP = (ch: number) => 2 * ch + 4 * (ch * ch + ch);
  let n = convP(boc[0], c.in_channels, 3) + (E * boc[0] + E) + (E * E + E);
  if (c.num_class_embeds !== null) n += c.num_class_embeds * E;
  let out = boc[0];
  c.down_block_types.forEach((type, i) => {
    const cin = out;
    out = boc[i];
    if (type === 'AttnDownBlock2D') n += c.layers_per_block * attnP(out);
    for (let l = 0; l < c.layers_per_block; l++) n += resnetP(l === 0 ? cin : out, out);
    if (i !== last) n += convP(out, out, 3);
  });
  const rev = [...boc].reverse();
  out = rev[0];
  c.up_block_types.forEach((type, i) => {
    const prevOut = out;
    out = rev[i];
    const cin = rev[Math.min(i + 1, last)];
    const layers = c.layers_per_block + 1;
    if (type === 'AttnUpBlock2D') n += layers * attnP(out);
    for (let l = 0; l < layers; l++) n += resnetP((l === 0 ? prevOut : out) + (l === layers - 1 ? cin : out), out);
    if (i !== last) n += convP(out, out, 3);
  });
  n += attnP(boc[last]) + 2 * resnetP(boc[last], boc[last]) + 2 * boc[0] + convP(c.out_channels, boc[0], 3);
  return n;
}

/** Arena bytes of one inference forward pass on a batch of N (activations only; parameters excluded). */
export function unetForwardBytes(c: UNet2DConfig, N: number): number {
  const G = c.norm_num_groups;
  const boc = c.block_out_channels;
  const C0 = boc[0];
  const E = 4 * C0;
  let total = 0;
  const alloc = (n: number) => (total += bytesOf(n));
  // A conv the layers run by Winograd (layers.ts conv) also holds its buffers while it runs.
  let peak = 0;
  const conv3 = (Cin: number, Cout: number, HW: number) => {
    const H = Math.round(Math.sqrt(HW));
    const g = { N, Cin, H, W: H, Cout, kernel: 3, stride: 1, pad: 1 };
    const tile = winogradTileFor(g);
    if (tile) peak = Math.max(peak, total + winogradTempBytes(tile, g));
  };
  const norm = (C: number, HW: number) => {
    alloc(N * C * HW);
    alloc(N * G);
    alloc(N * G);
  };
  const resnet = (cin: number, cout: number, HW: number) => {
    norm(cin, HW);
    alloc(N * cin * HW); // norm1, act1
    alloc(N * cout * HW);
    conv3(cin, cout, HW);
    alloc(N * cout); // conv1, time_emb_proj
    norm(cout, HW);
    alloc(N * cout * HW); // norm2, act2
    alloc(N * cout * HW); // conv2
    conv3(cout, cout, HW);
    if (cin !== cout) alloc(N * cout * HW); // conv_shortcut
    alloc(N * cout * HW); // residual
  };
  const attention = (C: number, HW: number) => {
    norm(C, HW);
    for (let i = 0; i < 5; i++) alloc(N * C * HW); // q, k, v, heads, to_out
    // probs: (N·heads, P, P), all images and heads in one batched GEMM (layers.ts attention)
    alloc(N * (c.attention_head_dim === null ? 1 : C / c.attention_head_dim) * HW * HW);
    alloc(N * C * HW); // residual
  };
  let side = c.sample_size;
  if (c.center_input_sample) alloc(N * c.in_channels * side * side);
  alloc(N * C0); // time_proj
  alloc(N * E);
  alloc(N * E);
  alloc(N * E);
  alloc(N * E); // linear_1, act, linear_2, temb_act
  alloc(N * C0 * side * side); // conv_in
  conv3(c.in_channels, C0, side * side);
  const skipChannels: { C: number; side: number }[] = [{ C: C0, side }];
  let C = C0;
  c.down_block_types.forEach((type, i) => {
    for (let l = 0; l < c.layers_per_block; l++) {
      resnet(C, boc[i], side * side);
      C = boc[i];
      if (type === 'AttnDownBlock2D') attention(C, side * side);
      skipChannels.push({ C, side });
    }
    if (i !== boc.length - 1) {
      side = Math.floor((side - 1) / 2) + 1;
      alloc(N * C * side * side);
      skipChannels.push({ C, side });
    }
  });
  const last = boc[boc.length - 1];
  resnet(C, last, side * side);
  attention(last, side * side);
  resnet(last, last, side * side);
  C = last;
  const rev = [...boc].reverse();
  c.up_block_types.forEach((type, i) => {
    for (let l = 0; l < c.layers_per_block + 1; l++) {
      const skip = skipChannels.pop()!;
      alloc(N * (C + skip.C) * side * side); // concat
      resnet(C + skip.C, rev[i], side * side);
      C = rev[i];
      if (type === 'AttnUpBlock2D') attention(C, side * side);
    }
    if (i !== boc.length - 1) {
      side *= 2;
      alloc(N * C * side * side); // nearest
      alloc(N * C * side * side); // conv
      conv3(C, C, side * side);
    }
  });
  norm(C0, side * side);
  alloc(N * C0 * side * side); // conv_act
  alloc(N * c.out_channels * side * side); // conv_out
  conv3(C0, c.out_channels, side * side);
  return Math.max(total, peak);
}

/** Parameter bytes as Arena.alloc takes them (one block). */
export function unetParamBytes(c: UNet2DConfig): number {
  return bytesOf(unetParamCount(c));
}
