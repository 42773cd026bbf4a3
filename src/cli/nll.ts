// ddpm nll: the variational bound (Ho et al. 2020, eq. 5) on held-out images, in bits/dim.
import { DdpmError } from '../errors.js';
import { Engine } from '../engine/engine.js';
import { DDPMScheduler } from '../diffusion/ddpm.js';
import { variationalBound, type BoundOptions, type BoundVarianceType } from '../diffusion/bound.js';
import { loadImageFolder } from '../io/image-folder.js';
import { loadMnist } from '../io/mnist.js';
import { choiceOption, intOption, parseCommand, threadsOption } from './args.js';
import { loadModelFolder } from './files.js';
import { Progress } from './progress.js';

export const NLL_HELP = `usage: ddpm nll [--model DIR|NAME] --data mnist|DIR [options]

Estimates the variational bound on −log p(x_0) (Ho et al. 2020, eq. 5: prior + Σ KL + discretized
decoder) on held-out images, in bits/dim, with its standard error over the images.

  --model DIR|NAME    model folder or shipped model (as for 'ddpm sample': mnist, mnist-cond); its
                      scheduler_config.json gives the schedule, prediction type and variance type.
                      Default: the package's models/mnist
  --data SOURCE       mnist (its 2,000-digit test split) or a folder of PNGs of the model's size
  --n N               images to evaluate, spread evenly over the data set. Default: 256
  --timesteps MODE    all (every t: exact, T model calls per image), stride:K (every K-th t), or
                      samples:K (K random t per image: unbiased). Default: samples:20
  --batch B           images per model call. Default: 32
  --seed S            seed of x_t's noise and the timestep draws. Default: 0
  --threads N|auto    worker threads. Default: auto
  --bad-files P       PNG folders: skip or fail (default) on an unreadable file
  --json              print the result as one JSON object on stdout (progress stays on stderr)
  --quiet             no progress bar

A class-conditional model is evaluated with its unconditional label (num_class_embeds − 1).`;

function parseTimesteps(v: string | undefined): BoundOptions['timesteps'] {
  if (v === undefined) return { samples: 20 };
  if (v === 'all') return 'all';
  const m = /^(stride|samples):(\d+)$/.exec(v);
  const k = m ? Number(m[2]) : NaN;
  if (!m || !(k >= 1))
    throw new DdpmError('INVALID_ARGUMENT', `--timesteps must be all, stride:K or samples:K with K >= 1, found '${v}'`);
  return m[1] === 'stride' ? { stride: k } : { samples: k };
}

/** diffusers' variance types as the bound reads them (the _log variants are the same variances). */
const BOUND_VARIANCE: Record<string, BoundVarianceType> = {
  fixed_small: 'fixed_small',
  fixed_small_log: 'fixed_small',
  fixed_large: 'fixed_large',
  fixed_large_log: 'fixed_large',
  learned: 'learned',
  learned_range: 'learned_range',
};

