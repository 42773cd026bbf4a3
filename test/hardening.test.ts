// Hostile input, concurrent use and filesystem faults (issue 12): each is a typed DdpmError, fast and with
// bounded memory, never a hang, a RangeError, a V8 heap abort or another caller's data.
// Memory is measured in a child process (test/helpers/hostile-child.mjs, run from dist/: `npm run build`
// first) so that a case that blew up would kill the child, not the test runner.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DDIMScheduler,
  DDPMScheduler,
  DdpmError,
  Engine,
  MLPDenoiser,
  SamplingChain,
  UNet2DModel,
  kernels,
} from '../src/index';
import { parseCommand } from '../src/cli/args';
import { checkWritablePath, fsError, readRegularFile } from '../src/io/fs';
import { parseUNetConfig } from '../src/nn/unet-config';
import { unetForwardBytes, unetParamCount } from '../src/nn/unet-plan';
import { show } from '../src/validate';
import { TINY_UNET } from './helpers/configs.js';

const root = mkdtempSync(join(tmpdir(), 'ddpm-hardening-'));
const tiny = TINY_UNET;

async function errorOf(f: () => unknown): Promise<DdpmError> {
  try {
    await f();
  } catch (e) {
    expect(e).toBeInstanceOf(DdpmError);
    return e as DdpmError;
  }
  throw new Error('expected an error');
}

describe('hostile configs, states and files (measured in a child process)', () => {
  it('every case is a typed error, within 5 s, with under 64 MB of RSS and heap growth', () => {
    const out = execFileSync(
      process.execPath,
      ['--max-old-space-size=256', '--expose-gc', join(__dirname, 'helpers', 'hostile-child.mjs')],
      { encoding: 'utf8', timeout: 120_000 },
    );
    const rows = out
      .trim()
      .split('\n')
      .map(
        (l) =>
          JSON.parse(l) as {
            case: string;
            ok: boolean;
            name: string;
            code: string;
            message: string;
            ms: number;
            rssGrowth: number;
            heapGrowth: number;
          },
      );
    expect(rows.length).toBeGreaterThanOrEqual(26);
    for (const r of rows) {
      const where = `${r.case}: ${r.message}`;
      expect(r.ok, where).toBe(false);
      expect(r.name, where).toBe('DdpmError');
      expect(['FORMAT', 'INVALID_SCHEDULE', 'INVALID_ARGUMENT', 'OUT_OF_MEMORY'], where).toContain(r.code);
      expect(r.message, where).not.toMatch(/\[object Object\]|undefined is not|is not iterable/);
      expect(r.ms, where).toBeLessThan(5000);
      expect(r.rssGrowth, where).toBeLessThan(64 * 2 ** 20);
      expect(r.heapGrowth, where).toBeLessThan(64 * 2 ** 20);
    }
    const byCase = Object.fromEntries(rows.map((r) => [r.case, r]));
    expect(byCase['scheduler num_train_timesteps 2^31'].message).toMatch(
      /numTrainTimesteps must be an integer in \[1, 100000\], found 2147483648/,
    );
    expect(byCase['unet layers_per_block 1e6'].message).toMatch(
      /layers_per_block must be a positive integer \(at most 32\)/,
    );
    expect(byCase['unet attention over 1024² positions'].code).toBe('OUT_OF_MEMORY');
    expect(byCase['unet freq_shift = half the embedding width'].message).toMatch(/freq_shift .* NaN/);
    expect(byCase['unet config key toString'].message).toMatch(/unsupported UNet2DModel key "toString"/);
    expect(byCase['safetensors dtype toString'].message).toMatch(/unknown dtype "toString"/);
    expect(byCase['scheduler prediction_type an object'].message).toMatch(/found \{"a":1\}/);
    expect(byCase['PNG folder: eight 4096² images over the budget'].message).toMatch(
      /8 images of 4096×4096 needs .* budget/,
    );
    expect(byCase['pipeline: 64 samples of a 4096² model'].message).toMatch(
      /DDPMPipeline\.run: 64 samples of \[1,4096,4096\] needs .* outside Wasm memory/,
    );
    expect(byCase['pipeline: 1 sample of a 4096² model with attention at 2048²'].message).toMatch(
      /DDPMPipeline\.run on batches of 1 .* needs .* of Wasm memory/,
    );
  });
});

