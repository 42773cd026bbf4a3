// TrainingRun and `ddpm train` on one run folder: one writer (lock, in-process and across processes, stale
// locks taken over), kill -9 at random moments resumes bit-identically and the loss log loses nothing a
// checkpoint covers, hostile checkpoint.json / run.json are typed errors, the mnist recipe is the default.
// The CLI runs from dist/ (`npm run build` first).
import { spawn, spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DdpmError } from '../src/errors';
import { Engine } from '../src/engine/engine';
import { MNIST_RECIPE } from '../src/nn/presets';
import { LOCK_FILE } from '../src/train/lock';
import { TrainingRun, parseRunIdentity } from '../src/train/run';
import { twoMoons } from '../src/train/toy-data';
import { parseTrainerConfig } from '../src/train/trainer';
import { DDPMScheduler } from '../src/diffusion/ddpm';
import { trainWarnings } from '../src/cli/train';

const cli = join(__dirname, '..', 'dist', 'cli.js');
const root = mkdtempSync(join(tmpdir(), 'ddpm-run-'));
const ddpm = (...args: string[]) =>
  spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 60_000, cwd: root });
let engine: Engine;
beforeAll(async () => {
  engine = await Engine.create({ threads: 1 });
});
afterAll(() => {
  engine?.dispose();
  rmSync(root, { recursive: true, force: true });
});

async function errorOf(f: () => unknown): Promise<DdpmError> {
  try {
    await f();
  } catch (e) {
    if (!(e instanceof DdpmError)) throw e;
    return e;
  }
  throw new Error('expected an error');
}

const data = twoMoons(64, 1);
const scheduler = new DDPMScheduler({ numTrainTimesteps: 100, betaSchedule: 'linear', clipSample: false }).toConfig();
const start = (run: TrainingRun) =>
  run.start(engine, {
    data,
    dataLabel: 'moons-64',
    model: { class: 'MLPDenoiser', config: { data_dim: 2, hidden_dim: 16, num_blocks: 1 } },
    initSeed: 3,
    scheduler,
    trainer: { batchSize: 8, learningRate: 1e-2, seed: 5 },
  });

/** Every file under dir whose name ends in .tmp. */
function tmpFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.name.endsWith('.tmp')) out.push(join(dir, e.name));
    if (e.isDirectory()) out.push(...tmpFiles(join(dir, e.name)));
  }
  return out;
}

