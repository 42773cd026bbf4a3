// Trains the MNIST models shipped in models/ with this project's code: `npm run train:mnist`.
//   node scripts/train-mnist.mjs [--minutes M] [--steps S] [--threads N] [--run DIR] [--out DIR]
//     [--class-conditional] [--init-from DIR] [--preset P] [--recipe shipped|next|v1|wide|guide-xs|restart]
//     [--until N]
// The recipe is MNIST_RECIPE (src/nn/presets.ts, chosen by the ablation in docs/training.md), also
// `ddpm train --data mnist`'s defaults. --recipe next is the same recipe in the committed run folder
// training/mnist-next that trained models/mnist; --recipe v1 the first shipped model's (MNIST_RECIPE_V1);
// --recipe wide the recipe on a 32/64/64 U-Net in training/mnist-wide (a measured comparison, not shipped);
// --recipe restart a second cosine cycle of training/mnist-next's weights in training/mnist-restart (a warm
// start, --init-from to change its source).
// --class-conditional trains models/mnist-cond, conditioned on the digit for classifier-free guidance as
// `ddpm train --class-conditional` is (src/train/class-conditional.ts: num_class_embeds 11, the
// unconditional label 10, labels dropped to it with probability 0.1). With MNIST_RECIPE it is a warm start:
// the weights of --init-from (default models/mnist) with a seeded class embedding, fine-tuned with the
// recipe's `conditional` learning rate and step count; `--init-from none` trains from the seeded weights.
// --preset (default: the recipe's) is for tests on a tiny U-Net.
// --until N stops this invocation at step N of the run (--steps stays the run's length, so a cosine decay is
// unchanged) and exports the EMA weights there: an earlier state of the same run, e.g. an autoguidance guide.
// Resumable: a TrainingRun in <run> (lock, run.json, checkpoints every 250 steps and on Ctrl-C, loss.csv); running again continues
// bit-identically from the latest one. When the run reaches --steps (or --minutes of wall time for this
// invocation), the EMA weights are exported as a diffusers folder to <out> (config.json,
// diffusion_pytorch_model.safetensors, scheduler_config.json) and <out>/TRAINING.md records the run.
import { existsSync } from 'node:fs';
import { appendFile, readFile, rename, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  DDPMScheduler,
  Engine,
  MNIST_RECIPE,
  MNIST_RECIPE_V1,
  TrainingRun,
  UNet2DModel,
  classConditional,
} from '../dist/index.js';
import { loadMnist } from '../dist/io/mnist.js';
import { UNET_PRESETS } from '../dist/nn/presets.js';

// wide: the recipe on the 32/64/64 network for about the compute of the 16/32/32 final run (~2 h on 2 threads
// at the measured 0.46 s per step against 0.17), in the committed run folder training/mnist-wide: it drew
// worse digits than models/mnist (docs/training.md, "32/64/64 at the final run's compute")
const WIDE = { ...MNIST_RECIPE, preset: 'mnist-wide', steps: 16000 };
// a candidate autoguidance guide: the recipe on an 8/16/16 U-Net, briefly (docs/autoguidance.md)
const GUIDE_XS = { ...MNIST_RECIPE, preset: 'mnist-xs', steps: 4000 };
// restart: a second cosine cycle (a warm restart, Loshchilov & Hutter 2017) of the 50,000-step run's exported
// weights, at 0.3× its peak rate — the rate that run had at step ~31,500 — annealed to 0 again over 12,000 steps
// (84 min on a 2-core Xeon at ~0.42 s per step), in training/mnist-restart (docs/training.md, "A second
// cycle": not better, not shipped). Its own seed: other batches and noise than the first cycle's.
const RESTART = {
  ...MNIST_RECIPE,
  trainer: { ...MNIST_RECIPE.trainer, seed: 20261202 },
  steps: 12000,
  restart: { initFrom: 'training/mnist-next/model', learningRate: 3e-4 },
};
const RECIPES = {
  shipped: MNIST_RECIPE,
  next: MNIST_RECIPE,
  v1: MNIST_RECIPE_V1,
  wide: WIDE,
  'guide-xs': GUIDE_XS,
  restart: RESTART,
};
/** recipes trained in a committed folder training/<name>-<recipe> (one checkpoint kept), exported beside it */
const COMMITTED = new Set(['next', 'wide', 'guide-xs', 'restart']);
const { values: a } = parseArgs({
  options: {
    recipe: { type: 'string', default: 'shipped' },
    minutes: { type: 'string', default: '55' },
    steps: { type: 'string' },
    threads: { type: 'string', default: 'auto' },
    run: { type: 'string' },
    out: { type: 'string' },
    'class-conditional': { type: 'boolean', default: false },
    'init-from': { type: 'string' },
    preset: { type: 'string' },
    until: { type: 'string' },
  },
});
const recipeName = a.recipe;
if (!Object.hasOwn(RECIPES, recipeName))
  throw new Error(`--recipe must be one of ${Object.keys(RECIPES).join(', ')}, found ${recipeName}`);
