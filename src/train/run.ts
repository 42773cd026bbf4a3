// A training run folder (Node, Deno, Bun): one writer, a run identity, checkpoints on a cadence, an
// append-only loss log, sample grids and the exported model — written so that a kill at any moment loses
// nothing a checkpoint covers, and running again continues bit-identically.
//
//   <dir>/train.lock              the writer: pid, host, start time (train/lock.ts); a second writer gets LOCKED
//   <dir>/run.json                the run's identity: data (label, size, hash), model class + config, init
//                                 seed, scheduler config (the training schedule), trainer config (seed, options)
//   <dir>/checkpoints/            ckpt-<step>/ + latest (train/checkpoint.ts)
//   <dir>/loss.csv                step,loss — one line per step, appended, never rewritten: lines are
//                                 flushed and fsynced before every checkpoint, so the lines up to a
//                                 checkpoint's step are durable once it exists; on resume the tail beyond
//                                 the checkpoint's step (steps that will be run again) is cut off
//   <dir>/samples/step-<N>.png    sample grids from the EMA weights, each at a step that has a checkpoint;
//                                 one missing at the resumed step (interrupted) is drawn again
//   <dir>/model/                  the exported model (EMA weights), swapped in as a whole folder
//
// Temporary files carry this process's token (checkpoint.ts TMP_TOKEN); once the lock is held, leftovers
// of dead writers (*.tmp anywhere in the folder) are removed.
import { DdpmError } from '../errors.js';
import type { Engine } from '../engine/engine.js';
import { DDPMScheduler } from '../diffusion/ddpm.js';
import type { NoiseSchedule } from '../diffusion/schedule.js';
import type { Denoiser } from '../nn/denoiser.js';
import { MLPDenoiser, MLP_WEIGHTS_FILE, parseMLPConfig } from '../nn/mlp.js';
import { UNet2DModel, WEIGHTS_FILE } from '../nn/unet.js';
import { parseUNetConfig } from '../nn/unet-config.js';
import {
  TMP_TOKEN,
  checkpointName,
  describeModel,
  loadCheckpoint,
  modelFromCheckpoint,
  restoreTrainer,
  saveCheckpoint,
  type Checkpoint,
} from './checkpoint.js';
import { RunLock } from './lock.js';
import { fnv1a } from './fnv.js';
import { warmStart } from './warm-start.js';
import { fsPromises, pathModule } from '#platform';
import { Trainer, parseTrainerConfig, type TrainProgress, type TrainerConfig, type TrainerOptions } from './trainer.js';

export const RUN_FILE = 'run.json';
export const RUN_FORMAT = 'ddpm-wasm.train-run';
/** 2: the identity holds the model, trainer config and data hash (1 held data and scheduler only; still read). */
export const RUN_VERSION = 2;
export const LOSS_FILE = 'loss.csv';
const LOSS_HEADER = 'step,loss\n';
export const CHECKPOINTS_DIR = 'checkpoints';
export const SAMPLES_DIR = 'samples';
export const MODEL_DIR = 'model';
export const SCHEDULER_FILE = 'scheduler_config.json';

export type ModelClass = 'MLPDenoiser' | 'UNet2DModel';

/** run.json. */
export interface RunIdentity {
  format: typeof RUN_FORMAT;
  version: number;
  /** What the data is (e.g. "mnist", "two-moons", a folder's absolute path). */
  data: string;
  dataset_size: number;
  /** FNV-1a (32-bit, hex) of the samples' float32 bytes: the same label with other contents is refused. */
  data_hash: string;
  model: { class: ModelClass; config: unknown };
  /** Seed of the initial weights; null when unknown (a folder upgraded from version 1). */
  init_seed: number | null;
  /** A warm start (StartOptions.initFrom): the model the weights came from, and their FNV-1a hash. */
  init_from?: { model: string; weights_hash: string };
  /** diffusers scheduler_config.json: the training schedule, and the exported model's scheduler. */
  scheduler: Record<string, unknown>;
  trainer_config: TrainerConfig;
}

export type TrainData = Float32Array | { samples: Float32Array; labels: ArrayLike<number> };

export interface StartOptions {
  data: TrainData;
  dataLabel: string;
  model: { class: ModelClass; config: unknown };
  initSeed: number;
  /**
   * Warm start (src/train/warm-start.ts): begin from this trained U-Net's weights instead of the seeded
   * initialisation (the class embedding, if the source has none, keeps the seeded one). `label` names it in run.json.
   */
  initFrom?: { label: string; model: UNet2DModel };
  scheduler: Record<string, unknown>;
  trainer: TrainerOptions;
}

