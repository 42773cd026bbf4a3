// Class-conditional models (issue 11 item 3): sampling_defaults.json (the guidance stored with a model) read
// by DDPMPipeline and `ddpm sample`, `--model NAME` for the shipped models, `ddpm eval --per-class`,
// scripts/guidance-sweep.mjs and scripts/train-mnist.mjs --class-conditional. Tiny random-weight U-Nets and
// an untrained classifier (run `npm run build` first: the CLI and the scripts run from dist/).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DDPMPipeline,
  DDPMScheduler,
  Engine,
  LABEL_DROPOUT,
  SAMPLING_DEFAULTS_FILE,
  UNet2DModel,
  classConditional,
  parseSamplingDefaults,
  samplingDefaultsJson,
} from '../src/index';
import { DigitClassifier, FEATURES, PIXELS } from '../src/eval/classifier';
import { featureStats, frechetDistance } from '../src/eval/metrics';
import { perClassScores, requestedLabels } from '../src/eval/per-class';
import { loadMnist } from '../src/io/mnist';
import {
  cliPath,
  ddpm as runCli,
  expectOneLineError,
  root as repo,
  runScript,
  sweepFingerprint,
} from './helpers/cli.js';
import { TINY_UNET } from './helpers/configs.js';

const root = mkdtempSync(join(tmpdir(), 'ddpm-conditional-'));
const ddpm = (...args: string[]) => runCli(args, { cwd: root });
const shippedCond = join(repo, 'models', 'mnist-cond');
const condInstalled = existsSync(join(shippedCond, 'config.json'));

// 8×8 models for the pipeline and `ddpm sample`; 28×28 digits models (10 classes + unconditional) for eval
const small = TINY_UNET;
const digits = {
  sample_size: 28,
  in_channels: 1,
  out_channels: 1,
  block_out_channels: [8, 16],
  layers_per_block: 1,
  down_block_types: ['DownBlock2D', 'DownBlock2D'],
  up_block_types: ['UpBlock2D', 'UpBlock2D'],
  norm_num_groups: 4,
};
const plain = join(root, 'plain'); // 8×8 unconditional
const cond = join(root, 'cond'); // 8×8, num_class_embeds 3, no defaults
const condW = join(root, 'condW'); // the same weights with sampling_defaults.json guidance 2.5
const digitsCond = join(root, 'digits-cond'); // 28×28, num_class_embeds 11
const digitsPlain = join(root, 'digits-plain'); // 28×28 unconditional
const classifier = join(root, 'clf.safetensors');
const W = 2.5;
let engine: Engine;

beforeAll(async () => {
  engine = await Engine.create({ threads: 1 });
  const scheduler = JSON.stringify(new DDPMScheduler({ numTrainTimesteps: 100 }).toConfig());
  const save = async (dir: string, config: object, seed: number) => {
    await UNet2DModel.create(engine, config, seed).save(dir);
    writeFileSync(join(dir, 'scheduler_config.json'), scheduler);
  };
  await save(plain, small, 1);
  await save(cond, { ...small, num_class_embeds: 3 }, 2);
  await save(condW, { ...small, num_class_embeds: 3 }, 2);
  writeFileSync(join(condW, SAMPLING_DEFAULTS_FILE), JSON.stringify({ guidance_scale: W, source: 'a test' }));
  await save(digitsCond, { ...digits, num_class_embeds: 11 }, 3);
  await save(digitsPlain, digits, 3);
  writeFileSync(classifier, DigitClassifier.create(engine, 0).toBytes());
});
afterAll(() => {
  engine?.dispose();
  rmSync(root, { recursive: true, force: true });
});

