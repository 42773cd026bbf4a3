// Autoguidance (Karras et al. 2024) for unconditional models: D = D_guide + w·(D − D_guide) at t ≤ maxTimestep,
// in DDPMPipeline.run, stored with a model (sampling_defaults.json's autoguidance + the guide's subfolder) and
// used by default by fromPretrained, `ddpm sample` and `ddpm eval`. Tiny random-weight U-Nets; the pipeline is
// checked against a hand-written loop (SamplingChain + both models' forwards, combined in JS). Run `npm run
// build` first: the CLI and scripts/autoguidance-sweep.mjs run from dist/.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DDIMScheduler,
  DDPMPipeline,
  DDPMScheduler,
  Engine,
  SAMPLING_DEFAULTS_FILE,
  SamplingChain,
  UNet2DModel,
  parseSamplingDefaults,
  samplingDefaultsJson,
  type Tensor,
} from '../src/index';
import { DigitClassifier } from '../src/eval/classifier';
import { ddpm as runCli, expectOneLineError, runScript, sweepFingerprint } from './helpers/cli.js';
import { TINY_DIGITS_UNET, TINY_UNET } from './helpers/configs.js';

const root = mkdtempSync(join(tmpdir(), 'ddpm-autoguidance-'));
const ddpm = (...args: string[]) => runCli(args, { cwd: root });
const plain = join(root, 'plain'); // the model, no defaults
const guideDir = join(root, 'weak'); // another model of the same shape: the guide
const withAg = join(root, 'with-ag'); // plain's weights + guide/ + sampling_defaults.json
const W = 2.5;
const MAX_T = 50; // of T = 100: DDIM's 4 steps are t = 75, 50, 25, 0, so the first is the model alone
let engine: Engine;
let schedulerConfig: Record<string, unknown>;

beforeAll(async () => {
  engine = await Engine.create({ threads: 1 });
  schedulerConfig = new DDPMScheduler({ numTrainTimesteps: 100, predictionType: 'v_prediction' }).toConfig();
  const save = async (dir: string, seed: number) => {
    await UNet2DModel.create(engine, TINY_UNET, seed).save(dir);
    writeFileSync(join(dir, 'scheduler_config.json'), JSON.stringify(schedulerConfig));
  };
  await save(plain, 1);
  await save(guideDir, 7);
  await save(withAg, 1);
  await UNet2DModel.create(engine, TINY_UNET, 7).save(join(withAg, 'guide'));
  writeFileSync(
    join(withAg, SAMPLING_DEFAULTS_FILE),
    JSON.stringify({ autoguidance: { guide: 'guide', scale: W, max_timestep: MAX_T }, source: 'a test' }),
  );
});
afterAll(() => {
  engine?.dispose();
  rmSync(root, { recursive: true, force: true });
});

describe('sampling_defaults.json: autoguidance', () => {
  const where = 'm/sampling_defaults.json';
  it('reads and writes back the guide, the scale and the interval', () => {
    const d = parseSamplingDefaults(
      { autoguidance: { guide: 'guide', scale: 2, max_timestep: 700 }, source: 's' },
      where,
    );
    expect(d).toEqual({ autoguidance: { guide: 'guide', scale: 2, maxTimestep: 700 }, source: 's', file: where });
    expect(parseSamplingDefaults(JSON.parse(samplingDefaultsJson(d)), where)).toEqual(d);
    expect(parseSamplingDefaults({ autoguidance: { guide: 'g', scale: 1 } }, where).autoguidance).toEqual({
      guide: 'g',
      scale: 1,
    });
  });
  it('a bad entry is a FORMAT error naming the file and the key', () => {
    const bad = (o: unknown) => {
      try {
        parseSamplingDefaults(o, where);
      } catch (e) {
        expect((e as { code: string }).code).toBe('FORMAT');
        return (e as Error).message;
      }
      throw new Error('accepted');
    };
    // the guide lives inside the model's folder: no path
    expect(bad({ autoguidance: { guide: '../other', scale: 2 } })).toMatch(
      /^m\/sampling_defaults\.json: autoguidance\.guide must be a subfolder name .* found "\.\.\/other"$/,
    );
    expect(bad({ autoguidance: { guide: 'a/b', scale: 2 } })).toMatch(/autoguidance\.guide must be a subfolder name/);
    expect(bad({ autoguidance: { guide: '..', scale: 2 } })).toMatch(/autoguidance\.guide must be a subfolder name/);
    expect(bad({ autoguidance: { guide: 'g', scale: -1 } })).toMatch(/autoguidance\.scale must be .* found -1$/);
    expect(bad({ autoguidance: { guide: 'g', scale: 2, max_timestep: 1.5 } })).toMatch(
      /autoguidance\.max_timestep must be an integer >= 0, found 1\.5$/,
    );
    expect(bad({ autoguidance: { guide: 'g', scale: 2, weight: 1 } })).toMatch(/"weight"/);
    expect(bad({ autoguidance: 'guide' })).toMatch(/autoguidance must be a JSON object/);
  });
});

