// ddpm train: flags → a TrainingRun (src/train/run.ts: the run folder, its lock, checkpoints, loss log,
// resume checks, export) for a U-Net (images) or an MLP (2-D points); this file parses and prints.
import { MNIST_RECIPE, UNET_PRESETS, type UNetPreset } from '../nn/presets.js';
import { join, resolve } from 'node:path';
import { DdpmError } from '../errors.js';
import { Engine } from '../engine/engine.js';
import { DDIMScheduler } from '../diffusion/ddim.js';
import { DDPMScheduler } from '../diffusion/ddpm.js';
import { loadImageFolder } from '../io/image-folder.js';
import { loadMnist } from '../io/mnist.js';
import { encodePng, imageGrid } from '../io/png.js';
import type { Denoiser } from '../nn/denoiser.js';
import { MLPDenoiser, parseMLPConfig, type MLPConfig } from '../nn/mlp.js';
import { parseUNetConfig, type UNet2DConfig } from '../nn/unet-config.js';
import type { UNet2DModel } from '../nn/unet.js';
import { CHECKPOINTS_DIR, RUN_FILE, TrainingRun } from '../train/run.js';
import { classConditional } from '../train/class-conditional.js';
import { twoMoons, swissRoll } from '../train/toy-data.js';
import type { TrainerOptions } from '../train/trainer.js';
import { choiceOption, intOption, numberOption, parseCommand, seedOption, threadsOption } from './args.js';
import { readJson, writeFileAtomic } from './files.js';
import { DDPMPipeline } from '../pipelines/ddpm.js';
import { lossSvg, scatterImage } from './plot.js';
import { Progress } from './progress.js';

export const TRAIN_HELP = `usage: ddpm train --data SOURCE --out DIR [options]

Trains a denoiser with L_simple (Ho et al. 2020), AdamW and an EMA of the weights; --data mnist trains
the shipped models/mnist's recipe (docs/training.md: v-prediction, min-SNR-5 weighting, lr 1e-3 decaying
by a cosine to 0 at --steps). Running the same command again resumes from the newest checkpoint in
DIR/checkpoints, bit-identically.

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
  --batch B              batch size. Default: 32 with --preset mnist (the shipped model's recipe,
                         models/mnist/TRAINING.md), 64 other images, 256 points
  --lr X                 AdamW learning rate after the warmup: decaying by a cosine to 0 at --steps with
                         --preset mnist (default 1e-3), else constant (default 5e-4 images, 3e-3 points)
  --warmup N             steps of linear learning-rate warmup from 0. Default: 200 (mnist), 500 (other
                         images), 100 (points)
  --steps N              train until step N (counted from the start of the run). Default: 50000 (mnist,
                         as shipped: ~2.2 h on 2 cores), 10000 (other images), 3000 (points)
  --epochs E             instead of --steps: until E passes over the data
  --ema DECAY            EMA decay in [0, 1), 0 for none. Default: 0.9995 with diffusers' EMA warmup
                         (mnist), 0.999 (other images), 0.995 (points)
  --seed S               initial weights, data order, timesteps, noise. Default: the shipped model's
                         (weights 0, training 20261201) with --preset mnist, else 0
  --loss L               simple (L_simple), hybrid (L_simple + 0.001·L_vlb, Nichol & Dhariwal 2021) or vlb
                         (the bound itself); hybrid and vlb learn the variance (variance_type learned_range:
                         the U-Net outputs 2× the image channels). Images only. Default: simple
  --threads N|auto       worker threads. Default: auto
  --checkpoint-every N   steps between checkpoints (the newest 3 are kept). Default: 250 (mnist), 500
  --sample-every N       steps between sample grids (16 images or 1,000 points, DDIM 50 steps, EMA
                         weights); 0 for only the final one. Default: 1000
  --bad-files P          PNG folders: skip (count reported) or fail (default) on an unreadable file
  --quiet                no progress bar, no warnings

Ctrl-C stops at the next step boundary, saves a checkpoint and exports the model. The exported model
(DIR/model) is a diffusers folder for U-Nets — config.json, diffusion_pytorch_model.safetensors,
scheduler_config.json (DDPMScheduler, linear β, T = 1000) — that 'ddpm sample --model DIR/model' reads.
On resume, --batch, --lr, --warmup, --ema, --seed and the model must match the run (DIR/run.json).
With a constant learning rate --steps may grow (nothing depends on it, so a run extended later equals
one run to the new --steps); the mnist recipe's cosine ends at the first run's --steps, which a resume
may not pass.
One 'ddpm train' at a time writes DIR (DIR/train.lock names it; a lock left by a killed run is taken
over). DIR/loss.csv is append-only: a kill at any moment loses no loss a checkpoint covers.`;