/** A pid that is not running: a child that has exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', '0']);
  return r.pid!;
}

describe('Trainer.state() / restore()', () => {
  it("a trainer restored from another's state continues bit-identically; a bad state leaves it untouched", async () => {
    const { MLPDenoiser } = await import('../src/nn/mlp');
    const { Trainer } = await import('../src/train/trainer');
    const { namedSchedule } = await import('../src/diffusion/schedule');
    const make = (seed: number) =>
      new Trainer(
        MLPDenoiser.create(engine, { data_dim: 2, hidden_dim: 16, num_blocks: 1 }, seed),
        data,
        namedSchedule('linear', 50),
        { batchSize: 8, learningRate: 1e-2, seed: 2 },
      );
    const a = make(1);
    await a.train({ steps: 4 });
    const b = make(9);
    b.restore(a.state());
    await a.train({ steps: 3 });
    await b.train({ steps: 3 });
    const [sa, sb] = [a.state(), b.state()];
    expect(sb.counters).toEqual(sa.counters);
    for (const k of ['params', 'ema', 'expAvg', 'expAvgSq'] as const)
      expect(Buffer.compare(Buffer.from(sb[k]!.buffer), Buffer.from(sa[k]!.buffer)), k).toBe(0);
    const before = b.state().params;
    const bad = (f: (s: ReturnType<typeof a.state>) => void) => {
      const s = a.state();
      f(s);
      return s;
    };
    const cases: [ReturnType<typeof a.state>, string, RegExp][] = [
      [bad((s) => (s.params = s.params.subarray(1))), 'SHAPE_MISMATCH', /params must be a Float32Array of \d+ values/],
      [bad((s) => (s.expAvgSq[3] = NaN)), 'NON_FINITE', /expAvgSq\[3\] = NaN/],
      [bad((s) => (s.ema = null)), 'INVALID_ARGUMENT', /has no EMA weights but this trainer keeps EMA/],
      [bad((s) => (s.counters.step += 1)), 'INVALID_ARGUMENT', /must equal step/],
    ];
    for (const [state, code, re] of cases) {
      const e = await errorOf(() => b.restore(state));
      expect([e.code, e.message]).toEqual([code, expect.stringMatching(re)]);
    }
    expect(Buffer.compare(Buffer.from(b.state().params.buffer), Buffer.from(before.buffer))).toBe(0);
  });
});

describe('one writer per run folder', () => {
  it('in one process: a second TrainingRun on the folder gets LOCKED naming the holder; after close it opens', async () => {
    const dir = join(root, 'inproc');
    const a = await TrainingRun.open(dir);
    const e = await errorOf(() => TrainingRun.open(dir));
    expect(e.code).toBe('LOCKED');
    expect(e.message).toContain(`pid ${process.pid} on ${hostname()}`);
    await start(a);
    await a.train({ until: 3, checkpointEvery: 2 });
    await a.close();
    const b = await TrainingRun.open(dir);
    expect(b.checkpoint?.manifest.step).toBe(3);
    await b.close();
    expect(existsSync(join(dir, LOCK_FILE))).toBe(false);
  });

  it('two `ddpm train` processes: the second gets LOCKED and writes nothing; the first finishes', async () => {
    const args = [
      'train',
      '--data',
      'two-moons',
      '--preset',
      'tiny',
      '--threads',
      '1',
      '--out',
      'two',
      '--sample-every',
      '0',
      '--checkpoint-every',
      '10',
      '--warmup',
      '1',
    ];
    const first = spawn(process.execPath, [cli, ...args, '--steps', '1000000'], { cwd: root });
    let stderr = '';
    first.stderr.on('data', (d) => (stderr += d));
    for (let i = 0; i < 400 && !existsSync(join(root, 'two', 'checkpoints', 'latest')); i++)
      await new Promise((r) => setTimeout(r, 25));
    const second = ddpm(...args, '--steps', '5', '--seed', '1', '--quiet');
    expect(second.status).toBe(1);
    expect(second.stderr).toMatch(
      new RegExp(`^ddpm: .*two is being written by another run \\(pid ${first.pid} on ${hostname()}, since `),
    );
    first.kill('SIGINT');
    expect(await new Promise((r) => first.on('exit', r))).toBe(130);
    expect(stderr).toMatch(/interrupted at step \d+/);
    // the folder is still the first run's (seed 0), and its lock is gone
    expect(JSON.parse(readFileSync(join(root, 'two', 'run.json'), 'utf8')).trainer_config.seed).toBe(0);
    expect(existsSync(join(root, 'two', LOCK_FILE))).toBe(false);
  });

  it("a stale lock (dead pid on this host; a truncated lock file) is taken over; another host's is reported", async () => {
    const dir = join(root, 'stale');
    mkdirSync(dir, { recursive: true });
    const pid = deadPid();
    writeFileSync(
      join(dir, LOCK_FILE),
      JSON.stringify({
        format: 'ddpm-wasm.train-lock',
        pid,
        host: hostname(),
        started: '2026-01-01T00:00:00.000Z',
        token: 'x',
      }),
    );
    const run = await TrainingRun.open(dir);
    expect(JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8'))).toMatchObject({
      pid: process.pid,
      host: hostname(),
    });
    await run.close();

    writeFileSync(join(dir, LOCK_FILE), '{"format":"ddpm-wasm.tr'); // a crash while creating the lock
    utimesSync(join(dir, LOCK_FILE), new Date(Date.now() - 60_000), new Date(Date.now() - 60_000));
    await (await TrainingRun.open(dir)).close();

    writeFileSync(
      join(dir, LOCK_FILE),
      JSON.stringify({
        format: 'ddpm-wasm.train-lock',
        pid,
        host: 'elsewhere.example',
        started: '2026-01-01T00:00:00.000Z',
        token: 'y',
      }),
    );
    const e = await errorOf(() => TrainingRun.open(dir));
    expect(e.code).toBe('LOCKED');
    expect(e.message).toMatch(new RegExp(`pid ${pid} on elsewhere\\.example.*another host.*delete .*train\\.lock`));
  });

  it('a run whose lock was taken away stops before its next write', async () => {
    const dir = join(root, 'stolen');
    const run = await TrainingRun.open(dir);
    await start(run);
    writeFileSync(
      join(dir, LOCK_FILE),
      JSON.stringify({
        format: 'ddpm-wasm.train-lock',
        pid: 1,
        host: hostname(),
        started: '2026-01-01T00:00:00.000Z',
        token: 'other',
      }),
    );
    const e = await errorOf(() => run.train({ until: 4, checkpointEvery: 2 }));
    expect(e.code).toBe('LOCKED');
    expect(e.message).toMatch(/no longer holds the lock \(now held by pid 1 /);
    expect(existsSync(join(dir, 'checkpoints'))).toBe(false);
    await run.close();
    expect(existsSync(join(dir, LOCK_FILE))).toBe(true); // not ours: left alone
  });
});

describe('crash safety', () => {
  it('kill -9 of `ddpm train` at random moments: resume is bit-identical to a straight run, the log loses nothing a checkpoint covers', async () => {
    const args = [
      'train',
      '--data',
      'two-moons',
      '--preset',
      'tiny',
      '--threads',
      '1',
      '--steps',
      '80',
      '--checkpoint-every',
      '5',
      '--sample-every',
      '20',
      '--warmup',
      '5',
      '--quiet',
    ];
    const t0 = performance.now();
    expect(ddpm(...args, '--out', 'straight').status).toBe(0);
    const runMs = performance.now() - t0; // kills fall inside a run however fast this machine is
    const straightLog = readFileSync(join(root, 'straight', 'loss.csv'), 'utf8');
    expect(straightLog.trim().split('\n')).toHaveLength(81);

    // kill times from a fixed generator, spread over 10–90% of a whole run's wall time
    let s = 12345;
    const rand = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32;
    const dir = join(root, 'faulty');
    let kills = 0;
    const killedAt: string[] = [];
    for (let trial = 0; trial < 6; trial++) {
      const child = spawn(process.execPath, [cli, ...args, '--out', 'faulty'], { cwd: root, stdio: 'ignore' });
      const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
      const timer = setTimeout(() => child.kill('SIGKILL'), runMs * (0.1 + 0.8 * rand()));
      const code = await exited;
      clearTimeout(timer);
      if (code === 0) break; // finished before its kill
      kills++;
      killedAt.push(
        existsSync(join(dir, 'checkpoints', 'latest'))
          ? readFileSync(join(dir, 'checkpoints', 'latest'), 'utf8').trim()
          : 'none',
      );
      // what the latest checkpoint covers is in the log, exactly as in the straight run
      if (existsSync(join(dir, 'checkpoints', 'latest'))) {
        const step = Number(/ckpt-(\d+)/.exec(readFileSync(join(dir, 'checkpoints', 'latest'), 'utf8'))![1]);
        const lines =
          straightLog
            .split('\n')
            .slice(0, step + 1)
            .join('\n') + '\n';
        expect(
          readFileSync(join(dir, 'loss.csv'), 'utf8').startsWith(lines),
          `after kill ${kills}: loss.csv covers step ${step}`,
        ).toBe(true);
      }
    }
    const last = ddpm(...args, '--out', 'faulty');
    expect(last.status, last.stderr).toBe(0);
    console.log(`killed ${kills} times; latest checkpoint after each kill: ${killedAt.join(', ')}`);
    expect(kills).toBeGreaterThan(0);
    for (const f of [
      'model/model.safetensors',
      'checkpoints/ckpt-000080/model.safetensors',
      'checkpoints/ckpt-000080/optimizer.exp_avg_sq.safetensors',
      'samples/step-20.png',
      'samples/step-40.png',
      'samples/step-60.png',
      'samples/step-80.png',
    ]) {
      expect(Buffer.compare(readFileSync(join(dir, f)), readFileSync(join(root, 'straight', f))), f).toBe(0);
    }
    expect(readFileSync(join(dir, 'loss.csv'), 'utf8')).toBe(straightLog);
    expect(tmpFiles(dir)).toEqual([]);
    expect(tmpFiles(join(root, 'straight'))).toEqual([]);
  }, 60_000);

  it('resume cuts the log back to the checkpoint, removes leftovers and draws an interrupted grid again', async () => {
    const dir = join(root, 'leftovers');
    const draw = async () => new Uint8Array([1, 2, 3]);
    let run = await TrainingRun.open(dir);
    await start(run);
    await run.train({ until: 6, checkpointEvery: 3, sampleEvery: 3, sample: draw });
    await run.close();
    // as a kill would leave it: log lines beyond the checkpoint (one half-written), a dead writer's
    // temporaries, the grid of the checkpoint's step not yet renamed into place
    const log = readFileSync(join(dir, 'loss.csv'), 'utf8');
    writeFileSync(join(dir, 'loss.csv'), log + '7,0.5\n8,0.2');
    mkdirSync(join(dir, 'checkpoints', 'ckpt-000009.123-abc.tmp'));
    writeFileSync(join(dir, 'samples', 'step-6.png.999-x.tmp'), 'half');
    rmSync(join(dir, 'samples', 'step-6.png'));
    run = await TrainingRun.open(dir);
    expect(tmpFiles(dir)).toEqual([]);
    await run.resume(engine, { data, dataLabel: 'moons-64' });
    expect(readFileSync(join(dir, 'loss.csv'), 'utf8')).toBe(log);
    expect(run.lossHistory().steps).toEqual([1, 2, 3, 4, 5, 6]);
    const r = await run.train({ until: 6, checkpointEvery: 3, sampleEvery: 3, sample: draw });
    expect(r.written).toEqual([join(dir, 'samples', 'step-6.png')]);
    expect(readFileSync(join(dir, 'samples', 'step-6.png'))).toEqual(Buffer.from([1, 2, 3]));
    await run.exportModel();
    expect(readdirSync(join(dir, 'model')).sort()).toEqual([
      'config.json',
      'model.safetensors',
      'scheduler_config.json',
    ]);
    expect(tmpFiles(dir)).toEqual([]);
    await run.close();
  });
});

describe('typed errors for hostile run folders', () => {
  /** A finished two-step run; returns its checkpoint folder. */
  async function runFolder(name: string): Promise<{ dir: string; ckpt: string }> {
    const dir = join(root, name);
    const run = await TrainingRun.open(dir);
    await start(run);
    await run.train({ until: 2, checkpointEvery: 2 });
    await run.close();
    return { dir, ckpt: join(dir, 'checkpoints', 'ckpt-000002') };
  }
  // biome-ignore lint/suspicious/noExplicitAny: the tests edit arbitrary JSON
  type Json = any;
  const edit = (file: string, f: (j: Json) => void) => {
    const j = JSON.parse(readFileSync(file, 'utf8'));
    f(j);
    writeFileSync(file, JSON.stringify(j));
  };
  /** Opening and resuming: a DdpmError with this code and message, never a TypeError. */
  async function expectResumeError(dir: string, code: string, re: RegExp): Promise<void> {
    const e = await errorOf(async () => {
      const run = await TrainingRun.open(dir);
      try {
        await run.resume(engine, { data, dataLabel: 'moons-64' });
      } finally {
        await run.close();
      }
    });
    expect([e.code, e.message]).toEqual([code, expect.stringMatching(re)]);
  }

  it('checkpoint.json: every field checked with own-property lookups', async () => {
    const cases: [string, (j: Json) => void, RegExp][] = [
      ['no-order', (j) => delete j.data_order, /data_order must be an object, found nothing/],
      ['config-null', (j) => (j.model.config = null), /model\.config must be an object, found null/],
      ['model-null', (j) => (j.model = null), /model must be an object, found null/],
      [
        'files-proto',
        (j) => (j.files = JSON.parse('{"__proto__": {"model.safetensors": 1}}')),
        /files does not list model\.safetensors/,
      ],
      ['rng-string', (j) => (j.rng = 'philox'), /rng must be an object, found "philox"/],
      ['step-neg', (j) => (j.step = -1), /step must be an integer ≥ 0, found -1/],
      ['step-lie', (j) => (j.step = 3), /optimizer_step \(2\) \+ skipped_steps \(0\) must equal step \(3\)/],
      ['order-lie', (j) => (j.data_order.position = 5), /data_order .* does not follow from step 2/],
      ['tc-array', (j) => (j.trainer_config = []), /trainer_config must be an object, found \[\]/],
      ['ac-strings', (j) => (j.alphas_cumprod = ['0.5']), /alphas_cumprod must be a non-empty array of finite numbers/],
      ['engine-missing', (j) => delete j.engine, /engine must be an object/],
    ];
    for (const [name, f, re] of cases) {
      const { dir, ckpt } = await runFolder(`ck-${name}`);
      edit(join(ckpt, 'checkpoint.json'), f);
      await expectResumeError(dir, 'FORMAT', re);
    }
    // a trainer_config whose values are wrong is a FORMAT error naming the checkpoint (from parseTrainerConfig)
    const { dir, ckpt } = await runFolder('ck-tc-values');
    edit(join(ckpt, 'checkpoint.json'), (j) => (j.trainer_config.learningRate = 'fast'));
    // run.json of version 1 (data and scheduler only) does not repeat the trainer config: only the checkpoint holds it
    edit(join(dir, 'run.json'), (j) => {
      for (const k of ['data_hash', 'model', 'init_seed', 'trainer_config']) delete j[k];
      j.version = 1;
    });
    await expectResumeError(dir, 'FORMAT', /checkpoint\.json: trainer config: learningRate must be a finite number/);
  });

  it('run.json: malformed, contradicting the checkpoint, or other data', async () => {
    const cases: [string, (j: Json) => void, string, RegExp][] = [
      ['version', (j) => (j.version = 9), 'FORMAT', /run\.json: version 9 is not supported/],
      ['model-null', (j) => (j.model = null), 'FORMAT', /run\.json: model must be an object, found null/],
      ['config-null', (j) => (j.model.config = null), 'FORMAT', /run\.json: model\.config must be an object/],
      [
        'tc',
        (j) => (j.trainer_config.batchSize = 0),
        'FORMAT',
        /run\.json: trainer config: batchSize must be an integer ≥ 1/,
      ],
      ['hash', (j) => (j.data_hash = 'zz'), 'FORMAT', /data_hash must be 8 hex digits/],
      ['sched', (j) => (j.scheduler = 'ddpm'), 'FORMAT', /scheduler must be an object/],
      ['proto', (j) => (j.data = undefined), 'FORMAT', /data must be a string, found nothing/],
      ['other-data', (j) => (j.data = 'mnist'), 'RUN_MISMATCH', /trained on mnist, not moons-64; use a new folder/],
      [
        'other-hash',
        (j) => (j.data_hash = '00000000'),
        'RUN_MISMATCH',
        /contents of moons-64 changed since the run started/,
      ],
      [
        'other-model',
        (j) => (j.model.config.hidden_dim = 32),
        'RUN_MISMATCH',
        /holds a MLPDenoiser that differs from .*run\.json's model/,
      ],
      [
        'other-lr',
        (j) => (j.trainer_config.learningRate = 0.5),
        'RUN_MISMATCH',
        /trainer config differs from .*run\.json's/,
      ],
    ];
    for (const [name, f, code, re] of cases) {
      const { dir } = await runFolder(`rj-${name}`);
      edit(join(dir, 'run.json'), f);
      await expectResumeError(dir, code, re);
    }
    const { dir } = await runFolder('rj-garbage');
    writeFileSync(join(dir, 'run.json'), '{"format": ');
    await expectResumeError(dir, 'FORMAT', /run\.json: not valid JSON/);
    expect(() => parseRunIdentity(JSON.parse('{"__proto__": {"format": "ddpm-wasm.train-run"}}'), 'x.json')).toThrow(
      /format must be "ddpm-wasm\.train-run", found nothing/,
    );
  });

  it('resume without a checkpoint is NO_CHECKPOINT; start over a checkpoint and flags that differ are RUN_MISMATCH', async () => {
    const empty = await TrainingRun.open(join(root, 'empty'));
    expect((await errorOf(() => empty.resume(engine, { data, dataLabel: 'moons-64' }))).code).toBe('NO_CHECKPOINT');
    await empty.close();
    const { dir } = await runFolder('flags');
    const run = await TrainingRun.open(dir);
    expect((await errorOf(() => start(run))).code).toBe('RUN_MISMATCH');
    const e = await errorOf(() =>
      run.resume(engine, {
        data,
        dataLabel: 'moons-64',
        expect: { learningRate: 0.5 },
        labels: { learningRate: '--lr' },
      }),
    );
    expect([e.code, e.message]).toEqual([
      'RUN_MISMATCH',
      expect.stringMatching(/^--lr 0\.5 differs from the run's 0\.01 .*drop it to resume, or use a new folder/),
    ]);
    await run.close();
  });
});