describe('DDPMPipeline: autoguidance', () => {
  const opts = { batchSize: 3, maxBatch: 2, numInferenceSteps: 4, seed: 5 };

  /** The same chain by hand: both models' forwards copied out and combined in JS, at t ≤ maxT. */
  async function reference(unet: UNet2DModel, guide: UNet2DModel, w: number, maxT: number): Promise<Float32Array> {
    const scheduler = DDIMScheduler.fromConfig(schedulerConfig, { engine });
    const chain = SamplingChain.start(engine, scheduler, { shape: [3, 1, 8, 8], numInferenceSteps: 4, seed: 5 });
    const model = (x: Tensor, t: number): Tensor => {
      const d = engine.read(unet.forwardTensor(x, t));
      if (t <= maxT) {
        const g = engine.read(guide.forwardTensor(x, t));
        for (let i = 0; i < d.length; i++) d[i] = g[i] + w * (d[i] - g[i]);
      }
      return engine.upload(d, [3, 64], 'reference.D');
    };
    return engine.read(await chain.run(model));
  }

  it('run({ autoguidance }) is D_g + w·(D − D_g) at t ≤ maxTimestep: the hand-written loop’s bits', async () => {
    const pipe = await DDPMPipeline.fromPretrained(engine, plain, { scheduler: 'ddim' });
    const guide = (await DDPMPipeline.fromPretrained(engine, guideDir)).unet as UNet2DModel;
    const unet = pipe.unet as UNet2DModel;
    const got = (await pipe.run({ ...opts, autoguidance: { guide, scale: W, maxTimestep: MAX_T } })).tensor;
    expect(got).toEqual(await reference(unet, guide, W, MAX_T));
    const everyStep = (await pipe.run({ ...opts, autoguidance: { guide, scale: W } })).tensor;
    expect(everyStep).toEqual(await reference(unet, guide, W, 100));
    expect(everyStep).not.toEqual(got);
    const alone = (await pipe.run(opts)).tensor;
    expect(got).not.toEqual(alone);
    // w = 0 is the guide alone
    const guidePipe = await DDPMPipeline.fromPretrained(engine, guideDir, { scheduler: 'ddim' });
    expect((await pipe.run({ ...opts, autoguidance: { guide, scale: 0 } })).tensor).toEqual(
      (await guidePipe.run(opts)).tensor,
    );
  });

  it('stored with the model: fromPretrained loads guide/, run() uses it unless autoguidance: null; save() keeps both', async () => {
    const pipe = await DDPMPipeline.fromPretrained(engine, withAg, { scheduler: 'ddim' });
    const plainPipe = await DDPMPipeline.fromPretrained(engine, plain, { scheduler: 'ddim' });
    expect(pipe.defaults.autoguidance).toEqual({ guide: 'guide', scale: W, maxTimestep: MAX_T });
    expect(pipe.guide).toBeInstanceOf(UNet2DModel);
    expect(plainPipe.guide).toBeNull();
    const byDefault = (await pipe.run(opts)).tensor;
    const explicit = (
      await plainPipe.run({ ...opts, autoguidance: { guide: pipe.guide!, scale: W, maxTimestep: MAX_T } })
    ).tensor;
    expect(byDefault).toEqual(explicit);
    expect((await pipe.run({ ...opts, autoguidance: null })).tensor).toEqual((await plainPipe.run(opts)).tensor);

    const out = join(root, 'saved');
    await pipe.save(out);
    expect(existsSync(join(out, 'guide', 'config.json'))).toBe(true);
    expect(JSON.parse(readFileSync(join(out, SAMPLING_DEFAULTS_FILE), 'utf8'))).toEqual({
      autoguidance: { guide: 'guide', scale: W, max_timestep: MAX_T },
      source: 'a test',
    });
    const back = await DDPMPipeline.fromPretrained(engine, out, { scheduler: 'ddim' });
    expect((await back.run(opts)).tensor).toEqual(byDefault);
  });

  it('errors: a missing or unfitting guide (FORMAT, naming the folder), a conditional model, a bad scale', async () => {
    const missing = join(root, 'missing-guide');
    await UNet2DModel.create(engine, TINY_UNET, 1).save(missing);
    writeFileSync(join(missing, SAMPLING_DEFAULTS_FILE), JSON.stringify({ autoguidance: { guide: 'g', scale: 2 } }));
    await expect(DDPMPipeline.fromPretrained(engine, missing)).rejects.toMatchObject({
      code: 'FORMAT',
      message: expect.stringMatching(
        /missing-guide\/sampling_defaults\.json: autoguidance\.guide names .*missing-guide\/g, which has no config\.json/,
      ),
    });
    await UNet2DModel.create(engine, { ...TINY_UNET, sample_size: 16 }, 1).save(join(missing, 'g'));
    await expect(DDPMPipeline.fromPretrained(engine, missing)).rejects.toMatchObject({
      code: 'FORMAT',
      message: expect.stringMatching(
        /missing-guide\/g: an autoguidance guide must make what the model makes \(UNet2DModel in_channels 1, out_channels 1, sample_size 8, num_class_embeds null\), found .*sample_size 16/,
      ),
    });
    const cond = join(root, 'cond-ag');
    await UNet2DModel.create(engine, { ...TINY_UNET, num_class_embeds: 3 }, 1).save(cond);
    writeFileSync(join(cond, SAMPLING_DEFAULTS_FILE), JSON.stringify({ autoguidance: { guide: 'g', scale: 2 } }));
    await expect(DDPMPipeline.fromPretrained(engine, cond)).rejects.toThrow(
      /cond-ag\/sampling_defaults\.json: autoguidance is for unconditional models; this model has num_class_embeds 3/,
    );
    const pipe = await DDPMPipeline.fromPretrained(engine, withAg);
    await expect(pipe.run({ ...opts, autoguidance: { guide: pipe.guide!, scale: -1 } })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringMatching(/autoguidance\.scale must be a finite number in \[0, 100\], found -1/),
    });
    await expect(
      pipe.run({ ...opts, autoguidance: { guide: pipe.guide!, scale: 2, maxTimestep: -3 } }),
    ).rejects.toThrow(/autoguidance\.maxTimestep must be an integer >= 0, found -3/);
    // class labels (and guidance) are for class-conditional models: not mixed with autoguidance
    await expect(
      pipe.run({ ...opts, classLabels: 1, autoguidance: { guide: pipe.guide!, scale: 2 } }),
    ).rejects.toMatchObject({
      code: 'UNSUPPORTED',
    });
  });
});