type Data =
  | {
      kind: 'images';
      x: Float32Array;
      N: number;
      C: number;
      H: number;
      W: number;
      label: string;
      labels?: Uint8Array;
      numClasses?: number;
    }
  | { kind: 'points'; x: Float32Array; N: number; label: string };

const POINTS = 8000;
/** Fixed data seed: --seed changes the training randomness, not the dataset. */
const DATA_SEED = 1;

const MLP_PRESETS: Record<string, object> = {
  tiny: { hidden_dim: 64, num_blocks: 2 },
  small: { hidden_dim: 128, num_blocks: 3 },
};

async function loadData(
  source: string,
  channels: 1 | 3 | undefined,
  policy: 'skip' | 'fail',
  quiet: boolean,
): Promise<Data> {
  if (source === 'mnist') {
    const d = await loadMnist('train');
    return {
      kind: 'images',
      x: d.images,
      N: d.N,
      C: 1,
      H: 28,
      W: 28,
      label: 'mnist',
      labels: d.labels,
      numClasses: 10,
    };
  }
  if (source === 'two-moons') return { kind: 'points', x: twoMoons(POINTS, DATA_SEED), N: POINTS, label: 'two-moons' };
  if (source === 'swiss-roll')
    return { kind: 'points', x: swissRoll(POINTS, DATA_SEED), N: POINTS, label: 'swiss-roll' };
  const f = await loadImageFolder(source, { channels, policy });
  if (f.skipped.length && !quiet)
    console.error(`skipped ${f.skipped.length} unreadable file(s), e.g. ${f.skipped[0].file}: ${f.skipped[0].reason}`);
  if (f.H !== f.W) throw new DdpmError('SHAPE_MISMATCH', `${f.files[0]}: ${f.W}×${f.H}; the U-Net needs square images`);
  return { kind: 'images', x: f.images, N: f.N, C: f.C, H: f.H, W: f.W, label: resolve(source) };
}

/** The model's class and checked config for the data and a preset or config file (nothing allocated). */
function modelSpec(
  data: Data,
  preset: string,
  configFile: Record<string, unknown> | null,
  conditional: boolean,
  learnedVariance = false,
): { cls: 'UNet2DModel'; config: UNet2DConfig } | { cls: 'MLPDenoiser'; config: MLPConfig } {
  if (data.kind === 'points') {
    if (configFile) throw new DdpmError('INVALID_ARGUMENT', '--model-config is for image data (a UNet2DModel config)');
    if (!MLP_PRESETS[preset])
      throw new DdpmError('INVALID_ARGUMENT', `--preset ${preset} is for images; 2-D data takes tiny or small`);
    return { cls: 'MLPDenoiser', config: parseMLPConfig({ data_dim: 2, ...MLP_PRESETS[preset] }, `preset ${preset}`) };
  }
  const base = configFile ?? UNET_PRESETS[preset as UNetPreset];
  // class-conditional: one embedding per class plus the unconditional one, last
  const want = {
    sample_size: data.H,
    in_channels: data.C,
    out_channels: (learnedVariance ? 2 : 1) * data.C,
    ...(conditional ? classConditional(data.numClasses!).model : {}),
  };
  for (const k of Object.keys(want) as (keyof typeof want)[]) {
    if (configFile && configFile[k] !== undefined && configFile[k] !== want[k]) {
      throw new DdpmError(
        'INVALID_ARGUMENT',
        `--model-config: ${k} is ${JSON.stringify(configFile[k])} but the data needs ${want[k]}`,
      );
    }
  }
  const config = parseUNetConfig({ ...base, ...want }, configFile ? '--model-config' : `preset ${preset}`);
  const factor = 2 ** (config.block_out_channels.length - 1);
  if (data.H % factor !== 0)
    throw new DdpmError(
      'SHAPE_MISMATCH',
      `images of ${data.H}×${data.W} cannot be halved ${config.block_out_channels.length - 1} times by this U-Net; use a smaller preset or images whose side is a multiple of ${factor}`,
    );
  return { cls: 'UNet2DModel', config };
}

/** DDIM steps of the sample grids written while training. */
const SAMPLE_STEPS = 50;

