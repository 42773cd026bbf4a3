// Reading a model folder and writing outputs for the ddpm command (Node only).
import { mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DdpmError } from '../errors.js';
import type { Engine } from '../engine/engine.js';
import { DDPMScheduler } from '../diffusion/ddpm.js';
import {
  SHIPPED_MODELS,
  folderSource,
  modelLayout,
  readJsonFile as readSourceJson,
  shippedModelHint,
  shippedModelUrl,
} from '../io/sources.js';
import { MLPDenoiser } from '../nn/mlp.js';
import { loadModel, type PretrainedModel } from '../nn/registry.js';
import type { UNet2DModel } from '../nn/unet.js';
import { pipelineScheduler, type PipelineScheduler } from '../pipelines/scheduler-choice.js';
import {
  MAX_AUTOGUIDANCE_SCALE,
  SAMPLING_DEFAULTS_FILE,
  loadGuide,
  readSamplingDefaults,
  type SamplingDefaults,
} from '../pipelines/defaults.js';
import type { Autoguidance } from '../pipelines/ddpm.js';
import { SAMPLER_NAMES, modelCallsForSteps, stepsForModelCalls, type SamplerName } from '../diffusion/samplers.js';
import { choiceOption, intOption, numberOption } from './args.js';
import { Progress } from './progress.js';
import { fsError, readRegularText } from '../io/fs.js';

export const SCHEDULER_FILE = 'scheduler_config.json';

/** The package's own pretrained model: <package root>/models/mnist (this file is dist/cli/files.js). */
export function defaultModelDir(): string {
  return shippedModelDir('mnist');
}

/** A shipped model's folder, <package root>/models/NAME (SHIPPED_MODELS). */
export function shippedModelDir(name: string): string {
  return fileURLToPath(shippedModelUrl(name)).replace(/[\\/]$/, '');
}

/**
 * --model's folder: the folder if one exists at that path (a folder always wins), else a shipped model's
 * folder by name (mnist → <package>/models/mnist), else an error listing the names. A shipped model that is
 * not there (mnist-cond before it is trained) is named as such.
 */
export async function resolveModelDir(arg: string | undefined): Promise<string> {
  if (arg === undefined) {
    const dir = defaultModelDir();
    if (!(await isDir(dir)))
      throw new DdpmError(
        'FORMAT',
        `the default model (${dir}) is not installed; pass --model DIR (a diffusers folder, e.g. one written by 'ddpm train')`,
      );
    return dir;
  }
  const dir = resolve(arg);
  if (await isDir(dir)) return dir;
  if (SHIPPED_MODELS.includes(arg)) {
    const shipped = shippedModelDir(arg);
    if (await isDir(shipped)) return shipped;
    throw new DdpmError(
      'FORMAT',
      `--model ${arg}: the shipped model ${arg} is not installed (no folder ${shipped})${shippedModelHint(arg)}`,
    );
  }
  // a path (./x, a/b) is a folder that is missing; a bare word may also have meant a shipped model
  if (/[\\/]/.test(arg) || arg.startsWith('.')) throw new DdpmError('FORMAT', `--model ${arg}: no such folder`);
  throw new DdpmError(
    'FORMAT',
    `--model ${arg}: no such folder, and no shipped model of that name (shipped: ${SHIPPED_MODELS.join(', ')})`,
  );
}

async function isDir(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isDirectory();
  } catch {
    return false;
  }
}

export async function readJson(file: string): Promise<Record<string, unknown>> {
  const text = await readRegularText(file, { maxBytes: 16 * 2 ** 20 }); // IO error naming the file; regular files only
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new DdpmError('FORMAT', `${file}: not valid JSON (${(e as Error).message})`, { cause: e });
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json))
    throw new DdpmError('FORMAT', `${file}: expected a JSON object`);
  return json as Record<string, unknown>;
}

interface LoadedCommon {
  scheduler: Record<string, unknown>;
  dir: string;
  notices: string[];
  /** The folder's sampling_defaults.json ({} without one). */
  defaults: SamplingDefaults;
  /** The autoguidance guide the defaults name (from its subfolder), else null. */
  guide: PretrainedModel | null;
}

export type LoadedModel =
  | ({ kind: 'unet'; model: UNet2DModel } & LoadedCommon)
  | ({ kind: 'mlp'; model: MLPDenoiser } & LoadedCommon);

/**
 * Loads a model folder: a diffusers UNet2DModel (config.json + diffusion_pytorch_model.safetensors), or
 * ddpm-wasm's MLPDenoiser (config.json with _class_name MLPDenoiser + model.safetensors), with the
 * scheduler's scheduler_config.json beside it — or a diffusers pipeline folder (model_index.json, unet/,
 * scheduler/). Classes come from the registry (nn/registry.ts). Without scheduler_config.json (what
 * `unet.save()` writes) diffusers' DDPMScheduler defaults are used, with a notice. `dirArg` may name a
 * shipped model (resolveModelDir); the folder's sampling_defaults.json, if any, is read and checked.
 */
