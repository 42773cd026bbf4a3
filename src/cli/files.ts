// Reading a model folder and writing outputs for the ddpm command (Node only).
import { mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DdpmError } from '../errors.js';
import type { Engine } from '../engine/engine.js';
import { DDPMScheduler } from '../diffusion/ddpm.js';
import { folderSource, modelLayout, readJsonFile as readSourceJson } from '../io/sources.js';
import { MLPDenoiser } from '../nn/mlp.js';
import { loadModel } from '../nn/registry.js';
import type { UNet2DModel } from '../nn/unet.js';
import { schedulerFromConfig, type PipelineScheduler } from '../pipelines/scheduler-choice.js';
import { fsError, readRegularText } from '../io/fs.js';

export const SCHEDULER_FILE = 'scheduler_config.json';

/** The package's own pretrained model: <package root>/models/mnist (this file is dist/cli/files.js). */
export function defaultModelDir(): string {
  return fileURLToPath(new URL('../../models/mnist', import.meta.url));
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
  if (json === null || typeof json !== 'object' || Array.isArray(json)) throw new DdpmError('FORMAT', `${file}: expected a JSON object`);
  return json as Record<string, unknown>;
}

export type LoadedModel =
  | { kind: 'unet'; model: UNet2DModel; scheduler: Record<string, unknown>; dir: string; notices: string[] }
  | { kind: 'mlp'; model: MLPDenoiser; scheduler: Record<string, unknown>; dir: string; notices: string[] };

/**
 * Loads a model folder: a diffusers UNet2DModel (config.json + diffusion_pytorch_model.safetensors), or
 * ddpm-wasm's MLPDenoiser (config.json with _class_name MLPDenoiser + model.safetensors), with the
 * scheduler's scheduler_config.json beside it — or a diffusers pipeline folder (model_index.json, unet/,
 * scheduler/). Classes come from the registry (nn/registry.ts). Without scheduler_config.json (what
 * `unet.save()` writes) diffusers' DDPMScheduler defaults are used, with a notice.
 */
export async function loadModelFolder(engine: Engine, dirArg: string | undefined): Promise<LoadedModel> {
  const dir = resolve(dirArg ?? defaultModelDir());
  if (!(await isDir(dir))) {
    if (dirArg === undefined) throw new DdpmError('FORMAT', `the default model (${dir}) is not installed; pass --model DIR (a diffusers folder, e.g. one written by 'ddpm train')`);
    throw new DdpmError('FORMAT', `--model ${dirArg}: no such folder`);
  }
  const layout = await modelLayout(folderSource(dir));
  const { model } = await loadModel(engine, layout.model);
  const notices: string[] = [];
  let scheduler = await readSourceJson(layout.scheduler, SCHEDULER_FILE);
  if (!scheduler) {
    notices.push(`${join(layout.scheduler.name, SCHEDULER_FILE)} is missing: using diffusers' DDPMScheduler defaults (1000 steps, linear betas 0.0001 … 0.02)`);
    scheduler = new DDPMScheduler().toConfig();
  }
  try {
    DDPMScheduler.fromConfig(scheduler); // checked now, so the error names the file
  } catch (e) {
    if (e instanceof DdpmError) throw new DdpmError(e.code, `${join(layout.scheduler.name, SCHEDULER_FILE)}: ${e.message}`, { cause: e });
    throw e;
  }
  return model instanceof MLPDenoiser ? { kind: 'mlp', model, scheduler, dir, notices } : { kind: 'unet', model, scheduler, dir, notices };
}

/** A scheduler of the requested kind from scheduler_config.json (diffusers lets either read the other's config). */
export function makeScheduler(kind: 'ddpm' | 'ddim', config: Record<string, unknown>, engine: Engine): PipelineScheduler {
  return schedulerFromConfig(kind, config, engine);
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
