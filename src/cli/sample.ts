// ddpm sample: a PNG grid of samples from a model folder.
import { DdpmError } from '../errors.js';
import { Engine } from '../engine/engine.js';
import { encodePng, imageGrid, tensorToImages } from '../io/png.js';
import { choiceOption, intOption, numberOption, parseCommand, seedOption, threadsOption } from './args.js';
import { loadModelFolder, makeScheduler, writeFileAtomic, type LoadedModel } from './files.js';
import { generate, spreadSteps, type ArrayModel } from './generate.js';
import { scatterImage } from './plot.js';
import { Progress } from './progress.js';

export const SAMPLE_HELP = `usage: ddpm sample [options]

Samples images from a diffusion model and writes them as one PNG grid (ceil(sqrt(n)) columns).

  --model DIR        model folder: diffusers UNet2DModel (config.json, diffusion_pytorch_model.safetensors)
                     with scheduler_config.json, a diffusers pipeline folder (unet/, scheduler/), or a
                     folder written by 'ddpm train'. Default: the package's models/mnist
  --sampler S        ddpm (ancestral, Ho et al. 2020) or ddim (Song et al. 2021). Default: ddim
  --steps N          inference steps in [1, T]. Default: 50 for ddim, T (the paper's chain) for ddpm
  --eta X            ddim only: 0 deterministic (default) … 1 DDPM-like noise
  --n N              number of samples. Default: 64 (images), 1000 (2-D points)
  --batch B          samples per model call (memory). Default: 16
  --seed S           noise seed (integer >= 0). Default: 0. Same seed → same PNG bytes
  --threads N|auto   worker threads. Default: auto
  --out FILE         PNG to write. Default: samples.png
  --trajectory FILE  also write a strip of x_t (top row) and the predicted x̂_0 (bottom row) at ~8 steps
                     of the first sample
  --class K          class label, for class-conditional models (num_class_embeds)
  --guidance W       classifier-free guidance: ε = ε_u + W·(ε_c − ε_u), with the unconditional label
                     num_class_embeds − 1 (the model must have been trained with that label dropped in)
  --quiet            no progress bar

A sample does not depend on --batch, --n or --threads: sample i's noise is addressed at offset i·D.
Models of 2-D points (MLPDenoiser, from 'ddpm train --data two-moons') are drawn as a scatter plot.`;

export async function sampleCommand(argv: string[]): Promise<void> {
  const v = parseCommand(argv, {
    model: { type: 'string' }, sampler: { type: 'string' }, steps: { type: 'string' }, eta: { type: 'string' },
    n: { type: 'string' }, batch: { type: 'string' }, seed: { type: 'string' }, threads: { type: 'string' },
    out: { type: 'string' }, trajectory: { type: 'string' }, class: { type: 'string' }, guidance: { type: 'string' },
  }, SAMPLE_HELP);
  if (!v) return;
  const sampler = choiceOption('sampler', v.sampler, 'ddim', ['ddpm', 'ddim'] as const);
  if (v.eta !== undefined && sampler !== 'ddim') throw new DdpmError('INVALID_ARGUMENT', '--eta applies to --sampler ddim only');
  const eta = numberOption('eta', v.eta, 0, 0, 1);
  const batch = intOption('batch', v.batch, 16, 1, 4096);
  const seed = seedOption(v.seed);
  const out = v.out ?? 'samples.png';
  const engine = await Engine.create({ threads: threadsOption(v.threads) });
  try {
    const loaded = await loadModelFolder(engine, v.model);
    const scheduler = makeScheduler(sampler, loaded.scheduler, engine);
    const T = scheduler.numTrainTimesteps;
    const steps = intOption('steps', v.steps, sampler === 'ddim' ? Math.min(50, T) : T, 1, T);
    const { model, shape } = conditionedModel(loaded, v.class, v.guidance);
    const n = intOption('n', v.n, shape.length === 1 ? 1000 : 64, 1, 1_000_000);
    if (v.trajectory && shape.length === 1) throw new DdpmError('INVALID_ARGUMENT', '--trajectory needs an image model');
    const progress = new Progress('sampling', steps * Math.ceil(n / Math.min(batch, n)), { quiet: v.quiet });
    const r = await generate(engine, scheduler, model, {
      sampleShape: shape, n, batch, steps, seed, eta: sampler === 'ddim' ? eta : undefined,
      trajectorySteps: v.trajectory ? spreadSteps(steps, 8) : undefined,
      onStep: (d) => progress.update(d),
    });
    progress.finish();
    if (shape.length === 1) {
      if (shape[0] !== 2) throw new DdpmError('UNSUPPORTED', `${loaded.dir}: samples of ${shape[0]} values cannot be drawn (2-D points or images)`);
      await writeFileAtomic(out, encodePng(scatterImage(r.samples)));
    } else {
      const { images } = tensorToImages(r.samples, [n, ...shape]);
      await writeFileAtomic(out, encodePng(imageGrid(images, Math.ceil(Math.sqrt(n)))));
    }
    if (v.trajectory) {
      const D = shape.reduce((a, b) => a * b, 1);
      const k = r.trajectory.length;
      const both = new Float32Array(2 * k * D);
      r.trajectory.forEach((f, i) => {
        both.set(f.xt, i * D);
        both.set(f.x0, (k + i) * D);
      });
      const { images } = tensorToImages(both, [2 * k, ...shape]);
      await writeFileAtomic(v.trajectory, encodePng(imageGrid(images, k)));
    }
    if (!v.quiet) console.error(`wrote ${out} (${n} samples, ${sampler} ${steps} steps, seed ${seed})${v.trajectory ? ` and ${v.trajectory} (steps ${r.trajectory.map((f) => f.step).join(', ')})` : ''}`);
  } finally {
    engine.dispose();
  }
}

