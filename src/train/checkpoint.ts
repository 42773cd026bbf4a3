// Training checkpoints: one folder per step holding everything a resumed run needs to continue
// bit-identically, written so that a crash at any moment leaves the latest complete checkpoint loadable.
//
//   <root>/ckpt-000100/checkpoint.json                    manifest: format + version, counters, RNG and
//                                                         data-order state, trainer config, ᾱ, model
//                                                         class + config, the byte size of every file
//                      model.safetensors                  θ
//                      ema.safetensors                    EMA of θ (when the trainer keeps one)
//                      optimizer.exp_avg.safetensors      AdamW m
//                      optimizer.exp_avg_sq.safetensors   AdamW v
//   <root>/latest                                         "ckpt-000100": the newest complete checkpoint
//
// Save: files go to ckpt-000100.tmp/ (each fsynced), the folder is renamed to ckpt-000100, then `latest`
// is replaced by writing latest.tmp and renaming it; only then are older checkpoints (beyond `keep`) and
// stale *.tmp leftovers of crashed saves removed. Load: `latest`, or if it is missing or names a missing
// folder, the highest-numbered complete folder; every file is checked (present, size as recorded, valid
// safetensors, tensors matching the model, all values finite) with a FORMAT error naming the file.
// Node-only (node:fs) modules are imported inside the functions that need them, so importing this module
// is safe in browsers and edge runtimes; checkpointFiles / parseCheckpoint work anywhere.
import { DdpmError } from '../errors.js';
import type { Engine } from '../engine/engine.js';
import { blockTensors, checkBlockTensors, firstNonFinite, loadBlock, paramAt } from '../io/param-tensors.js';
import { readSafetensors, writeSafetensors, type SafeTensor } from '../io/safetensors.js';
import type { Denoiser } from '../nn/denoiser.js';
import { MLPDenoiser, parseMLPConfig } from '../nn/mlp.js';
import type { ParamBlock } from '../nn/params.js';
import { UNet2DModel } from '../nn/unet.js';
import { parseUNetConfig } from '../nn/unet-config.js';
import { TRAINER_CONFIG_VERSION, parseTrainerConfig, type Trainer, type TrainerConfig } from './trainer.js';
import { fsPromises, pathModule } from '#platform';

export const CHECKPOINT_FORMAT = 'ddpm-wasm-checkpoint';
export const CHECKPOINT_VERSION = 1;
export const MANIFEST_FILE = 'checkpoint.json';
export const LATEST_FILE = 'latest';

/** The four state blocks and their files. */
const BLOCK_FILES = {
  model: 'model.safetensors',
  ema: 'ema.safetensors',
  exp_avg: 'optimizer.exp_avg.safetensors',
  exp_avg_sq: 'optimizer.exp_avg_sq.safetensors',
} as const;
type BlockKey = keyof typeof BLOCK_FILES;

export interface CheckpointManifest {
  format: typeof CHECKPOINT_FORMAT;
  format_version: number;
  step: number;
  optimizer_step: number;
  skipped_steps: number;
  non_finite_in_a_row: number;
  /** All randomness is addressed by (seed, step) (see trainer.ts), so this is the whole generator state. */
  rng: { generator: 'philox4x32-10'; seed: number; step: number };
  /** Where the next batch starts in the shuffled data stream (derived from step; recorded to check the data). */
  data_order: { dataset_size: number; batch_size: number; epoch: number; position: number };
  trainer_config: TrainerConfig;
  alphas_cumprod: number[];
  /** The importance sampler's loss history (Trainer.getTimestepHistory), when it keeps one. */
  timestep_history?: { losses: number[]; seen: number[] } | null;
  model: { class: 'MLPDenoiser' | 'UNet2DModel'; config: unknown };
  /** The Wasm build that wrote it: resuming is bit-identical on the same build (relaxed-SIMD builds may differ in the last bits). */
  engine: { build: string; runtime: string };
  /** Byte size of every other file in the folder. */
  files: Record<string, number>;
}

