// ddpm sample: a PNG grid of samples from a model folder.
// The sampling is DDPMPipeline.run (src/pipelines/ddpm.ts); this file only parses flags and writes files.
import { DdpmError } from '../errors.js';
import { Engine } from '../engine/engine.js';
import { tensorToImages, toPng } from '../io/image.js';
import { DDPMPipeline } from '../pipelines/ddpm.js';
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
  type LoadedModel,
} from './files.js';
import { scatterImage, trajectoryStrip } from './plot.js';

export const SAMPLE_HELP = `usage: ddpm sample [options]

Samples images from a diffusion model and writes them as one PNG grid (ceil(sqrt(n)) columns).

  --model DIR|NAME   model folder: diffusers UNet2DModel (config.json, diffusion_pytorch_model.safetensors)
                     with scheduler_config.json, a diffusers pipeline folder (model_index.json, unet/,
                     scheduler/), or a folder written by 'ddpm train', unet.save() (no scheduler config:
                     diffusers' DDPMScheduler defaults, with a notice) or pipe.save(); or a shipped
                     model by name: mnist, mnist-cond (class-conditional; a folder of that name wins).
                     Default: the package's models/mnist
${SAMPLER_HELP}
  --n N              number of samples. Default: 64 (images), 1000 (2-D points)
  --batch B          samples per model call (memory). Default: 16
  --seed S           noise seed (integer >= 0). Default: 0. Same seed → same PNG bytes
  --threads N|auto   worker threads. Default: auto
  --out FILE         PNG to write. Default: samples.png
  --trajectory FILE  also write a strip of x_t (top row) and the predicted x̂_0 (bottom row) after ~8
                     model calls of the first sample, each column labelled with its call and t
  --class K          class label, for class-conditional models (num_class_embeds)
  --guidance W       classifier-free guidance: ε = ε_u + W·(ε_c − ε_u), with the unconditional label
                     num_class_embeds − 1 (the model must have been trained with that label dropped in);
                     0 is the unconditional model, 1 the conditional one. Default: the model's
                     sampling_defaults.json (mnist-cond: the W its guidance sweep chose) for --class
                     0 … num_class_embeds − 2, else none
${AUTOGUIDANCE_HELP}
  --scale K          enlarge the PNG K times (nearest neighbour). Default: 1
  --json             print what was written and the timings as one JSON object on stdout
  --quiet            no progress bar

A sample does not depend on --batch, --n or --threads: sample i's noise is addressed at offset i·D.
Models of 2-D points (MLPDenoiser, from 'ddpm train --data two-moons') are drawn as a scatter plot.`;