describe('ddpm sample / eval: --autoguidance', () => {
  const sample = (model: string, out: string, ...args: string[]) => {
    const r = ddpm(
      'sample',
      '--model',
      model,
      '--n',
      '2',
      '--steps',
      '3',
      '--seed',
      '4',
      '--out',
      out,
      '--json',
      ...args,
    );
    expect(r.status, r.stderr).toBe(0);
    return { json: JSON.parse(r.stdout), png: readFileSync(join(root, out)), stderr: r.stderr };
  };
  it("the model's stored autoguidance is the default; --autoguidance off, W and --guide override it", () => {
    const stored = sample(withAg, 'stored.png');
    expect(stored.json.autoguidance).toMatchObject({ scale: W, maxTimestep: MAX_T });
    expect(stored.stderr).toMatch(
      /autoguidance 2\.5 \(guide .*with-ag\/guide, t <= 50\) from .*with-ag\/sampling_defaults\.json/,
    );
    const off = sample(withAg, 'off.png', '--autoguidance', 'off');
    expect(off.json.autoguidance).toBeNull();
    expect(off.png).toEqual(sample(plain, 'plain.png').png);
    expect(off.png).not.toEqual(stored.png);
    // the same guide given by hand, with the same W and interval: the same PNG
    const byHand = sample(
      plain,
      'hand.png',
      '--guide',
      guideDir,
      '--autoguidance',
      String(W),
      '--autoguidance-max-t',
      String(MAX_T),
    );
    expect(byHand.png).toEqual(stored.png);
    expect(sample(withAg, 'all.png', '--autoguidance-max-t', 'all').png).not.toEqual(stored.png);
  });
  it('ddpm eval samples with the stored autoguidance and says so (bits/dim: the model alone)', async () => {
    const digits = TINY_DIGITS_UNET;
    const dir = join(root, 'digits-ag');
    await UNet2DModel.create(engine, digits, 3).save(dir);
    await UNet2DModel.create(engine, digits, 4).save(join(dir, 'guide'));
    writeFileSync(join(dir, 'scheduler_config.json'), JSON.stringify(schedulerConfig));
    writeFileSync(join(dir, SAMPLING_DEFAULTS_FILE), JSON.stringify({ autoguidance: { guide: 'guide', scale: 2 } }));
    const clf = join(root, 'clf.safetensors');
    writeFileSync(clf, DigitClassifier.create(engine, 0).toBytes());
    const evalJson = (out: string, ...args: string[]) => {
      const r = ddpm(
        'eval',
        '--model',
        dir,
        '--n',
        '10',
        '--steps',
        '2',
        '--nll-samples',
        '0',
        '--classifier',
        clf,
        '--json',
        out,
        '--quiet',
        ...args,
      );
      expect(r.status, r.stderr).toBe(0);
      return { stdout: r.stdout, json: JSON.parse(readFileSync(join(root, out), 'utf8')) };
    };
    const guided = evalJson('guided.json');
    expect(guided.stdout).toMatch(/samples \(10, dpm\+\+2m-sde 2 steps, autoguidance 2\)/);
    expect(guided.stdout).toMatch(
      /samples: autoguidance 2 \(guide .*digits-ag\/guide\) from .*; bits\/dim is the model's alone/,
    );
    expect(guided.json.autoguidance).toMatchObject({ scale: 2, maxTimestep: null });
    const off = evalJson('off.json', '--autoguidance', 'off');
    expect(off.json.autoguidance).toBeNull();
    expect(off.json.samples).not.toEqual(guided.json.samples);
  });
  it('a notice when autoguidance meets DDIM on a clipping scheduler config; eval prints the folder notices too', async () => {
    const notice = /^ddpm: notice: autoguidance with ddim, whose clipped x̂₀ \(clip_sample\) does not match its ε̂/m;
    expect(schedulerConfig.clip_sample).toBe(true); // diffusers' default, as models/mnist's
    const ddimGuided = sample(withAg, 'ddim.png', '--sampler', 'ddim');
    expect(ddimGuided.stderr).toMatch(notice);
    expect(ddimGuided.json.notices).toEqual([expect.stringMatching(/^autoguidance with ddim, whose clipped x̂₀/)]);
    expect(sample(withAg, 'ddim-off.png', '--sampler', 'ddim', '--autoguidance', 'off').stderr).not.toMatch(notice);
    expect(sample(withAg, 'sde.png').stderr).not.toMatch(notice);
    const noClip = join(root, 'with-ag-noclip');
    await UNet2DModel.create(engine, TINY_UNET, 1).save(noClip);
    await UNet2DModel.create(engine, TINY_UNET, 7).save(join(noClip, 'guide'));
    writeFileSync(join(noClip, 'scheduler_config.json'), JSON.stringify({ ...schedulerConfig, clip_sample: false }));
    writeFileSync(join(noClip, SAMPLING_DEFAULTS_FILE), readFileSync(join(withAg, SAMPLING_DEFAULTS_FILE)));
    expect(sample(noClip, 'noclip.png', '--sampler', 'ddim').stderr).not.toMatch(notice);
    // eval: the same notice, and the folder's own (no scheduler_config.json: diffusers' defaults, ε-prediction)
    const digits = TINY_DIGITS_UNET;
    const bare = join(root, 'digits-bare');
    await UNet2DModel.create(engine, digits, 3).save(bare);
    await UNet2DModel.create(engine, digits, 4).save(join(bare, 'guide'));
    writeFileSync(join(bare, SAMPLING_DEFAULTS_FILE), JSON.stringify({ autoguidance: { guide: 'guide', scale: 2 } }));
    const clf = join(root, 'clf-notice.safetensors');
    writeFileSync(clf, DigitClassifier.create(engine, 0).toBytes());
    const r = ddpm(
      'eval',
      '--model',
      bare,
      '--n',
      '10',
      '--steps',
      '2',
      '--nll-samples',
      '0',
      '--classifier',
      clf,
      '--sampler',
      'ddim',
      '--quiet',
    );
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(
      /^ddpm: notice: .*digits-bare\/scheduler_config\.json is missing: using diffusers' DDPMScheduler defaults/m,
    );
    expect(r.stderr).toMatch(notice);
  });
  it('mistakes are one-line errors', () => {
    expectOneLineError(
      ddpm('sample', '--model', plain, '--autoguidance', '2'),
      /^ddpm: --autoguidance: .*plain has no guide \(no autoguidance in sampling_defaults\.json\); pass --guide DIR\n$/,
    );
    expectOneLineError(ddpm('sample', '--model', plain, '--guide', guideDir), /^ddpm: --guide: pass --autoguidance W/);
    expectOneLineError(
      ddpm('sample', '--model', withAg, '--autoguidance', '-1'),
      /^ddpm: --autoguidance must be a number in \[0, 100\], found '-1'/,
    );
    expectOneLineError(
      ddpm('sample', '--model', withAg, '--autoguidance', 'off', '--guide', guideDir),
      /^ddpm: --guide\/--autoguidance-max-t with --autoguidance off\n$/,
    );
  });
});