export interface Checkpoint {
  /** Where it was read from (for messages). */
  source: string;
  manifest: CheckpointManifest;
  blocks: Partial<Record<BlockKey, Map<string, SafeTensor>>>;
}

function fail(file: string, what: string): never {
  throw new DdpmError('FORMAT', `${file}: ${what}`);
}

function describeModel(model: Denoiser): CheckpointManifest['model'] {
  if (model instanceof MLPDenoiser) return { class: 'MLPDenoiser', config: model.config };
  if (model instanceof UNet2DModel) return { class: 'UNet2DModel', config: model.config };
  throw new DdpmError('UNSUPPORTED', 'checkpoint: only MLPDenoiser and UNet2DModel models can be saved');
}

/** The checkpoint's files, in memory. Throws NON_FINITE (and writes nothing) if any state is not finite. */
export function checkpointFiles(trainer: Trainer): { manifest: CheckpointManifest; files: Map<string, Uint8Array> } {
  const e = trainer.engine;
  const blocks: [BlockKey, ParamBlock | null][] = [['model', trainer.model.params], ['ema', trainer.ema], ['exp_avg', trainer.m], ['exp_avg_sq', trainer.v]];
  const c = trainer.getCounters();
  for (const [key, block] of blocks) {
    const i = block ? firstNonFinite(e, block) : -1;
    if (block && i >= 0) {
      throw new DdpmError('NON_FINITE', `checkpoint at step ${c.step}: ${key} ${paramAt(block, i)} = ${e.view(block.all)[i]} is not finite; not saved`);
    }
  }
  const files = new Map<string, Uint8Array>();
  for (const [key, block] of blocks) if (block) files.set(BLOCK_FILES[key], writeSafetensors(blockTensors(e, block), { format: 'pt' }));
  const B = trainer.config.batchSize;
  const M = trainer.datasetSize;
  const manifest: CheckpointManifest = {
    format: CHECKPOINT_FORMAT,
    format_version: CHECKPOINT_VERSION,
    step: c.step,
    optimizer_step: c.optimizerStep,
    skipped_steps: c.skippedSteps,
    non_finite_in_a_row: c.nonFiniteInARow,
    rng: { generator: 'philox4x32-10', seed: trainer.config.seed, step: c.step },
    data_order: { dataset_size: M, batch_size: B, epoch: Math.floor((c.step * B) / M), position: (c.step * B) % M },
    trainer_config: trainer.config,
    alphas_cumprod: Array.from(trainer.getAlphasCumprod()),
    ...timestepHistory(trainer),
    model: describeModel(trainer.model),
    engine: { build: e.info.build, runtime: e.info.runtime },
    files: Object.fromEntries([...files].map(([name, bytes]) => [name, bytes.length])),
  };
  files.set(MANIFEST_FILE, new TextEncoder().encode(JSON.stringify(manifest, null, 1)));
  return { manifest, files };
}

