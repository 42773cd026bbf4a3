// Train the MLP denoiser on two moons with checkpoints, stop, resume from the latest checkpoint (as a new
// process would), and sample. Run: node examples/train-two-moons.mjs [steps] [checkpointDir]
import { existsSync } from 'node:fs';
import {
  DDPMScheduler, Engine, MLPDenoiser, SamplingChain, Trainer, loadCheckpoint, modelFromCheckpoint, namedSchedule,
  restoreTrainer, twoMoons,
} from '../dist/index.js';

const steps = Number(process.argv[2] ?? 2000);
const dir = process.argv[3] ?? 'two-moons-ckpt';
const engine = await Engine.create({ threads: 1 });
const data = twoMoons(4000, /* seed */ 1);
const schedule = namedSchedule('linear', 1000);
/** @satisfies {import('../dist/index.js').TrainerOptions} */
const options = { batchSize: 128, learningRate: 3e-3, lrScheduler: 'cosine', lrWarmupSteps: 50, maxTrainSteps: steps, ema: { maxDecay: 0.995 }, seed: 1 };

// Resume if the folder holds a checkpoint, else start fresh: the run continues bit-identically either way.
let trainer;
if (existsSync(dir)) {
  const ckpt = await loadCheckpoint(dir);
  trainer = new Trainer(modelFromCheckpoint(engine, ckpt), data, schedule.alphasCumprod, ckpt.manifest.trainer_config);
  restoreTrainer(trainer, ckpt);
  console.log(`resumed at step ${trainer.step}`);
} else {
  trainer = new Trainer(MLPDenoiser.create(engine, { data_dim: 2, hidden_dim: 64, num_blocks: 2 }, 0), data, schedule.alphasCumprod, options);
}

// Train the first half, "crash", and let a fresh trainer pick up the rest from the checkpoint folder.
const half = Math.floor(steps / 2) - trainer.step;
if (half > 0) await trainer.train({ steps: half, checkpoint: { dir, every: 250 } });
const ckpt = await loadCheckpoint(dir);
const resumed = new Trainer(modelFromCheckpoint(engine, ckpt), data, schedule.alphasCumprod, ckpt.manifest.trainer_config);
restoreTrainer(resumed, ckpt);
const r = await resumed.train({ steps: steps - resumed.step, checkpoint: { dir, every: 250 }, onProgress: (p) => p.step % 500 === 0 && console.log(`step ${p.step}: loss ${p.loss.toFixed(4)}`) });
console.log(`trained to step ${r.step}; checkpoints in ${dir}`);

// Sample 1000 points with 100 DDPM steps from the EMA weights.
const model = resumed.model;
if (!resumed.ema) throw new Error('the options above keep an EMA');
engine.view(model.params.all).set(engine.view(resumed.ema.all));
const chain = SamplingChain.start(engine, new DDPMScheduler({ clipSample: false }), { shape: [1000, 2], numInferenceSteps: 100, seed: 2 });
const eps = engine.alloc([1000, 2], 'eps');
const x = engine.read(
  await chain.run(async (xt, t) => {
    engine.write(eps, await model.forward(engine.read(xt), t));
    return eps;
  }),
);
// twoMoons() centres and scales the moons (unit circles around (0, 0) and (1, 0.5)): undo that first
const onMoon = Array.from({ length: 1000 }, (_, i) => [0.7 * x[2 * i] + 0.5, 0.7 * x[2 * i + 1] + 0.25]).filter(([u, v]) =>
  Math.abs(Math.hypot(u, v) - 1) < 0.1 || Math.abs(Math.hypot(u - 1, v - 0.5) - 1) < 0.1).length;
console.log(`${onMoon / 10}% of 1000 samples lie within 0.1 of a moon's arc`);
engine.dispose();