describe('scripts/autoguidance-sweep.mjs', () => {
  const model = join(root, 'sweep-model');
  const g1 = join(root, 'sweep-g1');
  const g2 = join(root, 'sweep-g2');
  const clf = join(root, 'sweep-clf.safetensors');
  const common = ['--model', model, '--n', '10', '--steps', '2', '--classifier', clf];
  const sweep = (...args: string[]) =>
    runScript('autoguidance-sweep.mjs', [...common, '--threads', '1', ...args], { cwd: root });
  beforeAll(async () => {
    const digits = TINY_DIGITS_UNET;
    for (const [dir, seed] of [
      [model, 3],
      [g1, 4],
      [g2, 5],
    ] as const) {
      await UNet2DModel.create(engine, digits, seed).save(dir);
      writeFileSync(join(dir, 'scheduler_config.json'), JSON.stringify(schedulerConfig));
    }
    writeFileSync(clf, DigitClassifier.create(engine, 0).toBytes());
  });
  type Cell = { guide: string | null; scale: number | null; maxTimestep: number | null; confident: number };

  it('runs ddpm eval per guide × W × T (and the model alone), each cell the command’s numbers', () => {
    const out = join(root, 'sweep', 'ag.json');
    const r = sweep('--guide', `${g1},${g2}`, '--w', '2,3', '--max-t', 'all', '--out', out);
    expect(r.status, r.stderr).toBe(0);
    const j = JSON.parse(readFileSync(out, 'utf8'));
    expect(j.format).toBe('ddpm-wasm.autoguidance-sweep-2');
    expect(j.cells.map((c: Cell) => [c.guide, c.scale, c.maxTimestep])).toEqual([
      [null, null, null],
      [g1, 2, null],
      [g1, 3, null],
      [g2, 2, null],
      [g2, 3, null],
    ]);
    const direct = ddpm(
      'eval',
      ...common,
      '--guide',
      g2,
      '--autoguidance',
      '3',
      '--seed',
      '1',
      '--nll-samples',
      '0',
      '--quiet',
      '--json',
      'ag-direct.json',
    );
    expect(direct.status, direct.stderr).toBe(0);
    const dj = JSON.parse(readFileSync(join(root, 'ag-direct.json'), 'utf8'));
    expect(j.cells[4]).toMatchObject({
      confident: dj.samples.confident,
      classHistogram: dj.samples.classHistogram,
      frechetDistance: dj.samples.frechetDistance,
    });
    // each guide and W samples something else
    const fds = j.cells.map((c: { frechetDistance: number }) => c.frechetDistance);
    expect(new Set(fds).size).toBe(5);
    const md = readFileSync(join(root, 'sweep', 'ag.md'), 'utf8');
    expect(md).toMatch(/\| guide \| cell \| confident ≥ 0\.9 \|/);
    expect(md).toContain(`| ${g2} | W 3, t <= all |`);
    expect(md).toContain(
      `--guide ${g1},${g2} --model ${model} --n 10 --seed 1 --steps 2 --out ${out} --w 2,3 --max-t all`,
    );
    // a guide added later: only its cells run, and the table keeps both commands
    const more = sweep('--guide', g1, '--w', '2,3', '--max-t', '50', '--out', out);
    expect(more.status, more.stderr).toBe(0);
    expect(more.stdout.match(/^sweep-g1: W [23], t <= 50 /gm)).toHaveLength(2);
    const j2 = JSON.parse(readFileSync(out, 'utf8'));
    expect(j2.cells).toHaveLength(7);
    expect(j2.runs).toHaveLength(2);
    // other settings against the same results file: refused before any work
    const other = sweep('--guide', g1, '--n', '20', '--out', out);
    expect(other.status).toBe(1);
    expect(other.stderr).toMatch(/holds a sweep with other settings/);
  });

  it('refuses results measured on other weights (the model retrained since) or on unrecorded ones', async () => {
    const m = join(root, 'sweep-retrained');
    const digits = JSON.parse(readFileSync(join(model, 'config.json'), 'utf8'));
    await UNet2DModel.create(engine, digits, 3).save(m);
    writeFileSync(join(m, 'scheduler_config.json'), JSON.stringify(schedulerConfig));
    const out = join(root, 'sweep', 'retrained.json');
    const args = ['--model', m, '--guide', g1, '--w', '2', '--max-t', 'all', '--out', out];
    const first = sweep(...args);
    expect(first.status, first.stderr).toBe(0);
    const fp = JSON.parse(readFileSync(out, 'utf8')).settings.fingerprint;
    expect(fp).toMatch(/^[0-9a-f]{64}$/);
    // the same weights: nothing to run, the same file
    const again = sweep(...args);
    expect(again.status, again.stderr).toBe(0);
    expect(again.stdout).not.toMatch(/confident .* Fréchet/);
    // what --write-default adds to the folder does not change what the network is
    writeFileSync(join(m, SAMPLING_DEFAULTS_FILE), JSON.stringify({ source: 'a test' }));
    expect(sweep(...args).status).toBe(0);
    // retrained: same path, other weights
    await UNet2DModel.create(engine, digits, 9).save(m);
    const changed = sweep(...args);
    expect(changed.status).toBe(1);
    expect(changed.stderr).toMatch(
      /was measured on other weights of .*sweep-retrained \(fingerprint [0-9a-f]{12}…, now [0-9a-f]{12}…\)/,
    );
    // a file that recorded no fingerprint may be of any earlier model
    const j = JSON.parse(readFileSync(out, 'utf8'));
    delete j.settings.fingerprint;
    writeFileSync(out, JSON.stringify(j));
    const unknown = sweep(...args);
    expect(unknown.status).toBe(1);
    expect(unknown.stderr).toMatch(/records no fingerprint of its model's weights/);
  });

  it('chooses within the constraints across guides, copies that guide with --write-default, reads a one-guide file', async () => {
    const out = join(root, 'sweep', 'crafted.json');
    const hist = (lo: number) => [lo, ...Array(8).fill((1 - lo - 0.1) / 8), 0.1];
    const v1 = (scale: number | null, confident: number, lo = 0.1) => ({
      scale,
      maxTimestep: null,
      confident,
      classHistogram: hist(lo),
      frechetDistance: 1,
      seconds: 0,
    });
    const cell = (guide: string, scale: number, maxTimestep: number, confident: number, fd = 1) => ({
      ...v1(scale, confident),
      guide,
      maxTimestep,
      frechetDistance: fd,
    });
    const settings = {
      args: [...common.slice(0, 4), '--seed', '1', '--steps', '2', '--classifier', clf],
      model,
      fingerprint: await sweepFingerprint(model),
      n: 10,
      seed: 1,
      sampler: 'dpm++2m-sde',
      karras: false,
      steps: 2,
      modelCalls: 2,
      classifier: clf,
    };
    // format 1: one guide for the whole sweep, in settings.guide
    writeFileSync(
      out,
      JSON.stringify({
        format: 'ddpm-wasm.autoguidance-sweep-1',
        settings: { ...settings, guide: g1 },
        trainingDigits: { n: 10, confident: 1, classHistogram: hist(0.1), frechetDistance: 2 },
        cells: [v1(null, 0.5), v1(2, 0.8), v1(3, 0.95, 0.05)], // W 3: a class under 8%
      }),
    );
    const first = sweep('--guide', g1, '--w', '2,3', '--max-t', 'all', '--out', out);
    expect(first.status, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/^chosen: sweep-g1: W 2, t <= all \(confident 80\.0%\)$/m);
    const upgraded = JSON.parse(readFileSync(out, 'utf8'));
    expect(upgraded.format).toBe('ddpm-wasm.autoguidance-sweep-2');
    expect(upgraded.cells.map((c: Cell) => c.guide)).toEqual([null, g1, g1]);
    expect(upgraded.runs).toEqual([{ guides: [g1], w: [2, 3], maxT: ['all'] }]);
    // a second guide's cells, crafted: one more confident but too far (Fréchet 3.5 > 1.5 × 2), one that wins
    upgraded.cells.push(cell(g2, 2, 50, 0.9), cell(g2, 3, 50, 0.99, 3.5));
    upgraded.runs.push({ guides: [g2], w: [2, 3], maxT: ['50'] });
    writeFileSync(out, JSON.stringify(upgraded));
    const r = sweep('--guide', g2, '--w', '2,3', '--max-t', '50', '--out', out, '--write-default');
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^chosen: sweep-g2: W 2, t <= 50 \(confident 90\.0%\)$/m);
    const stored = parseSamplingDefaults(
      JSON.parse(readFileSync(join(model, SAMPLING_DEFAULTS_FILE), 'utf8')),
      'stored',
    );
    expect(stored.autoguidance).toEqual({ guide: 'guide', scale: 2, maxTimestep: 50 });
    expect(stored.source).toMatch(/^scripts\/autoguidance-sweep\.mjs --n 10 --seed 1 .*4 cells over 2 guide\(s\)/);
    expect(readFileSync(join(model, 'guide', 'diffusion_pytorch_model.safetensors'))).toEqual(
      readFileSync(join(g2, 'diffusion_pytorch_model.safetensors')),
    );
    expect(readFileSync(join(root, 'sweep', 'crafted.md'), 'utf8')).toMatch(
      /Chosen: \*\*sweep-g2: W 2, t <= 50\*\*[\s\S]*--max-t all\n {4}node .* --max-t 50 --write-default\n/,
    );
    rmSync(join(model, SAMPLING_DEFAULTS_FILE));
    rmSync(join(model, 'guide'), { recursive: true });
  });
});