function checkManifest(json: unknown, file: string): CheckpointManifest {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) fail(file, 'must be a JSON object');
  const m = json as Record<string, unknown>;
  if (m.format !== CHECKPOINT_FORMAT) fail(file, `format must be "${CHECKPOINT_FORMAT}", found ${JSON.stringify(m.format)}`);
  if (m.format_version !== CHECKPOINT_VERSION) fail(file, `format_version ${JSON.stringify(m.format_version)} is not supported (this build reads ${CHECKPOINT_VERSION})`);
  for (const k of ['step', 'optimizer_step', 'skipped_steps', 'non_finite_in_a_row'] as const) {
    if (!Number.isSafeInteger(m[k]) || (m[k] as number) < 0) fail(file, `${k} must be an integer ≥ 0, found ${JSON.stringify(m[k])}`);
  }
  const tc = m.trainer_config as Record<string, unknown> | undefined;
  if (!tc || typeof tc !== 'object' || tc.formatVersion !== TRAINER_CONFIG_VERSION) fail(file, `trainer_config.formatVersion must be ${TRAINER_CONFIG_VERSION}, found ${JSON.stringify(tc?.formatVersion)}`);
  if (!Array.isArray(m.alphas_cumprod) || !m.alphas_cumprod.every((a) => typeof a === 'number')) fail(file, 'alphas_cumprod must be an array of numbers');
  const model = m.model as Record<string, unknown> | undefined;
  if (!model || (model.class !== 'MLPDenoiser' && model.class !== 'UNet2DModel')) fail(file, `model.class must be "MLPDenoiser" or "UNet2DModel", found ${JSON.stringify(model?.class)}`);
  const files = m.files as Record<string, unknown> | undefined;
  if (!files || typeof files !== 'object') fail(file, 'files must be an object of byte sizes');
  for (const key of ['model', 'exp_avg', 'exp_avg_sq'] as const) if (!Object.prototype.hasOwnProperty.call(files, BLOCK_FILES[key])) fail(file, `files does not list ${BLOCK_FILES[key]}`);
  for (const [name, size] of Object.entries(files)) {
    if (!(Object.values(BLOCK_FILES) as string[]).includes(name)) fail(file, `files lists an unknown file ${JSON.stringify(name)}`);
    if (!Number.isSafeInteger(size) || (size as number) < 0) fail(file, `files["${name}"] must be a byte size, found ${JSON.stringify(size)}`);
  }
  return m as unknown as CheckpointManifest;
}

/**
 * Parses a checkpoint from a file reader (`read(name)` resolves to the bytes, or undefined when the file
 * does not exist); `source` names the folder in errors.
 */
export async function parseCheckpoint(source: string, read: (name: string) => Promise<Uint8Array | undefined>): Promise<Checkpoint> {
  const path = (name: string) => `${source}/${name}`;
  const mbytes = await read(MANIFEST_FILE);
  if (!mbytes) fail(path(MANIFEST_FILE), 'missing');
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(mbytes));
  } catch (e) {
    fail(path(MANIFEST_FILE), `not valid JSON (${(e as Error).message})`);
  }
  const manifest = checkManifest(json, path(MANIFEST_FILE));
  const blocks: Checkpoint['blocks'] = {};
  for (const key of Object.keys(BLOCK_FILES) as BlockKey[]) {
    const name = BLOCK_FILES[key];
    const want = manifest.files[name];
    if (want === undefined) continue;
    const bytes = await read(name);
    if (!bytes) fail(path(name), 'missing (listed in checkpoint.json)');
    if (bytes.length !== want) fail(path(name), `${bytes.length} bytes, checkpoint.json records ${want}`);
    blocks[key] = readSafetensors(bytes, path(name)).tensors;
  }
  return { source, manifest, blocks };
}

/** Builds the checkpoint's model (MLPDenoiser or UNet2DModel) with its saved weights. */
export function modelFromCheckpoint(engine: Engine, ckpt: Checkpoint): MLPDenoiser | UNet2DModel {
  const { class: cls, config } = ckpt.manifest.model;
  const where = `${ckpt.source}/${MANIFEST_FILE}`;
  const model = cls === 'MLPDenoiser' ? new MLPDenoiser(engine, parseMLPConfig(config, where)) : new UNet2DModel(engine, parseUNetConfig(config, where));
  loadBlock(engine, model.params, ckpt.blocks.model!, `${ckpt.source}/${BLOCK_FILES.model}`, `this ${cls} config`, true);
  return model;
}

/** The manifest's timestep_history key, only for trainers that keep one (older readers see no new key). */
function timestepHistory(trainer: Trainer): Pick<CheckpointManifest, 'timestep_history'> {
  const h = trainer.getTimestepHistory();
  return h ? { timestep_history: { losses: Array.from(h.losses), seen: Array.from(h.seen) } } : {};
}

/**
 * Restores a trainer (built with the checkpoint's model config, trainer config, schedule and data) to the
 * checkpoint's state: weights, EMA, AdamW moments and counters. Everything is checked before anything is
 * written.
 */
