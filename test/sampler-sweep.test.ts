// scripts/sampler-sweep.mjs: one `ddpm eval` per sampler × model calls, so each cell is exactly the command's
// numbers (with the model's stored sampling defaults, e.g. its autoguidance); resumable; results of other
// weights, other defaults or no recorded fingerprint are refused. Tiny random-weight U-Nets at 28×28 and an
// untrained classifier (run `npm run build` first: the CLI and the script run from dist/).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DDPMScheduler, Engine, SAMPLING_DEFAULTS_FILE, UNet2DModel } from '../src/index';
import { DigitClassifier } from '../src/eval/classifier';
import { ddpm, runScript } from './helpers/cli.js';
import { TINY_DIGITS_UNET } from './helpers/configs.js';

const root = mkdtempSync(join(tmpdir(), 'ddpm-sampler-sweep-'));
const model = join(root, 'm'); // with a guide and sampling_defaults.json: autoguidance by default
const clf = join(root, 'clf.safetensors');
const digits = TINY_DIGITS_UNET;
const common = ['--model', model, '--n', '10', '--classifier', clf];
const sweep = (...args: string[]) =>
  runScript('sampler-sweep.mjs', [...common, '--threads', '1', ...args], { cwd: root });
const defaults = (scale: number) =>
  writeFileSync(
    join(model, SAMPLING_DEFAULTS_FILE),
    JSON.stringify({ autoguidance: { guide: 'guide', scale, max_timestep: 500 }, source: 'a test' }),
  );
let engine: Engine;

beforeAll(async () => {
  engine = await Engine.create({ threads: 1 });
  const scheduler = new DDPMScheduler({ predictionType: 'v_prediction' }).toConfig();
  await UNet2DModel.create(engine, digits, 3).save(model);
  writeFileSync(join(model, 'scheduler_config.json'), JSON.stringify(scheduler));
  await UNet2DModel.create(engine, digits, 4).save(join(model, 'guide'));
  defaults(2);
  writeFileSync(clf, DigitClassifier.create(engine, 0).toBytes());
});
afterAll(() => {
  engine?.dispose();
  rmSync(root, { recursive: true, force: true });
});

type Cell = { sampler: string; calls: number; steps: number; modelCalls: number; confident: number };

describe('scripts/sampler-sweep.mjs', () => {
  const out = join(root, 'q', 'sq.json');

  it('runs ddpm eval per sampler × calls with the stored defaults; each cell is the command’s numbers', () => {
    const r = sweep('--samplers', 'ddim,heun', '--calls', '2,3', '--out', out);
    expect(r.status, r.stderr).toBe(0);
    const j = JSON.parse(readFileSync(out, 'utf8'));
    expect(j.format).toBe('ddpm-wasm.sampler-sweep-2');
    // heun: N calls run ⌊(N + 1)/2⌋ steps (2 − 1 stages at the end); every call counted
    expect(j.cells.map((c: Cell) => [c.sampler, c.calls, c.steps, c.modelCalls])).toEqual([
      ['ddim', 2, 2, 2],
      ['ddim', 3, 3, 3],
      ['heun', 2, 1, 1],
      ['heun', 3, 2, 3],
    ]);
    expect(j.settings).toMatchObject({ model, n: 10, seed: 0, autoguidance: { scale: 2, maxTimestep: 500 } });
    expect(j.settings.fingerprint).toMatch(/^[0-9a-f]{64}$/);
    const direct = ddpm(
      ['eval', ...common, '--sampler', 'heun', '--steps', '3', '--nll-samples', '0', '--quiet', '--json', 'd.json'],
      { cwd: root },
    );
    expect(direct.status, direct.stderr).toBe(0);
    const dj = JSON.parse(readFileSync(join(root, 'd.json'), 'utf8'));
    expect(dj.autoguidance).toMatchObject({ scale: 2, maxTimestep: 500 });
    expect(j.cells[3]).toMatchObject({
      confident: dj.samples.confident,
      classHistogram: dj.samples.classHistogram,
      frechetDistance: dj.samples.frechetDistance,
    });
    expect(new Set(j.cells.map((c: { frechetDistance: number }) => c.frechetDistance)).size).toBe(4);
    const md = readFileSync(join(root, 'q', 'sq.md'), 'utf8');
    expect(md).toMatch(/^Quality per model call of .*m: 10 samples per cell, seed 0, autoguidance 2 /);
    expect(md).toMatch(/\| ddim \| \d+\.\d% \/ \d+\.\d+ \| \d+\.\d% \/ \d+\.\d+ \|/);
    const cmd = `node scripts/sampler-sweep.mjs --model ${model} --n 10 --seed 0 --classifier ${clf}`;
    expect(md).toContain(`\n    ${cmd} --samplers ddim,heun --calls 2,3\n`);
    expect(md).toMatch(/The rarest and the commonest digit[\s\S]*\| heun \| \d+\.\d% – \d+\.\d% \|/);
    expect(readFileSync(join(root, 'q', 'sq.svg'), 'utf8')).toMatch(/^<svg [\s\S]*<polyline [\s\S]*<\/svg>\n$/);
    // resumed: a cell already there is not run again, a new one is
    const more = sweep('--samplers', 'ddim', '--calls', '3,4', '--out', out);
    expect(more.status, more.stderr).toBe(0);
    expect(more.stdout.match(/^ddim +\d+ calls/gm)).toEqual([expect.stringMatching(/^ddim +4 calls/)]);
    expect(JSON.parse(readFileSync(out, 'utf8')).cells).toHaveLength(5);
    // both invocations are in the reproduce lines
    expect(readFileSync(join(root, 'q', 'sq.md'), 'utf8')).toContain(
      `\n    ${cmd} --samplers ddim,heun --calls 2,3\n    ${cmd} --samplers ddim --calls 3,4\n`,
    );
  });

  it('refuses results of other settings, other defaults, other weights, or of format 1', async () => {
    const again = (...extra: string[]) => sweep('--samplers', 'ddim', '--calls', '2', '--out', out, ...extra);
    expect(again().status).toBe(0);
    const other = again('--autoguidance', 'off');
    expect(other.status).toBe(1);
    expect(other.stderr).toMatch(/holds a sweep with other settings/);
    // the stored autoguidance is what a plain eval samples with: changing it changes the model's numbers
    defaults(3);
    const changed = again();
    expect(changed.status).toBe(1);
    expect(changed.stderr).toMatch(
      /was measured on other weights of .*\(fingerprint [0-9a-f]{12}…, now [0-9a-f]{12}…\)/,
    );
    defaults(2);
    expect(again().status).toBe(0);
    await UNet2DModel.create(engine, digits, 5).save(model); // retrained in place
    expect(again().stderr).toMatch(/was measured on other weights/);
    const v1 = join(root, 'q', 'v1.json');
    writeFileSync(
      v1,
      JSON.stringify({ format: 'ddpm-wasm.sampler-sweep-1', settings: { model: 'models/mnist' }, cells: [] }),
    );
    const old = sweep('--out', v1);
    expect(old.status).toBe(1);
    expect(old.stderr).toMatch(/a sweep of format 1, which recorded no fingerprint of its model; delete it/);
    const bad = sweep('--samplers', 'ddim,plms', '--out', join(root, 'q', 'x.json'));
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/--samplers: unknown plms \(choose from ddpm, ddim/);
  });
});