export async function nllCommand(argv: string[]): Promise<void> {
  const v = parseCommand(
    argv,
    {
      model: { type: 'string' },
      data: { type: 'string' },
      n: { type: 'string' },
      timesteps: { type: 'string' },
      batch: { type: 'string' },
      seed: { type: 'string' },
      threads: { type: 'string' },
      'bad-files': { type: 'string' },
      json: { type: 'boolean' },
    },
    NLL_HELP,
  );
  if (!v) return;
  if (!v.data) throw new DdpmError('INVALID_ARGUMENT', '--data is required (mnist or a folder of PNGs)');
  const timesteps = parseTimesteps(v.timesteps);
  const nWanted = intOption('n', v.n, 256, 1, 1_000_000);
  const batch = intOption('batch', v.batch, 32, 1, 4096);
  const seed = intOption('seed', v.seed, 0, 0, 2 ** 32 - 1);
  const policy = choiceOption('bad-files', v['bad-files'], 'fail', ['skip', 'fail'] as const);
  const engine = await Engine.create({ threads: threadsOption(v.threads) });
  try {
    const loaded = await loadModelFolder(engine, v.model);
    if (loaded.kind !== 'unet')
      throw new DdpmError(
        'UNSUPPORTED',
        `${loaded.dir}: nll needs an image model (UNet2DModel); the bound's decoder is over 8-bit pixels`,
      );
    const unet = loaded.model;
    const c = unet.config;
    const scheduler = DDPMScheduler.fromConfig(loaded.scheduler);
    let x: Float32Array, N: number, C: number, H: number;
    if (v.data === 'mnist') {
      const d = await loadMnist('test');
      [x, N, C, H] = [d.images, d.N, 1, 28];
    } else {
      const f = await loadImageFolder(v.data, {
        channels: c.in_channels === 1 || c.in_channels === 3 ? c.in_channels : undefined,
        size: { width: c.sample_size, height: c.sample_size },
        policy,
      });
      if (f.skipped.length && !v.quiet)
        console.error(
          `skipped ${f.skipped.length} unreadable file(s), e.g. ${f.skipped[0].file}: ${f.skipped[0].reason}`,
        );
      [x, N, C, H] = [f.images, f.N, f.C, f.H];
    }
    if (C !== c.in_channels || H !== c.sample_size) {
      throw new DdpmError(
        'SHAPE_MISMATCH',
        `--data ${v.data}: images are ${C}×${H}×${H}, the model takes ${c.in_channels}×${c.sample_size}×${c.sample_size}`,
      );
    }
    // n images spread evenly over the set (MNIST's test split is ordered by class)
    const D = C * H * H;
    const n = Math.min(nWanted, N);
    const x0 = new Float32Array(n * D);
    for (let k = 0; k < n; k++) {
      const i = Math.floor((k * N) / n);
      x0.set(x.subarray(i * D, (i + 1) * D), k * D);
    }
    const uncond = c.num_class_embeds === null ? undefined : c.num_class_embeds - 1;
    const rounds =
      timesteps === 'all'
        ? scheduler.numTrainTimesteps
        : 'stride' in timesteps!
          ? 1 + Math.ceil((scheduler.numTrainTimesteps - 1) / timesteps.stride)
          : 1 + timesteps!.samples;
    const progress = new Progress('nll', rounds, { quiet: v.quiet, unit: 'rounds' });
    const r = await variationalBound(engine, {
      schedule: scheduler.schedule,
      D,
      x0,
      timesteps,
      seed,
      batchSize: batch,
      predictionType: scheduler.predictionType,
      varianceType: BOUND_VARIANCE[scheduler.varianceType],
      clipDenoised: scheduler.clipSample,
      model: (xt, ts) =>
        unet.forward(xt, ts, uncond === undefined ? {} : { classLabels: new Int32Array(ts.length).fill(uncond) }),
      onProgress: (p) => progress.update(p.done),
    });
    progress.finish();
    const mode =
      timesteps === 'all'
        ? 'all'
        : 'stride' in timesteps!
          ? `stride:${timesteps.stride}`
          : `samples:${timesteps!.samples}`;
    if (v.json) {
      const { bitsPerDim, stdError, priorBpd, klBpd, decoderBpd } = r;
      const result = { bitsPerDim, stdError: Number.isFinite(stdError) ? stdError : null, priorBpd, klBpd, decoderBpd };
      console.log(JSON.stringify({ ...result, images: n, data: v.data, model: loaded.dir, timesteps: mode, seed }));
      return;
    }
    console.log(
      `bits/dim  ${r.bitsPerDim.toFixed(4)} ± ${r.stdError.toFixed(4)}   (${n} images of ${v.data}, timesteps ${mode}, seed ${seed})`,
    );
    console.log(`  prior   ${r.priorBpd.toFixed(4)}`);
    console.log(`  KL      ${r.klBpd.toFixed(4)}   (Σ L_{t−1}, t = 2 … T)`);
    console.log(`  decoder ${r.decoderBpd.toFixed(4)}   (L_0)`);
  } finally {
    engine.dispose();
  }
}
