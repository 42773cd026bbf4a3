// Reading a model folder and writing outputs for the ddpm command (Node only).
import { mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DdpmError } from '../errors.js';
import type { Engine } from '../engine/engine.js';
import { DDIMScheduler } from '../diffusion/ddim.js';
import { DDPMScheduler } from '../diffusion/ddpm.js';
import { MLPDenoiser, MLP_WEIGHTS_FILE } from '../nn/mlp.js';
import { UNet2DModel, WEIGHTS_FILE } from '../nn/unet.js';
import { fsError, readRegularFile, readRegularText } from '../io/fs.js';

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

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

export async function readJson(file: string): Promise<Record<string, unknown>> {
  let text: string;
  text = await readRegularText(file, { maxBytes: 16 * 2 ** 20 }); // IO error naming the file; regular files only
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
  | { kind: 'unet'; model: UNet2DModel; scheduler: Record<string, unknown>; dir: string }
  | { kind: 'mlp'; model: MLPDenoiser; scheduler: Record<string, unknown>; dir: string };

/**
 * Loads a model folder: a diffusers UNet2DModel (config.json + diffusion_pytorch_model.safetensors), or
 * ddpm-wasm's MLPDenoiser (config.json with _class_name MLPDenoiser + model.safetensors), with the
 * scheduler's scheduler_config.json beside it — or a diffusers pipeline folder (unet/ and scheduler/).
 */
export async function loadModelFolder(engine: Engine, dirArg: string | undefined): Promise<LoadedModel> {
  const dir = resolve(dirArg ?? defaultModelDir());
  if (!(await isDir(dir))) {
    if (dirArg === undefined) throw new DdpmError('FORMAT', `the default model (${dir}) is not installed; pass --model DIR (a diffusers folder, e.g. one written by 'ddpm train')`);
    throw new DdpmError('FORMAT', `--model ${dirArg}: no such folder`);
  }
  let modelDir = dir, schedFile = join(dir, SCHEDULER_FILE);
  if (!(await exists(join(dir, 'config.json'))) && (await exists(join(dir, 'unet', 'config.json')))) {
    modelDir = join(dir, 'unet');
    schedFile = join(dir, 'scheduler', SCHEDULER_FILE);
  }
  const configFile = join(modelDir, 'config.json');
  if (!(await exists(configFile))) throw new DdpmError('FORMAT', `${dir}: not a model folder (no config.json, no unet/config.json)`);
  const config = await readJson(configFile);
  if (!(await exists(schedFile))) throw new DdpmError('FORMAT', `${schedFile}: missing (the model folder needs its scheduler's config)`);
  const scheduler = await readJson(schedFile);
  try {
    DDPMScheduler.fromConfig(scheduler); // checked now, so the error names the file
  } catch (e) {
    if (e instanceof DdpmError) throw new DdpmError(e.code, `${schedFile}: ${e.message}`, { cause: e });
    throw e;
  }
  if (config._class_name === 'MLPDenoiser') {
    const wf = join(modelDir, MLP_WEIGHTS_FILE);
    const weights = await readRegularFile(wf);
    return { kind: 'mlp', model: MLPDenoiser.fromFiles(engine, config, weights, { config: configFile, weights: wf }), scheduler, dir };
  }
  if (config._class_name !== undefined && config._class_name !== 'UNet2DModel') {
    throw new DdpmError('FORMAT', `${configFile}: _class_name ${JSON.stringify(config._class_name)} is not supported (UNet2DModel or MLPDenoiser)`);
  }
  if (!(await exists(join(modelDir, WEIGHTS_FILE)))) throw new DdpmError('FORMAT', `${join(modelDir, WEIGHTS_FILE)}: missing`);
  return { kind: 'unet', model: await UNet2DModel.fromPretrained(engine, modelDir), scheduler, dir };
}

/** A scheduler of the requested kind from scheduler_config.json (diffusers lets either read the other's config). */
export function makeScheduler(kind: 'ddpm' | 'ddim', config: Record<string, unknown>, engine: Engine): DDPMScheduler | DDIMScheduler {
  return kind === 'ddim' ? DDIMScheduler.fromConfig(config, { engine }) : DDPMScheduler.fromConfig(config, { engine });
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
