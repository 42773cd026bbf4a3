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
// Save: files go to ckpt-000100.<token>.tmp/ (each fsynced; <token> = pid + random, unique to this
// process), the folder is renamed to ckpt-000100, then `latest` is replaced by writing latest.<token>.tmp
// and renaming it; only then are older checkpoints (beyond `keep`) and this process's own *.tmp leftovers
// removed (another process's temporaries are never touched: a run folder's writer, TrainingRun, cleans
// leftovers of dead writers once it holds the folder's lock). Load: `latest`, or if it is missing or names a missing
// folder, the highest-numbered complete folder; every file is checked (present, size as recorded, valid
// safetensors, tensors matching the model, all values finite) with a FORMAT error naming the file.
// Node-only (node:fs) modules are imported inside the functions that need them, so importing this module
// is safe in browsers and edge runtimes; checkpointFiles / parseCheckpoint work anywhere.
import { DdpmError } from '../errors.js';
import type { Engine } from '../engine/engine.js';
import { blockTensors, checkBlockTensors, firstNonFinite, loadBlock, paramAt } from '../nn/param-tensors.js';
import { readSafetensors, writeSafetensors, type SafeTensor } from '../io/safetensors.js';
import type { Denoiser } from '../nn/denoiser.js';
import { MLPDenoiser, parseMLPConfig } from '../nn/mlp.js';
import type { ParamBlock } from '../nn/params.js';
import { MODEL_CLASSES, type PretrainedModel } from '../nn/registry.js';
import { UNet2DModel } from '../nn/unet.js';
import { parseUNetConfig } from '../nn/unet-config.js';
import type { Trainer, TrainerConfig, TrainerState } from './trainer.js';
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

/** A model's class and config as checkpoints (and run.json) record them. */
export function describeModel(model: Denoiser): CheckpointManifest['model'] {
  const cls = [...MODEL_CLASSES.values()].find((c) => c.is(model as PretrainedModel));
  if (!cls)
    throw new DdpmError(
      'UNSUPPORTED',
      `checkpoint: only models of a registered class (${[...MODEL_CLASSES.keys()].join(', ')}) can be saved`,
    );
  return { class: cls.className as CheckpointManifest['model']['class'], config: (model as PretrainedModel).config };
}

