// Sampling with a UNet2DModel and diffusers-style schedulers. Run: node examples/sample.mjs
// (after `npm ci`). It builds a small untrained U-Net so that it runs anywhere; to sample a real model,
// use UNet2DModel.fromPretrained(engine, dir) on a diffusers folder and its scheduler_config.json.
import { DDIMScheduler, DDPMScheduler, Engine, SamplingChain, UNet2DModel } from '../dist/index.js';

const engine = await Engine.create({ threads: 'auto' });
const unet = UNet2DModel.create(
  engine,
  {
    sample_size: 16,
    in_channels: 3,
    out_channels: 3,
    block_out_channels: [32, 64],
    layers_per_block: 1,
    down_block_types: ['DownBlock2D', 'AttnDownBlock2D'],
    up_block_types: ['AttnUpBlock2D', 'UpBlock2D'],
    norm_num_groups: 8,
    attention_head_dim: null,
  },
  /* seed */ 0,
);

// 1. The diffusers loop, step by step: scheduler_config.json keys in, { prevSample, predOriginalSample } out.
const scheduler = DDPMScheduler.fromConfig(
  { num_train_timesteps: 1000, beta_schedule: 'linear', clip_sample: true },
  { engine },
);
scheduler.setTimesteps(25);
let x = engine.alloc([2, 3, 16, 16], 'x');
engine.view(x).set(Float32Array.from({ length: x.size }, (_, i) => Math.sin(i))); // any x_T
for (const t of scheduler.timesteps) {
  const eps = unet.forwardTensor(x, t);
  x = scheduler.step(eps, t, x, { seed: 42 }).prevSample;
}
console.log('DDPM, 25 steps: x_0[0..3] =', Array.from(engine.read(x).subarray(0, 4), (v) => v.toFixed(4)).join(' '));

// 2. A resumable chain: stop after 10 DDIM steps, serialize, resume in a fresh chain, finish.
const ddim = DDIMScheduler.fromConfig({ num_train_timesteps: 1000, beta_schedule: 'squaredcos_cap_v2' }, { engine });
const model = (sample, t) => unet.forwardTensor(sample, t);
const chain = SamplingChain.start(engine, ddim, { shape: [2, 3, 16, 16], numInferenceSteps: 20, seed: 7, eta: 0 });
await chain.run(model, { maxSteps: 10 });
const state = JSON.stringify(chain.toJSON()); // x_t, step index, seed, scheduler config
const resumed = SamplingChain.resume(engine, JSON.parse(state));
const x0 = await resumed.run(model, {
  onStep: (i, t) => i === 20 && console.log(`DDIM finished at step ${i} (t = ${t})`),
});
console.log(
  'DDIM, resumed after 10 of 20 steps: x_0[0..3] =',
  Array.from(engine.read(x0).subarray(0, 4), (v) => v.toFixed(4)).join(' '),
);
engine.dispose();