describe('configs that validate give finite outputs, or are refused with the reason', () => {
  it('freq_shift just below half and a mid_block_scale_factor at its limits still give finite outputs', async () => {
    const engine = await Engine.create({ threads: 1 });
    for (const patch of [
      { freq_shift: 3.9 },
      { mid_block_scale_factor: 1e-3 },
      { mid_block_scale_factor: 1e3 },
      { freq_shift: -1000 },
    ]) {
      const out = await UNet2DModel.create(engine, { ...tiny, ...patch }).forward(new Float32Array(64).fill(0.5), 500);
      expect(out.every(Number.isFinite), JSON.stringify(patch)).toBe(true);
    }
    for (const [patch, re] of [
      [{ freq_shift: 5 }, /freq_shift/],
      [{ mid_block_scale_factor: 1e-46 }, /mid_block_scale_factor/],
      [{ mid_block_scale_factor: 1e-30 }, /mid_block_scale_factor/],
      [{ norm_eps: 1e-50 }, /norm_eps/],
      [{ mid_block_scale_factor: 1e39 }, /mid_block_scale_factor/],
    ] as const) {
      expect((await errorOf(() => parseUNetConfig({ ...tiny, ...patch }))).message).toMatch(re);
    }
    engine.dispose();
  });

  it('the planned parameter count is exact and the planned forward memory bounds the arena growth', async () => {
    const engine = await Engine.create({ threads: 1 });
    const configs = [
      tiny,
      { ...tiny, center_input_sample: true, num_class_embeds: 3, attention_head_dim: 4, downsample_padding: 0 },
      {
        sample_size: 28,
        in_channels: 1,
        out_channels: 1,
        block_out_channels: [16, 32, 32],
        layers_per_block: 1,
        down_block_types: ['DownBlock2D', 'AttnDownBlock2D', 'DownBlock2D'],
        up_block_types: ['UpBlock2D', 'AttnUpBlock2D', 'UpBlock2D'],
        norm_num_groups: 8,
        attention_head_dim: null,
      },
      {
        ...tiny,
        in_channels: 3,
        out_channels: 6,
        block_out_channels: [8, 16, 24],
        layers_per_block: 2,
        down_block_types: ['AttnDownBlock2D', 'DownBlock2D', 'AttnDownBlock2D'],
        up_block_types: ['AttnUpBlock2D', 'UpBlock2D', 'AttnUpBlock2D'],
      },
    ];
    for (const cfg of configs) {
      const m = UNet2DModel.create(engine, cfg);
      expect(unetParamCount(m.config)).toBe(m.params.size);
      for (const N of [1, 3]) {
        const x = engine.alloc([N, m.sampleSize], 'x');
        m.forwardTensor(x, 10, m.config.num_class_embeds ? { classLabels: new Array(N).fill(0) } : {}); // first call: allocates unet.out
        const start = engine.arena.used;
        let peak = start;
        const alloc = engine.arena.alloc.bind(engine.arena);
        engine.arena.alloc = (shape, name) => {
          const t = alloc(shape, name);
          peak = Math.max(peak, engine.arena.used);
          return t;
        };
        m.forwardTensor(x, 10, m.config.num_class_embeds ? { classLabels: new Array(N).fill(0) } : {});
        engine.arena.alloc = alloc;
        const planned = unetForwardBytes(m.config, N);
        expect(planned, JSON.stringify(cfg)).toBeGreaterThanOrEqual(peak - start);
        expect(planned, JSON.stringify(cfg)).toBeLessThan(1.5 * (peak - start));
      }
    }
    engine.dispose();
  });
});

