// ddpm train: trains a U-Net (images) or an MLP (2-D points) with checkpoints, sample grids and a loss
// curve, resumes from the newest checkpoint in --out, and exports the EMA weights as a model folder.
import { readFile } from 'node:fs/promises';
import { UNET_PRESETS, type UNetPreset } from '../nn/presets.js';
import { join, resolve } from 'node:path';
import { DdpmError } from '../errors.js';
import { Engine } from '../engine/engine.js';
import { DDIMScheduler } from '../diffusion/ddim.js';
import { DDPMScheduler } from '../diffusion/ddpm.js';
import { loadImageFolder } from '../io/image-folder.js';
import { loadMnist } from '../io/mnist.js';
import { encodePng, imageGrid } from '../io/png.js';
import { MLPDenoiser, MLP_WEIGHTS_FILE, parseMLPConfig, type MLPConfig } from '../nn/mlp.js';
import { parseUNetConfig, type UNet2DConfig } from '../nn/unet-config.js';
import { UNet2DModel } from '../nn/unet.js';
import { loadCheckpoint, modelFromCheckpoint, restoreTrainer, type Checkpoint } from '../train/checkpoint.js';
import { twoMoons, swissRoll } from '../train/toy-data.js';
import { Trainer, type TrainerOptions } from '../train/trainer.js';
import { choiceOption, intOption, numberOption, parseCommand, seedOption, threadsOption } from './args.js';
import { SCHEDULER_FILE, readJson, writeFileAtomic } from './files.js';
import { DDPMPipeline } from '../pipelines/ddpm.js';
import { lossSvg, scatterImage } from './plot.js';
import { Progress } from './progress.js';

export const TRAIN_HELP = `usage: ddpm train --data SOURCE --out DIR [options]

Trains a denoiser with L_simple (Ho et al. 2020), AdamW and an EMA of the weights. Running the same
command again resumes from the newest checkpoint in DIR/checkpoints, bit-identically.

  --data SOURCE          mnist (the 8,000 training digits of the 'mnist' package), two-moons, swiss-roll
                         (8,000 2-D points), or a folder of PNG files (all the same square size)
  --out DIR              run folder: checkpoints/, samples/step-N.png, loss.csv, loss.svg, model/
  --preset P             tiny, small or mnist (U-Net for images: block_out_channels [16, 32], [32, 64],
                         [16, 32, 32] = the shipped model's, attention at 14×14 and the 7×7 mid block);
                         tiny or small for 2-D data (MLP 64×2, 128×3). Default: mnist for --data mnist,
                         small otherwise
  --model-config FILE    a UNet2DModel config.json instead of a preset (sample_size and channels must fit)
  --class-conditional    --data mnist: condition on the digit (num_class_embeds 11: digits 0–9 and the
                         unconditional label 10, used for 10% of samples) for 'ddpm sample --class K
                         --guidance W'
  --batch B              batch size. Default: 64 (images), 256 (points)
  --lr X                 AdamW learning rate, constant after the warmup. Default: 5e-4 (images), 3e-3 (points)
  --warmup N             steps of linear learning-rate warmup from 0. Default: 500 (images), 100 (points)
  --steps N              train until step N (counted from the start of the run). Default: 10000 (images),
                         3000 (points)
  --epochs E             instead of --steps: until E passes over the data
  --ema DECAY            EMA decay in [0, 1), 0 for none. Default: 0.999 (images), 0.995 (points)
  --seed S               data order, timesteps, noise. Default: 0
  --loss L               simple (L_simple), hybrid (L_simple + 0.001·L_vlb, Nichol & Dhariwal 2021) or vlb
                         (the bound itself); hybrid and vlb learn the variance (variance_type learned_range:
                         the U-Net outputs 2× the image channels). Images only. Default: simple
  --threads N|auto       worker threads. Default: auto
  --checkpoint-every N   steps between checkpoints (the newest 3 are kept). Default: 500
  --sample-every N       steps between sample grids (16 images or 1,000 points, DDIM 50 steps, EMA
                         weights); 0 for only the final one. Default: 1000
  --bad-files P          PNG folders: skip (count reported) or fail (default) on an unreadable file
  --quiet                no progress bar

Ctrl-C stops at the next step boundary, saves a checkpoint and exports the model. The exported model
(DIR/model) is a diffusers folder for U-Nets — config.json, diffusion_pytorch_model.safetensors,
scheduler_config.json (DDPMScheduler, linear β, T = 1000) — that 'ddpm sample --model DIR/model' reads.
On resume, --batch, --lr, --warmup, --ema, --seed and the model must match the checkpoint; --steps may
grow (nothing depends on it, so a run extended later equals one run to the new --steps).`;