/** The checkpoint's files, in memory. Throws NON_FINITE (and writes nothing) if any state is not finite. */
export function checkpointFiles(trainer: Trainer): { manifest: CheckpointManifest; files: Map<string, Uint8Array> } {
  const e = trainer.engine;
  const blocks: [BlockKey, ParamBlock | null][] = [
    ['model', trainer.model.params],
    ['ema', trainer.ema],
    ['exp_avg', trainer.m],
    ['exp_avg_sq', trainer.v],
  ];
  const c = trainer.getCounters();
  for (const [key, block] of blocks) {
    const i = block ? firstNonFinite(e, block) : -1;
    if (block && i >= 0) {
      throw new DdpmError(
        'NON_FINITE',
        `checkpoint at step ${c.step}: ${key} ${paramAt(block, i)} = ${e.view(block.all)[i]} is not finite; not saved`,
      );
    }
  }
  const files = new Map<string, Uint8Array>();
  for (const [key, block] of blocks)
    if (block) files.set(BLOCK_FILES[key], writeSafetensors(blockTensors(e, block), { format: 'pt' }));
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

/** Own-property lookups only: a key such as "constructor" or "__proto__" is never read from a prototype. */
function own(o: Record<string, unknown>, k: string): unknown {
  return Object.hasOwn(o, k) ? o[k] : undefined;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function checkManifest(json: unknown, file: string): CheckpointManifest {
  if (!isObject(json)) fail(file, 'must be a JSON object');
  const m = json;
  const show = (v: unknown) => (v === undefined ? 'nothing' : JSON.stringify(v)?.slice(0, 120));
  const obj = (o: Record<string, unknown>, k: string, where = k): Record<string, unknown> => {
    const v = own(o, k);
    if (!isObject(v)) fail(file, `${where} must be an object, found ${show(v)}`);
    return v;
  };
  const int = (o: Record<string, unknown>, k: string, where = k, min = 0): number => {
    const v = own(o, k);
    if (!Number.isSafeInteger(v) || (v as number) < min)
      fail(file, `${where} must be an integer ≥ ${min}, found ${show(v)}`);
    return v as number;
  };
  if (own(m, 'format') !== CHECKPOINT_FORMAT)
    fail(file, `format must be "${CHECKPOINT_FORMAT}", found ${show(own(m, 'format'))}`);
  if (own(m, 'format_version') !== CHECKPOINT_VERSION)
    fail(
      file,
      `format_version ${show(own(m, 'format_version'))} is not supported (this build reads ${CHECKPOINT_VERSION})`,
    );
  const step = int(m, 'step');
  const optimizerStep = int(m, 'optimizer_step');
  const skipped = int(m, 'skipped_steps');
  int(m, 'non_finite_in_a_row');
  if (optimizerStep + skipped !== step)
    fail(file, `optimizer_step (${optimizerStep}) + skipped_steps (${skipped}) must equal step (${step})`);
  const rng = obj(m, 'rng');
  if (own(rng, 'generator') !== 'philox4x32-10')
    fail(file, `rng.generator must be "philox4x32-10", found ${show(own(rng, 'generator'))}`);
  int(rng, 'seed', 'rng.seed');
  if (int(rng, 'step', 'rng.step') !== step)
    fail(file, `rng.step (${show(own(rng, 'step'))}) must equal step (${step})`);
  const order = obj(m, 'data_order');
  const M = int(order, 'dataset_size', 'data_order.dataset_size', 1);
  const B = int(order, 'batch_size', 'data_order.batch_size', 1);
  int(order, 'epoch', 'data_order.epoch');
  int(order, 'position', 'data_order.position');
  // trainer_config's values are checked by the Trainer that is built from it (parseTrainerConfig)
  const tc = obj(m, 'trainer_config');
  if (own(tc, 'batchSize') !== B)
    fail(file, `trainer_config.batchSize (${show(own(tc, 'batchSize'))}) must equal data_order.batch_size (${B})`);
  if (own(tc, 'seed') !== own(rng, 'seed'))
    fail(file, `trainer_config.seed (${show(own(tc, 'seed'))}) must equal rng.seed (${show(own(rng, 'seed'))})`);
  if (own(order, 'epoch') !== Math.floor((step * B) / M) || own(order, 'position') !== (step * B) % M)
    fail(file, `data_order ${show(order)} does not follow from step ${step}, batch ${B}, dataset ${M}`);
  const ac = own(m, 'alphas_cumprod');
  if (!Array.isArray(ac) || ac.length < 1 || !ac.every((a) => typeof a === 'number' && Number.isFinite(a)))
    fail(file, 'alphas_cumprod must be a non-empty array of finite numbers');
  const model = obj(m, 'model');
  const cls = own(model, 'class');
  if (cls !== 'MLPDenoiser' && cls !== 'UNet2DModel')
    fail(file, `model.class must be "MLPDenoiser" or "UNet2DModel", found ${show(cls)}`);
  obj(model, 'config', 'model.config');
  const history = own(m, 'timestep_history');
  if (history !== undefined && history !== null) {
    if (!isObject(history)) fail(file, `timestep_history must be an object or null, found ${show(history)}`);
    for (const k of ['losses', 'seen']) {
      const v = own(history, k);
      if (!Array.isArray(v) || !v.every((x) => typeof x === 'number'))
        fail(file, `timestep_history.${k} must be an array of numbers`);
    }
  }
  const engine = obj(m, 'engine');
  for (const k of ['build', 'runtime'])
    if (typeof own(engine, k) !== 'string') fail(file, `engine.${k} must be a string, found ${show(own(engine, k))}`);
  const files = obj(m, 'files');
  for (const key of ['model', 'exp_avg', 'exp_avg_sq'] as const)
    if (own(files, BLOCK_FILES[key]) === undefined) fail(file, `files does not list ${BLOCK_FILES[key]}`);
  for (const name of Object.keys(files)) {
    if (!(Object.values(BLOCK_FILES) as string[]).includes(name))
      fail(file, `files lists an unknown file ${JSON.stringify(name)}`);
    int(files, name, `files["${name}"]`);
  }
  return m as unknown as CheckpointManifest;
}

/**
 * Parses a checkpoint from a file reader (`read(name)` resolves to the bytes, or undefined when the file
 * does not exist); `source` names the folder in errors.
 */
export async function parseCheckpoint(
  source: string,
  read: (name: string) => Promise<Uint8Array | undefined>,
): Promise<Checkpoint> {
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
  const model =
    cls === 'MLPDenoiser'
      ? new MLPDenoiser(engine, parseMLPConfig(config, where))
      : new UNet2DModel(engine, parseUNetConfig(config, where));
  loadBlock(
    engine,
    model.params,
    ckpt.blocks.model!,
    `${ckpt.source}/${BLOCK_FILES.model}`,
    `this ${cls} config`,
    true,
  );
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
    throw new DdpmError(
      'RUN_MISMATCH',
      `resume from ${ckpt.source}: ${what} differs — checkpoint ${JSON.stringify(saved)}, this trainer ${JSON.stringify(now)}`,
    );
  };
  const described = describeModel(trainer.model);
  if (described.class !== m.model.class || JSON.stringify(described.config) !== JSON.stringify(m.model.config))
    mismatch('the model', m.model, described);
  // read through the trainer's parser, so keys added since the checkpoint was written compare as their defaults
  const differs = trainer.configDiffers(m.trainer_config);
  if (differs) mismatch(`trainer config ${differs.key}`, differs.saved, differs.now);
  const ac = trainer.getAlphasCumprod();
  if (ac.length !== m.alphas_cumprod.length || ac.some((a, t) => a !== m.alphas_cumprod[t]))
    mismatch('the schedule (alphas_cumprod)', `${m.alphas_cumprod.length} values`, `${ac.length} values`);
  if (m.data_order.dataset_size !== trainer.datasetSize)
    mismatch('the dataset size', m.data_order.dataset_size, trainer.datasetSize);
  if (!!trainer.ema !== !!ckpt.blocks.ema)
    fail(
      where,
      trainer.ema
        ? `has no ${BLOCK_FILES.ema} but the trainer keeps an EMA`
        : `has ${BLOCK_FILES.ema} but the trainer keeps no EMA`,
    );
  // check every block before writing any (Trainer.restore checks again), so a bad file leaves the trainer untouched
  const file = (key: BlockKey) => `${ckpt.source}/${BLOCK_FILES[key]}`;
  const flat = (key: BlockKey): Float32Array => {
    const block = trainer.model.params;
    const tensors = ckpt.blocks[key]!;
    checkBlockTensors(block, tensors, file(key), "the model's parameters", true);
    const out = new Float32Array(block.size);
    let at = 0;
    for (const spec of block.specs) {
      const d = tensors.get(spec.name)!.data;
      out.set(d, at);
      at += d.length;
    }
    return out;
  };
  const state: TrainerState = {
    counters: {
      step: m.step,
      optimizerStep: m.optimizer_step,
      skippedSteps: m.skipped_steps,
      nonFiniteInARow: m.non_finite_in_a_row,
    },
    params: flat('model'),
    ema: trainer.ema ? flat('ema') : null,
    expAvg: flat('exp_avg'),
    expAvgSq: flat('exp_avg_sq'),
    timestepHistory: m.timestep_history
      ? { losses: Float64Array.from(m.timestep_history.losses), seen: Uint32Array.from(m.timestep_history.seen) }
      : null,
  };
  trainer.restore(state);
}

const CKPT_RE = /^ckpt-(\d+)$/;

/** This process's mark on its temporary names (pid + random): never equal to another live process's. */
export const TMP_TOKEN = `${typeof process === 'object' && process?.pid ? process.pid : 0}-${Math.floor(Math.random() * 2 ** 32).toString(36)}`;

export function checkpointName(step: number): string {
  return `ckpt-${String(step).padStart(6, '0')}`;
}

/** Node, Deno, Bun: writes the trainer's checkpoint under root (see the header); returns its folder. */
export async function saveCheckpoint(root: string, trainer: Trainer, o: { keep?: number } = {}): Promise<string> {
  const keep = o.keep ?? 3;
  if (!Number.isInteger(keep) || keep < 1)
    throw new DdpmError('INVALID_ARGUMENT', `saveCheckpoint: keep must be an integer ≥ 1, found ${keep}`);
  const { files } = checkpointFiles(trainer);
  const fs = await fsPromises(); // '#platform': UNSUPPORTED in browsers and edge workers
  const { join } = await pathModule();
  const name = checkpointName(trainer.step);
  const final = join(root, name);
  const tmp = `${final}.${TMP_TOKEN}.tmp`;
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
    const old = `${final}.replaced.${TMP_TOKEN}.tmp`;
    await fs.rm(old, { recursive: true, force: true });
    await fs.rename(final, old);
    await fs.rename(tmp, final);
    await fs.rm(old, { recursive: true, force: true });
  } else await fs.rename(tmp, final);
  const latestTmp = join(root, `${LATEST_FILE}.${TMP_TOKEN}.tmp`);
  await writeSynced(fs, latestTmp, new TextEncoder().encode(`${name}\n`));
  await fs.rename(latestTmp, join(root, LATEST_FILE));
  await syncDir(fs, root);
  // prune only now that the new checkpoint is complete and pointed to
  const entries = await fs.readdir(root);
  const complete = entries.filter((n) => CKPT_RE.test(n)).sort((a, b) => stepOf(b) - stepOf(a));
  const doomed = [
    ...complete.filter((n) => n !== name).slice(keep - 1),
    ...entries.filter((n) => n.endsWith(`.${TMP_TOKEN}.tmp`)),
  ];
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
      if (!CKPT_RE.test(text))
        fail(join(path, LATEST_FILE), `must name a ckpt-<step> folder, found ${JSON.stringify(text.slice(0, 80))}`);
      if (await exists(fs, join(path, text))) name = text;
    }
    if (!name) {
      let entries: string[];
      try {
        entries = await fs.readdir(path);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'ENOENT')
          throw new DdpmError('NO_CHECKPOINT', `${path}: no checkpoint found (the folder does not exist)`, {
            cause: e,
          });
        throw new DdpmError('IO', `${path}: cannot read the checkpoint folder (${code ?? (e as Error).message})`, {
          cause: e,
        });
      }
      const complete = entries.filter((n) => CKPT_RE.test(n)).sort((a, b) => stepOf(b) - stepOf(a));
      if (!complete.length)
        throw new DdpmError(
          'NO_CHECKPOINT',
          `${path}: no checkpoint found (no ${MANIFEST_FILE}, no ${LATEST_FILE}, no ckpt-<step> folder)`,
        );
      name = complete[0];
    }
    dir = join(path, name);
  }
  return parseCheckpoint(dir, async (file) => {
    try {
      return new Uint8Array(await fs.readFile(join(dir, file)));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new DdpmError(
        'IO',
        `${join(dir, file)}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
        { cause: e },
      );
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