export async function loadModelFolder(engine: Engine, dirArg: string | undefined): Promise<LoadedModel> {
  const dir = await resolveModelDir(dirArg);
  const root = folderSource(dir);
  const layout = await modelLayout(root);
  const { model } = await loadModel(engine, layout.model);
  const notices: string[] = [];
  let scheduler = await readSourceJson(layout.scheduler, SCHEDULER_FILE);
  if (!scheduler) {
    notices.push(
      `${join(layout.scheduler.name, SCHEDULER_FILE)} is missing: using diffusers' DDPMScheduler defaults (1000 steps, linear betas 0.0001 … 0.02)`,
    );
    scheduler = new DDPMScheduler().toConfig();
  }
  try {
    DDPMScheduler.fromConfig(scheduler); // checked now, so the error names the file
  } catch (e) {
    if (e instanceof DdpmError)
      throw new DdpmError(e.code, `${join(layout.scheduler.name, SCHEDULER_FILE)}: ${e.message}`, { cause: e });
    throw e;
  }
  const defaults = await readSamplingDefaults(
    root,
    model instanceof MLPDenoiser ? null : model.config.num_class_embeds,
  );
  const guide = await loadGuide(engine, root, defaults, model);
  return model instanceof MLPDenoiser
    ? { kind: 'mlp', model, scheduler, dir, notices, defaults, guide }
    : { kind: 'unet', model, scheduler, dir, notices, defaults, guide };
}

/** The sampler `name` (SAMPLER_NAMES) configured from the model's scheduler_config.json. */
export function makeScheduler(
  name: string,
  config: Record<string, unknown>,
  engine: Engine,
  karras?: boolean,
): PipelineScheduler {
  return pipelineScheduler(name, config, engine, { karras });
}

/**
 * `ddpm sample`'s and `ddpm eval`'s default: the cheapest cell of the quality-per-model-call sweep
 * (docs/sampler-quality.md, scripts/sampler-sweep.mjs) at least as good as DDIM with 50 steps on both the
 * confident fraction and the Fréchet distance — for the shipped MNIST model, at 500 samples per cell.
 */
export const DEFAULT_SAMPLER = 'dpm++2m-sde';
export const DEFAULT_MODEL_CALLS = 10;

/** The help lines of --sampler, --karras, --steps and --eta, shared by sample and eval. */
export const SAMPLER_HELP = `  --sampler S        ddpm (ancestral, Ho et al. 2020), ddim (Song et al. 2021), dpm++2m, dpm++3m,
                     dpm++2m-sde (DPM-Solver++, Lu et al. 2022), unipc (Zhao et al. 2023), euler, euler-a,
                     heun (Karras et al. 2022), configured from the model's scheduler_config.json as
                     diffusers' from_config does. Default: dpm++2m-sde (docs/sampler-quality.md)
  --karras           Karras σ spacing (use_karras_sigmas) for dpm++*, unipc, euler and heun
  --steps N          model calls (= inference steps, except heun: n steps make 2n − 1 calls, so N calls
                     run ⌊(N + 1)/2⌋ steps). Default: 10 for dpm++2m-sde, 50 for the others, T (the
                     paper's chain) for ddpm
  --eta X            ddim only: 0 deterministic (default) … 1 DDPM-like noise`;

export interface SamplerChoice {
  sampler: SamplerName;
  karras: boolean;
  scheduler: PipelineScheduler;
  /** setTimesteps' count. */
  steps: number;
  /** Model calls per sample: steps, or 2·steps − 1 for heun. */
  calls: number;
  /** DDIM's η, undefined for the others. */
  eta: number | undefined;
}

/** --sampler, --karras, --steps (model calls) and --eta, checked, with the scheduler built. */
export function samplerChoice(
  v: { sampler?: string; karras?: boolean; steps?: string; eta?: string },
  config: Record<string, unknown>,
  engine: Engine,
): SamplerChoice {
  const sampler = choiceOption('sampler', v.sampler, DEFAULT_SAMPLER, SAMPLER_NAMES);
  if (v.eta !== undefined && sampler !== 'ddim')
    throw new DdpmError('INVALID_ARGUMENT', '--eta applies to --sampler ddim only');
  const eta = numberOption('eta', v.eta, 0, 0, 1);
  const karras = !!v.karras;
  const scheduler = makeScheduler(sampler, config, engine, karras || undefined);
  const T = scheduler.numTrainTimesteps;
  const asked = intOption(
    'steps',
    v.steps,
    sampler === 'ddpm' ? T : Math.min(sampler === DEFAULT_SAMPLER ? DEFAULT_MODEL_CALLS : 50, T),
    1,
    sampler === 'heun' ? 2 * T - 1 : T,
  );
  const steps = stepsForModelCalls(sampler, asked);
  // an even budget leaves heun one call unused
  return {
    sampler,
    karras,
    scheduler,
    steps,
    calls: modelCallsForSteps(sampler, steps),
    eta: sampler === 'ddim' ? eta : undefined,
  };
}