const recipe = RECIPES[recipeName];
const preset = a.preset ?? recipe.preset;
const conditional = a['class-conditional'];
// the class-conditional model: a warm start from the unconditional one (recipe.conditional), or from scratch;
// --recipe restart: a warm start of the unconditional model from its first cycle (recipe.restart)
const warmSpec = conditional ? recipe.conditional : recipe.restart;
if (a['init-from'] !== undefined && !conditional && !recipe.restart)
  throw new Error('--init-from is for --class-conditional or --recipe restart');
const initFromDir =
  a['init-from'] === 'none' || !(conditional || warmSpec) ? null : (a['init-from'] ?? warmSpec?.initFrom);
// the recipe's fine-tuning settings when it warm-starts (an explicit --init-from with --recipe v1 keeps v1's)
const warm = initFromDir ? warmSpec : null;
const stepsArg = a.steps ?? String(warm?.steps ?? recipe.steps);
const name = conditional ? 'mnist-cond' : 'mnist';
a.run ??= COMMITTED.has(recipeName) ? `training/${name}-${recipeName}` : `runs/${name}`;
a.out ??= COMMITTED.has(recipeName) ? join(a.run, 'model') : `models/${name}`;
if (!Object.hasOwn(UNET_PRESETS, preset))
  throw new Error(`--preset must be one of ${Object.keys(UNET_PRESETS).join(', ')}, found ${preset}`);
// the digits 0–9 and the unconditional label 10
const cfg = conditional ? classConditional(10) : null;
const maxSteps = Number(stepsArg);
const until = a.until === undefined ? maxSteps : Number(a.until);
if (!Number.isInteger(until) || until < 1 || until > maxSteps)
  throw new Error(`--until must be a whole step count from 1 to --steps (${maxSteps}), found ${a.until}`);
const deadline = Date.now() + Number(a.minutes) * 60_000;

// The recipe (src/nn/presets.ts MNIST_RECIPE) is also `ddpm train --data mnist`'s defaults: one source.
// The `mnist` presets: 28 → 14 → 7, attention at 14×14 and in the mid block.
const MNIST_UNET = { sample_size: 28, in_channels: 1, out_channels: 1, ...UNET_PRESETS[preset], ...cfg?.model };
const scheduler = new DDPMScheduler(recipe.scheduler);
// a cosine learning rate decays to 0 at the run's last step: --steps is part of the run (resume checks it)
const trainerOptions = {
  ...recipe.trainer,
  ...(recipe.trainer.lrScheduler === 'cosine' ? { maxTrainSteps: maxSteps } : {}),
  ...(warm ? { learningRate: warm.learningRate } : {}),
  ...cfg?.trainer,
};