describe('sampling_defaults.json', () => {
  it('is checked with typed FORMAT errors naming the file; writes what it reads', () => {
    const where = 'm/sampling_defaults.json';
    expect(parseSamplingDefaults({ guidance_scale: 2, source: 's', _note: 'x' }, where)).toEqual({
      guidanceScale: 2,
      source: 's',
      file: where,
    });
    const bad = (json: unknown) => {
      try {
        parseSamplingDefaults(json, where);
      } catch (e) {
        expect((e as { code: string }).code).toBe('FORMAT');
        return (e as Error).message;
      }
      throw new Error('accepted');
    };
    expect(bad({})).toMatch(
      /^m\/sampling_defaults\.json: guidance_scale must be a finite number in \[0, 100\], found undefined/,
    );
    expect(bad({ guidance_scale: -1 })).toMatch(/guidance_scale must be .* found -1$/);
    expect(bad({ guidance_scale: '2' })).toMatch(/found "2"$/);
    expect(bad({ guidance_scale: 2, guidance: 3 })).toMatch(/unsupported sampling default key "guidance"/);
    expect(bad({ guidance_scale: 2, per_class_accuracy: 1.5 })).toMatch(/per_class_accuracy must be/);
    expect(bad([1])).toMatch(/the file must be a JSON object/);
    const d = { guidanceScale: 1.5, source: 'sweep', perClassAccuracy: 0.98 };
    expect(parseSamplingDefaults(JSON.parse(samplingDefaultsJson(d)), where)).toEqual({ ...d, file: where });
    expect(() => samplingDefaultsJson({ guidanceScale: Number.NaN })).toThrow(/guidance_scale/);
  });
});

describe('per-class scores', () => {
  it('requested labels are i mod 10; accuracy and confidence per requested class, means over classes', () => {
    expect(Array.from(requestedLabels(12))).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]);
    // 5 samples: two asked for 0, three for 1; rows of 10 probabilities
    const row = (k: number, p: number) => Array.from({ length: 10 }, (_, j) => (j === k ? p : (1 - p) / 9));
    const probs = new Float32Array([
      ...row(0, 0.95), // asked 0: right, confident
      ...row(3, 0.5), // asked 0: wrong, not confident
      ...row(1, 0.6), // asked 1: right, not confident
      ...row(1, 0.99), // asked 1: right, confident
      ...row(7, 0.92), // asked 1: wrong, confident
    ]);
    const s = perClassScores(probs, [0, 0, 1, 1, 1]);
    expect(s.classes.map((c) => c.label)).toEqual([0, 1]);
    expect(s.classes[0]).toEqual({ label: 0, n: 2, accuracy: 0.5, confident: 0.5 });
    expect(s.classes[1].n).toBe(3);
    expect(s.classes[1].accuracy).toBeCloseTo(2 / 3, 15);
    expect(s.classes[1].confident).toBeCloseTo(2 / 3, 15);
    expect(s.meanAccuracy).toBeCloseTo((0.5 + 2 / 3) / 2, 15); // each class weighs the same
    expect(() => perClassScores(probs, [0, 0, 1, 1])).toThrow(/50 probabilities for 4 labels/);
    expect(() => perClassScores(probs, [0, 0, 1, 1, 10])).toThrow(/labels\[4\] = 10 is not a class/);
  });
});

