// Runs the hostile inputs of test/hardening.test.ts one after another in this process (started with a
// small --max-old-space-size, from dist/), and prints one JSON line per case: the error's name, code and
// message, the milliseconds it took, and how much the RSS and the V8 heap grew. A case that exhausts
// memory kills this process (and so fails the test) instead of the test runner.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const dist = new URL('../../dist/', import.meta.url);
const { Engine, UNet2DModel, DDPMScheduler, DDIMScheduler, DDPMPipeline, SamplingChain, readSafetensors } =
  await import(new URL('index.js', dist));
const { loadImageFolder, encodePng } = await import(new URL('io/index.js', dist));

const engine = await Engine.create({ threads: 1, memoryLimit: 256 * 2 ** 20 });
const tiny = {
  sample_size: 8,
  in_channels: 1,
  out_channels: 1,
  block_out_channels: [8, 16],
  layers_per_block: 1,
  down_block_types: ['DownBlock2D', 'AttnDownBlock2D'],
  up_block_types: ['AttnUpBlock2D', 'UpBlock2D'],
  norm_num_groups: 4,
  attention_head_dim: null,
};

// Eight 4096² PNGs of zeros (~90 KB each on disk), made before any measurement.
const pngDir = mkdtempSync(join(tmpdir(), 'ddpm-hostile-png-'));
{
  const big = encodePng({ width: 4096, height: 4096, data: new Uint8ClampedArray(4096 * 4096 * 4) });
  for (let i = 0; i < 8; i++) writeFileSync(join(pngDir, `${i}.png`), big);
}
const goodState = (() => {
  const chain = SamplingChain.start(engine, new DDPMScheduler({ numTrainTimesteps: 100 }), {
    shape: [1, 4],
    numInferenceSteps: 10,
    seed: 1,
  });
  return chain.toJSON();
})();
const safetensorsWith = (header) => {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + 8);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  return out;
};

const bigPipeline = () =>
  new DDPMPipeline(
    engine,
    UNet2DModel.create(engine, { ...tiny, sample_size: 4096 }),
    new DDPMScheduler({ numTrainTimesteps: 100, engine }),
  );

const cases = {
  'scheduler num_train_timesteps 2^31': () => DDPMScheduler.fromConfig({ num_train_timesteps: 2 ** 31 }),
  'scheduler num_train_timesteps 1e9': () => DDIMScheduler.fromConfig({ num_train_timesteps: 1e9 }),
  'scheduler trained_betas {length: 1e9}': () =>
    DDPMScheduler.fromConfig({ num_train_timesteps: 1000, trained_betas: { length: 1e9 } }),
  'scheduler prediction_type an object': () => DDPMScheduler.fromConfig({ prediction_type: { a: 1 } }),
  'unet layers_per_block 1e6': () => UNet2DModel.create(engine, { ...tiny, layers_per_block: 1_000_000 }),
  'unet sample_size 100000': () => UNet2DModel.create(engine, { ...tiny, sample_size: 100_000 }),
  'unet block_out_channels [16384 × 8]': () =>
    UNet2DModel.create(engine, {
      ...tiny,
      block_out_channels: Array(8).fill(16384),
      down_block_types: Array(8).fill('DownBlock2D'),
      up_block_types: Array(8).fill('UpBlock2D'),
      norm_num_groups: 32,
    }),
  'unet attention over 1024² positions': () => {
    const m = UNet2DModel.create(engine, {
      ...tiny,
      sample_size: 1024,
      down_block_types: ['AttnDownBlock2D', 'DownBlock2D'],
    });
    return m.forwardTensor(engine.alloc([1, 1, 1024, 1024], 'x'), 10);
  },
  'unet freq_shift = half the embedding width': () => UNet2DModel.create(engine, { ...tiny, freq_shift: 4 }),
  'unet mid_block_scale_factor 1e-50': () => UNet2DModel.create(engine, { ...tiny, mid_block_scale_factor: 1e-50 }),
  'unet config key toString': () => UNet2DModel.create(engine, { ...tiny, toString: 1 }),
  'unet config key constructor': () => UNet2DModel.create(engine, JSON.parse('{"constructor": null}')),
  'safetensors dtype toString': () =>
    readSafetensors(safetensorsWith({ w: { dtype: 'toString', shape: [2], data_offsets: [0, 8] } })),
  'safetensors dtype constructor': () =>
    readSafetensors(safetensorsWith({ w: { dtype: 'constructor', shape: [2], data_offsets: [0, 8] } })),
  'chain state shape not iterable': () => SamplingChain.resume(engine, { ...goodState, shape: 5 }),
  'chain state timesteps an object': () => SamplingChain.resume(engine, { ...goodState, timesteps: { a: 1 } }),
  'chain state shape [2^31, 2^31]': () => SamplingChain.resume(engine, { ...goodState, shape: [2 ** 31, 2 ** 31] }),
  'chain state shape [65536, 4096] (1 GiB)': () => SamplingChain.resume(engine, { ...goodState, shape: [65536, 4096] }),
  'chain state scheduler null': () => SamplingChain.resume(engine, { ...goodState, scheduler: null }),
  'chain state scheduler num_train_timesteps 1e9': () =>
    SamplingChain.resume(engine, { ...goodState, scheduler: { ...goodState.scheduler, num_train_timesteps: 1e9 } }),
  'chain state seed an object': () => SamplingChain.resume(engine, { ...goodState, seed: { x: 1 } }),
  'chain state sample of the wrong length': () =>
    SamplingChain.resume(engine, { ...goodState, sample: 'A'.repeat(10_000_000) }),
  'chain state null': () => SamplingChain.resume(engine, null),
  'PNG folder: eight 4096² images over the budget': () => loadImageFolder(pngDir),
  'pipeline: 64 samples of a 4096² model': () => bigPipeline().run({ batchSize: 64, numInferenceSteps: 2 }),
  'pipeline: 1 sample of a 4096² model with attention at 2048²': () =>
    bigPipeline().run({ batchSize: 1, numInferenceSteps: 2 }),
};

for (const [name, run] of Object.entries(cases)) {
  globalThis.gc?.();
  const rss0 = process.memoryUsage().rss;
  const heap0 = process.memoryUsage().heapUsed;
  const t0 = performance.now();
  let result;
  try {
    await run();
    result = { ok: true };
  } catch (e) {
    result = { ok: false, name: e?.name, code: e?.code, message: String(e?.message ?? e) };
  }
  const mem = process.memoryUsage();
  console.log(
    JSON.stringify({
      case: name,
      ...result,
      ms: performance.now() - t0,
      rssGrowth: mem.rss - rss0,
      heapGrowth: mem.heapUsed - heap0,
    }),
  );
}
engine.dispose();