export function restoreTrainer(trainer: Trainer, ckpt: Checkpoint): void {
  const m = ckpt.manifest;
  const where = `${ckpt.source}/${MANIFEST_FILE}`;
  const mismatch = (what: string, saved: unknown, now: unknown) => {
    throw new DdpmError('INVALID_ARGUMENT', `resume from ${ckpt.source}: ${what} differs — checkpoint ${JSON.stringify(saved)}, this trainer ${JSON.stringify(now)}`);
  };
  const described = describeModel(trainer.model);
  if (described.class !== m.model.class || JSON.stringify(described.config) !== JSON.stringify(m.model.config)) mismatch('the model', m.model, described);
  const tc = trainer.config as unknown as Record<string, unknown>;
  // read through the parser, so keys added since the checkpoint was written compare as their defaults
  const saved = parseTrainerConfig(m.trainer_config) as unknown as Record<string, unknown>;
  for (const k of new Set([...Object.keys(tc), ...Object.keys(saved)])) {
    if (JSON.stringify(tc[k]) !== JSON.stringify(saved[k])) mismatch(`trainer config ${k}`, saved[k], tc[k]);
  }
  const ac = trainer.getAlphasCumprod();
  if (ac.length !== m.alphas_cumprod.length || ac.some((a, t) => a !== m.alphas_cumprod[t])) mismatch('the schedule (alphas_cumprod)', `${m.alphas_cumprod.length} values`, `${ac.length} values`);
  if (m.data_order.dataset_size !== trainer.datasetSize) mismatch('the dataset size', m.data_order.dataset_size, trainer.datasetSize);
  if (!!trainer.ema !== !!ckpt.blocks.ema) fail(where, trainer.ema ? `has no ${BLOCK_FILES.ema} but the trainer keeps an EMA` : `has ${BLOCK_FILES.ema} but the trainer keeps no EMA`);
  const e = trainer.engine;
  const targets: [BlockKey, ParamBlock | null][] = [['model', trainer.model.params], ['ema', trainer.ema], ['exp_avg', trainer.m], ['exp_avg_sq', trainer.v]];
  // check every block before writing any, so a bad file leaves the trainer untouched
  const file = (key: BlockKey) => `${ckpt.source}/${BLOCK_FILES[key]}`;
  for (const [key, block] of targets) if (block) checkBlockTensors(block, ckpt.blocks[key]!, file(key), "the model's parameters", true);
  for (const [key, block] of targets) if (block) loadBlock(e, block, ckpt.blocks[key]!, file(key), "the model's parameters");
  trainer.setTimestepHistory(m.timestep_history ?? null);
  trainer.setCounters({ step: m.step, optimizerStep: m.optimizer_step, skippedSteps: m.skipped_steps, nonFiniteInARow: m.non_finite_in_a_row });
}

const CKPT_RE = /^ckpt-(\d+)$/;

export function checkpointName(step: number): string {
  return `ckpt-${String(step).padStart(6, '0')}`;
}

