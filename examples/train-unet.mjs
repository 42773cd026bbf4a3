// Train a UNet2DModel, save it as a diffusers folder, load it back and sample from it.
// Run: node examples/train-unet.mjs [steps] [outDir]   (after `npm ci`; default 200 steps, ./unet-out)
// The data are synthetic 16×16 "blobs" so that it runs anywhere in seconds; use your own images (N, C, H, W
// in [−1, 1]) for a real model.
import { DDIMScheduler, Engine, SamplingChain, Trainer, UNet2DModel, namedSchedule } from '../dist/index.js';

const steps = Number(process.argv[2] ?? 200);
const outDir = process.argv[3] ?? 'unet-out';
const engine = await Engine.create({ threads: 'auto' });

// 1. data: 256 images of one bright Gaussian blob each, at a random place
const N = 256,
  S = 16;
const images = new Float32Array(N * S * S);
for (let n = 0; n < N; n++) {
  const cx = 3 + ((n * 7) % 10),
    cy = 3 + ((n * 13) % 10);
  for (let y = 0; y < S; y++)
    for (let x = 0; x < S; x++) images[n * S * S + y * S + x] = 2 * Math.exp(-((x - cx) ** 2 + (y - cy) ** 2) / 6) - 1;
}

// 2. a small U-Net (diffusers UNet2DModel config keys) and the trainer: L_simple, AdamW, EMA
const unet = UNet2DModel.create(
  engine,
  {
    sample_size: S,
    in_channels: 1,
    out_channels: 1,
    block_out_channels: [16, 32],
    layers_per_block: 1,
    down_block_types: ['DownBlock2D', 'AttnDownBlock2D'],
    up_block_types: ['AttnUpBlock2D', 'UpBlock2D'],
    norm_num_groups: 8,
    attention_head_dim: null,
  },
  /* seed */ 0,
);
const schedule = namedSchedule('linear', 1000);
const trainer = new Trainer(unet, images, schedule.alphasCumprod, {
  batchSize: 16,
  learningRate: 2e-3,
  lrWarmupSteps: 20,
  lrScheduler: 'cosine',
  maxTrainSteps: steps,
  ema: { maxDecay: 0.995 },
  seed: 1,
});
const result = await trainer.train({
  steps,
  onProgress: (p) =>
    p.step % 50 === 0 &&
    console.log(`step ${p.step}: loss ${p.loss.toFixed(4)}, ${p.imagesPerSecond.toFixed(0)} images/s`),
});
console.log(`trained ${result.step} steps, last loss ${result.loss.toFixed(4)}`);

// 3. save the EMA weights as a diffusers folder (config.json + diffusion_pytorch_model.safetensors)
if (!trainer.ema) throw new Error('the trainer above keeps an EMA');
engine.view(unet.params.all).set(engine.view(trainer.ema.all));
await unet.save(outDir);

// 4. load it back and sample 4 images with 25 DDIM steps
const loaded = await UNet2DModel.fromPretrained(engine, outDir);
const scheduler = new DDIMScheduler({ numTrainTimesteps: 1000, betaSchedule: 'linear', engine });
const chain = SamplingChain.start(engine, scheduler, { shape: [4, 1, S, S], numInferenceSteps: 25, seed: 3 });
const x0 = engine.read(await chain.run((x, t) => loaded.forwardTensor(x, t)));
const peak = Array.from({ length: 4 }, (_, n) => Math.max(...x0.subarray(n * S * S, (n + 1) * S * S)));
console.log(`saved to ${outDir}; samples' brightest pixel: ${peak.map((v) => v.toFixed(2)).join(' ')}`);
engine.dispose();
