// ddpm eval: quality numbers for an MNIST model — a digit classifier's confidence and class histogram on
// generated digits, the Fréchet distance of its features to the held-out digits, and the model's bits/dim.
import { macrotaskYielder } from '../event-loop.js';
import { stat } from 'node:fs/promises';
import { checkWritablePath, readRegularFile } from '../io/fs.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DdpmError } from '../errors.js';
import { Engine } from '../engine/engine.js';
import { DDPMScheduler } from '../diffusion/ddpm.js';
import { variationalBound, type BoundVarianceType } from '../diffusion/bound.js';
import { loadMnist, type Digits } from '../io/mnist.js';
import { tensorToImages } from '../io/png.js';
import {
  CLASSES,
  CLASSIFIER_FORMAT,
  CLASSIFIER_TRAINING,
  DigitClassifier,
  FEATURES,
  PIXELS,
  SIDE,
  accuracy,
  trainClassifier,
} from '../eval/classifier.js';
import { classHistogram, confidentFraction, featureStats, frechetDistance } from '../eval/metrics.js';
import { perClassScores, requestedLabels, type PerClassScores } from '../eval/per-class.js';
import { MAX_GUIDANCE_SCALE } from '../pipelines/defaults.js';
import { intOption, numberOption, parseCommand, seedOption, threadsOption } from './args.js';
import {
  AUTOGUIDANCE_HELP,
  SAMPLER_HELP,
  autoguidanceChoice,
  guidedClippingNotice,
  loadModelFolder,
  samplerChoice,
  samplingProgress,
  writeFileAtomic,
} from './files.js';
import { DDPMPipeline } from '../pipelines/ddpm.js';
import { Progress } from './progress.js';

export const EVAL_HELP = `usage: ddpm eval [options]

Quality numbers for a model of 28×28 MNIST digits, next to the same numbers for real digits:
  confident ≥ 0.9   fraction of digits a classifier assigns to one class with probability ≥ 0.9
  classes min–max   the rarest and the commonest class among the digits (10% each for balanced data)
  Fréchet distance  between Gaussians fitted to the classifier's 64 penultimate features of the digits
                    and of the 2,004 held-out digits (FID's formula with our classifier; 0 = same stats)
  bits/dim          the variational bound on the held-out digits (as 'ddpm nll'), with its standard error
The row of training digits (as many as samples) shows what a model that reproduced its training data
would score, including the Fréchet distance's bias at this n.

  --model DIR|NAME    model folder or shipped model (as for 'ddpm sample': mnist, mnist-cond); 1×28×28.
                      Default: the package's models/mnist
  --n N               samples to generate (>= 2). Default: 1000
${SAMPLER_HELP}
  --batch B           samples per model call (memory). Default: 16
  --seed S            seed of the samples (as 'ddpm sample --seed') and of the bound's draws. Default: 0
  --threads N|auto    worker threads. Default: auto
  --classifier FILE   the classifier's weights: read if the file exists, else trained (about 30 s on one
                      thread) and written there. Default: ${CLASSIFIER_FORMAT}.safetensors in the temp folder
  --nll-samples K     timesteps drawn per held-out digit for bits/dim (unbiased); 0 skips it. Default: 2
  --per-class         class-conditional models (num_class_embeds 11: digits and the unconditional label):
                      sample i asks for digit i mod 10, with classifier-free guidance --guidance; a table
                      per class gives the fraction classified as the digit asked for and the fraction
                      confident ≥ 0.9, and their means over the classes. The main table's samples row
                      scores the same samples, all classes together
  --guidance W        with --per-class: ε = ε_u + W·(ε_c − ε_u). 0 is the unconditional model (the same
                      samples and numbers as without --per-class), 1 the conditional one. Default: the
                      model's sampling_defaults.json (as 'ddpm sample --class K')
${AUTOGUIDANCE_HELP}
  --json FILE         also write every number as JSON
  --quiet             no progress bar

The samples are the PNG's pixels: quantized to 8 bits as 'ddpm sample' writes them. A class-conditional
model is sampled with its unconditional label (num_class_embeds − 1), except with --per-class. Ctrl-C
stops between model calls and writes nothing (exit code 130).`;