type Data =
  | { kind: 'images'; x: Float32Array; N: number; C: number; H: number; W: number; label: string; labels?: Uint8Array; numClasses?: number }
  | { kind: 'points'; x: Float32Array; N: number; label: string };

const POINTS = 8000;
/** Fixed data seed: --seed changes the training randomness, not the dataset. */
const DATA_SEED = 1;

const MLP_PRESETS: Record<string, object> = { tiny: { hidden_dim: 64, num_blocks: 2 }, small: { hidden_dim: 128, num_blocks: 3 } };

const RUN_FORMAT = 'ddpm-wasm.train-run';
const RUN_VERSION = 1;

async function loadData(source: string, channels: 1 | 3 | undefined, policy: 'skip' | 'fail', quiet: boolean): Promise<Data> {
  if (source === 'mnist') {
    const d = await loadMnist('train');
    return { kind: 'images', x: d.images, N: d.N, C: 1, H: 28, W: 28, label: 'mnist', labels: d.labels, numClasses: 10 };
  }
  if (source === 'two-moons') return { kind: 'points', x: twoMoons(POINTS, DATA_SEED), N: POINTS, label: 'two-moons' };
  if (source === 'swiss-roll') return { kind: 'points', x: swissRoll(POINTS, DATA_SEED), N: POINTS, label: 'swiss-roll' };
  const f = await loadImageFolder(source, { channels, policy });
  if (f.skipped.length && !quiet) console.error(`skipped ${f.skipped.length} unreadable file(s), e.g. ${f.skipped[0].file}: ${f.skipped[0].reason}`);
  if (f.H !== f.W) throw new DdpmError('SHAPE_MISMATCH', `${f.files[0]}: ${f.W}×${f.H}; the U-Net needs square images`);
  return { kind: 'images', x: f.images, N: f.N, C: f.C, H: f.H, W: f.W, label: resolve(source) };
}

/** The model's class and checked config for the data and a preset or config file (nothing allocated). */
function modelSpec(data: Data, preset: string, configFile: Record<string, unknown> | null, conditional: boolean, learnedVariance = false): { cls: 'UNet2DModel'; config: UNet2DConfig } | { cls: 'MLPDenoiser'; config: MLPConfig } {
  if (data.kind === 'points') {
    if (configFile) throw new DdpmError('INVALID_ARGUMENT', '--model-config is for image data (a UNet2DModel config)');
    if (!MLP_PRESETS[preset]) throw new DdpmError('INVALID_ARGUMENT', `--preset ${preset} is for images; 2-D data takes tiny or small`);
    return { cls: 'MLPDenoiser', config: parseMLPConfig({ data_dim: 2, ...MLP_PRESETS[preset] }, `preset ${preset}`) };
  }
  const base = configFile ?? UNET_PRESETS[preset as UNetPreset];
  // class-conditional: one embedding per class plus the unconditional one, last
  const want = { sample_size: data.H, in_channels: data.C, out_channels: (learnedVariance ? 2 : 1) * data.C, ...(conditional ? { num_class_embeds: data.numClasses! + 1 } : {}) };
  for (const k of Object.keys(want) as (keyof typeof want)[]) {
    if (configFile && configFile[k] !== undefined && configFile[k] !== want[k]) {
      throw new DdpmError('INVALID_ARGUMENT', `--model-config: ${k} is ${JSON.stringify(configFile[k])} but the data needs ${want[k]}`);
    }
  }
  const config = parseUNetConfig({ ...base, ...want }, configFile ? '--model-config' : `preset ${preset}`);
  const factor = 2 ** (config.block_out_channels.length - 1);
  if (data.H % factor !== 0) throw new DdpmError('SHAPE_MISMATCH', `images of ${data.H}×${data.W} cannot be halved ${config.block_out_channels.length - 1} times by this U-Net; use a smaller preset or images whose side is a multiple of ${factor}`);
  return { cls: 'UNet2DModel', config };
}

/** DDIM steps of the sample grids written while training. */
const SAMPLE_STEPS = 50;