describe('DDPMPipeline: the stored guidance', () => {
  const run = (pipe: DDPMPipeline, o: Parameters<DDPMPipeline['run']>[0] = {}) =>
    pipe.run({ batchSize: 2, numInferenceSteps: 3, seed: 5, ...o });

  it('pipe.defaults from sampling_defaults.json; run({ classLabels }) uses it, guidanceScale: null opts out', async () => {
    const withW = await DDPMPipeline.fromPretrained(engine, condW);
    const without = await DDPMPipeline.fromPretrained(engine, cond);
    expect(withW.defaults).toEqual({ guidanceScale: W, source: 'a test', file: `${condW}/${SAMPLING_DEFAULTS_FILE}` });
    expect(without.defaults).toEqual({});
    const guided = (await run(without, { classLabels: 1, guidanceScale: W })).tensor;
    const conditional = (await run(without, { classLabels: 1 })).tensor;
    expect(guided).not.toEqual(conditional);
    expect((await run(withW, { classLabels: 1 })).tensor).toEqual(guided);
    expect((await run(withW, { classLabels: 1, guidanceScale: null })).tensor).toEqual(conditional);
    expect((await run(withW, { classLabels: 1, guidanceScale: 1 })).tensor).toEqual(conditional);
    // the unconditional label is not a class to guide towards: the error says how to draw it
    await expect(run(withW, { classLabels: 2 })).rejects.toThrow(
      /classLabels\[0\] = 2 is not an integer in \[0, 1\] \(2 is the unconditional label\); guidanceScale 2\.5 is the model's default \(.*sampling_defaults\.json\): pass guidanceScale: null for none/,
    );
    expect((await run(withW, { classLabels: 2, guidanceScale: null })).tensor).toEqual(
      (await run(without, { classLabels: 2 })).tensor,
    );
  });

  it('W = 0 is the unconditional model: the same bits as the unconditional label (what eval --per-class relies on)', async () => {
    const pipe = await DDPMPipeline.fromPretrained(engine, cond);
    const uncond = (await run(pipe, { classLabels: 2 })).tensor;
    expect((await run(pipe, { classLabels: [0, 1], guidanceScale: 0 })).tensor).toEqual(uncond);
  });

  it('a signal fired by a timer stops run() between model calls (the run yields to the event loop)', async () => {
    const pipe = await DDPMPipeline.fromPretrained(engine, cond);
    const signal = AbortSignal.timeout(30);
    await expect(run(pipe, { batchSize: 256, numInferenceSteps: 100, classLabels: 1, signal })).rejects.toMatchObject({
      code: 'ABORTED',
    });
  });

  it('save() writes the defaults back; bad files are FORMAT errors naming them', async () => {
    const pipe = await DDPMPipeline.fromPretrained(engine, condW);
    const out = join(root, 'saved-pipeline');
    await pipe.save(out);
    expect(JSON.parse(readFileSync(join(out, SAMPLING_DEFAULTS_FILE), 'utf8'))).toEqual({
      guidance_scale: W,
      source: 'a test',
    });
    expect((await DDPMPipeline.fromPretrained(engine, out)).defaults.guidanceScale).toBe(W);
    await (await DDPMPipeline.fromPretrained(engine, cond)).save(join(root, 'saved-plain'));
    expect(existsSync(join(root, 'saved-plain', SAMPLING_DEFAULTS_FILE))).toBe(false);
    // saved over the folder that had defaults: the stale file goes (it would name another model's W)
    await (await DDPMPipeline.fromPretrained(engine, cond)).save(out);
    expect(existsSync(join(out, SAMPLING_DEFAULTS_FILE))).toBe(false);
    expect((await DDPMPipeline.fromPretrained(engine, out)).defaults.guidanceScale).toBeUndefined();

    const broken = join(root, 'broken');
    await UNet2DModel.create(engine, { ...small, num_class_embeds: 3 }, 2).save(broken);
    writeFileSync(join(broken, SAMPLING_DEFAULTS_FILE), '{"guidance_scale": 2,');
    await expect(DDPMPipeline.fromPretrained(engine, broken)).rejects.toMatchObject({
      code: 'FORMAT',
      message: expect.stringMatching(/broken\/sampling_defaults\.json: not valid JSON/),
    });
    writeFileSync(join(plain, SAMPLING_DEFAULTS_FILE), '{"guidance_scale": 2}');
    try {
      await expect(DDPMPipeline.fromPretrained(engine, plain)).rejects.toMatchObject({
        code: 'FORMAT',
        message: expect.stringMatching(
          /plain\/sampling_defaults\.json: guidance_scale is for class-conditional models .*no num_class_embeds/,
        ),
      });
    } finally {
      rmSync(join(plain, SAMPLING_DEFAULTS_FILE));
    }
  });

  it("'mnist-cond' by name: the shipped model, or a FORMAT error naming it when it is not installed", async () => {
    if (condInstalled) {
      const pipe = await DDPMPipeline.fromPretrained(engine, 'mnist-cond');
      expect((pipe.unet as UNet2DModel).config.num_class_embeds).toBe(11);
    } else {
      await expect(DDPMPipeline.fromPretrained(engine, 'mnist-cond')).rejects.toMatchObject({
        code: 'FORMAT',
        message: expect.stringMatching(
          /the shipped model 'mnist-cond' is not installed .*train-mnist\.mjs --class-conditional/,
        ),
      });
    }
  });
});