/** diffusers' variance types as the bound reads them (the _log variants are the same variances). */
const BOUND_VARIANCE: Record<string, BoundVarianceType> = {
  fixed_small: 'fixed_small',
  fixed_small_log: 'fixed_small',
  fixed_large: 'fixed_large',
  fixed_large_log: 'fixed_large',
  learned: 'learned',
  learned_range: 'learned_range',
};

/** One row of the table. */
interface RowNumbers {
  n: number;
  /** Fraction with top probability ≥ 0.9. */
  confident: number;
  /** (K) fraction per predicted class. */
  classHistogram: number[];
  frechetDistance: number;
}

export async function evalCommand(argv: string[]): Promise<void> {
  const v = parseCommand(
    argv,
    {
      model: { type: 'string' },
      n: { type: 'string' },
      sampler: { type: 'string' },
      steps: { type: 'string' },
      eta: { type: 'string' },
      karras: { type: 'boolean' },
      batch: { type: 'string' },
      seed: { type: 'string' },
      threads: { type: 'string' },
      classifier: { type: 'string' },
      'nll-samples': { type: 'string' },
      'per-class': { type: 'boolean' },
      guidance: { type: 'string' },
      guide: { type: 'string' },
      autoguidance: { type: 'string' },
      'autoguidance-max-t': { type: 'string' },
      json: { type: 'string' },
    },
    EVAL_HELP,
  );
  if (!v) return;
  if (v.guidance !== undefined && !v['per-class'])
    throw new DdpmError('INVALID_ARGUMENT', '--guidance applies with --per-class (samples asked for each digit)');
  const guidanceArg =
    v.guidance === undefined ? undefined : numberOption('guidance', v.guidance, 1, 0, MAX_GUIDANCE_SCALE);
  const n = intOption('n', v.n, 1000, 2, 1_000_000);
  const batch = intOption('batch', v.batch, 16, 1, 4096);
  const seed = seedOption(v.seed);
  const nllSamples = intOption('nll-samples', v['nll-samples'], 2, 0, 1000);
  // paths checked before any work (a folder given as --classifier used to fail with EISDIR after 15 s of training)
  if (v.classifier !== undefined) await checkWritablePath(v.classifier, '--classifier');
  if (v.json !== undefined) await checkWritablePath(v.json, '--json');
  if (v['per-class'] && n < CLASSES)
    throw new DdpmError('INVALID_ARGUMENT', `--per-class needs --n >= ${CLASSES} (a sample of each digit), found ${n}`);
  // Ctrl-C: the sampling and the bound stop at their next model call; nothing is written
  const ac = new AbortController();
  const onSigint = () => ac.abort();
  const engine = await Engine.create({ threads: threadsOption(v.threads) });
  process.once('SIGINT', onSigint); // after the engine exists: the finally below removes it
  try {
    const loaded = await loadModelFolder(engine, v.model);
    if (loaded.kind !== 'unet')
      throw new DdpmError(
        'UNSUPPORTED',
        `${loaded.dir}: eval needs a model of 28×28 digits (UNet2DModel), not 2-D points`,
      );
    const unet = loaded.model;
    const c = unet.config;
    if (c.in_channels !== 1 || c.sample_size !== SIDE) {
      throw new DdpmError(
        'UNSUPPORTED',
        `${loaded.dir}: eval scores 1×28×28 MNIST digits; this model makes ${c.in_channels}×${c.sample_size}×${c.sample_size} images`,
      );
    }
    for (const notice of loaded.notices) console.error(`ddpm: notice: ${notice}`);
    const { sampler, karras, scheduler, steps, calls, eta } = samplerChoice(v, loaded.scheduler, engine);
    const uncond = c.num_class_embeds === null ? undefined : c.num_class_embeds - 1;
    let perClass: { guidanceScale: number; guidanceFrom: string; labels: Int32Array } | null = null;
    if (v['per-class']) {
      if (c.num_class_embeds !== CLASSES + 1)
        throw new DdpmError(
          'UNSUPPORTED',
          `--per-class: ${loaded.dir} needs num_class_embeds ${CLASSES + 1} (the 10 digits and the unconditional label, as 'ddpm train --class-conditional'), found ${c.num_class_embeds ?? 'none (not class-conditional)'}`,
        );
      const w = guidanceArg ?? loaded.defaults.guidanceScale;
      if (w === undefined)
        throw new DdpmError(
          'INVALID_ARGUMENT',
          `--per-class: pass --guidance W (${loaded.dir} has no sampling_defaults.json with a guidance_scale)`,
        );
      perClass = {
        guidanceScale: w,
        guidanceFrom: guidanceArg === undefined ? loaded.defaults.file! : '--guidance',
        labels: requestedLabels(n),
      };
    }
    const ag = await autoguidanceChoice(engine, loaded, v);
    const clipNotice = guidedClippingNotice(sampler, loaded.scheduler, ag.autoguidance !== null);
    if (clipNotice) console.error(`ddpm: notice: ${clipNotice}`);
    const [train, heldOut] = await Promise.all([loadMnist('train'), loadMnist('test')]);

    // 1. the classifier, cached
    const {
      classifier,
      file: classifierFile,
      trained,
    } = await getClassifier(engine, v.classifier, train, heldOut, v.quiet);
    const heldOutOut = classifier.classify(heldOut.images);
    const reference = featureStats(heldOutOut.features, FEATURES);
    const classifierAccuracy = accuracy(heldOutOut.probs, heldOut.labels);

    // 2. samples, as the PNG's pixels. Per class at W = 0, ε = ε_u + 0·(ε_c − ε_u) is ε_u: the unconditional
    // label's samples, drawn without the conditional calls
    const guided = perClass !== null && perClass.guidanceScale !== 0;
    const { progress, onStep } = samplingProgress(calls, n, batch, v.quiet);
    const r = await new DDPMPipeline(engine, unet, scheduler).run({
      batchSize: n,
      maxBatch: batch,
      numInferenceSteps: steps,
      seed,
      eta,
      classLabels: guided ? perClass!.labels : uncond,
      guidanceScale: guided ? perClass!.guidanceScale : undefined,
      autoguidance: ag.autoguidance,
      signal: ac.signal,
      onStep,
    });
    progress.finish();
    const samples = quantize(r.tensor, n);
    const samplesOut = classifier.classify(samples);
    const perClassRow: PerClassScores | null = perClass && perClassScores(samplesOut.probs, perClass.labels);

    // 3. the rows: samples, training digits (as many), held-out digits (the reference)
    const row = (images: Float32Array, out = classifier.classify(images)): RowNumbers => ({
      n: images.length / PIXELS,
      confident: confidentFraction(out.probs),
      classHistogram: Array.from(classHistogram(out.probs)),
      frechetDistance: frechetDistance(featureStats(out.features, FEATURES), reference),
    });
    const sampleRow = row(samples, samplesOut);
    const trainRow = row(spread(train, Math.min(n, train.N)));
    const heldOutRow = { ...row(heldOut.images, heldOutOut), frechetDistance: 0 };

    // 4. bits/dim on the held-out digits
    let bound: {
      bitsPerDim: number;
      stdError: number;
      images: number;
      timesteps: { samples: number };
      seed: number;
    } | null = null;
    if (nllSamples > 0) {
      const ddpm = DDPMScheduler.fromConfig(loaded.scheduler);
      const p = new Progress('bits/dim', 1 + nllSamples, { quiet: v.quiet, unit: 'rounds' });
      const yieldToEvents = macrotaskYielder();
      const b = await variationalBound(engine, {
        schedule: ddpm.schedule,
        D: PIXELS,
        x0: heldOut.images,
        timesteps: { samples: nllSamples },
        seed,
        batchSize: 32,
        predictionType: ddpm.predictionType,
        varianceType: BOUND_VARIANCE[ddpm.varianceType],
        clipDenoised: ddpm.clipSample,
        // the model is synchronous: yield now and then so that Ctrl-C is seen between its calls
        model: async (xt, ts) => {
          await yieldToEvents();
          if (ac.signal.aborted) throw new DdpmError('ABORTED', 'bits/dim: aborted between model calls');
          return unet.forward(
            xt,
            ts,
            uncond === undefined ? {} : { classLabels: new Int32Array(ts.length).fill(uncond) },
          );
        },
        onProgress: (q) => p.update(q.done),
      });
      p.finish();
      bound = {
        bitsPerDim: b.bitsPerDim,
        stdError: b.stdError,
        images: heldOut.N,
        timesteps: { samples: nllSamples },
        seed,
      };
    }

    if (ac.signal.aborted) throw new DdpmError('ABORTED', 'eval: interrupted');
    printTable([
      [
        `samples (${n}, ${sampler}${karras ? ' karras' : ''} ${calls} ${sampler === 'heun' ? 'calls' : 'steps'}${perClass ? `, per class, guidance ${perClass.guidanceScale}` : ''}${ag.autoguidance ? `, autoguidance ${ag.autoguidance.scale}` : ''})`,
        sampleRow,
        '',
      ],
      [`training digits (${trainRow.n})`, trainRow, ''],
      [
        `held-out digits (${heldOut.N})`,
        heldOutRow,
        bound ? `${bound.bitsPerDim.toFixed(3)} ± ${bound.stdError.toFixed(3)}` : 'not computed',
      ],
    ]);
    if (perClass && perClassRow) {
      console.log('');
      printPerClassTable(perClassRow);
      console.log(
        `per class: sample i asks for digit i mod 10, guidance W = ${perClass.guidanceScale}${perClass.guidanceFrom === '--guidance' ? '' : ` (from ${perClass.guidanceFrom})`}${guided ? '' : ' (W = 0: the unconditional model)'}`,
      );
    }
    console.log(
      `classifier: ${classifierFile}${trained ? ' (trained now)' : ''}, ${(100 * classifierAccuracy).toFixed(1)}% right on the held-out digits`,
    );
    if (ag.description) console.log(`samples: ${ag.description}; bits/dim is the model's alone`);
    if (bound)
      console.log(
        `bits/dim: variational bound on all ${bound.images} held-out digits, ${nllSamples} random timestep(s) per digit (unbiased; ± one standard error), seed ${seed}`,
      );
    if (v.json) {
      const json = {
        format: 'ddpm-eval-1',
        model: loaded.dir,
        sampler,
        karras,
        steps,
        modelCalls: calls,
        eta: eta ?? null,
        seed,
        autoguidance: ag.autoguidance
          ? {
              scale: ag.autoguidance.scale,
              maxTimestep: ag.autoguidance.maxTimestep ?? null,
              description: ag.description,
            }
          : null,
        classifier: { file: classifierFile, heldOutAccuracy: classifierAccuracy, features: FEATURES },
        samples: sampleRow,
        trainingDigits: trainRow,
        heldOut: { ...heldOutRow, bound },
        perClass:
          perClass && perClassRow
            ? {
                guidanceScale: perClass.guidanceScale,
                guidanceFrom: perClass.guidanceFrom,
                labels: 'i mod 10',
                ...perClassRow,
              }
            : null,
      };
      await writeFileAtomic(v.json, `${JSON.stringify(json, null, 2)}\n`);
    }
  } catch (e) {
    if (!(ac.signal.aborted && e instanceof DdpmError && e.code === 'ABORTED')) throw e;
    if (!v.quiet) console.error(`\ninterrupted (${e.message}): nothing written`);
    process.exitCode = 130;
  } finally {
    process.removeListener('SIGINT', onSigint);
    engine.dispose();
  }
}

