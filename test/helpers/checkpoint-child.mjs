// A separate process for the checkpoint tests, importing the built library (dist/; `npx tsc -p .` first).
//   node checkpoint-child.mjs resume <root> <steps> <dataSeed>   load <root>'s latest checkpoint, train <steps> more, save
//   node checkpoint-child.mjs loop <root>                        train and save (keep 2) until killed, printing each saved step
import { Engine } from '../../dist/index.js';
import { MLPDenoiser } from '../../dist/nn/mlp.js';
import { Trainer } from '../../dist/train/trainer.js';
import { twoMoons } from '../../dist/train/toy-data.js';
import { loadCheckpoint, modelFromCheckpoint, restoreTrainer, saveCheckpoint } from '../../dist/train/checkpoint.js';

const [mode, root, ...rest] = process.argv.slice(2);
const engine = await Engine.create({ threads: 1, simd: 'simd' });
if (mode === 'resume') {
  const [steps, dataSeed] = rest.map(Number);
  const ckpt = await loadCheckpoint(root);
  const model = modelFromCheckpoint(engine, ckpt);
  const m = ckpt.manifest;
  const trainer = new Trainer(model, twoMoons(m.data_order.dataset_size, dataSeed), m.alphas_cumprod, m.trainer_config);
  restoreTrainer(trainer, ckpt);
  await trainer.train({ steps });
  await saveCheckpoint(root, trainer);
} else if (mode === 'loop') {
  // ~1.1 M parameters: four ~4 MB files per checkpoint, so a kill usually lands mid-write
  const model = MLPDenoiser.create(engine, { hidden_dim: 512, num_blocks: 1, time_proj_dim: 32 }, 1);
  const ac = Array.from({ length: 100 }, (_, t) => 1 - (t + 1) / 101);
  const trainer = new Trainer(model, twoMoons(64, 1), ac, { batchSize: 8 });
  for (;;) {
    trainer.trainStep();
    await saveCheckpoint(root, trainer, { keep: 2 });
    process.stdout.write(`saved ${trainer.step}\n`);
  }
} else throw new Error(`unknown mode ${mode}`);
engine.dispose();