export async function sampleCommand(argv: string[]): Promise<void> {
  const v = parseCommand(
    argv,
    {
      model: { type: 'string' },
      sampler: { type: 'string' },
      steps: { type: 'string' },
      eta: { type: 'string' },
      n: { type: 'string' },
      batch: { type: 'string' },
      seed: { type: 'string' },
      threads: { type: 'string' },
      out: { type: 'string' },
      trajectory: { type: 'string' },
      class: { type: 'string' },
      guidance: { type: 'string' },
      guide: { type: 'string' },
      autoguidance: { type: 'string' },
      'autoguidance-max-t': { type: 'string' },
      scale: { type: 'string' },
      json: { type: 'boolean' },
      karras: { type: 'boolean' },
    },
    SAMPLE_HELP,
  );
  if (!v) return;
  const t0 = performance.now();
  const batch = intOption('batch', v.batch, 16, 1, 4096);
  const seed = seedOption(v.seed);
  const scale = intOption('scale', v.scale, 1, 1, 64);
  const out = v.out ?? 'samples.png';
  const engine = await Engine.create({ threads: threadsOption(v.threads) });
  try {
    const loaded = await loadModelFolder(engine, v.model);
    for (const notice of loaded.notices) console.error(`ddpm: notice: ${notice}`);
    const { sampler, karras, scheduler, steps, calls, eta } = samplerChoice(v, loaded.scheduler, engine);
    const pipe = new DDPMPipeline(engine, loaded.model, scheduler);
    const cond = conditioning(loaded, v.class, v.guidance);
    const ag = await autoguidanceChoice(engine, loaded, v);
    const clipNotice = guidedClippingNotice(sampler, loaded.scheduler, ag.autoguidance !== null);
    if (clipNotice) console.error(`ddpm: notice: ${clipNotice}`);
    const guidanceFrom =
      cond.guidanceScale === undefined ? null : v.guidance === undefined ? loaded.defaults.file! : '--guidance';
    const shape = pipe.sampleShape;
    const n = intOption('n', v.n, shape.length === 1 ? 1000 : 64, 1, 1_000_000);
    if (v.trajectory && shape.length === 1)
      throw new DdpmError('INVALID_ARGUMENT', '--trajectory needs an image model');
    if (shape.length === 1 && shape[0] !== 2)
      throw new DdpmError(
        'UNSUPPORTED',
        `${loaded.dir}: samples of ${shape[0]} values cannot be drawn (2-D points or images)`,
      );
    const record = new Set(v.trajectory ? spreadSteps(calls, 8) : []);
    const trajectory: { step: number; t: number; xt: Float32Array; x0: Float32Array }[] = [];
    const D = shape.reduce((a, b) => a * b, 1);
    const { progress, onStep, batches } = samplingProgress(calls, n, batch, v.quiet);
    const tLoad = performance.now();
    const r = await pipe.run({
      batchSize: n,
      maxBatch: batch,
      numInferenceSteps: steps,
      seed,
      eta,
      ...cond,
      autoguidance: ag.autoguidance,
      onStep: (done, total, info) => {
        onStep(done, total, info);
        // the trajectory is the first sample's: calls 1 … calls of the first batch
        if (info.batchStart === 0 && record.has(done))
          trajectory.push({ step: done, t: info.t, xt: info.sample.slice(0, D), x0: info.x0.slice(0, D) });
      },
    });
    progress.finish();
    const tSample = performance.now();
    const written: { file: string; width: number; height: number; bytes: number }[] = [];
    const write = async (file: string, png: Uint8Array, width: number, height: number) => {
      await writeFileAtomic(file, png);
      written.push({ file, width, height, bytes: png.length });
    };
    if (shape.length === 1) {
      const plot = scatterImage(r.tensor);
      await write(out, toPng(plot, { scale }), plot.width * scale, plot.height * scale);
    } else {
      const cols = Math.ceil(Math.sqrt(n));
      const png = toPng(r.images, { grid: { cols }, scale });
      await write(out, png, ...gridSize(cols, n, shape, scale));
    }
    if (v.trajectory) {
      const image = (x: Float32Array) => tensorToImages(x, [1, ...shape]).images[0];
      const strip = trajectoryStrip(
        trajectory.map((f) => ({ step: f.step, t: Math.round(f.t * 100) / 100, xt: image(f.xt), x0: image(f.x0) })),
      );
      await write(v.trajectory, toPng(strip, { scale }), strip.width * scale, strip.height * scale);
    }
    const tEnd = performance.now();
    if (!v.quiet)
      console.error(
        `wrote ${out} (${n} samples, ${sampler}${karras ? ' karras' : ''} ${calls} ${sampler === 'heun' ? `model calls (${steps} steps)` : 'steps'}, seed ${seed}${cond.classLabels === undefined ? '' : `, class ${cond.classLabels}${cond.guidanceScale === undefined ? '' : `, guidance ${cond.guidanceScale}${guidanceFrom === '--guidance' ? '' : ` from ${guidanceFrom}`}`}`}${ag.description ? `, ${ag.description}` : ''})${v.trajectory ? ` and ${v.trajectory} (steps ${trajectory.map((f) => f.step).join(', ')})` : ''}`,
      );
    if (v.json) {
      const ms = (a: number, b: number) => Math.round(b - a);
      console.log(
        JSON.stringify({
          model: loaded.dir,
          sampler,
          karras,
          steps,
          modelCalls: calls,
          n,
          batch,
          seed,
          eta: eta ?? null,
          scale,
          ...(cond.classLabels === undefined
            ? {}
            : { class: cond.classLabels, guidance: cond.guidanceScale ?? null, guidanceFrom }),
          autoguidance: ag.autoguidance
            ? {
                scale: ag.autoguidance.scale,
                maxTimestep: ag.autoguidance.maxTimestep ?? null,
                description: ag.description,
              }
            : null,
          engine: { build: engine.info.build, threads: engine.info.threads },
          written,
          trajectorySteps: v.trajectory ? trajectory.map((f) => f.step) : null,
          notices: clipNotice ? [...loaded.notices, clipNotice] : loaded.notices,
          timingsMs: {
            load: ms(t0, tLoad),
            sample: ms(tLoad, tSample),
            write: ms(tSample, tEnd),
            total: ms(t0, tEnd),
            perModelCall: Math.round(((tSample - tLoad) / (calls * batches)) * 10) / 10,
          },
        }),
      );
    }
  } finally {
    engine.dispose();
  }
}