describe('--model NAME', () => {
  it('a shipped model by name; a folder of that name wins; unknown names list the shipped ones', () => {
    const args = ['--n', '1', '--steps', '1', '--threads', '1', '--quiet', '--json'];
    const byName = ddpm('sample', '--model', 'mnist', '--out', 'a.png', ...args);
    expect(byName.status, byName.stderr).toBe(0);
    expect(JSON.parse(byName.stdout).model).toBe(join(repo, 'models', 'mnist'));
    // a folder named mnist in the working directory is the one used
    const local = join(root, 'here');
    mkdirSync(join(local, 'mnist'), { recursive: true });
    for (const f of ['config.json', 'diffusion_pytorch_model.safetensors', 'scheduler_config.json'])
      writeFileSync(join(local, 'mnist', f), readFileSync(join(plain, f)));
    const byFolder = runCli(['sample', '--model', 'mnist', '--out', 'b.png', ...args], { cwd: local });
    expect(byFolder.status, byFolder.stderr).toBe(0);
    expect(JSON.parse(byFolder.stdout).model).toBe(join(local, 'mnist'));

    for (const cmd of [['sample'], ['eval'], ['nll', '--data', 'mnist'], ['export', '--out', 'x.onnx']])
      expectOneLineError(
        ddpm(...cmd, '--model', 'mnits'),
        /^ddpm: --model mnits: no such folder, and no shipped model of that name \(shipped: mnist, mnist-cond\)\n$/,
      );
    expectOneLineError(ddpm('sample', '--model', './mnits'), /^ddpm: --model \.\/mnits: no such folder\n$/);
    if (!condInstalled)
      expectOneLineError(
        ddpm('sample', '--model', 'mnist-cond', '--class', '7'),
        /^ddpm: --model mnist-cond: the shipped model mnist-cond is not installed \(no folder .*models\/mnist-cond\); it is trained by node scripts\/train-mnist\.mjs --class-conditional\n$/,
      );
    expect(ddpm('sample', '--help').stdout).toMatch(/--model DIR\|NAME .*\n.*\n.*\n.*\n.*mnist, mnist-cond/);
  });
});