/** The model call with class labels and classifier-free guidance applied, and one sample's shape. */
function conditionedModel(loaded: LoadedModel, classArg: string | undefined, guidanceArg: string | undefined): { model: ArrayModel; shape: number[] } {
  if (loaded.kind === 'mlp') {
    if (classArg !== undefined || guidanceArg !== undefined) throw new DdpmError('INVALID_ARGUMENT', `--class/--guidance: ${loaded.dir} is not class-conditional`);
    const m = loaded.model;
    return { model: (x, t) => m.forward(x, t), shape: [m.config.data_dim] };
  }
  const unet = loaded.model;
  const c = unet.config;
  const shape = [c.in_channels, c.sample_size, c.sample_size];
  const K = c.num_class_embeds;
  if (K === null) {
    if (classArg !== undefined || guidanceArg !== undefined) throw new DdpmError('INVALID_ARGUMENT', `--class/--guidance: ${loaded.dir} is not class-conditional (its config has no num_class_embeds)`);
    return { model: (x, t) => unet.forward(x, t), shape };
  }
  if (classArg === undefined) throw new DdpmError('INVALID_ARGUMENT', `${loaded.dir} is class-conditional (num_class_embeds = ${K}): pass --class K`);
  if (guidanceArg === undefined) {
    const label = intOption('class', classArg, 0, 0, K - 1);
    return { model: (x, t, N) => unet.forward(x, t, { classLabels: new Int32Array(N).fill(label) }), shape };
  }
  if (K < 2) throw new DdpmError('INVALID_ARGUMENT', `--guidance needs an unconditional label besides the classes; num_class_embeds is ${K}`);
  const label = intOption('class', classArg, 0, 0, K - 2);
  const w = numberOption('guidance', guidanceArg, 1, 0, 100);
  const uncond = K - 1;
  const Cin = c.in_channels * c.sample_size ** 2;
  return {
    shape,
    model: async (x, t, N) => {
      const eu = await unet.forward(x, t, { classLabels: new Int32Array(N).fill(uncond) });
      const ec = await unet.forward(x, t, { classLabels: new Int32Array(N).fill(label) });
      // guidance on the prediction (the first in_channels channels); a learned variance stays conditional
      const per = ec.length / N;
      for (let i = 0; i < ec.length; i++) if (i % per < Cin) ec[i] = eu[i] + w * (ec[i] - eu[i]);
      return ec;
    },
  };
}