export interface ResumeOptions {
  data: TrainData;
  dataLabel: string;
  /**
   * Values the caller asked for explicitly; each must equal the run's (RUN_MISMATCH otherwise). `labels`
   * names them in the message (e.g. learningRate → "--lr").
   */
  expect?: Partial<Record<keyof TrainerConfig | 'model', unknown>>;
  labels?: Partial<Record<keyof TrainerConfig | 'model', string>>;
  /** For a folder without run.json (written by an older version): the scheduler it was trained with. */
  legacyScheduler?: Record<string, unknown>;
}

export interface RunTrainOptions {
  /** Train until this step (counted from the start of the run). */
  until: number;
  /** Steps between checkpoints (a checkpoint is also written at `until`, on abort and at every sample grid). */
  checkpointEvery: number;
  /** Checkpoints kept (default 3). */
  keep?: number;
  /** Steps between sample grids; 0: only at `until`. Needs `sample`. */
  sampleEvery?: number;
  /** Draws a grid with the EMA weights in the model; returns the file's bytes (a PNG). */
  sample?: (model: Denoiser, step: number) => Promise<Uint8Array>;
  signal?: AbortSignal;
  onProgress?: (p: TrainProgress) => void;
}

export interface RunResult {
  step: number;
  aborted: boolean;
  /** Files written by this call (checkpoints, sample grids), in order. */
  written: string[];
}

type Fs = typeof import('node:fs/promises');
type Path = typeof import('node:path');

async function node(): Promise<{ fs: Fs; path: Path }> {
  return { fs: await fsPromises(), path: await pathModule() }; // '#platform': UNSUPPORTED in browsers and edge workers
}

function ioError(file: string, what: string, e: unknown): DdpmError {
  if (e instanceof DdpmError) return e;
  const code = (e as NodeJS.ErrnoException).code;
  const why =
    code === 'ENOSPC'
      ? 'disk full'
      : code === 'EROFS'
        ? 'read-only file system'
        : code === 'EACCES' || code === 'EPERM'
          ? 'permission denied'
          : code === 'ENOTDIR'
            ? 'a parent is not a folder'
            : (code ?? (e as Error).message);
  return new DdpmError('IO', `${file}: cannot ${what} (${why})`, { cause: e });
}

/** FNV-1a over the bytes of x, as 8 hex digits. */
export function dataHash(x: Float32Array): string {
  return fnv1a([x]);
}

function samplesOf(d: TrainData): Float32Array {
  return d instanceof Float32Array ? d : d.samples;
}