describe('ddpm sample: the stored guidance is the default', () => {
  const sample = (model: string, out: string, ...args: string[]) => {
    const r = ddpm(
      'sample',
      '--model',
      model,
      '--out',
      out,
      '--n',
      '4',
      '--steps',
      '3',
      '--threads',
      '1',
      '--json',
      ...args,
    );
    expect(r.status, r.stderr).toBe(0);
    return { json: JSON.parse(r.stdout), png: readFileSync(join(root, out)), stderr: r.stderr };
  };

  it('--class K without --guidance uses sampling_defaults.json, says so, and --guidance overrides it', () => {
    const d = sample(condW, 'd.png', '--class', '1');
    expect(d.json).toMatchObject({ class: 1, guidance: W, guidanceFrom: `${condW}/${SAMPLING_DEFAULTS_FILE}` });
    expect(d.stderr).toContain(`guidance ${W} from ${condW}/${SAMPLING_DEFAULTS_FILE}`);
    const explicit = sample(cond, 'e.png', '--class', '1', '--guidance', String(W));
    expect(explicit.json).toMatchObject({ guidance: W, guidanceFrom: '--guidance' });
    expect(d.png).toEqual(explicit.png);
    const one = sample(condW, 'o.png', '--class', '1', '--guidance', '1');
    expect(one.png).toEqual(sample(cond, 'c.png', '--class', '1').png);
    expect(one.png).not.toEqual(d.png);
    // the unconditional label is drawn unguided (guidance would leave ε_u as it is)
    const u = sample(condW, 'u.png', '--class', '2');
    expect(u.json).toMatchObject({ class: 2, guidance: null, guidanceFrom: null });
    expect(u.png).toEqual(sample(cond, 'u2.png', '--class', '2').png);
    expect(ddpm('sample', '--help').stdout).toMatch(/Default: the model's\s+sampling_defaults\.json/);
  });
});

describe('ddpm eval --per-class', () => {
  const evalArgs = ['--n', '20', '--steps', '3', '--nll-samples', '0', '--threads', '1', '--classifier', classifier];
  const evaluate = (name: string, ...args: string[]) => {
    const r = ddpm('eval', ...evalArgs, '--quiet', '--json', name, ...args);
    expect(r.status, r.stderr).toBe(0);
    return { json: JSON.parse(readFileSync(join(root, name), 'utf8')), stdout: r.stdout };
  };

  it('mistakes are one-line errors', () => {
    const fails = (re: RegExp, ...args: string[]) => expectOneLineError(ddpm('eval', '--quiet', ...args), re);
    fails(/^ddpm: --guidance applies with --per-class/, '--model', digitsCond, '--guidance', '2');
    fails(/^ddpm: --guidance must be a number in \[0, 100\], found 'x'/, '--per-class', '--guidance', 'x');
    fails(/^ddpm: --per-class needs --n >= 10 .*found 5\n$/, '--model', digitsCond, '--per-class', '--n', '5');
    fails(
      /^ddpm: --per-class: .*digits-plain needs num_class_embeds 11 .*found none \(not class-conditional\)\n$/,
      ...evalArgs,
      '--model',
      digitsPlain,
      '--per-class',
      '--guidance',
      '1',
    );
    fails(
      /^ddpm: --per-class: pass --guidance W \(.*digits-cond has no sampling_defaults\.json with a guidance_scale\)\n$/,
      ...evalArgs,
      '--model',
      digitsCond,
      '--per-class',
    );
  });

  it('W = 0 reports the unconditional numbers; W > 0 scores samples asked for digit i mod 10 with guidance W', async () => {
    const u = evaluate('u.json', '--model', digitsCond);
    expect(u.json.perClass).toBeNull();
    const w0 = evaluate('w0.json', '--model', digitsCond, '--per-class', '--guidance', '0');
    expect(w0.json.samples).toEqual(u.json.samples);
    expect(w0.json.perClass.guidanceScale).toBe(0);

    const w2 = evaluate('w2.json', '--model', digitsCond, '--per-class', '--guidance', '2');
    const p = w2.json.perClass;
    expect(p).toMatchObject({ guidanceScale: 2, guidanceFrom: '--guidance', labels: 'i mod 10' });
    expect(p.classes.map((c: { label: number; n: number }) => [c.label, c.n])).toEqual(
      Array.from({ length: 10 }, (_, k) => [k, 2]),
    );
    const mean = p.classes.reduce((s: number, c: { accuracy: number }) => s + c.accuracy, 0) / 10;
    expect(p.meanAccuracy).toBeCloseTo(mean, 12);
    expect(w2.stdout).toMatch(/\n\| per class +\| 0 \(2\) \| 1 \(2\) .*\| mean +\|\n/);
    expect(w2.stdout).toMatch(/\n\| classified as asked \| .*%/);
    expect(w2.stdout).toMatch(/samples \(20, dpm\+\+2m-sde 3 steps, per class, guidance 2\)/);

    // the same samples drawn here: labels i mod 10, guidance 2, quantized as the PNG; the Fréchet distance
    // and class histogram of the eval's samples row are theirs to the last bit
    const pipe = await DDPMPipeline.fromPretrained(engine, digitsCond, { scheduler: 'dpm++2m-sde' });
    const r = await pipe.run({
      batchSize: 20,
      numInferenceSteps: 3,
      seed: 0,
      classLabels: Array.from({ length: 20 }, (_, i) => i % 10),
      guidanceScale: 2,
    });
    const x = new Float32Array(20 * PIXELS);
    r.images.forEach((img, i) => {
      for (let q = 0; q < PIXELS; q++) x[i * PIXELS + q] = img.data[4 * q] / 127.5 - 1;
    });
    const clf = DigitClassifier.fromBytes(engine, new Uint8Array(readFileSync(classifier)), classifier);
    const heldOut = await loadMnist('test');
    const reference = featureStats(clf.classify(heldOut.images).features, FEATURES);
    const fd = frechetDistance(featureStats(clf.classify(x).features, FEATURES), reference);
    expect(w2.json.samples.frechetDistance).toBe(fd);
    expect(w2.json.samples.frechetDistance).not.toBe(u.json.samples.frechetDistance);

    // seeded: the same numbers on two threads; the stored guidance is the default
    const t2 = runCli(
      [
        'eval',
        ...evalArgs,
        '--threads',
        '2',
        '--quiet',
        '--json',
        't2.json',
        '--model',
        digitsCond,
        '--per-class',
        '--guidance',
        '2',
      ],
      { cwd: root },
    );
    expect(t2.status, t2.stderr).toBe(0);
    const j2 = JSON.parse(readFileSync(join(root, 't2.json'), 'utf8'));
    expect(j2.samples).toEqual(w2.json.samples);
    expect(j2.perClass).toEqual(p);
    writeFileSync(join(digitsCond, SAMPLING_DEFAULTS_FILE), '{"guidance_scale": 2}');
    try {
      const d = evaluate('d.json', '--model', digitsCond, '--per-class');
      expect(d.json.samples).toEqual(w2.json.samples);
      expect(d.json.perClass.guidanceFrom).toBe(join(digitsCond, SAMPLING_DEFAULTS_FILE));
    } finally {
      rmSync(join(digitsCond, SAMPLING_DEFAULTS_FILE));
    }
  });

  it.each([
    [
      'sampling',
      ['--n', '48', '--steps', '50', '--nll-samples', '0'],
      /DDPMPipeline\.run: aborted after \d+ of \d+ steps/,
    ],
    ['bits/dim', ['--n', '10', '--steps', '2', '--nll-samples', '5'], /bits\/dim: aborted between model calls/],
  ])('Ctrl-C while %s stops between model calls, writes nothing and exits with 130', async (phase, args, why) => {
    const json = join(root, 'aborted.json');
    const child = spawn(
      process.execPath,
      [cliPath, 'eval', '--model', digitsCond, '--per-class', '--guidance', '2', ...args].concat([
        '--threads',
        '1',
        '--classifier',
        classifier,
        '--json',
        json,
      ]),
      { cwd: root },
    );
    let stderr = '';
    const code = await new Promise<number | null>((resolve) => {
      child.stderr.on('data', (b: Buffer) => {
        const first = !stderr.includes(phase);
        stderr += b.toString();
        if (first && stderr.includes(phase)) child.kill('SIGINT');
      });
      child.on('exit', (c) => resolve(c));
    });
    expect(code, stderr).toBe(130);
    expect(stderr).toMatch(new RegExp(`interrupted \\(${why.source}\\): nothing written`));
    expect(existsSync(json)).toBe(false);
  });
});

describe('scripts/guidance-sweep.mjs', () => {
  const sweep = (...args: string[]) => runScript('guidance-sweep.mjs', args, { cwd: root });
  const common = ['--model', digitsCond, '--n', '10', '--steps', '2', '--threads', '1', '--classifier', classifier];

  it('runs ddpm eval --per-class per W, writes the JSON and the table, and stores the chosen W with --write-default', () => {
    const out = join(root, 'sweep', 'gs.json');
    const r = sweep(...common, '--w', '0,1', '--out', out, '--write-default');
    expect(r.status, r.stderr).toBe(0);
    const j = JSON.parse(readFileSync(out, 'utf8'));
    expect(j.cells.map((c: { guidanceScale: number }) => c.guidanceScale)).toEqual([0, 1]);
    // each cell is `ddpm eval`'s numbers
    const direct = runCli(
      ['eval', ...common, '--per-class', '--guidance', '1', '--nll-samples', '0', '--quiet', '--json', 'direct.json'],
      { cwd: root },
    );
    expect(direct.status, direct.stderr).toBe(0);
    const dj = JSON.parse(readFileSync(join(root, 'direct.json'), 'utf8'));
    expect(j.cells[1]).toMatchObject({
      perClassAccuracy: dj.perClass.meanAccuracy,
      perClassConfident: dj.perClass.meanConfident,
      confident: dj.samples.confident,
      frechetDistance: dj.samples.frechetDistance,
      classes: dj.perClass.classes,
    });
    const md = readFileSync(join(root, 'sweep', 'gs.md'), 'utf8');
    expect(md).toMatch(/\| W \| per-class accuracy \| worst digit \|/);
    expect(md).toMatch(/\n\| 0 \(unconditional\) \| .*\n\| 1 \(conditional\) \| /);
    expect(md).toMatch(/\| training digits \(10\) \|/);
    // the untrained classifier reaches no target: the most accurate W, the smaller on a tie
    const best = j.cells.reduce((b: { perClassAccuracy: number }, c: { perClassAccuracy: number }) =>
      c.perClassAccuracy > b.perClassAccuracy ? c : b,
    );
    const stored = parseSamplingDefaults(
      JSON.parse(readFileSync(join(digitsCond, SAMPLING_DEFAULTS_FILE), 'utf8')),
      'stored',
    );
    rmSync(join(digitsCond, SAMPLING_DEFAULTS_FILE));
    expect(stored.guidanceScale).toBe(best.guidanceScale);
    expect(stored.source).toMatch(/^scripts\/guidance-sweep\.mjs --n 10 /);

    // other settings against the same results file: refused before any work
    const other = sweep(...common.slice(0, 2), '--n', '20', '--out', out);
    expect(other.status).toBe(1);
    expect(other.stderr).toMatch(/holds a sweep with other settings/);
  });

  it('resumes: W already in the file are not run again; the smallest W reaching --target is chosen', async () => {
    const out = join(root, 'sweep', 'crafted.json');
    const args = ['--model', digitsCond, '--n', '10', '--seed', '0', '--steps', '2', '--classifier', classifier];
    const cell = (w: number, acc: number) => ({
      guidanceScale: w,
      perClassAccuracy: acc,
      perClassConfident: acc,
      classes: Array.from({ length: 10 }, (_, k) => ({ label: k, n: 1, accuracy: acc, confident: acc })),
      confident: 0.5,
      classHistogram: Array(10).fill(0.1),
      frechetDistance: 1,
      seconds: 0,
    });
    const crafted = {
      format: 'ddpm-wasm.guidance-sweep-1',
      settings: {
        args,
        model: digitsCond,
        fingerprint: await sweepFingerprint(digitsCond),
        n: 10,
        seed: 0,
        sampler: 'dpm++2m-sde',
        karras: false,
        steps: 2,
        modelCalls: 2,
      },
      trainingDigits: null,
      cells: [cell(0, 0.1), cell(1, 0.9), cell(2, 0.975), cell(3, 0.99)],
    };
    writeFileSync(out, JSON.stringify(crafted));
    const run = (...extra: string[]) => sweep(...common, '--w', '0,1,2,3', '--out', out, ...extra);
    const r = run('--write-default');
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).not.toMatch(/^W /m); // nothing sampled
    expect(r.stdout).toMatch(/chosen: W = 2 \(per-class accuracy 97\.5%, the smallest W reaching 97\.0%\)/);
    const at = () => JSON.parse(readFileSync(join(digitsCond, SAMPLING_DEFAULTS_FILE), 'utf8'));
    expect(at()).toMatchObject({ guidance_scale: 2, per_class_accuracy: 0.975 });
    const high = run('--write-default', '--target', '0.995');
    expect(high.stdout).toMatch(/chosen: W = 3 \(per-class accuracy 99\.0%, the best; none reached 99\.5%\)/);
    expect(at()).toMatchObject({ guidance_scale: 3 });
    rmSync(join(digitsCond, SAMPLING_DEFAULTS_FILE));
  });
});