/** The periodic / final samples: EMA weights swapped in, everything sampled freed afterwards. */
async function writeSamples(trainer: Trainer, scheduler: Record<string, unknown>, file: string, quiet: boolean): Promise<void> {
  const model = trainer.model as UNet2DModel | MLPDenoiser;
  const e = trainer.engine;
  const saved = e.read(model.params.all);
  if (trainer.ema) e.view(model.params.all).set(e.view(trainer.ema.all));
  const mark = e.arena.mark();
  try {
    const ddim = DDIMScheduler.fromConfig(scheduler, { engine: e });
    const progress = new Progress(`sampling ${file}`, SAMPLE_STEPS, { quiet });
    const onStep = (d: number) => progress.update(d);
    if (model instanceof MLPDenoiser) {
      const r = await new DDPMPipeline(e, model, ddim).run({ batchSize: 1000, maxBatch: 1000, numInferenceSteps: SAMPLE_STEPS, seed: 0, onStep });
      progress.finish();
      await writeFileAtomic(file, encodePng(scatterImage(r.tensor)));
    } else {
      const c = model.config;
      // a class-conditional model draws classes 0, 1, 2, … in reading order
      const K = c.num_class_embeds;
      const classLabels = K === null ? undefined : Int32Array.from({ length: 16 }, (_, i) => i % (K - 1));
      const r = await new DDPMPipeline(e, model, ddim).run({ batchSize: 16, maxBatch: 16, numInferenceSteps: SAMPLE_STEPS, seed: 0, classLabels, onStep });
      progress.finish();
      await writeFileAtomic(file, encodePng(imageGrid(r.images, 4)));
    }
  } finally {
    e.arena.release(mark);
    e.view(model.params.all).set(saved);
  }
}

/** DIR/model: the EMA weights (the raw weights without EMA) and the scheduler's config. */
async function exportModel(trainer: Trainer, scheduler: Record<string, unknown>, dir: string): Promise<void> {
  const model = trainer.model as UNet2DModel | MLPDenoiser;
  const e = trainer.engine;
  const saved = e.read(model.params.all);
  if (trainer.ema) e.view(model.params.all).set(e.view(trainer.ema.all));
  try {
    if (model instanceof UNet2DModel) await model.save(dir);
    else {
      await writeFileAtomic(join(dir, MLP_WEIGHTS_FILE), model.weightsBytes());
      await writeFileAtomic(join(dir, 'config.json'), model.configJson() + '\n');
    }
    await writeFileAtomic(join(dir, SCHEDULER_FILE), JSON.stringify(scheduler, null, 2) + '\n');
  } finally {
    e.view(model.params.all).set(saved);
  }
}

async function readLossLog(file: string, upTo: number): Promise<{ steps: number[]; losses: number[] }> {
  const steps: number[] = [], losses: number[] = [];
  let text = '';
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return { steps, losses };
  }
  for (const line of text.split('\n').slice(1)) {
    if (!line) continue;
    const [s, l] = line.split(',').map(Number);
    if (Number.isInteger(s) && s <= upTo) {
      steps.push(s);
      losses.push(l);
    }
  }
  return { steps, losses };
}

