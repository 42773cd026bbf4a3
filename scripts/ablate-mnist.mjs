// One cell of the MNIST recipe ablation (docs/training.md): trains a variant of the shipped recipe for a
// fixed budget, exports the EMA weights, scores them with `ddpm eval`, and appends one row to
// docs/ablations.json.
//   node scripts/ablate-mnist.mjs --cell NAME [--steps S] [--threads N] [--n 500] [--run-root runs/ablate]
// Resumable: a killed cell continues from its last checkpoint (bit-identically) when run again; a cell
// whose row is already in docs/ablations.json is skipped. Cells are defined in CELLS below: each changes
// one thing against `base` (the recipe the shipped model used until this table existed).
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DDPMScheduler, Engine, Trainer, TrainingRun, UNet2DModel } from '../dist/index.js';
import { loadMnist } from '../dist/io/mnist.js';
import { UNET_PRESETS } from '../dist/nn/presets.js';

const BASE_UNET = { sample_size: 28, in_channels: 1, out_channels: 1, ...UNET_PRESETS.mnist };
const BASE = {
  unet: {},
  schedule: 'linear',
  trainer: {
    batchSize: 32,
    learningRate: 5e-4,
    lrWarmupSteps: 200,
    lrScheduler: 'constant',
    maxGradNorm: 1,
    predictionType: 'epsilon',
    snrGamma: null,
    ema: { maxDecay: 0.9995, useEmaWarmup: true, invGamma: 1, power: 2 / 3 },
    seed: 20261201,
  },
  // relative cost of one step against base (measured once on one thread: see docs/training.md), so that
  // a wider or deeper cell gets the same compute: steps = budget / cost
  cost: 1,
};
// name → changes against BASE (shallow per section)
const CELLS = {
  base: {},
  'lr1e-3-cosine': { trainer: { learningRate: 1e-3, lrScheduler: 'cosine' } },
  'cosine-decay': { trainer: { lrScheduler: 'cosine' } },
  'min-snr-5': { trainer: { snrGamma: 5 } },
  'v-pred': { trainer: { predictionType: 'v_prediction' } },
  squaredcos: { schedule: 'squaredcos_cap_v2' },
  'ema-0.999': { trainer: { ema: { maxDecay: 0.999, useEmaWarmup: true, invGamma: 1, power: 2 / 3 } } },
  // costs: `--time-only` on one thread, idle machine (2026-12-01 11:40): s/step of the cell / of base
  'no-attn-14': {
    unet: {
      down_block_types: ['DownBlock2D', 'DownBlock2D', 'DownBlock2D'],
      up_block_types: ['UpBlock2D', 'UpBlock2D', 'UpBlock2D'],
    },
    cost: 0.85,
  },
  'dropout-0.1': { unet: { dropout: 0.1 } },
  'width-32-64-64': { unet: { block_out_channels: [32, 64, 64], norm_num_groups: 8 }, cost: 2.8 },
  // measured 2026-12-02 00:30 on one thread (a busy day: base 0.62 s/step; width-32-64-64 2.64 the same hour)
  'width-32-64-128': { unet: { block_out_channels: [32, 64, 128], norm_num_groups: 8 }, cost: 4.2 },
  'blocks-2': { unet: { layers_per_block: 2 }, cost: 1.46 },
  'random-shift-2': { trainer: { randomShift: 2 } },
  // L_hybrid (improved DDPM): the model also outputs the variance interpolation v (out_channels 2)
  hybrid: {
    unet: { out_channels: 2 },
    trainer: { loss: 'hybrid' },
    variance: 'learned_range',
    cost: 1, // measured 1.00
  },
};

// Stage 2: the winners of the one-change cells together, small and wide, at a longer budget (a larger
// model pays off only with more compute, which the 1,500-step budget cannot show).
/** The union of cells' changes (later cells win on a shared key; costs multiply). */
function combine(...names) {
  const c = { unet: {}, trainer: {}, cost: 1 };
  for (const n of names) {
    const x = CELLS[n];
    Object.assign(c.unet, x.unet);
    Object.assign(c.trainer, x.trainer);
    if (x.schedule) c.schedule = x.schedule;
    if (x.variance) c.variance = x.variance;
    c.cost *= x.cost ?? 1;
  }
  return c;
}
CELLS['v-lr-snr'] = combine('v-pred', 'lr1e-3-cosine', 'min-snr-5');
CELLS['v-lr-snr-wide'] = combine('v-pred', 'lr1e-3-cosine', 'min-snr-5', 'width-32-64-64');

const { values: a } = parseArgs({
  options: {
    cell: { type: 'string' },
    steps: { type: 'string', default: '1500' },
    threads: { type: 'string', default: '1' },
    n: { type: 'string', default: '500' },
    'run-root': { type: 'string', default: 'runs/ablate' },
    'time-only': { type: 'boolean', default: false },
  },
});
if (!a.cell || !(a.cell in CELLS)) {
  console.error(`--cell must be one of: ${Object.keys(CELLS).join(', ')}`);
  process.exit(1);
}
const cell = CELLS[a.cell];
const unetConfig = { ...BASE_UNET, ...cell.unet };
const schedule = cell.schedule ?? BASE.schedule;
const trainerOptions = { ...BASE.trainer, ...cell.trainer };
const threads = Number(a.threads);
const resultsFile = 'docs/ablations.json';
const results = existsSync(resultsFile)
  ? JSON.parse(readFileSync(resultsFile, 'utf8'))
  : { budgetSteps: null, rows: [] };