const engine = await Engine.create({ threads: a.threads === 'auto' ? 'auto' : Number(a.threads) });
const data = await loadMnist('train'); // 8,000 digits; the other 2,000 are held out for evaluation
// this script's own log (50-step means, speed, wall time) — loss.csv (every step) belongs to the run
const logFile = join(a.run, 'progress.csv');
if (
  !existsSync(logFile) &&
  existsSync(join(a.run, 'loss.csv')) &&
  (await readFile(join(a.run, 'loss.csv'), 'utf8')).startsWith('step,loss,lr,')
) {
  await rename(join(a.run, 'loss.csv'), logFile); // a folder from before TrainingRun
}
/** The model to warm-start from; its target must be the recipe's (a v-prediction net read as ε would not fit). */
async function warmStartSource(dir) {
  const sc = JSON.parse(await readFile(join(dir, 'scheduler_config.json'), 'utf8'));
  const want = scheduler.toConfig().prediction_type;
  if (sc.prediction_type !== want)
    throw new Error(
      `--init-from ${dir}: its scheduler_config.json has prediction_type ${sc.prediction_type}, the recipe trains ${want}`,
    );
  return UNet2DModel.fromPretrained(engine, dir);
}
const trainData = conditional ? { samples: data.images, labels: data.labels } : data.images;
const run = await TrainingRun.open(a.run);
if (run.checkpoint) {
  const saved = /** @type {{ num_class_embeds?: number | null }} */ (run.checkpoint.manifest.model.config);
  if ((saved.num_class_embeds != null) !== conditional) {
    await run.close();
    throw new Error(
      `${a.run} holds a${conditional ? 'n unconditional' : ' class-conditional'} run: ${conditional ? 'drop --class-conditional' : 'pass --class-conditional'} or use another --run`,
    );
  }
  await run.resume(engine, { data: trainData, dataLabel: 'mnist', legacyScheduler: scheduler.toConfig() });
  const tc = run.trainer.config;
  if (tc.lrScheduler === 'cosine' && tc.maxTrainSteps !== maxSteps) {
    await run.close();
    throw new Error(
      `--steps ${maxSteps}: the run in ${a.run} decays its learning rate to 0 at step ${tc.maxTrainSteps} (a cosine: part of the run); give --steps ${tc.maxTrainSteps} or use another --run`,
    );
  }
  console.log(`resuming at step ${run.trainer.step}`);
} else {
  await run.start(engine, {
    data: trainData,
    dataLabel: 'mnist',
    model: { class: 'UNet2DModel', config: MNIST_UNET },
    initSeed: recipe.initSeed,
    ...(initFromDir ? { initFrom: { label: initFromDir, model: await warmStartSource(initFromDir) } } : {}),
    scheduler: scheduler.toConfig(),
    trainer: trainerOptions,
  });
}
const trainer = run.trainer;
const startStep = trainer.step;
if (startStep > until) {
  await run.close();
  throw new Error(`--until ${until}: the run in ${a.run} is at step ${startStep} already (a run does not go back)`);
}
const initFrom = run.identity?.init_from;
const prior = existsSync(logFile) ? await readFile(logFile, 'utf8') : 'step,loss,lr,images_per_second,seconds\n';
const lines = prior.trimEnd().split('\n');
const controller = new AbortController();
process.on('SIGINT', () => controller.abort());
const timer = setInterval(() => Date.now() > deadline && controller.abort(), 1000);
const started = Date.now();
let window = [];
const r = await run.train({
  until,
  signal: controller.signal,
  checkpointEvery: recipe.checkpointEvery,
  keep: COMMITTED.has(recipeName) ? 1 : 2, // training/… is committed: one checkpoint
  onProgress: (p) => {
    window.push(p.loss);
    if (p.step % 50 === 0) {
      const mean = window.reduce((s, v) => s + v, 0) / window.length;
      window = [];
      const secs = (Date.now() - started) / 1000;
      lines.push(`${p.step},${mean.toFixed(5)},${p.lr},${p.imagesPerSecond.toFixed(1)},${secs.toFixed(0)}`);
      console.log(
        `step ${p.step}  loss ${mean.toFixed(4)}  ${p.imagesPerSecond.toFixed(0)} img/s  ${secs.toFixed(0)} s`,
      );
    }
  },
});
clearInterval(timer);
await writeFile(logFile, lines.join('\n') + '\n');