export async function trainCommand(argv: string[]): Promise<void> {
  const v = parseCommand(argv, {
    data: { type: 'string' }, out: { type: 'string' }, preset: { type: 'string' }, 'model-config': { type: 'string' },
    'class-conditional': { type: 'boolean' },
    batch: { type: 'string' }, lr: { type: 'string' }, warmup: { type: 'string' }, steps: { type: 'string' }, epochs: { type: 'string' },
    ema: { type: 'string' }, seed: { type: 'string' }, threads: { type: 'string' }, loss: { type: 'string' },
    'checkpoint-every': { type: 'string' }, 'sample-every': { type: 'string' }, 'bad-files': { type: 'string' },
  }, TRAIN_HELP);
  if (!v) return;
  if (!v.data) throw new DdpmError('INVALID_ARGUMENT', '--data is required (mnist, two-moons, swiss-roll or a folder of PNGs)');
  if (!v.out) throw new DdpmError('INVALID_ARGUMENT', '--out DIR is required');
  if (v.steps !== undefined && v.epochs !== undefined) throw new DdpmError('INVALID_ARGUMENT', 'give --steps or --epochs, not both');
  const out = v.out;
  const quiet = !!v.quiet;
  const policy = choiceOption('bad-files', v['bad-files'], 'fail', ['skip', 'fail'] as const);
  const checkpointEvery = intOption('checkpoint-every', v['checkpoint-every'], 500, 1);
  const sampleEvery = intOption('sample-every', v['sample-every'], 1000, 0);
  const ckptDir = join(out, 'checkpoints');
  const runFile = join(out, 'run.json');

  // a checkpoint in --out means resume: its model and trainer config win, explicit flags must agree
  let ckpt: Checkpoint | null = null;
  try {
    ckpt = await loadCheckpoint(ckptDir);
  } catch (e) {
    if (!(e instanceof DdpmError && /no checkpoint found|cannot read the checkpoint folder/.test(e.message))) throw e;
  }
  const run = ckpt ? await readJson(runFile) : null;
  if (run && (run.format !== RUN_FORMAT || run.version !== RUN_VERSION)) throw new DdpmError('FORMAT', `${runFile}: not a ${RUN_FORMAT} version ${RUN_VERSION} file`);
  const ckptModel = ckpt?.manifest.model;
  const channels = ckptModel?.class === 'UNet2DModel' ? ((ckptModel.config as { in_channels: number }).in_channels as 1 | 3) : undefined;
  const data = await loadData(v.data, channels, policy, quiet);
  if (run && run.data !== data.label) throw new DdpmError('INVALID_ARGUMENT', `--data ${v.data}: ${out} was trained on ${String(run.data)}; use a new --out`);

  const images = data.kind === 'images';
  const savedConditional = ckptModel ? (ckptModel.config as { num_class_embeds?: number | null }).num_class_embeds != null : undefined;
  if (v['class-conditional'] && (data.kind !== 'images' || !data.labels)) throw new DdpmError('INVALID_ARGUMENT', '--class-conditional needs labelled data (--data mnist)');
  if (v['class-conditional'] && savedConditional === false) throw new DdpmError('INVALID_ARGUMENT', `--class-conditional: the checkpoint in ${ckptDir} is of an unconditional model; use a new --out`);
  const conditional = savedConditional ?? !!v['class-conditional'];
  const trainData = conditional && data.kind === 'images' ? { samples: data.x, labels: data.labels! } : data.x;
  const batch = intOption('batch', v.batch, images ? 64 : 256, 1, 65536);
  const lr = numberOption('lr', v.lr, images ? 5e-4 : 3e-3, 0, 1, { minOpen: true });
  const emaDecay = numberOption('ema', v.ema, images ? 0.999 : 0.995, 0, 1, { maxOpen: true });
  const seed = seedOption(v.seed);
  const warmup = intOption('warmup', v.warmup, images ? 500 : 100, 0);
  const target = v.epochs !== undefined
    ? Math.ceil((numberOption('epochs', v.epochs, 1, 0, 1e6, { minOpen: true }) * data.N) / batch)
    : intOption('steps', v.steps, images ? 10000 : 3000, 1);
  const loss = choiceOption('loss', v.loss, 'simple', ['simple', 'hybrid', 'vlb'] as const);
  if (loss !== 'simple' && !images) throw new DdpmError('INVALID_ARGUMENT', `--loss ${loss} is for images (its decoder term models 8-bit pixels)`);
  // hybrid and vlb learn the variance: a learned_range U-Net (2× the channels) and scheduler
  const learnedVariance = (ckpt ? ckpt.manifest.trainer_config.loss ?? 'simple' : loss) !== 'simple';
  const preset = choiceOption('preset', v.preset, v.data === 'mnist' ? 'mnist' : 'small', ['tiny', 'small', 'mnist'] as const);
  const modelConfig = v['model-config'] ? await readJson(v['model-config']) : null;
  const options: TrainerOptions = {
    // constant after the warmup, and nothing depends on --steps: a run extended later equals a longer run
    batchSize: batch, learningRate: lr, lrScheduler: 'constant', lrWarmupSteps: warmup, maxTrainSteps: 0, loss,
    ema: emaDecay > 0 ? { maxDecay: emaDecay } : null, seed,
    // classifier-free guidance (Ho & Salimans 2022): 10% of labels dropped to the unconditional one
    ...(conditional && data.kind === 'images' ? { labelDropout: 0.1, uncondLabel: data.numClasses! } : {}),
  };
  // images live in [−1, 1] (x̂_0 clipped); 2-D points are not bounded
  const scheduler = new DDPMScheduler({ numTrainTimesteps: 1000, betaSchedule: 'linear', clipSample: images, ...(learnedVariance ? { varianceType: 'learned_range' as const } : {}) }).toConfig();

  const engine = await Engine.create({ threads: threadsOption(v.threads) });
  const ac = new AbortController();
  const onSigint = () => {
    if (!quiet) process.stderr.write('\nstopping at the next step boundary (Ctrl-C again to kill)…\n');
    ac.abort();
  };
  process.once('SIGINT', onSigint);
  try {
    let trainer: Trainer;
    if (ckpt) {
      const saved = ckpt.manifest.trainer_config;
      const differs = (flag: string, given: string | undefined, now: unknown, then: unknown) => {
        if (given !== undefined && JSON.stringify(now) !== JSON.stringify(then)) {
          throw new DdpmError('INVALID_ARGUMENT', `--${flag} ${given} differs from the checkpoint's ${JSON.stringify(then)} (${ckpt!.source}); drop the flag to resume, or use a new --out`);
        }
      };
      differs('batch', v.batch, batch, saved.batchSize);
      differs('lr', v.lr, lr, saved.learningRate);
      differs('ema', v.ema, emaDecay > 0 ? emaDecay : null, saved.ema ? saved.ema.maxDecay : null);
      differs('seed', v.seed, seed, saved.seed);
      differs('warmup', v.warmup, warmup, saved.lrWarmupSteps);
      differs('loss', v.loss, loss, saved.loss ?? 'simple');
      if (v.preset !== undefined || modelConfig) {
        differs(v.preset !== undefined ? 'preset' : 'model-config', v.preset ?? v['model-config'], modelSpec(data, preset, modelConfig, conditional, learnedVariance).config, ckpt.manifest.model.config);
      }
      const model = modelFromCheckpoint(engine, ckpt);
      trainer = new Trainer(model, trainData, DDPMScheduler.fromConfig(run!.scheduler).schedule.alphasCumprod, saved);
      restoreTrainer(trainer, ckpt);
      if (!quiet) console.error(`resuming ${out} at step ${trainer.step} (${ckpt.source})`);
    } else {
      const spec = modelSpec(data, preset, modelConfig, conditional, learnedVariance);
      const model = spec.cls === 'MLPDenoiser' ? MLPDenoiser.create(engine, spec.config, seed) : UNet2DModel.create(engine, spec.config, seed);
      trainer = new Trainer(model, trainData, DDPMScheduler.fromConfig(scheduler).schedule.alphasCumprod, options);
      await writeFileAtomic(runFile, JSON.stringify({ format: RUN_FORMAT, version: RUN_VERSION, data: data.label, dataset_size: data.N, scheduler }, null, 2) + '\n');
    }
    const sched = (run?.scheduler as Record<string, unknown> | undefined) ?? scheduler;
    const log = await readLossLog(join(out, 'loss.csv'), trainer.step);
    const writeLoss = async () => {
      await writeFileAtomic(join(out, 'loss.csv'), 'step,loss\n' + log.steps.map((s, i) => `${s},${log.losses[i]}`).join('\n') + '\n');
      await writeFileAtomic(join(out, 'loss.svg'), lossSvg(log.steps, log.losses));
    };
    const start = trainer.step;
    const progress = new Progress('training', Math.max(0, target - start), { quiet });
    let smooth = NaN;
    let aborted = false;
    while (trainer.step < target && !aborted) {
      // run to the next checkpoint or sample boundary
      const next = Math.min(target, ...[checkpointEvery, sampleEvery].filter((k) => k > 0).map((k) => (Math.floor(trainer.step / k) + 1) * k));
      const r = await trainer.train({
        steps: next - trainer.step, signal: ac.signal, checkpoint: { dir: ckptDir, every: checkpointEvery },
        onProgress: (p) => {
          log.steps.push(p.step);
          log.losses.push(p.loss);
          if (Number.isFinite(p.loss)) smooth = Number.isNaN(smooth) ? p.loss : 0.98 * smooth + 0.02 * p.loss;
          progress.update(p.step - start, `loss ${smooth.toPrecision(3)}`);
        },
      });
      aborted = r.aborted;
      await writeLoss();
      if (!aborted && sampleEvery > 0 && trainer.step % sampleEvery === 0 && trainer.step < target) {
        await writeSamples(trainer, sched, join(out, 'samples', `step-${trainer.step}.png`), quiet);
      }
    }
    progress.finish(`loss ${smooth.toPrecision(3)}`);
    await writeLoss();
    if (aborted && trainer.step === 0) {
      if (!quiet) console.error('interrupted before the first step: nothing saved');
      process.exitCode = 130;
      return;
    }
    // after Ctrl-C the user is waiting: save the model, skip the samples
    if (!aborted) await writeSamples(trainer, sched, join(out, 'samples', `step-${trainer.step}.png`), quiet);
    await exportModel(trainer, sched, join(out, 'model'));
    if (aborted) {
      if (!quiet) console.error(`interrupted at step ${trainer.step}: checkpoint saved in ${ckptDir}, model exported to ${join(out, 'model')}; run the same command to resume`);
      process.exitCode = 130;
    } else if (!quiet) console.error(`trained to step ${trainer.step}; model in ${join(out, 'model')}, samples in ${join(out, 'samples')}, loss curve ${join(out, 'loss.svg')}`);
  } finally {
    process.removeListener('SIGINT', onSigint);
    engine.dispose();
  }
}