/** Own-property lookup: prototype names such as "constructor" are never read. */
function own(o: Record<string, unknown>, k: string): unknown {
  return Object.hasOwn(o, k) ? o[k] : undefined;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Checks run.json (version 1 or 2) with own-property, typed checks; FORMAT naming the file and the key. */
export function parseRunIdentity(
  json: unknown,
  file: string,
): Partial<RunIdentity> & Pick<RunIdentity, 'format' | 'version' | 'data' | 'dataset_size' | 'scheduler'> {
  const fail = (what: string): never => {
    throw new DdpmError('FORMAT', `${file}: ${what}`);
  };
  const show = (v: unknown) => (v === undefined ? 'nothing' : JSON.stringify(v)?.slice(0, 120));
  if (!isObject(json)) fail(`must be a JSON object, found ${show(json)}`);
  const o = json as Record<string, unknown>;
  if (own(o, 'format') !== RUN_FORMAT) fail(`format must be "${RUN_FORMAT}", found ${show(own(o, 'format'))}`);
  const version = own(o, 'version');
  if (version !== 1 && version !== RUN_VERSION)
    fail(`version ${show(version)} is not supported (this build reads 1 and ${RUN_VERSION})`);
  if (typeof own(o, 'data') !== 'string') fail(`data must be a string, found ${show(own(o, 'data'))}`);
  const M = own(o, 'dataset_size');
  if (!Number.isSafeInteger(M) || (M as number) < 1) fail(`dataset_size must be an integer ≥ 1, found ${show(M)}`);
  if (!isObject(own(o, 'scheduler')))
    fail(`scheduler must be an object (a scheduler_config.json), found ${show(own(o, 'scheduler'))}`);
  if (version === RUN_VERSION) {
    if (typeof own(o, 'data_hash') !== 'string' || !/^[0-9a-f]{8}$/.test(own(o, 'data_hash') as string))
      fail(`data_hash must be 8 hex digits, found ${show(own(o, 'data_hash'))}`);
    const model = own(o, 'model');
    if (!isObject(model)) fail(`model must be an object, found ${show(model)}`);
    const cls = own(model as Record<string, unknown>, 'class');
    if (cls !== 'MLPDenoiser' && cls !== 'UNet2DModel')
      fail(`model.class must be "MLPDenoiser" or "UNet2DModel", found ${show(cls)}`);
    if (!isObject(own(model as Record<string, unknown>, 'config')))
      fail(`model.config must be an object, found ${show(own(model as Record<string, unknown>, 'config'))}`);
    const seed = own(o, 'init_seed');
    if (seed !== null && (!Number.isSafeInteger(seed) || (seed as number) < 0))
      fail(`init_seed must be an integer ≥ 0 or null, found ${show(seed)}`);
    const from = own(o, 'init_from');
    if (
      from !== undefined &&
      (!isObject(from) ||
        typeof own(from, 'model') !== 'string' ||
        typeof own(from, 'weights_hash') !== 'string' ||
        !/^[0-9a-f]{8}$/.test(own(from, 'weights_hash') as string))
    )
      fail(`init_from must be { model: string, weights_hash: 8 hex digits }, found ${show(from)}`);
    if (!isObject(own(o, 'trainer_config')))
      fail(`trainer_config must be an object, found ${show(own(o, 'trainer_config'))}`);
    try {
      parseTrainerConfig(own(o, 'trainer_config') as TrainerOptions);
    } catch (e) {
      fail((e as Error).message);
    }
  }
  return o as unknown as RunIdentity;
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

export class TrainingRun {
  private trainerRef: Trainer | null = null;
  private log: LossLog | null = null;
  private lastCheckpointStep = -1;
  /** Things the caller may want to print (legacy folder adopted, loss lines missing …). */
  readonly notices: string[] = [];

  private constructor(
    readonly dir: string,
    private readonly lock: RunLock,
    private identityRef: ReturnType<typeof parseRunIdentity> | null,
    /** The newest complete checkpoint, or null (then `start`, else `resume`). */
    readonly checkpoint: Checkpoint | null,
  ) {}

  /**
   * Takes the folder's lock (LOCKED if another live process holds it), removes leftovers of dead writers,
   * reads run.json and the newest complete checkpoint. Call `close()` when done.
   */
  static async open(dir: string): Promise<TrainingRun> {
    const { fs, path } = await node();
    const lock = await RunLock.acquire(dir, TMP_TOKEN);
    try {
      await removeLeftovers(fs, path, dir);
      const file = path.join(dir, RUN_FILE);
      let identity: ReturnType<typeof parseRunIdentity> | null = null;
      const text = await fs.readFile(file, 'utf8').catch((e: NodeJS.ErrnoException) => {
        if (e.code === 'ENOENT') return null;
        throw ioError(file, 'read', e);
      });
      if (text !== null) {
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch (e) {
          throw new DdpmError('FORMAT', `${file}: not valid JSON (${(e as Error).message})`);
        }
        identity = parseRunIdentity(json, file);
      }
      let ckpt: Checkpoint | null = null;
      try {
        ckpt = await loadCheckpoint(path.join(dir, CHECKPOINTS_DIR));
      } catch (e) {
        if (!(e instanceof DdpmError && e.code === 'NO_CHECKPOINT')) throw e;
      }
      return new TrainingRun(dir, lock, identity, ckpt);
    } catch (e) {
      await lock.release();
      throw e;
    }
  }

  /** run.json as read or written (null before `start` in a new folder). */
  get identity(): Readonly<Partial<RunIdentity>> | null {
    return this.identityRef;
  }

  get trainer(): Trainer {
    if (!this.trainerRef)
      throw new DdpmError('INVALID_ARGUMENT', `TrainingRun ${this.dir}: call start() or resume() first`);
    return this.trainerRef;
  }

  /** The training schedule (from run.json's scheduler config). */
  static schedule(scheduler: Record<string, unknown>): NoiseSchedule {
    return DDPMScheduler.fromConfig(scheduler).schedule;
  }

  /** A new run: refuses a folder that holds a checkpoint (resume it, or use another folder). */
  async start(engine: Engine, o: StartOptions): Promise<Trainer> {
    const { path } = await node();
    if (this.checkpoint)
      throw new DdpmError(
        'RUN_MISMATCH',
        `${this.dir} already holds a run at step ${this.checkpoint.manifest.step} (${this.checkpoint.source}); resume it, or use a new folder`,
      );
    const spec =
      o.model.class === 'MLPDenoiser'
        ? parseMLPConfig(o.model.config, 'model config')
        : parseUNetConfig(o.model.config, 'model config');
    const schedule = TrainingRun.schedule(o.scheduler);
    const model =
      o.model.class === 'MLPDenoiser'
        ? MLPDenoiser.create(engine, spec, o.initSeed)
        : UNet2DModel.create(engine, spec, o.initSeed);
    if (o.initFrom && !(model instanceof UNet2DModel))
      throw new DdpmError('INVALID_ARGUMENT', `initFrom ${o.initFrom.label}: a warm start is for U-Nets`);
    const initFrom = o.initFrom && {
      model: o.initFrom.label,
      weights_hash: warmStart(engine, model as UNet2DModel, o.initFrom.model, o.initFrom.label),
    };
    const trainer = new Trainer(model, o.data, schedule, o.trainer);
    const x = samplesOf(o.data);
    const identity: RunIdentity = {
      format: RUN_FORMAT,
      version: RUN_VERSION,
      data: o.dataLabel,
      dataset_size: trainer.datasetSize,
      data_hash: dataHash(x),
      model: describeModel(model),
      init_seed: o.initSeed,
      ...(initFrom ? { init_from: initFrom } : {}),
      scheduler: o.scheduler,
      trainer_config: trainer.config,
    };
    await this.lock.check();
    await writeAtomic(path.join(this.dir, RUN_FILE), JSON.stringify(identity, null, 2) + '\n');
    this.identityRef = identity;
    this.trainerRef = trainer;
    this.log = await LossLog.open(path.join(this.dir, LOSS_FILE), 0, this.notices);
    return trainer;
  }

  /** Continues from the newest checkpoint: NO_CHECKPOINT if there is none, RUN_MISMATCH if anything disagrees. */
  async resume(engine: Engine, o: ResumeOptions): Promise<Trainer> {
    const { path } = await node();
    const ckpt = this.checkpoint;
    const runFile = path.join(this.dir, RUN_FILE);
    if (!ckpt)
      throw new DdpmError('NO_CHECKPOINT', `${path.join(this.dir, CHECKPOINTS_DIR)}: no checkpoint to resume from`);
    const m = ckpt.manifest;
    let id = this.identityRef;
    if (!id) {
      if (!o.legacyScheduler)
        throw new DdpmError(
          'RUN_MISMATCH',
          `${runFile}: missing, and no scheduler given to adopt the folder's checkpoints`,
        );
      this.notices.push(`${runFile} was missing: written from ${ckpt.source}`);
      id = {
        format: RUN_FORMAT,
        version: 1,
        data: o.dataLabel,
        dataset_size: m.data_order.dataset_size,
        scheduler: o.legacyScheduler,
      };
    }
    const mismatch = (what: string) => new DdpmError('RUN_MISMATCH', `${this.dir}: ${what}; use a new folder`);
    const x = samplesOf(o.data);
    if (id.data !== o.dataLabel) throw mismatch(`the run was trained on ${id.data}, not ${o.dataLabel}`);
    if (id.dataset_size !== m.data_order.dataset_size)
      throw mismatch(`${runFile} records ${id.dataset_size} samples, ${ckpt.source} ${m.data_order.dataset_size}`);
    if (id.data_hash !== undefined && id.data_hash !== dataHash(x))
      throw mismatch(
        `the contents of ${id.data} changed since the run started (data hash ${dataHash(x)}, run.json ${id.data_hash})`,
      );
    if (id.model && !same(id.model, m.model))
      throw mismatch(`${ckpt.source} holds a ${m.model.class} that differs from ${runFile}'s model`);
    if (id.trainer_config && !same(id.trainer_config, m.trainer_config))
      throw mismatch(`${ckpt.source}'s trainer config differs from ${runFile}'s`);
    const saved: Record<string, unknown> = { ...m.trainer_config, model: m.model.config };
    for (const [k, want] of Object.entries(o.expect ?? {})) {
      if (want === undefined || !Object.hasOwn(saved, k)) continue;
      if (!same(want, saved[k])) {
        const label = (o.labels as Record<string, string> | undefined)?.[k] ?? k;
        throw new DdpmError(
          'RUN_MISMATCH',
          `${label} ${k === 'model' ? '' : `${typeof want === 'string' ? want : JSON.stringify(want)} `}differs from the run's ${k === 'model' ? 'model' : JSON.stringify(saved[k])} (${runFile}, ${ckpt.source}); drop it to resume, or use a new folder`,
        );
      }
    }
    // the trainer's config: a checkpoint's values are checked by parseTrainerConfig, named as its file's
    let trainer: Trainer;
    const model = modelFromCheckpoint(engine, ckpt);
    try {
      trainer = new Trainer(model, o.data, TrainingRun.schedule(id.scheduler), m.trainer_config);
    } catch (e) {
      if (e instanceof DdpmError && e.code === 'INVALID_ARGUMENT' && /^trainer config/.test(e.message))
        throw new DdpmError('FORMAT', `${ckpt.source}/checkpoint.json: ${e.message}`);
      throw e;
    }
    restoreTrainer(trainer, ckpt);
    if (id.version !== RUN_VERSION) {
      // upgrade run.json from version 1 (or write it for an adopted folder)
      const full: RunIdentity = {
        format: RUN_FORMAT,
        version: RUN_VERSION,
        data: id.data,
        dataset_size: id.dataset_size,
        data_hash: dataHash(x),
        model: m.model as RunIdentity['model'],
        init_seed: null,
        scheduler: id.scheduler,
        trainer_config: trainer.config,
      };
      await this.lock.check();
      await writeAtomic(runFile, JSON.stringify(full, null, 2) + '\n');
      id = full;
    }
    this.identityRef = id;
    this.trainerRef = trainer;
    this.lastCheckpointStep = trainer.step;
    this.log = await LossLog.open(path.join(this.dir, LOSS_FILE), trainer.step, this.notices);
    return trainer;
  }

  /** Runs fn with the EMA weights in the model (the raw weights when there is no EMA), then puts θ back. */
  async withEmaWeights<T>(fn: (model: Denoiser) => Promise<T> | T): Promise<T> {
    const t = this.trainer;
    const e = t.engine;
    const saved = e.read(t.model.params.all);
    if (t.ema) e.view(t.model.params.all).set(e.view(t.ema.all));
    try {
      return await fn(t.model);
    } finally {
      e.view(t.model.params.all).set(saved);
    }
  }

  /** Flushes the loss log, then writes a checkpoint of the current step (the log's lines are durable first). */
  async saveCheckpoint(keep = 3): Promise<string> {
    const { path } = await node();
    const t = this.trainer;
    await this.lock.check();
    await this.log!.flush();
    const dir = await saveCheckpoint(path.join(this.dir, CHECKPOINTS_DIR), t, { keep });
    this.lastCheckpointStep = t.step;
    return dir;
  }

  private async sampleGrid(o: RunTrainOptions, written: string[]): Promise<void> {
    const { fs, path } = await node();
    const step = this.trainer.step;
    const file = path.join(this.dir, SAMPLES_DIR, `step-${step}.png`);
    // a grid's step always has a checkpoint, so an interrupted grid is drawn again on resume
    if (this.lastCheckpointStep !== step) written.push(await this.saveCheckpoint(o.keep));
    const bytes = await this.withEmaWeights((model) => o.sample!(model, step));
    await this.lock.check();
    await fs.mkdir(path.dirname(file), { recursive: true });
    await writeAtomic(file, bytes);
    written.push(file);
  }

  private async gridMissing(step: number): Promise<boolean> {
    const { fs, path } = await node();
    return fs.stat(path.join(this.dir, SAMPLES_DIR, `step-${step}.png`)).then(
      () => false,
      () => true,
    );
  }

  /**
   * Trains until `o.until` with checkpoints every `checkpointEvery` steps (and at the end, on abort and
   * at every sample grid), sample grids every `sampleEvery` steps and at the end. A grid that was due at
   * the resumed step but is missing (interrupted) is drawn first.
   */
  async train(o: RunTrainOptions): Promise<RunResult> {
    const t = this.trainer;
    const every = o.checkpointEvery;
    const sampleEvery = o.sample ? (o.sampleEvery ?? 0) : 0;
    if (!Number.isInteger(every) || every < 1)
      throw new DdpmError(
        'INVALID_ARGUMENT',
        `TrainingRun.train: checkpointEvery must be an integer ≥ 1, found ${every}`,
      );
    if (!Number.isInteger(sampleEvery) || sampleEvery < 0)
      throw new DdpmError(
        'INVALID_ARGUMENT',
        `TrainingRun.train: sampleEvery must be an integer ≥ 0, found ${sampleEvery}`,
      );
    if (!Number.isInteger(o.until) || o.until < 0)
      throw new DdpmError('INVALID_ARGUMENT', `TrainingRun.train: until must be an integer ≥ 0, found ${o.until}`);
    const written: string[] = [];
    const gridDue = (s: number) => !!o.sample && s > 0 && (s === o.until || (sampleEvery > 0 && s % sampleEvery === 0));
    if (t.step > 0 && t.step <= o.until && gridDue(t.step) && (await this.gridMissing(t.step)))
      await this.sampleGrid(o, written);
    const r = await t.train({
      steps: Math.max(0, o.until - t.step),
      signal: o.signal,
      onProgress: (p) => {
        this.log!.append(p.step, p.loss);
        o.onProgress?.(p);
      },
      afterStep: async (s) => {
        if (gridDue(s)) await this.sampleGrid(o, written);
        else if (s % every === 0 || s === o.until) written.push(await this.saveCheckpoint(o.keep));
      },
    });
    // aborted, or nothing to do: make sure the current step has a checkpoint (steps since the last are kept)
    if (t.step > 0 && this.lastCheckpointStep !== t.step) written.push(await this.saveCheckpoint(o.keep));
    await this.log!.flush();
    return { step: t.step, aborted: r.aborted, written };
  }

  /**
   * <dir>/model: the EMA weights (raw weights without an EMA) as a model folder — diffusers' for a U-Net
   * (config.json, diffusion_pytorch_model.safetensors), ddpm-wasm's for the MLP — with scheduler_config.json.
   * Written to a temporary folder and swapped in, so a crash leaves the previous export (or none), never a mix.
   */
  async exportModel(): Promise<string> {
    const { fs, path } = await node();
    const id = this.identityRef!;
    const final = path.join(this.dir, MODEL_DIR);
    const tmp = `${final}.${TMP_TOKEN}.tmp`;
    const old = `${final}.old.${TMP_TOKEN}.tmp`;
    const files = await this.withEmaWeights((model) => {
      if (model instanceof UNet2DModel)
        return [
          [WEIGHTS_FILE, model.weightsBytes()],
          ['config.json', JSON.stringify(model.configJson(), null, 2) + '\n'],
        ] as const;
      const mlp = model as MLPDenoiser;
      return [
        [MLP_WEIGHTS_FILE, mlp.weightsBytes()],
        ['config.json', mlp.configJson() + '\n'],
      ] as const;
    });
    await this.lock.check();
    try {
      await fs.rm(tmp, { recursive: true, force: true });
      await fs.mkdir(tmp, { recursive: true });
      for (const [name, data] of [...files, [SCHEDULER_FILE, JSON.stringify(id.scheduler, null, 2) + '\n'] as const])
        await fs.writeFile(path.join(tmp, name), data);
      const hadOld = await fs.stat(final).then(
        () => true,
        () => false,
      );
      if (hadOld) await fs.rename(final, old);
      await fs.rename(tmp, final);
      if (hadOld) await fs.rm(old, { recursive: true, force: true });
    } catch (e) {
      await fs.rm(tmp, { recursive: true, force: true }).catch(() => {});
      throw ioError(final, 'export the model', e);
    }
    return final;
  }

  /** The loss of every step up to the current one (from loss.csv and this session), for plots. */
  lossHistory(): { steps: readonly number[]; losses: readonly number[] } {
    return { steps: this.log?.steps ?? [], losses: this.log?.losses ?? [] };
  }

  /** Flushes the log and releases the lock (idempotent). */
  async close(): Promise<void> {
    try {
      await this.log?.close();
    } finally {
      this.log = null;
      await this.lock.release();
    }
  }
}

/** Removes *.tmp files and folders (of dead writers: the caller holds the lock) in the run folder's parts. */
async function removeLeftovers(fs: Fs, path: Path, dir: string): Promise<void> {
  for (const sub of ['', CHECKPOINTS_DIR, SAMPLES_DIR, MODEL_DIR]) {
    const d = path.join(dir, sub);
    const names = await fs.readdir(d).catch(() => [] as string[]);
    for (const n of names) if (n.endsWith('.tmp')) await fs.rm(path.join(d, n), { recursive: true, force: true });
  }
}

/** Writes under this process's temporary name, fsyncs, renames into place. */
async function writeAtomic(file: string, data: Uint8Array | string): Promise<void> {
  const { fs } = await node();
  const tmp = `${file}.${TMP_TOKEN}.tmp`;
  try {
    const fh = await fs.open(tmp, 'w');
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.rename(tmp, file);
  } catch (e) {
    await fs.rm(tmp, { force: true }).catch(() => {});
    throw ioError(file, 'write', e);
  }
}

/**
 * loss.csv, append-only: lines are buffered and written + fsynced by flush() (before each checkpoint).
 * Opening at step c keeps exactly the lines of steps 1 … c (the tail beyond c is cut: those steps run again).
 */
class LossLog {
  private pending = '';
  private constructor(
    private readonly file: string,
    private fh: import('node:fs/promises').FileHandle,
    readonly steps: number[],
    readonly losses: number[],
  ) {}

  static async open(file: string, step: number, notices: string[]): Promise<LossLog> {
    const { fs } = await node();
    // bytes, not text: the cut is a byte offset
    const bytes = await fs.readFile(file).then(
      (b) => new Uint8Array(b.buffer, b.byteOffset, b.byteLength),
      (e: NodeJS.ErrnoException) => {
        if (e.code === 'ENOENT') return new Uint8Array(0);
        throw ioError(file, 'read', e);
      },
    );
    const header = new TextEncoder().encode(LOSS_HEADER);
    const ascii = (from: number, to: number) => String.fromCharCode(...bytes.subarray(from, Math.min(to, from + 200)));
    const steps: number[] = [];
    const losses: number[] = [];
    let keep = 0; // bytes of the file to keep
    if (bytes.length > 0) {
      if (bytes.length < header.length || header.some((c, i) => bytes[i] !== c)) {
        const nl = bytes.indexOf(0x0a);
        throw new DdpmError(
          'FORMAT',
          `${file}: not a loss log (its first line is ${JSON.stringify(ascii(0, nl < 0 ? 40 : nl))}, expected "step,loss"); move it away to continue the run`,
        );
      }
      keep = header.length;
      let at = keep;
      while (at < bytes.length) {
        const nl = bytes.indexOf(0x0a, at);
        if (nl < 0) break; // a partial last line (a crash mid-write): beyond any checkpoint
        const [s, l] = ascii(at, nl).split(',');
        const sn = Number(s);
        if (
          !Number.isSafeInteger(sn) ||
          sn > step ||
          sn !== (steps.length ? steps[steps.length - 1] + 1 : 1) ||
          l === undefined
        )
          break;
        steps.push(sn);
        losses.push(Number(l));
        at = nl + 1;
        keep = at;
      }
    }
    const last = steps.length ? steps[steps.length - 1] : 0;
    if (step > 0 && last !== step)
      notices.push(
        `${file} holds steps up to ${last}; the checkpoint is at step ${step}: the losses of the steps between were not recorded (a folder written by an older version?)`,
      );
    try {
      if (keep === 0) await fs.writeFile(file, LOSS_HEADER);
      else if (keep < bytes.length) await fs.truncate(file, keep);
      const fh = await fs.open(file, 'a');
      return new LossLog(file, fh, steps, losses);
    } catch (e) {
      throw ioError(file, 'open the loss log', e);
    }
  }

  append(step: number, loss: number): void {
    this.steps.push(step);
    this.losses.push(loss);
    this.pending += `${step},${loss}\n`;
  }

  async flush(): Promise<void> {
    if (!this.pending) return;
    const text = this.pending;
    this.pending = '';
    try {
      await this.fh.write(text);
      await this.fh.sync();
    } catch (e) {
      throw ioError(this.file, 'append to the loss log', e);
    }
  }

  async close(): Promise<void> {
    try {
      await this.flush();
    } finally {
      await this.fh.close();
    }
  }
}

export { checkpointName };