/** Node, Deno, Bun: writes the trainer's checkpoint under root (see the header); returns its folder. */
export async function saveCheckpoint(root: string, trainer: Trainer, o: { keep?: number } = {}): Promise<string> {
  const keep = o.keep ?? 3;
  if (!Number.isInteger(keep) || keep < 1) throw new DdpmError('INVALID_ARGUMENT', `saveCheckpoint: keep must be an integer ≥ 1, found ${keep}`);
  const { files } = checkpointFiles(trainer);
  const fs = await fsPromises(); // '#platform': UNSUPPORTED in browsers and edge workers
  const { join } = await pathModule();
  const name = checkpointName(trainer.step);
  const final = join(root, name);
  const tmp = `${final}.tmp`;
  await fs.mkdir(root, { recursive: true });
  await fs.rm(tmp, { recursive: true, force: true });
  await fs.mkdir(tmp);
  try {
    for (const [file, bytes] of files) await writeSynced(fs, join(tmp, file), bytes);
    await syncDir(fs, tmp);
  } catch (e) {
    // e.g. disk full: drop the partial folder; the previous checkpoints and `latest` are untouched
    await fs.rm(tmp, { recursive: true, force: true }).catch(() => {});
    throw e;
  }
  if (await exists(fs, final)) {
    // the same step saved again (e.g. right after resuming): move the old one aside rather than delete it first
    const old = `${final}.replaced.tmp`;
    await fs.rm(old, { recursive: true, force: true });
    await fs.rename(final, old);
    await fs.rename(tmp, final);
    await fs.rm(old, { recursive: true, force: true });
  } else await fs.rename(tmp, final);
  await writeSynced(fs, join(root, `${LATEST_FILE}.tmp`), new TextEncoder().encode(`${name}\n`));
  await fs.rename(join(root, `${LATEST_FILE}.tmp`), join(root, LATEST_FILE));
  await syncDir(fs, root);
  // prune only now that the new checkpoint is complete and pointed to
  const entries = await fs.readdir(root);
  const complete = entries.filter((n) => CKPT_RE.test(n)).sort((a, b) => stepOf(b) - stepOf(a));
  const doomed = [...complete.filter((n) => n !== name).slice(keep - 1), ...entries.filter((n) => n.endsWith('.tmp'))];
  for (const n of doomed) await fs.rm(join(root, n), { recursive: true, force: true });
  return final;
}

/**
 * Node, Deno, Bun: reads a checkpoint folder, or the newest complete one under a root (via `latest`, or by
 * scanning ckpt-* folders when `latest` is missing or names a missing folder).
 */
export async function loadCheckpoint(path: string): Promise<Checkpoint> {
  const fs = await fsPromises();
  const { join } = await pathModule();
  let dir = path;
  if (!(await exists(fs, join(path, MANIFEST_FILE)))) {
    let name: string | undefined;
    if (await exists(fs, join(path, LATEST_FILE))) {
      const text = (await fs.readFile(join(path, LATEST_FILE), 'utf8')).trim();
      if (!CKPT_RE.test(text)) fail(join(path, LATEST_FILE), `must name a ckpt-<step> folder, found ${JSON.stringify(text.slice(0, 80))}`);
      if (await exists(fs, join(path, text))) name = text;
    }
    if (!name) {
      let entries: string[];
      try {
        entries = await fs.readdir(path);
      } catch (e) {
        throw new DdpmError('FORMAT', `${path}: cannot read the checkpoint folder (${(e as Error).message})`, { cause: e });
      }
      const complete = entries.filter((n) => CKPT_RE.test(n)).sort((a, b) => stepOf(b) - stepOf(a));
      if (!complete.length) fail(path, `no checkpoint found (no ${MANIFEST_FILE}, no ${LATEST_FILE}, no ckpt-<step> folder)`);
      name = complete[0];
    }
    dir = join(path, name);
  }
  return parseCheckpoint(dir, async (file) => {
    try {
      return new Uint8Array(await fs.readFile(join(dir, file)));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new DdpmError('FORMAT', `${join(dir, file)}: cannot read (${(e as Error).message})`, { cause: e });
    }
  });
}

function stepOf(name: string): number {
  return Number(CKPT_RE.exec(name)![1]);
}

type Fs = typeof import('node:fs/promises');

async function exists(fs: Fs, p: string): Promise<boolean> {
  try {
    await fs.stat(p);
    return true;
  } catch {
    return false;
  }
}

async function writeSynced(fs: Fs, path: string, bytes: Uint8Array): Promise<void> {
  const fh = await fs.open(path, 'w');
  try {
    await fh.writeFile(bytes);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** fsync of a folder, so a rename in it is durable; not possible on every platform (Windows), where it is skipped. */
async function syncDir(fs: Fs, path: string): Promise<void> {
  let fh;
  try {
    fh = await fs.open(path, 'r');
    await fh.sync();
  } catch {
    // EISDIR/EPERM on platforms without directory handles
  } finally {
    await fh?.close();
  }
}