describe('scripts/train-mnist.mjs --until: an earlier state of a run (a guide)', () => {
  const train = (...args: string[]) =>
    runScript('train-mnist.mjs', ['--recipe', 'v1', '--preset', 'tiny', '--threads', '1', ...args], { cwd: root });
  const weights = (m: string) => readFileSync(join(root, m, 'diffusion_pytorch_model.safetensors'));

  // v1's constant rate: the recipe's cosine needs more than its 200 warmup steps, too slow for a test (the
  // script refuses to resume a cosine run with another --steps, so --until cannot move its end)
  it('stops at step N of the run, exports there, and the run continues bit-identically', () => {
    const early = train('--steps', '4', '--until', '2', '--run', join(root, 'u-run'), '--out', join(root, 'u-2'));
    expect(early.status, early.stderr).toBe(0);
    expect(early.stdout).toMatch(/^step 2; exported to /m);
    expect(readFileSync(join(root, 'u-2', 'TRAINING.md'), 'utf8')).toContain(
      'this run: 2 steps in 1 invocation(s) (stopped by --until at step 2 of 4; running again continues)',
    );
    const rest = train('--steps', '4', '--run', join(root, 'u-run'), '--out', join(root, 'u-4'));
    expect(rest.status, rest.stderr).toBe(0);
    expect(rest.stdout).toMatch(/resuming at step 2/);
    const straight = train('--steps', '4', '--run', join(root, 'u-straight'), '--out', join(root, 'u-4b'));
    expect(straight.status, straight.stderr).toBe(0);
    expect(weights('u-4')).toEqual(weights('u-4b'));
    expect(weights('u-2')).not.toEqual(weights('u-4'));
    const past = train('--steps', '4', '--until', '3', '--run', join(root, 'u-run'), '--out', join(root, 'u-3'));
    expect(past.status).toBe(1);
    expect(past.stderr).toMatch(/--until 3: the run in .*u-run is at step 4 already/);
    expect(existsSync(join(root, 'u-3'))).toBe(false);
    const bad = train('--steps', '4', '--until', '5', '--run', join(root, 'u-bad'));
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/--until must be a whole step count from 1 to --steps \(4\), found 5/);
  });
});