/** A sample grid's PNG bytes: 16 images (4 × 4) or 1,000 points, DDIM 50 steps, seed 0; all sampled memory freed. */
async function drawSamples(
  model: Denoiser,
  scheduler: Record<string, unknown>,
  label: string,
  quiet: boolean,
): Promise<Uint8Array> {
  const e = model.engine;
  const mark = e.arena.mark();
  try {
    const ddim = DDIMScheduler.fromConfig(scheduler, { engine: e });
    const progress = new Progress(`sampling ${label}`, SAMPLE_STEPS, { quiet });
    const onStep = (d: number) => progress.update(d);
    if (model instanceof MLPDenoiser) {
      const r = await new DDPMPipeline(e, model, ddim).run({
        batchSize: 1000,
        maxBatch: 1000,
        numInferenceSteps: SAMPLE_STEPS,
        seed: 0,
        onStep,
      });
      progress.finish();
      return encodePng(scatterImage(r.tensor));
    }
    const unet = model as UNet2DModel;
    // a class-conditional model draws classes 0, 1, 2, … in reading order
    const K = unet.config.num_class_embeds;
    const classLabels = K === null ? undefined : Int32Array.from({ length: 16 }, (_, i) => i % (K - 1));
    const r = await new DDPMPipeline(e, unet, ddim).run({
      batchSize: 16,
      maxBatch: 16,
      numInferenceSteps: SAMPLE_STEPS,
      seed: 0,
      classLabels,
      onStep,
    });
    progress.finish();
    return encodePng(imageGrid(r.images, 4));
  } finally {
    e.arena.release(mark);
  }
}

/** One-line warnings about settings that train nothing useful (stderr, before training). */
export function trainWarnings(o: { warmup: number; steps: number; digits: boolean }): string[] {
  const w: string[] = [];
  if (o.warmup >= o.steps)
    w.push(
      `warning: --warmup ${o.warmup} ≥ --steps ${o.steps}: the learning rate never reaches --lr (warmup is usually a few % of the steps)`,
    );
  if (o.digits && o.steps < MNIST_RECIPE.minUsefulSteps) {
    w.push(
      `warning: ${o.steps} steps is far too few for digits: below ~${MNIST_RECIPE.minUsefulSteps.toLocaleString('en')} steps samples are blobs; the shipped model trained ${MNIST_RECIPE.steps.toLocaleString('en')} steps of ${MNIST_RECIPE.trainer.batchSize}`,
    );
  }
  return w;
}