/** The help lines of --guide, --autoguidance and --autoguidance-max-t, shared by sample and eval. */
export const AUTOGUIDANCE_HELP = `  --autoguidance W|off  autoguidance (Karras et al. 2024) for unconditional models: D = D_g + W·(D − D_g)
                     with a weaker guide model D_g (same schedule and prediction type); 1 is the model
                     alone, off none. Two model calls per guided step. Default: the model's
                     sampling_defaults.json (mnist: its guide/, the W and interval of its sweep), else off
  --autoguidance-max-t T|all  guide only at timesteps t <= T (limited-interval guidance). Default: the
                     model's sampling_defaults.json, else all
  --guide DIR        the guide model folder (default: the one sampling_defaults.json names)`;

/** What --guide, --autoguidance and --autoguidance-max-t resolve to, and a phrase for the output. */
export async function autoguidanceChoice(
  engine: Engine,
  loaded: LoadedModel,
  v: { guide?: string; autoguidance?: string; 'autoguidance-max-t'?: string },
): Promise<{ autoguidance: Autoguidance | null; description: string | null }> {
  const stored = loaded.defaults.autoguidance;
  if (v.autoguidance === 'off') {
    if (v.guide !== undefined || v['autoguidance-max-t'] !== undefined)
      throw new DdpmError('INVALID_ARGUMENT', '--guide/--autoguidance-max-t with --autoguidance off');
    return { autoguidance: null, description: null };
  }
  let guide = loaded.guide;
  let guideName = stored ? join(loaded.dir, stored.guide) : null;
  if (v.guide !== undefined) {
    const g = await loadModelFolder(engine, v.guide);
    guide = g.model;
    guideName = g.dir;
  }
  const explicit = v.autoguidance !== undefined || v['autoguidance-max-t'] !== undefined || v.guide !== undefined;
  if (!guide) {
    if (explicit)
      throw new DdpmError(
        'INVALID_ARGUMENT',
        `--autoguidance: ${loaded.dir} has no guide (no autoguidance in ${SAMPLING_DEFAULTS_FILE}); pass --guide DIR`,
      );
    return { autoguidance: null, description: null };
  }
  if (v.autoguidance === undefined && !stored)
    throw new DdpmError('INVALID_ARGUMENT', `--guide: pass --autoguidance W (${loaded.dir} has no stored scale)`);
  const scale = numberOption('autoguidance', v.autoguidance, stored?.scale ?? 1, 0, MAX_AUTOGUIDANCE_SCALE);
  const maxT =
    v['autoguidance-max-t'] === 'all'
      ? undefined
      : v['autoguidance-max-t'] === undefined
        ? stored?.maxTimestep
        : intOption('autoguidance-max-t', v['autoguidance-max-t'], 0, 0);
  const from = explicit ? '' : ` from ${loaded.defaults.file}`;
  return {
    autoguidance: { guide, scale, maxTimestep: maxT },
    description: `autoguidance ${scale} (guide ${guideName}${maxT === undefined ? '' : `, t <= ${maxT}`})${from}`,
  };
}

/**
 * A notice for autoguidance with DDIM on a scheduler config that clips x̂₀ (clip_sample, diffusers' default):
 * DDIM clips x̂₀ but keeps the unclipped ε̂ for the direction term, and guidance pushes x̂₀ past [−1, 1] at
 * every step, so the error grows with the steps (models/mnist, n = 500: 62% confident and a Fréchet distance
 * of 75 at DDIM-50, against 89% / 17 with clip_sample false and 79% / 17 unguided; docs/samplers.md).
 */
export function guidedClippingNotice(
  sampler: string,
  scheduler: Record<string, unknown>,
  autoguided: boolean,
): string | null {
  if (!autoguided || sampler !== 'ddim' || scheduler.clip_sample === false) return null;
  return 'autoguidance with ddim, whose clipped x̂₀ (clip_sample) does not match its ε̂, draws worse digits the more steps it takes (docs/samplers.md); the default dpm++2m-sde does not clip — or pass --autoguidance off';
}

/** `sampling 37/50 batch 2/4`: a progress bar over model calls, restarted per batch, and its onStep. */
export function samplingProgress(calls: number, n: number, batch: number, quiet: boolean | undefined) {
  const B = Math.min(batch, n);
  const batches = Math.ceil(n / B);
  const progress = new Progress('sampling', calls, { quiet, passes: batches });
  const onStep = (done: number, total: number, info: { batchStart: number }) => {
    const perChain = total / batches;
    const b = info.batchStart / B;
    if (done === b * perChain + 1) progress.pass(b);
    progress.update(done - b * perChain);
  };
  return { progress, onStep, batches };
}

/** Writes a file under a temporary name and renames it into place: no partial output file. */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    await mkdir(dirname(resolve(path)), { recursive: true });
    await writeFile(tmp, data);
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true }).catch(() => {});
    throw fsError(e, path, 'writing'); // IO: "disk full writing X", "read-only", "a parent is a file" …
  }
}
