// Trains the MNIST model shipped in models/mnist/ with this project's code: `npm run train:mnist`.
//   node scripts/train-mnist.mjs [--minutes M] [--steps S] [--threads N] [--run DIR] [--out DIR]
// Resumable: checkpoints go to <run>/checkpoints every 250 steps and on Ctrl-C; running again continues
// bit-identically from the latest one. When the run reaches --steps (or --minutes of wall time for this
// invocation), the EMA weights are exported as a diffusers folder to <out> (config.json,
// diffusion_pytorch_model.safetensors, scheduler_config.json) and <out>/TRAINING.md records the run.
import { existsSync } from 'node:fs';
import { mkdir, writeFile, readFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  DDPMScheduler, Engine, Trainer, UNet2DModel, loadCheckpoint, modelFromCheckpoint, restoreTrainer,
} from '../dist/index.js';
import { loadMnist } from '../dist/io/mnist.js';
import { UNET_PRESETS } from '../dist/nn/presets.js';

const { values: a } = parseArgs({
  options: {
    minutes: { type: 'string', default: '55' }, steps: { type: 'string', default: '12000' },
    threads: { type: 'string', default: 'auto' }, run: { type: 'string', default: 'runs/mnist' }, out: { type: 'string', default: 'models/mnist' },
  },
});
const maxSteps = Number(a.steps);
const deadline = Date.now() + Number(a.minutes) * 60_000;

// The `mnist` preset (src/nn/presets.ts): 28 → 14 → 7, attention at 14×14 and in the mid block.
const MNIST_UNET = { sample_size: 28, in_channels: 1, out_channels: 1, ...UNET_PRESETS.mnist };
const scheduler = new DDPMScheduler({ numTrainTimesteps: 1000, betaSchedule: 'linear', betaStart: 1e-4, betaEnd: 0.02, clipSample: true, varianceType: 'fixed_small' });
/** @satisfies {import('../dist/index.js').TrainerOptions} */
const trainerOptions = {
  batchSize: 32, learningRate: 5e-4, lrWarmupSteps: 200, lrScheduler: 'constant', maxGradNorm: 1,
  ema: { maxDecay: 0.9995, useEmaWarmup: true, invGamma: 1, power: 2 / 3 }, seed: 20261128,
};

const engine = await Engine.create({ threads: a.threads === 'auto' ? 'auto' : Number(a.threads) });
const data = await loadMnist('train'); // 8,000 digits; the other 2,000 are held out for evaluation
const ckptDir = join(a.run, 'checkpoints');
const alphasCumprod = scheduler.schedule.alphasCumprod;
let trainer;
if (existsSync(join(ckptDir, 'latest'))) {
  const ckpt = await loadCheckpoint(ckptDir);
  trainer = new Trainer(modelFromCheckpoint(engine, ckpt), data.images, alphasCumprod, ckpt.manifest.trainer_config);
  restoreTrainer(trainer, ckpt);
  console.log(`resuming at step ${trainer.step}`);
} else {
  trainer = new Trainer(UNet2DModel.create(engine, MNIST_UNET, 0), data.images, alphasCumprod, trainerOptions);
}
const logFile = join(a.run, 'loss.csv');
await mkdir(a.run, { recursive: true });
const prior = existsSync(logFile) ? await readFile(logFile, 'utf8') : 'step,loss,lr,images_per_second,seconds\n';
const lines = prior.trimEnd().split('\n');
const controller = new AbortController();
process.on('SIGINT', () => controller.abort());
const timer = setInterval(() => Date.now() > deadline && controller.abort(), 1000);
const started = Date.now();
let window = [];
const r = await trainer.train({
  steps: Math.max(0, maxSteps - trainer.step), signal: controller.signal, checkpoint: { dir: ckptDir, every: 250, keep: 2 },
  onProgress: (p) => {
    window.push(p.loss);
    if (p.step % 50 === 0) {
      const mean = window.reduce((s, v) => s + v, 0) / window.length;
      window = [];
      const secs = (Date.now() - started) / 1000;
      lines.push(`${p.step},${mean.toFixed(5)},${p.lr},${p.imagesPerSecond.toFixed(1)},${secs.toFixed(0)}`);
      console.log(`step ${p.step}  loss ${mean.toFixed(4)}  ${p.imagesPerSecond.toFixed(0)} img/s  ${secs.toFixed(0)} s`);
    }
  },
});
clearInterval(timer);
await writeFile(logFile, lines.join('\n') + '\n');

// Export the EMA weights and the scheduler as a diffusers folder.
const model = trainer.model;
if (!(model instanceof UNet2DModel) || !trainer.ema) throw new Error(`${ckptDir}: expected a UNet2DModel trained with EMA`);
engine.view(model.params.all).set(engine.view(trainer.ema.all));
await model.save(a.out);
await writeFile(join(a.out, 'scheduler_config.json'), JSON.stringify({ ...scheduler.toConfig(), _diffusers_version: '0.32.2' }, null, 2) + '\n');
const csv = lines.slice(1).map((l) => l.split(',').map(Number));
// each invocation's clock restarts at 0: the run's wall time is the sum of every segment's last value
let totalSeconds = 0;
let invocations = 0;
csv.forEach((c, i) => {
  if (i + 1 === csv.length || csv[i + 1][4] < c[4]) {
    totalSeconds += c[4];
    invocations++;
  }
});
const lastLosses = csv.slice(-10).map((c) => c[1]);
await writeFile(join(a.out, 'TRAINING.md'), `# How this model was trained

- Command: \`npm run train:mnist\` (= \`node scripts/train-mnist.mjs\`), resumable and bit-identical when resumed; this run: ${r.step} steps in ${invocations} invocation(s)${r.aborted ? ' (the last stopped by its time budget; running again continues)' : ''}.
- Data: the first 80% of each class of the \`mnist\` npm package (8,000 digits, 28×28, scaled to [−1, 1]); the other 2,000 are held out for evaluation.
- Model: UNet2DModel ${JSON.stringify(MNIST_UNET.block_out_channels)} channels, ${model.params.size.toLocaleString('en')} parameters; DDPM linear β 1e-4…0.02, T = 1000, ε-prediction, L_simple.
- Optimizer: AdamW lr ${trainerOptions.learningRate} (warmup ${trainerOptions.lrWarmupSteps} steps, then constant), batch ${trainerOptions.batchSize}, gradient clipping 1, weight decay 0.01; EMA with diffusers' warmup (power 2/3, max decay ${trainerOptions.ema.maxDecay}); the EMA weights are exported.
- Machine: ${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.cpus().length} cores, Node ${process.version}, ${engine.info.build} build.
- Wall time: ${(totalSeconds / 60).toFixed(1)} minutes of training in all (from the run's loss.csv; the last invocation used ${engine.info.threads} thread(s)).
- Final loss (mean of the last ${lastLosses.length} logged 50-step means): ${(lastLosses.reduce((s, v) => s + v, 0) / Math.max(1, lastLosses.length)).toFixed(4)}.
`);
console.log(`step ${r.step}${r.aborted ? ' (stopped)' : ''}; exported to ${a.out}`);
engine.dispose();