/** Rows: classified as the digit asked for, confident ≥ 0.9; columns: the digits and their mean. */
function printPerClassTable(p: PerClassScores): void {
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  const header = ['per class', ...p.classes.map((s) => `${s.label} (${s.n})`), 'mean'];
  const rows = [
    ['classified as asked', ...p.classes.map((s) => pct(s.accuracy)), pct(p.meanAccuracy)],
    ['confident ≥ 0.9', ...p.classes.map((s) => pct(s.confident)), pct(p.meanConfident)],
  ];
  const width = header.map((h, j) => Math.max(h.length, ...rows.map((r) => r[j].length)));
  const line = (r: string[]) => `| ${r.map((x, j) => x.padEnd(width[j])).join(' | ')} |`;
  console.log(line(header));
  console.log(`|${width.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const r of rows) console.log(line(r));
}

/** The classifier from `file` if it exists, else trained on the training digits and saved there. */
async function getClassifier(
  engine: Engine,
  fileArg: string | undefined,
  train: Digits,
  heldOut: Digits,
  quiet?: boolean,
): Promise<{ classifier: DigitClassifier; file: string; trained: boolean }> {
  const file = fileArg ?? join(tmpdir(), `${CLASSIFIER_FORMAT}.safetensors`);
  if (
    await stat(file).then(
      (s) => s.isFile(),
      () => false,
    )
  ) {
    try {
      return { classifier: DigitClassifier.fromBytes(engine, await readRegularFile(file), file), file, trained: false };
    } catch (e) {
      // the default cache is ours to replace (an older version, a torn write); a file the user named is not
      if (fileArg !== undefined) throw e;
      if (!quiet) console.error(`retraining the classifier: ${(e as Error).message}`);
    }
  }
  const o = CLASSIFIER_TRAINING;
  const progress = new Progress('classifier', o.epochs * Math.floor(train.N / o.batchSize), { quiet });
  const classifier = trainClassifier(engine, train.images, train.labels, {
    ...o,
    onStep: (s) => progress.update(s.step, `loss ${s.loss.toFixed(3)}`),
  });
  progress.finish();
  classifier.metadata.heldout_accuracy = accuracy(classifier.classify(heldOut.images).probs, heldOut.labels).toFixed(4);
  await writeFileAtomic(file, classifier.toBytes());
  return { classifier, file, trained: true };
}

/** n samples (n, 1, 28, 28) as the PNG's bytes mapped back to [−1, 1]; a non-finite value is an error. */
function quantize(x: Float32Array, n: number): Float32Array {
  const { images } = tensorToImages(x, [n, 1, SIDE, SIDE]);
  const out = new Float32Array(n * PIXELS);
  images.forEach((img, i) => {
    for (let p = 0; p < PIXELS; p++) out[i * PIXELS + p] = img.data[4 * p] / 127.5 - 1;
  });
  return out;
}

/** n digits spread evenly over a class-ordered split. */
function spread(d: Digits, n: number): Float32Array {
  const out = new Float32Array(n * PIXELS);
  for (let k = 0; k < n; k++) {
    const i = Math.floor((k * d.N) / n);
    out.set(d.images.subarray(i * PIXELS, (i + 1) * PIXELS), k * PIXELS);
  }
  return out;
}

function printTable(rows: [string, RowNumbers, string][]): void {
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  const cells = rows.map(([label, r, bpd], i) => {
    const h = r.classHistogram;
    const lo = h.indexOf(Math.min(...h)),
      hi = h.indexOf(Math.max(...h));
    return [
      label,
      pct(r.confident),
      `${pct(h[lo])} (${lo}) – ${pct(h[hi])} (${hi})`,
      i === rows.length - 1 ? '0 (reference)' : r.frechetDistance.toFixed(3),
      bpd,
    ];
  });
  const header = ['', 'confident ≥ 0.9', 'classes min–max', 'Fréchet distance', 'bits/dim'];
  const width = header.map((hd, j) => Math.max(hd.length, ...cells.map((r) => r[j].length)));
  const line = (r: string[]) => `| ${r.map((s, j) => s.padEnd(width[j])).join(' | ')} |`;
  console.log(line(header));
  console.log(`|${width.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const r of cells) console.log(line(r));
}