const scheduler = new DDPMScheduler({
  numTrainTimesteps: 1000,
  betaSchedule: schedule,
  betaStart: 1e-4,
  betaEnd: 0.02,
  clipSample: true,
  varianceType: cell.variance ?? 'fixed_small',
  predictionType: trainerOptions.predictionType,
});
const engine = await Engine.create({ threads });
const data = await loadMnist('train');

// Cost of a step relative to base, measured here on the same thread count (a few steps of each).
async function secondsPerStep(config, options) {
  const t = new Trainer(UNet2DModel.create(engine, config, 0), data.images, scheduler.schedule, {
    ...options,
    // a cosine needs its end; the rate does not change the time of a step
    ...(options.lrScheduler === 'cosine' ? { maxTrainSteps: 1000 } : {}),
    seed: 1,
  });
  await t.train({ steps: 3 });
  const t0 = performance.now();
  await t.train({ steps: 12 });
  return (performance.now() - t0) / 12000;
}
let cost = cell.cost === undefined ? 1 : cell.cost;
if (cost === null || a['time-only']) {
  const mark = engine.arena.mark();
  const sBase = await secondsPerStep(BASE_UNET, BASE.trainer);
  engine.arena.release(mark);
  const sCell = await secondsPerStep(unetConfig, trainerOptions);
  engine.arena.release(mark);
  cost = sCell / sBase;
  console.log(`${a.cell}: ${sCell.toFixed(3)} s/step vs base ${sBase.toFixed(3)} → cost ${cost.toFixed(2)}`);
}
if (a['time-only']) process.exit(0);
const budget = Number(a.steps);
const steps = Math.max(1, Math.round(budget / cost));
if (results.rows.some((r) => r.cell === a.cell && r.budgetSteps === budget)) {
  console.log(`${a.cell} at budget ${budget} is already in ${resultsFile}`);
  process.exit(0);
}

const dir = join(a['run-root'], `${a.cell}-b${budget}`);
await mkdir(a['run-root'], { recursive: true });
if (trainerOptions.lrScheduler === 'cosine') trainerOptions.maxTrainSteps = steps;
// a TrainingRun: one writer, checkpoints every 250 steps, resumed bit-identically when run again
const run = await TrainingRun.open(dir);
if (run.checkpoint) {
  await run.resume(engine, { data: data.images, dataLabel: 'mnist' });
  console.log(`${a.cell}: resuming at step ${run.trainer.step}`);
} else {
  await run.start(engine, {
    data: data.images,
    dataLabel: 'mnist',
    model: { class: 'UNet2DModel', config: unetConfig },
    initSeed: 0,
    scheduler: scheduler.toConfig(),
    trainer: trainerOptions,
  });
}
const started = performance.now();
/** @type {number[]} */
const last = [];
const r = await run.train({
  until: steps,
  checkpointEvery: 250,
  keep: 1,
  onProgress: (p) => {
    last.push(p.loss);
    if (last.length > 100) last.shift();
    if (p.step % 250 === 0)
      console.log(
        `${a.cell}: step ${p.step}/${steps} loss ${(last.reduce((s, v) => s + v, 0) / last.length).toFixed(4)}`,
      );
  },
});
const trainSeconds = (performance.now() - started) / 1000;
const params = run.trainer.model.params.size;
const modelDir = join(dir, 'model');
await run.withEmaWeights(async (m) => {
  if (!(m instanceof UNet2DModel)) throw new Error(`${dir}: expected a UNet2DModel`);
  await m.save(modelDir);
});
await run.close();
await writeFile(
  join(modelDir, 'scheduler_config.json'),
  JSON.stringify({ ...scheduler.toConfig(), _diffusers_version: '0.32.2' }, null, 2) + '\n',
);
engine.dispose();

// Score with the same command a user runs (DDIM 50, seed 0), on the same thread count.
const evalJson = join(dir, 'eval.json');
execFileSync(
  process.execPath,
  [
    'dist/cli.js',
    'eval',
    '--model',
    modelDir,
    '--sampler',
    'ddim',
    '--steps',
    '50',
    '--n',
    a.n,
    '--threads',
    String(threads),
    '--json',
    evalJson,
    '--quiet',
  ],
  { stdio: 'inherit' },
);
const ev = JSON.parse(readFileSync(evalJson, 'utf8'));
const row = {
  cell: a.cell,
  budgetSteps: budget,
  steps,
  cost: Number(cost.toFixed(3)),
  params,
  finalLoss: Number((last.reduce((s, v) => s + v, 0) / last.length).toFixed(5)),
  trainSeconds: Math.round(trainSeconds),
  n: Number(a.n),
  eval: ev,
  command: `node scripts/ablate-mnist.mjs --cell ${a.cell} --steps ${budget} --threads ${threads} --n ${a.n}`,
};
const fresh = existsSync(resultsFile) ? JSON.parse(readFileSync(resultsFile, 'utf8')) : { rows: [] };
fresh.rows.push(row);
await writeFile(resultsFile, JSON.stringify(fresh, null, 1) + '\n');
console.log(`${a.cell}: step ${r.step}, written to ${resultsFile}`);