describe('scripts/train-mnist.mjs --class-conditional', () => {
  const script = join(repo, 'scripts', 'train-mnist.mjs');
  const train = (...args: string[]) =>
    spawnSync(
      process.execPath,
      [script, '--class-conditional', '--preset', 'tiny', '--threads', '1', '--recipe', 'v1', ...args],
      {
        cwd: root,
        encoding: 'utf8',
        timeout: 120_000,
      },
    );

  it("trains the recipe with ddpm train --class-conditional's settings, resumes bit-identically, writes TRAINING.md", () => {
    const a = train('--steps', '2', '--run', join(root, 'ra'), '--out', join(root, 'ma'));
    expect(a.status, a.stderr).toBe(0);
    const id = JSON.parse(readFileSync(join(root, 'ra', 'run.json'), 'utf8'));
    const cc = classConditional(10);
    expect(id.model.config.num_class_embeds).toBe(cc.model.num_class_embeds);
    expect(id.trainer_config).toMatchObject({ labelDropout: LABEL_DROPOUT, uncondLabel: 10 });
    expect(JSON.parse(readFileSync(join(root, 'ma', 'config.json'), 'utf8')).num_class_embeds).toBe(11);
    const md = readFileSync(join(root, 'ma', 'TRAINING.md'), 'utf8');
    expect(md).toContain('`node scripts/train-mnist.mjs --class-conditional --preset tiny --recipe v1`');
    expect(md).toMatch(/Class-conditional .*num_class_embeds 11.*unconditional label 10.*probability 0\.1/);
    // 2 steps then 2 more = 4 straight
    const b = train('--steps', '4', '--run', join(root, 'ra'), '--out', join(root, 'ma'));
    expect(b.status, b.stderr).toBe(0);
    expect(b.stdout).toMatch(/resuming at step 2/);
    const c = train('--steps', '4', '--run', join(root, 'rb'), '--out', join(root, 'mb'));
    expect(c.status, c.stderr).toBe(0);
    const weights = (m: string) => readFileSync(join(root, m, 'diffusion_pytorch_model.safetensors'));
    expect(weights('ma')).toEqual(weights('mb'));
    // the run folder says what it is
    const wrong = spawnSync(process.execPath, [script, '--preset', 'tiny', '--steps', '5', '--run', join(root, 'ra')], {
      cwd: root,
      encoding: 'utf8',
    });
    expect(wrong.status).toBe(1);
    expect(wrong.stderr).toMatch(/ra holds a class-conditional run: pass --class-conditional or use another --run/);
  });

  it('--init-from: a warm start from an unconditional model, recorded in run.json and TRAINING.md', () => {
    const plainRun = spawnSync(
      process.execPath,
      [
        script,
        '--preset',
        'tiny',
        '--threads',
        '1',
        '--recipe',
        'v1',
        '--steps',
        '2',
        '--run',
        join(root, 'r0'),
        '--out',
        join(root, 'm0'),
      ],
      { cwd: root, encoding: 'utf8', timeout: 120_000 },
    );
    expect(plainRun.status, plainRun.stderr).toBe(0);
    const a = train(
      '--steps',
      '2',
      '--init-from',
      join(root, 'm0'),
      '--run',
      join(root, 'rw'),
      '--out',
      join(root, 'mw'),
    );
    expect(a.status, a.stderr).toBe(0);
    const id = JSON.parse(readFileSync(join(root, 'rw', 'run.json'), 'utf8'));
    expect(id.init_from).toEqual({ model: join(root, 'm0'), weights_hash: expect.stringMatching(/^[0-9a-f]{8}$/) });
    expect(readFileSync(join(root, 'mw', 'TRAINING.md'), 'utf8')).toMatch(
      /Warm start: every weight from `.*m0` \(weights FNV-1a [0-9a-f]{8};.*the class embedding seeded/,
    );
    // a model of another target is refused (the shipped recipe trains v-prediction, m0 is ε)
    const other = spawnSync(
      process.execPath,
      [
        script,
        '--class-conditional',
        '--preset',
        'tiny',
        '--threads',
        '1',
        '--steps',
        '300',
        '--init-from',
        join(root, 'm0'),
        '--run',
        join(root, 'rx'),
      ],
      { cwd: root, encoding: 'utf8', timeout: 120_000 },
    );
    expect(other.status).toBe(1);
    expect(other.stderr).toMatch(
      /--init-from .*m0: its scheduler_config\.json has prediction_type epsilon, the recipe trains v_prediction/,
    );
  });
});