// Export the EMA weights and the scheduler as a diffusers folder.
const model = trainer.model;
if (!trainer.ema) throw new Error(`${a.run}: expected a run trained with EMA`);
const outDir = a.out;
await run.withEmaWeights(async (m) => {
  if (!(m instanceof UNet2DModel)) throw new Error(`${a.run}: expected a UNet2DModel`);
  await m.save(outDir);
});
await run.close();
await writeFile(
  join(a.out, 'scheduler_config.json'),
  JSON.stringify({ ...scheduler.toConfig(), _diffusers_version: '0.32.2' }, null, 2) + '\n',
);
const csv = lines.slice(1).map((l) => l.split(',').map(Number));
// this invocation in <run>/invocations.jsonl (steps, wall time, threads, build) — progress.csv lacks the threads
const invocationsFile = join(a.run, 'invocations.jsonl');
if (r.step > startStep)
  await appendFile(
    invocationsFile,
    `${JSON.stringify({ from: startStep, to: r.step, seconds: Math.round((Date.now() - started) / 1000), threads: engine.info.threads, build: engine.info.build, node: process.version, ended: new Date().toISOString() })}\n`,
  );
const recorded = existsSync(invocationsFile)
  ? (await readFile(invocationsFile, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
  : [];
// each invocation's clock restarts at 0: the run's wall time is the sum of every segment's last value
let totalSeconds = 0;
const segments = [];
csv.forEach((c, i) => {
  if (i === 0 || c[4] < csv[i - 1][4]) segments.push({ first: c[0], last: c[0], seconds: 0 });
  const seg = segments[segments.length - 1];
  seg.last = c[0];
  seg.seconds = c[4];
  if (i + 1 === csv.length || csv[i + 1][4] < c[4]) totalSeconds += c[4];
});
const invocations = segments.length || recorded.length;
const describeRecord = (x) =>
  `  steps ${x.from.toLocaleString('en')} → ${x.to.toLocaleString('en')}, ${(x.seconds / 60).toFixed(1)} min, ${x.threads} thread(s), ${x.build} build`;
/** One line per invocation: its logged steps, minutes and (when invocations.jsonl has it) threads. */
const invocationLines = segments.length
  ? segments.map((g, i) => {
      const rec = recorded.find((x) => x.to >= g.last && x.to < g.last + 50);
      const from = rec?.from ?? (i === 0 ? 0 : segments[i - 1].last);
      return `  ${i + 1}. steps ${from.toLocaleString('en')} → ${(rec?.to ?? g.last).toLocaleString('en')}, ${(g.seconds / 60).toFixed(1)} min, ${rec ? `${rec.threads} thread(s), ${rec.build} build` : 'threads not recorded'}`;
    })
  : recorded.map(describeRecord);
const lastLosses = csv.slice(-10).map((c) => c[1]);
/** The schedule, the target and the loss, in words, from the recipe. */
function describeObjective() {
  const sc = recipe.scheduler;
  const beta = sc.betaSchedule === 'linear' ? `linear β ${sc.betaStart}…${sc.betaEnd}` : `${sc.betaSchedule} β`;
  const target = { epsilon: 'ε-prediction', v_prediction: 'v-prediction', sample: 'x₀-prediction' }[
    trainerOptions.predictionType ?? 'epsilon'
  ];
  const loss = trainerOptions.snrGamma
    ? `L_simple with min-SNR-γ weighting (γ = ${trainerOptions.snrGamma})`
    : 'L_simple';
  return `DDPM ${beta}, T = ${sc.numTrainTimesteps}, ${target}, ${loss}`;
}
// a sampling default stored beside an earlier export (scripts/autoguidance-sweep.mjs --write-default) stays
// with the folder: TRAINING.md says so, and the note below says when to redo it
const defaultsFile = join(a.out, 'sampling_defaults.json');
const storedDefaults = existsSync(defaultsFile) ? JSON.parse(await readFile(defaultsFile, 'utf8')) : null;
const ag = storedDefaults?.autoguidance;
const samplingLine = ag
  ? `\n- Sampled by default with autoguidance (Karras et al. 2024; docs/autoguidance.md): the guide in \`${ag.guide}/\` is a weaker model of the same kind, W = ${ag.scale}${ag.max_timestep === undefined ? '' : ` at t ≤ ${ag.max_timestep}`} (sampling_defaults.json, from \`scripts/autoguidance-sweep.mjs --write-default\`); \`--autoguidance off\` samples this network alone.`
  : '';
const presetFlag = `${preset === recipe.preset ? '' : ` --preset ${preset}`}${recipeName === 'shipped' ? '' : ` --recipe ${recipeName}`}`;
await writeFile(
  join(a.out, 'TRAINING.md'),
  `# How this model was trained

- Command: ${conditional ? `\`node scripts/train-mnist.mjs --class-conditional${presetFlag}\`` : `\`npm run train:mnist${presetFlag ? ` --${presetFlag}` : ''}\` (= \`node scripts/train-mnist.mjs${presetFlag}\`)`}, resumable and bit-identical when resumed; this run: ${r.step} steps in ${invocations} invocation(s)${r.aborted ? ' (the last stopped by its time budget; running again continues)' : r.step < maxSteps ? ` (stopped by --until at step ${r.step} of ${maxSteps}; running again continues)` : ''}.
- Data: the first 80% of each class of the \`mnist\` npm package (8,000 digits, 28×28, scaled to [−1, 1]); the other 2,000 are held out for evaluation.
- Model: UNet2DModel ${JSON.stringify(MNIST_UNET.block_out_channels)} channels, ${model.params.size.toLocaleString('en')} parameters; ${describeObjective()}.${cfg ? `\n- Class-conditional (classifier-free guidance, Ho & Salimans 2022): num_class_embeds ${cfg.model.num_class_embeds}, the digits 0–9 and the unconditional label ${cfg.trainer.uncondLabel}, to which each training label is dropped with probability ${cfg.trainer.labelDropout}. Sample with \`ddpm sample --model ${name} --class K\` (the guidance scale: sampling_defaults.json, from \`scripts/guidance-sweep.mjs --write-default\`; see docs/conditional.md).` : ''}${initFrom ? `\n- Warm start: every weight from \`${initFrom.model}\` (weights FNV-1a ${initFrom.weights_hash}; its own TRAINING.md tells how it was trained)${cfg ? ', the class embedding seeded (N(0, 1))' : ''}; the steps, time and loss below are the fine-tuning's alone.` : ''}
- Optimizer: AdamW lr ${trainerOptions.learningRate} (warmup ${trainerOptions.lrWarmupSteps} steps, then ${trainerOptions.lrScheduler === 'cosine' ? `a cosine decay to 0 at step ${trainerOptions.maxTrainSteps}` : 'constant'}), batch ${trainerOptions.batchSize}, gradient clipping 1, weight decay 0.01; EMA with diffusers' warmup (power 2/3, max decay ${trainerOptions.ema.maxDecay}); the EMA weights are exported.
- Machine: ${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.cpus().length} cores, Node ${process.version}, ${engine.info.build} build.
- Wall time: ${(totalSeconds / 60).toFixed(1)} minutes of training in all (from the run's progress.csv), in ${invocations} invocation(s):
${invocationLines.join('\n')}
- Final loss (mean of the last ${lastLosses.length} logged 50-step means): ${(lastLosses.reduce((s, v) => s + v, 0) / Math.max(1, lastLosses.length)).toFixed(4)}.${samplingLine}
`,
);
console.log(`step ${r.step}${r.aborted ? ' (stopped)' : ''}; exported to ${a.out}`);
if (storedDefaults)
  console.log(
    `note: ${defaultsFile} holds the ${ag ? 'autoguidance' : 'guidance'} chosen for an earlier export; rerun ${ag ? 'scripts/autoguidance-sweep.mjs --write-default (docs/autoguidance.md)' : 'scripts/guidance-sweep.mjs --write-default (docs/conditional.md)'}`,
  );
engine.dispose();