describe('scripts/train-mnist.mjs --recipe restart: a second cycle of an unconditional run', () => {
  const train = (...args: string[]) =>
    runScript('train-mnist.mjs', ['--preset', 'tiny', '--threads', '1', '--steps', '300', '--until', '2', ...args], {
      cwd: root,
    });

  it('warm-starts from --init-from at its own rate and seed, recorded in run.json and TRAINING.md', () => {
    const first = train('--recipe', 'shipped', '--run', join(root, 'c1-run'), '--out', join(root, 'c1'));
    expect(first.status, first.stderr).toBe(0);
    const second = train(
      '--recipe',
      'restart',
      '--init-from',
      join(root, 'c1'),
      '--run',
      join(root, 'c2-run'),
      '--out',
      join(root, 'c2'),
    );
    expect(second.status, second.stderr).toBe(0);
    const id = JSON.parse(readFileSync(join(root, 'c2-run', 'run.json'), 'utf8'));
    expect(id.init_from).toEqual({ model: join(root, 'c1'), weights_hash: expect.stringMatching(/^[0-9a-f]{8}$/) });
    expect(id.trainer_config).toMatchObject({ learningRate: 3e-4, seed: 20261202, maxTrainSteps: 300 });
    expect(id.model.config.num_class_embeds ?? null).toBe(null);
    const md = readFileSync(join(root, 'c2', 'TRAINING.md'), 'utf8');
    expect(md).toContain('`npm run train:mnist -- --preset tiny --recipe restart`');
    expect(md).toMatch(/Warm start: every weight from `.*c1` \(weights FNV-1a [0-9a-f]{8}; its own TRAINING\.md/);
    expect(md).not.toMatch(/class embedding/);
    // a plain unconditional recipe does not warm-start
    const plain = train('--recipe', 'shipped', '--init-from', join(root, 'c1'), '--run', join(root, 'c3-run'));
    expect(plain.status).toBe(1);
    expect(plain.stderr).toMatch(/--init-from is for --class-conditional or --recipe restart/);
    expect(existsSync(join(root, 'c3-run'))).toBe(false);
  });
});
