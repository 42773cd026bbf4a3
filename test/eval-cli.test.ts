// `ddpm eval` end to end on a tiny random 1×28×28 model (run `npm run build` first: the CLI runs from dist/).
// A stored untrained classifier is passed with --classifier, so no test trains one (that takes ~30 s).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DDPMScheduler, Engine, UNet2DModel } from '../src/index';
import { DigitClassifier } from '../src/eval/classifier';
import { ddpm as runCli } from './helpers/cli.js';

const root = mkdtempSync(join(tmpdir(), 'ddpm-cli-eval-'));
const ddpm = (...args: string[]) => runCli(args, { cwd: root });
const model = join(root, 'model');
const small = join(root, 'small');
const classifier = join(root, 'clf.safetensors');

const tiny = {
  sample_size: 28,
  in_channels: 1,
  out_channels: 1,
  block_out_channels: [8, 16],
  layers_per_block: 1,
  down_block_types: ['DownBlock2D', 'DownBlock2D'],
  up_block_types: ['UpBlock2D', 'UpBlock2D'],
  norm_num_groups: 4,
};

beforeAll(async () => {
  const engine = await Engine.create({ threads: 1 });
  const scheduler = JSON.stringify(new DDPMScheduler({ numTrainTimesteps: 100 }).toConfig());
  await UNet2DModel.create(engine, tiny, 1).save(model);
  writeFileSync(join(model, 'scheduler_config.json'), scheduler);
  await UNet2DModel.create(engine, { ...tiny, sample_size: 8 }, 1).save(small);
  writeFileSync(join(small, 'scheduler_config.json'), scheduler);
  writeFileSync(classifier, DigitClassifier.create(engine, 0).toBytes());
  writeFileSync(join(root, 'bad.safetensors'), 'not safetensors at all');
  engine.dispose();
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** The one line a user error prints. */
function fails(...args: string[]): string {
  const r = ddpm('eval', '--quiet', '--threads', '1', ...args);
  expect(r.status).toBe(1);
  expect(r.stdout).toBe('');
  expect(r.stderr.split('\n')).toHaveLength(2); // one line and the final newline
  return r.stderr;
}

describe('ddpm eval', () => {
  it('has --help and is listed by ddpm --help', () => {
    const r = ddpm('eval', '--help');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^usage: ddpm eval/);
    expect(r.stdout).toContain('--nll-samples K');
    expect(ddpm('--help').stdout).toMatch(/\n {2}eval +quality numbers/);
  });

  it('mistakes are one line on stderr, exit code 1', () => {
    expect(fails('--model', join(root, 'nowhere'))).toMatch(/^ddpm: --model .*nowhere: no such folder\n$/);
    expect(fails('--model', model, '--n', '1')).toMatch(
      /^ddpm: --n must be an integer in \[2, 1000000\], found '1'\n$/,
    );
    expect(fails('--model', model, '--nll-samples', '1001')).toMatch(
      /^ddpm: --nll-samples must be an integer in \[0, 1000\], found '1001'\n$/,
    );
    expect(fails('--model', model, '--sampler', 'ddpm', '--eta', '0.5')).toMatch(
      /--eta applies to --sampler ddim only/,
    );
    expect(fails('--model', model, '--frobnicate')).toMatch(/^ddpm: .*frobnicate/);
    expect(fails('--model', small, '--classifier', classifier)).toMatch(
      /eval scores 1×28×28 MNIST digits; this model makes 1×8×8 images\n$/,
    );
    expect(
      fails(
        '--model',
        model,
        '--n',
        '2',
        '--steps',
        '1',
        '--nll-samples',
        '0',
        '--classifier',
        join(root, 'bad.safetensors'),
      ),
    ).toMatch(/^ddpm: .*bad\.safetensors: /);
  });

  it('prints the table of samples, training digits and held-out digits, and writes the numbers as JSON', () => {
    const r = ddpm(
      'eval',
      '--model',
      model,
      '--n',
      '8',
      '--steps',
      '3',
      '--nll-samples',
      '1',
      '--threads',
      '1',
      '--classifier',
      classifier,
      '--json',
      'eval.json',
    );
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/sampling .*3\/3/); // progress on stderr, not quiet
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^\| +\| confident ≥ 0\.9 \| classes min–max +\| Fréchet distance \| bits\/dim +\|$/);
    expect(lines[2]).toMatch(/^\| samples \(8, dpm\+\+2m-sde 3 steps\) +\| \d+\.\d% +\| /);
    expect(lines[3]).toMatch(/^\| training digits \(8\) +\| /);
    expect(lines[4]).toMatch(/^\| held-out digits \(2004\) +\| .*\| 0 \(reference\) +\| \d+\.\d{3} ± \d+\.\d{3} \|$/);
    expect(r.stdout).toMatch(/1 random timestep\(s\) per digit/);
    const j = JSON.parse(readFileSync(join(root, 'eval.json'), 'utf8'));
    expect(j).toMatchObject({
      format: 'ddpm-eval-1',
      sampler: 'dpm++2m-sde',
      steps: 3,
      seed: 0,
      classifier: { file: classifier, features: 64 },
    });
    expect(j.samples.n).toBe(8);
    expect(j.heldOut.n).toBe(2004);
    for (const row of [j.samples, j.trainingDigits, j.heldOut]) {
      expect(row.classHistogram).toHaveLength(10);
      expect(row.classHistogram.reduce((a: number, b: number) => a + b, 0)).toBeCloseTo(1, 12);
      expect(row.confident).toBeGreaterThanOrEqual(0);
      expect(row.confident).toBeLessThanOrEqual(1);
    }
    expect(j.samples.frechetDistance).toBeGreaterThan(0);
    expect(Number.isFinite(j.samples.frechetDistance)).toBe(true);
    expect(j.heldOut.frechetDistance).toBe(0);
    expect(j.heldOut.bound).toMatchObject({ images: 2004, timesteps: { samples: 1 }, seed: 0 });
    expect(j.heldOut.bound.bitsPerDim).toBeGreaterThan(0);
    expect(j.heldOut.bound.stdError).toBeGreaterThan(0);
    // the held-out row's accuracy is the classifier's: an untrained one is near chance
    expect(j.classifier.heldOutAccuracy).toBeLessThan(0.3);
  });
});