describe('MLP forward memory', () => {
  it('is planned before it runs: over the limit it is OUT_OF_MEMORY with nothing allocated; the plan bounds the real use', async () => {
    const engine = await Engine.create({ threads: 1, memoryLimit: 32 * 2 ** 20 });
    const m = MLPDenoiser.create(engine, { data_dim: 2, hidden_dim: 64, num_blocks: 3, time_proj_dim: 16 });
    const before = engine.arena.used;
    const e = await errorOf(() => m.forward(new Float32Array(2 * 20_000), 3));
    expect(e.code).toBe('OUT_OF_MEMORY');
    expect(e.message).toMatch(/MLPDenoiser\.forward on a batch of 20000/);
    expect(engine.arena.used).toBe(before);
    let peak = before;
    const alloc = engine.arena.alloc.bind(engine.arena);
    engine.arena.alloc = (shape, name) => {
      const t = alloc(shape, name);
      peak = Math.max(peak, engine.arena.used);
      return t;
    };
    await m.forward(new Float32Array(2 * 100), 3);
    engine.arena.alloc = alloc;
    const plan = m.forwardBytes(100);
    expect(plan).toBeGreaterThanOrEqual(peak - before);
    expect(plan).toBeLessThan(1.5 * (peak - before));
    engine.dispose();
  });
});

describe("concurrent use: correct or BUSY, never another caller's data", () => {
  let engine: Engine;
  let unet: UNet2DModel;
  beforeAll(async () => {
    engine = await Engine.create({ threads: 2 });
    unet = UNet2DModel.create(engine, tiny, 3);
  });
  afterAll(() => engine.dispose());

  it('two SamplingChain.run awaited together on one model give the samples of two sequential runs', async () => {
    const start = (seed: number) =>
      SamplingChain.start(engine, new DDIMScheduler({ numTrainTimesteps: 100 }), {
        shape: [2, 1, 8, 8],
        numInferenceSteps: 8,
        seed,
      });
    const model = (x: Parameters<UNet2DModel['forwardTensor']>[0], t: number) => unet.forwardTensor(x, t);
    const seq = [];
    for (const seed of [1, 2]) seq.push(engine.read(await start(seed).run(model)));
    const [a, b] = [start(1), start(2)];
    const together = await Promise.all([a.run(model), b.run(model)]);
    expect(engine.read(together[0])).toEqual(seq[0]);
    expect(engine.read(together[1])).toEqual(seq[1]);
    expect(seq[0]).not.toEqual(seq[1]);
  });

  it('an async model that returns the shared buffer: the overwritten result is BUSY, not used', async () => {
    const start = (seed: number) =>
      SamplingChain.start(engine, new DDPMScheduler({ numTrainTimesteps: 100 }), {
        shape: [1, 1, 8, 8],
        numInferenceSteps: 4,
        seed,
      });
    const model = async (x: Parameters<UNet2DModel['forwardTensor']>[0], t: number) => unet.forwardTensor(x, t);
    const err = await errorOf(() => Promise.all([start(1).run(model), start(2).run(model)]));
    expect(err.code).toBe('BUSY');
    expect(err.message).toMatch(/overwritten by a later UNet2DModel\.forwardTensor call/);
    // with { out }, each call owns its output: no BUSY, same as sequential
    const outs = [engine.alloc([1, 1, 8, 8], 'out1'), engine.alloc([1, 1, 8, 8], 'out2')];
    const owned = (i: number) => async (x: Parameters<UNet2DModel['forwardTensor']>[0], t: number) =>
      unet.forwardTensor(x, t, { out: outs[i] });
    const [r1, r2] = await Promise.all([start(1).run(owned(0)), start(2).run(owned(1))]);
    expect(engine.read(r1)).toEqual(engine.read(await start(1).run(owned(0))));
    expect(engine.read(r2)).toEqual(engine.read(await start(2).run(owned(1))));
  });

  it('a forwardTensor result used after the next call is BUSY in kernels and views', async () => {
    const x = engine.alloc([1, 64], 'x');
    const first = unet.forwardTensor(x, 5);
    expect(engine.read(first).length).toBe(64);
    unet.forwardTensor(x, 6);
    expect((await errorOf(() => engine.read(first))).code).toBe('BUSY');
    const y = engine.alloc(64, 'y');
    expect((await errorOf(() => kernels.axpy(engine, 64, 1, first, y))).code).toBe('BUSY');
  });

  it('a scheduler step result used after the next step on that scheduler is BUSY; the in-place loop works', async () => {
    const s = new DDIMScheduler({ numTrainTimesteps: 100, engine });
    s.setTimesteps(5);
    const eps = engine.upload(new Float32Array(8).fill(0.1), [2, 4], 'eps');
    let x = engine.upload(new Float32Array(8).fill(0.5), [2, 4], 'x');
    const first = s.step(eps, s.timesteps[0], x);
    for (const t of s.timesteps) x = s.step(eps, t, x).prevSample; // x_t fed back in place
    expect(engine.read(x).every(Number.isFinite)).toBe(true);
    const e = await errorOf(() => engine.read(first.predOriginalSample));
    expect(e.code).toBe('BUSY');
    expect(e.message).toMatch(/overwritten by a later DDIMScheduler\.step call/);
  });

  it('two chains started from one scheduler each run their own steps', async () => {
    const shared = new DDPMScheduler({ numTrainTimesteps: 100 });
    const steps: number[] = [0, 0];
    const a = SamplingChain.start(engine, shared, { shape: [1, 64], numInferenceSteps: 10, seed: 1 });
    const b = SamplingChain.start(engine, shared, { shape: [1, 64], numInferenceSteps: 20, seed: 2 });
    const zero = [engine.alloc([1, 64], 'z0'), engine.alloc([1, 64], 'z1')];
    const counting = (i: number) => () => {
      steps[i]++;
      return zero[i];
    };
    await Promise.all([a.run(counting(0)), b.run(counting(1))]);
    expect(steps).toEqual([10, 20]);
    // the shared scheduler shows the last start's timesteps; neither chain reads them
    expect(shared.numInferenceSteps).toBe(20);
    expect(a.scheduler).not.toBe(shared);
  });

  it('a tensor of another engine is INVALID_ARGUMENT, of a disposed engine DISPOSED', async () => {
    const other = await Engine.create({ threads: 1 });
    const foreign = other.upload([1, 2, 3], [3], 'foreign');
    const y = engine.alloc(3, 'y');
    const e1 = await errorOf(() => kernels.axpy(engine, 3, 1, foreign, y));
    expect(e1.code).toBe('INVALID_ARGUMENT');
    expect(e1.message).toMatch(/tensor foreign\) belongs to another engine/);
    other.dispose();
    expect((await errorOf(() => kernels.axpy(engine, 3, 1, foreign, y))).code).toBe('DISPOSED');
    expect((await errorOf(() => other.read(foreign))).code).toBe('DISPOSED');
    // a spread view keeps its owner
    expect((await errorOf(() => engine.read({ ...foreign, size: 1 }))).code).toBe('DISPOSED');
  });
});

