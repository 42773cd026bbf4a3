// The parameter list of a diffusers UNet2DModel: names and shapes exactly as its state_dict(), in the
// same order (module registration order: conv_in, time_embedding, class_embedding, down_blocks,
// up_blocks, mid_block, conv_norm_out, conv_out).
import type { ParamSpec } from './params.js';
import type { UNet2DConfig } from './unet-config.js';

export function unetParamSpecs(c: UNet2DConfig): ParamSpec[] {
  const specs: ParamSpec[] = [];
  const add = (name: string, ...shape: number[]) => specs.push({ name, shape });
  const conv = (p: string, cout: number, cin: number, k: number) => {
    add(`${p}.weight`, cout, cin, k, k);
    add(`${p}.bias`, cout);
  };
  const linear = (p: string, cout: number, cin: number) => {
    add(`${p}.weight`, cout, cin);
    add(`${p}.bias`, cout);
  };
  const norm = (p: string, ch: number) => {
    add(`${p}.weight`, ch);
    add(`${p}.bias`, ch);
  };
  const temb = c.block_out_channels[0] * 4;
  const resnet = (p: string, cin: number, cout: number) => {
    norm(`${p}.norm1`, cin);
    conv(`${p}.conv1`, cout, cin, 3);
    linear(`${p}.time_emb_proj`, cout, temb);
    norm(`${p}.norm2`, cout);
    conv(`${p}.conv2`, cout, cout, 3);
    if (cin !== cout) conv(`${p}.conv_shortcut`, cout, cin, 1);
  };
  const attention = (p: string, ch: number) => {
    norm(`${p}.group_norm`, ch);
    for (const q of ['to_q', 'to_k', 'to_v', 'to_out.0']) linear(`${p}.${q}`, ch, ch);
  };

  const boc = c.block_out_channels;
  const last = boc.length - 1;
  conv('conv_in', boc[0], c.in_channels, 3);
  linear('time_embedding.linear_1', temb, boc[0]);
  linear('time_embedding.linear_2', temb, temb);
  if (c.num_class_embeds !== null) add('class_embedding.weight', c.num_class_embeds, temb);

  let out = boc[0];
  c.down_block_types.forEach((type, i) => {
    const cin = out;
    out = boc[i];
    const p = `down_blocks.${i}`;
    // attentions are registered before resnets in AttnDownBlock2D
    if (type === 'AttnDownBlock2D') for (let l = 0; l < c.layers_per_block; l++) attention(`${p}.attentions.${l}`, out);
    for (let l = 0; l < c.layers_per_block; l++) resnet(`${p}.resnets.${l}`, l === 0 ? cin : out, out);
    if (i !== last) conv(`${p}.downsamplers.0.conv`, out, out, 3);
  });

  const rev = [...boc].reverse();
  out = rev[0];
  c.up_block_types.forEach((type, i) => {
    const prevOut = out;
    out = rev[i];
    const cin = rev[Math.min(i + 1, last)];
    const p = `up_blocks.${i}`;
    const layers = c.layers_per_block + 1;
    if (type === 'AttnUpBlock2D') for (let l = 0; l < layers; l++) attention(`${p}.attentions.${l}`, out);
    for (let l = 0; l < layers; l++) {
      const skip = l === layers - 1 ? cin : out;
      const resIn = l === 0 ? prevOut : out;
      resnet(`${p}.resnets.${l}`, resIn + skip, out);
    }
    if (i !== last) conv(`${p}.upsamplers.0.conv`, out, out, 3);
  });

  attention('mid_block.attentions.0', boc[last]);
  resnet('mid_block.resnets.0', boc[last], boc[last]);
  resnet('mid_block.resnets.1', boc[last], boc[last]);
  norm('conv_norm_out', boc[0]);
  conv('conv_out', c.out_channels, boc[0], 3);
  return specs;
}