export async function trainCommand(argv: string[]): Promise<void> {
  const v = parseCommand(
    argv,
    {
      data: { type: 'string' },
      out: { type: 'string' },
      preset: { type: 'string' },
      'model-config': { type: 'string' },
      'class-conditional': { type: 'boolean' },
      batch: { type: 'string' },
      lr: { type: 'string' },
      warmup: { type: 'string' },
      steps: { type: 'string' },
      epochs: { type: 'string' },
      ema: { type: 'string' },
      seed: { type: 'string' },
      threads: { type: 'string' },
      loss: { type: 'string' },
      'checkpoint-every': { type: 'string' },
      'sample-every': { type: 'string' },
      'bad-files': { type: 'string' },
    },
    TRAIN_HELP,
  );
  if (!v) return;
  if (!v.data)
    throw new DdpmError('INVALID_ARGUMENT', '--data is required (mnist, two-moons, swiss-roll or a folder of PNGs)');
  if (!v.out) throw new DdpmError('INVALID_ARGUMENT', '--out DIR is required');
  if (v.steps !== undefined && v.epochs !== undefined)
    throw new DdpmError('INVALID_ARGUMENT', 'give --steps or --epochs, not both');
  const out = v.out;
  const quiet = !!v.quiet;
  const policy = choiceOption('bad-files', v['bad-files'], 'fail', ['skip', 'fail'] as const);
  const preset = choiceOption('preset', v.preset, v.data === 'mnist' ? 'mnist' : 'small', [
    'tiny',
    'small',
    'mnist',
  ] as const);
  const sampleEvery = intOption('sample-every', v['sample-every'], 1000, 0);
  const seed = v.seed === undefined ? undefined : seedOption(v.seed);
  const modelConfig = v['model-config'] ? await readJson(v['model-config']) : null;

  // the folder is ours from here: a second `ddpm train` on it gets LOCKED
  const run = await TrainingRun.open(out);
  const engine = await Engine.create({ threads: threadsOption(v.threads) }).catch(async (e) => {
    await run.close();
    throw e;
  });
  const ac = new AbortController();
  const onSigint = () => {
    if (!quiet) process.stderr.write('\nstopping at the next step boundary (Ctrl-C again to kill)…\n');
    ac.abort();
  };
  process.once('SIGINT', onSigint);
  try {
    const ckptModel = run.checkpoint?.manifest.model;
    const channels =
      ckptModel?.class === 'UNet2DModel'
        ? ((ckptModel.config as { in_channels: number }).in_channels as 1 | 3)
        : undefined;
    const data = await loadData(v.data, channels, policy, quiet);
    const images = data.kind === 'images';
    // the shipped MNIST model's recipe for the mnist preset; plain image and point defaults otherwise
    const recipe = images && preset === 'mnist' && !modelConfig ? MNIST_RECIPE : null;
    const savedConditional = ckptModel
      ? (ckptModel.config as { num_class_embeds?: number | null }).num_class_embeds != null
      : undefined;
    if (v['class-conditional'] && (data.kind !== 'images' || !data.labels))
      throw new DdpmError('INVALID_ARGUMENT', '--class-conditional needs labelled data (--data mnist)');
    if (v['class-conditional'] && savedConditional === false)
      throw new DdpmError(
        'RUN_MISMATCH',
        `--class-conditional: the run in ${out} is of an unconditional model; use a new --out`,
      );
    const conditional = savedConditional ?? !!v['class-conditional'];
    const trainData = conditional && data.kind === 'images' ? { samples: data.x, labels: data.labels! } : data.x;
    const batch = intOption('batch', v.batch, recipe?.trainer.batchSize ?? (images ? 64 : 256), 1, 65536);
    const lr = numberOption('lr', v.lr, recipe?.trainer.learningRate ?? (images ? 5e-4 : 3e-3), 0, 1, {
      minOpen: true,
    });
    const emaDecay = numberOption('ema', v.ema, recipe?.trainer.ema.maxDecay ?? (images ? 0.999 : 0.995), 0, 1, {
      maxOpen: true,
    });
    const warmup = intOption('warmup', v.warmup, recipe?.trainer.lrWarmupSteps ?? (images ? 500 : 100), 0);
    const checkpointEvery = intOption('checkpoint-every', v['checkpoint-every'], recipe?.checkpointEvery ?? 500, 1);
    const target =
      v.epochs !== undefined
        ? Math.ceil((numberOption('epochs', v.epochs, 1, 0, 1e6, { minOpen: true }) * data.N) / batch)
        : intOption('steps', v.steps, recipe?.steps ?? (images ? 10000 : 3000), 1);
    const loss = choiceOption('loss', v.loss, 'simple', ['simple', 'hybrid', 'vlb'] as const);
    if (loss !== 'simple' && !images)
      throw new DdpmError('INVALID_ARGUMENT', `--loss ${loss} is for images (its decoder term models 8-bit pixels)`);
    // hybrid and vlb learn the variance: a learned_range U-Net (2× the channels) and scheduler
    const learnedVariance =
      (run.checkpoint ? (run.checkpoint.manifest.trainer_config.loss ?? 'simple') : loss) !== 'simple';
    const ema = emaDecay === 0 ? null : recipe ? { ...recipe.trainer.ema, maxDecay: emaDecay } : { maxDecay: emaDecay };
    // the mnist recipe's learning rate decays by a cosine to 0 at --steps (--steps is then part of the run);
    // other presets stay constant after the warmup, so a run extended later equals a longer run
    const cosine = recipe?.trainer.lrScheduler === 'cosine';
    const options: TrainerOptions = {
      ...(recipe?.trainer ?? {}),
      batchSize: batch,
      learningRate: lr,
      lrScheduler: cosine ? 'cosine' : 'constant',
      lrWarmupSteps: warmup,
      maxTrainSteps: cosine ? Math.max(target, warmup + 1) : 0,
      loss,
      ema,
      seed: seed ?? recipe?.trainer.seed ?? 0,
      // classifier-free guidance (Ho & Salimans 2022): 10% of labels dropped to the unconditional one
      ...(conditional && data.kind === 'images' ? classConditional(data.numClasses!).trainer : {}),
    };
    // images live in [−1, 1] (x̂_0 clipped); 2-D points are not bounded
    const variance = learnedVariance ? { varianceType: 'learned_range' as const } : {};
    const scheduler = new DDPMScheduler({
      ...(recipe?.scheduler ?? { numTrainTimesteps: 1000, betaSchedule: 'linear', clipSample: images }),
      ...variance,
    }).toConfig();

    if (run.checkpoint) {
      // flags given explicitly must agree with the run; the rest comes from it
      const given = <T>(flag: string | undefined, value: T) => (flag === undefined ? undefined : value);
      const expect = {
        batchSize: given(v.batch, batch),
        learningRate: given(v.lr, lr),
        lrWarmupSteps: given(v.warmup, warmup),
        seed: given(v.seed, seed),
        loss: given(v.loss, loss),
        ema:
          v.ema === undefined
            ? undefined
            : run.checkpoint.manifest.trainer_config.ema && ema
              ? { ...run.checkpoint.manifest.trainer_config.ema, maxDecay: emaDecay }
              : ema,
        model:
          v.preset !== undefined || modelConfig
            ? modelSpec(data, preset, modelConfig, conditional, learnedVariance).config
            : undefined,
      };
      const labels = {
        batchSize: '--batch',
        learningRate: '--lr',
        lrWarmupSteps: '--warmup',
        seed: '--seed',
        loss: '--loss',
        ema: '--ema',
        model: v.preset !== undefined ? `--preset ${v.preset}` : `--model-config ${v['model-config']}`,
      };
      const trainer = await run.resume(engine, {
        data: trainData,
        dataLabel: data.label,
        expect,
        labels,
        legacyScheduler: scheduler,
      });
      const tc = trainer.config;
      if (tc.lrScheduler === 'cosine' && target > tc.maxTrainSteps)
        throw new DdpmError(
          'RUN_MISMATCH',
          `--steps ${target} is past the end of this run's learning-rate schedule (a cosine decay to 0 at step ${tc.maxTrainSteps}, ${join(out, RUN_FILE)}): the rate would rise again; train a new --out with --steps ${target}`,
        );
      if (!quiet) console.error(`resuming ${out} at step ${trainer.step} (${run.checkpoint.source})`);
    } else {
      const spec = modelSpec(data, preset, modelConfig, conditional, learnedVariance);
      await run.start(engine, {
        data: trainData,
        dataLabel: data.label,
        model: { class: spec.cls, config: spec.config },
        initSeed: seed ?? recipe?.initSeed ?? 0,
        scheduler,
        trainer: options,
      });
    }
    for (const n of run.notices) if (!quiet) console.error(`note: ${n}`);
    const trainer = run.trainer;
    const tc = trainer.config;
    if (!quiet)
      for (const w of trainWarnings({ warmup: tc.lrWarmupSteps, steps: target, digits: v.data === 'mnist' }))
        console.error(w);

    const sched = run.identity!.scheduler!;
    const start = trainer.step;
    const progress = new Progress('training', Math.max(0, target - start), { quiet });
    let smooth = NaN;
    const writeLossSvg = async () => {
      const h = run.lossHistory();
      await writeFileAtomic(join(out, 'loss.svg'), lossSvg([...h.steps], [...h.losses]));
    };
    const r = await run.train({
      until: target,
      checkpointEvery,
      sampleEvery,
      signal: ac.signal,
      sample: async (model, step) => {
        const png = await drawSamples(model, sched, join(out, 'samples', `step-${step}.png`), quiet);
        await writeLossSvg();
        return png;
      },
      onProgress: (p) => {
        if (Number.isFinite(p.loss)) smooth = Number.isNaN(smooth) ? p.loss : 0.98 * smooth + 0.02 * p.loss;
        progress.update(p.step - start, `loss ${smooth.toPrecision(3)}`);
      },
    });
    progress.finish(`loss ${smooth.toPrecision(3)}`);
    await writeLossSvg();
    if (r.aborted && r.step === 0) {
      if (!quiet) console.error('interrupted before the first step: nothing saved');
      process.exitCode = 130;
      return;
    }
    const model = await run.exportModel();
    const ckptDir = join(out, CHECKPOINTS_DIR);
    if (r.aborted) {
      if (!quiet)
        console.error(
          `interrupted at step ${r.step}: checkpoint saved in ${ckptDir}, model exported to ${model}; run the same command to resume`,
        );
      process.exitCode = 130;
    } else if (!quiet)
      console.error(
        `trained to step ${r.step}; model in ${model}, samples in ${join(out, 'samples')}, loss curve ${join(out, 'loss.svg')}`,
      );
  } finally {
    process.removeListener('SIGINT', onSigint);
    engine.dispose();
    await run.close();
  }
}