describe('Engine.create failures leave no worker running', () => {
  const threadCount = () => readdirSync('/proc/self/task').length;
  it.skipIf(!existsSync('/proc/self/task'))(
    '30 failed creates (memory limit, worker start timeout) leave the thread count as it was',
    async () => {
      const before = threadCount();
      for (let i = 0; i < 20; i++) {
        const e = await errorOf(() =>
          Engine.create({ threads: 2, memoryLimit: 4 * 2 ** 20, scratchPerThread: 4 * 2 ** 20 }),
        );
        expect(e.code).toBe('OUT_OF_MEMORY');
      }
      for (let i = 0; i < 10; i++) {
        const e = await errorOf(() => Engine.create({ threads: 2, startTimeoutMs: 0 }));
        expect(e.code).toBe('WORKER_FAILED');
      }
      // terminate() is asynchronous: give the threads a moment to go
      for (let i = 0; i < 50 && threadCount() > before + 1; i++) await new Promise((r) => setTimeout(r, 100));
      expect(threadCount()).toBeLessThanOrEqual(before + 1);
    },
  );
});

describe('files: regular files only, errors that name the file and say what happened', () => {
  it('a FIFO, a device or a directory where the weights file should be is an IO error at once', async () => {
    const engine = await Engine.create({ threads: 1 });
    const dir = join(root, 'fifo-model');
    await UNet2DModel.create(engine, tiny).save(dir);
    const weights = join(dir, 'diffusion_pytorch_model.safetensors');
    execFileSync('rm', [weights]);
    execFileSync('mkfifo', [weights]);
    const t0 = Date.now();
    const e = await errorOf(() => UNet2DModel.fromPretrained(engine, dir));
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(e.code).toBe('IO');
    expect(e.message).toMatch(
      /diffusion_pytorch_model\.safetensors: a FIFO \(named pipe\) where a regular file is expected/,
    );
    execFileSync('rm', [weights]);
    mkdirSync(weights);
    expect((await errorOf(() => UNet2DModel.fromPretrained(engine, dir))).message).toMatch(
      /a directory where a regular file is expected/,
    );
    if (existsSync('/dev/zero'))
      expect((await errorOf(() => readRegularFile('/dev/zero'))).message).toMatch(/\/dev\/zero: a character device/);
    engine.dispose();
  });

  it('disk full, read-only, permission and parent-is-a-file errors name the file (code IO)', async () => {
    if (existsSync('/dev/full')) {
      // a real ENOSPC: /dev/full fails every write
      const e = await writeFile('/dev/full', 'x').then(
        () => null,
        (err) => fsError(err, '/dev/full', 'writing'),
      );
      expect(e?.code).toBe('IO');
      expect(e?.message).toBe('disk full writing /dev/full (ENOSPC)');
    }
    const errno = (code: string) => Object.assign(new Error(`${code}: something, write`), { code });
    expect(fsError(errno('EROFS'), '/m/out.png', 'writing').message).toMatch(
      /\/m\/out\.png: cannot write: the file system is read-only/,
    );
    expect(fsError(errno('EACCES'), '/m/out.png', 'writing').message).toMatch(
      /permission denied \(read-only file or folder\)/,
    );
    expect(fsError(errno('ENOTDIR'), '/m/a.png/b.png', 'writing').message).toMatch(/a parent of it is a file/);
    // a real parent-is-a-file
    const file = join(root, 'plain-file');
    writeFileSync(file, 'x');
    const e = await errorOf(() => checkWritablePath(join(file, 'out.png'), '--out'));
    expect(e.code).toBe('IO');
    expect(e.message).toMatch(/plain-file\/out\.png: cannot write: a parent of it is a file/);
    expect((await errorOf(() => checkWritablePath(join(file, 'sub', 'out.png'), '--out'))).message).toMatch(
      /a parent of it is a file/,
    );
    expect((await errorOf(() => checkWritablePath(root, '--classifier'))).message).toMatch(
      /--classifier .*: a directory where a file is expected/,
    );
  });

  it('ddpm eval --classifier <folder> fails at once, before any training', () => {
    const t0 = Date.now();
    const r = spawnSync(process.execPath, [join(__dirname, '..', 'dist', 'cli.js'), 'eval', '--classifier', root], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/--classifier .*: a directory where a file is expected/);
  });
});

describe('the command line and messages', () => {
  it('negative numbers are values: --seed -1 reaches the seed check instead of parseArgs\' "ambiguous"', async () => {
    const v = parseCommand(
      ['--seed', '-1', '--eta', '-0.5', '-n', '-3'],
      { seed: { type: 'string' }, eta: { type: 'string' }, n: { type: 'string', short: 'n' } },
      '',
    );
    expect(v).toEqual({ seed: '-1', eta: '-0.5', n: '-3' });
    const r = spawnSync(process.execPath, [join(__dirname, '..', 'dist', 'cli.js'), 'sample', '--seed', '-1'], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(r.stderr).toMatch(/--seed must be an integer >= 0, found '-1'/);
  });

  it('values print as JSON, long arrays truncated', () => {
    expect(show({ a: [1, 2] })).toBe('{"a":[1,2]}');
    expect(show(undefined)).toBe('undefined (missing)');
    expect(show(NaN)).toBe('NaN');
    expect(show(new Array(1e6).fill(7))).toMatch(/^\[7,7,7,7,7,7,7,7,… \(1000000 entries\)\]$/);
    expect(show('x'.repeat(1000)).length).toBe(80);
  });
});