describe('ddpm train defaults', () => {
  it("--data mnist trains the shipped model's recipe (models/mnist/TRAINING.md) and warns about too few steps", async () => {
    // killed once step 1's checkpoint exists: the final sample grid of the full U-Net is not needed here
    const child = spawn(
      process.execPath,
      [cli, 'train', '--data', 'mnist', '--out', 'recipe', '--steps', '1', '--threads', '1'],
      { cwd: root },
    );
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise((r) => child.on('exit', r));
    for (let i = 0; i < 1200 && !existsSync(join(root, 'recipe', 'checkpoints', 'latest')); i++)
      await new Promise((r) => setTimeout(r, 25));
    child.kill('SIGKILL');
    await exited;
    const id = JSON.parse(readFileSync(join(root, 'recipe', 'run.json'), 'utf8'));
    // the cosine ends at --steps (here lifted past the warmup, which the first warning reports)
    expect(id.trainer_config).toEqual(parseTrainerConfig({ ...MNIST_RECIPE.trainer, maxTrainSteps: 201 } as never));
    expect(id.trainer_config).toMatchObject({
      batchSize: 32,
      lrWarmupSteps: 200,
      learningRate: 1e-3,
      lrScheduler: 'cosine',
      predictionType: 'v_prediction',
      snrGamma: 5,
      seed: 20261201,
      ema: { maxDecay: 0.9995, useEmaWarmup: true },
    });
    expect(id.scheduler).toEqual(new DDPMScheduler(MNIST_RECIPE.scheduler).toConfig());
    expect(id.init_seed).toBe(0);
    // the shipped model's config.json is this run's model config
    const shipped = JSON.parse(readFileSync(join(__dirname, '..', 'models', 'mnist', 'config.json'), 'utf8'));
    for (const k of [
      'sample_size',
      'block_out_channels',
      'down_block_types',
      'up_block_types',
      'layers_per_block',
      'norm_num_groups',
      'attention_head_dim',
      'flip_sin_to_cos',
      'freq_shift',
    ]) {
      expect(id.model.config[k], k).toEqual(shipped[k]);
    }
    expect(
      stderr
        .trim()
        .split('\n')
        .filter((l) => l.startsWith('warning')),
    ).toEqual([
      'warning: --warmup 200 ≥ --steps 1: the learning rate never reaches --lr (warmup is usually a few % of the steps)',
      'warning: 1 steps is far too few for digits: below ~2,000 steps samples are blobs; the shipped model trained 50,000 steps of 32',
    ]);
    // the learning rate's cosine ends at step 201: a resume may not train past it
    const past = ddpm('train', '--data', 'mnist', '--out', 'recipe', '--steps', '300', '--threads', '1', '--quiet');
    expect([past.status, past.stderr]).toEqual([
      1,
      expect.stringMatching(
        /--steps 300 is past the end of this run's learning-rate schedule \(a cosine decay to 0 at step 201/,
      ),
    ]);
  }, 60_000);

  it('warnings: only when warmup ≥ steps, and step counts too small for digits', () => {
    expect(trainWarnings({ warmup: 200, steps: 13000, digits: true })).toEqual([]);
    expect(trainWarnings({ warmup: 100, steps: 500, digits: false })).toEqual([]);
    expect(trainWarnings({ warmup: 500, steps: 500, digits: false })).toHaveLength(1);
    expect(trainWarnings({ warmup: 10, steps: 500, digits: true })[0]).toMatch(/500 steps is far too few for digits/);
  });
});