/** Width and height of a grid of n images with `cols` columns and 2-pixel padding, enlarged `scale` times. */
function gridSize(cols: number, n: number, shape: number[], scale: number): [number, number] {
  const c = Math.min(cols, n),
    rows = Math.ceil(n / c);
  return [(c * shape[2] + (c + 1) * 2) * scale, (rows * shape[1] + (rows + 1) * 2) * scale];
}

/**
 * --class / --guidance checked against the model: what the pipeline's run() takes. Without --guidance, the
 * model's stored guidance (sampling_defaults.json) applies to the classes 0 … K − 2; the unconditional
 * label K − 1 is drawn unguided (guidance would not change it: ε_u + W·(ε_u − ε_u) = ε_u).
 */
function conditioning(
  loaded: LoadedModel,
  classArg: string | undefined,
  guidanceArg: string | undefined,
): { classLabels?: number; guidanceScale?: number } {
  const K = loaded.kind === 'unet' ? loaded.model.config.num_class_embeds : null;
  if (K === null) {
    if (classArg !== undefined || guidanceArg !== undefined) {
      throw new DdpmError(
        'INVALID_ARGUMENT',
        `--class/--guidance: ${loaded.dir} is not class-conditional${loaded.kind === 'unet' ? ' (its config has no num_class_embeds)' : ''}`,
      );
    }
    return {};
  }
  if (classArg === undefined)
    throw new DdpmError(
      'INVALID_ARGUMENT',
      `${loaded.dir} is class-conditional (num_class_embeds = ${K}): pass --class K`,
    );
  if (guidanceArg === undefined) {
    const classLabels = intOption('class', classArg, 0, 0, K - 1);
    const w = loaded.defaults.guidanceScale;
    return w === undefined || classLabels === K - 1 ? { classLabels } : { classLabels, guidanceScale: w };
  }
  if (K < 2)
    throw new DdpmError(
      'INVALID_ARGUMENT',
      `--guidance needs an unconditional label besides the classes; num_class_embeds is ${K}`,
    );
  return {
    classLabels: intOption('class', classArg, 0, 0, K - 2),
    guidanceScale: numberOption('guidance', guidanceArg, 1, 0, 100),
  };
}

/** ~k step counts spread over 1 … steps, always including the last. */
export function spreadSteps(steps: number, k: number): number[] {
  if (steps <= k) return Array.from({ length: steps }, (_, i) => i + 1);
  return Array.from({ length: k }, (_, i) => Math.round(1 + (i * (steps - 1)) / (k - 1)));
}
