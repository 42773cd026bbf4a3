// `ddpm sample` end to end on a tiny model folder made here (run `npm run build` first: the CLI runs from dist/).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DDPMPipeline, DDPMScheduler, Engine, UNet2DModel } from '../src/index';
import { decodePng } from '../src/io/png';
import { TINY_UNET } from './helpers/configs.js';

const cli = join(__dirname, '..', 'dist', 'cli.js');
const root = mkdtempSync(join(tmpdir(), 'ddpm-cli-sample-'));
const ddpm = (...args: string[]) =>
  spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 30_000, cwd: root });
const S = 8; // sample_size
const model = join(root, 'model');
const conditional = join(root, 'conditional');

const tiny = TINY_UNET;

beforeAll(async () => {
  const engine = await Engine.create({ threads: 1 });
  const scheduler = JSON.stringify(new DDPMScheduler({ numTrainTimesteps: 100 }).toConfig());
  await UNet2DModel.create(engine, tiny, 1).save(model);
  writeFileSync(join(model, 'scheduler_config.json'), scheduler);
  await UNet2DModel.create(engine, { ...tiny, num_class_embeds: 3 }, 2).save(conditional);
  writeFileSync(join(conditional, 'scheduler_config.json'), scheduler);
  engine.dispose();
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

const read = (name: string) => readFileSync(join(root, name));
function sample(out: string, ...args: string[]): Buffer {
  const r = ddpm('sample', '--model', model, '--out', out, '--quiet', ...args);
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  return read(out);
}

/** The (S×S) gray cell i of a grid with `cols` columns and 2 px padding. */
/** Cell i of a grid with `cols` columns (2 px padding), `top` rows of pixels below the image's top (a label band). */
function cell(png: Buffer, i: number, cols: number, top = 0): number[] {
  const g = decodePng(new Uint8Array(png), 'grid.png');
  const x0 = 2 + (i % cols) * (S + 2),
    y0 = top + 2 + Math.floor(i / cols) * (S + 2);
  const out: number[] = [];
  for (let y = 0; y < S; y++) for (let x = 0; x < S; x++) out.push(g.data[4 * ((y0 + y) * g.width + x0 + x)]);
  return out;
}

describe('ddpm sample', () => {
  it('writes a √n-column grid, byte-identical for the same seed, any thread count and any batch size', () => {
    const a = sample('a.png', '--steps', '5', '--n', '4', '--seed', '3', '--sampler', 'ddpm', '--threads', '1');
    const g = decodePng(new Uint8Array(a), 'a.png');
    expect([g.width, g.height]).toEqual([2 * S + 3 * 2, 2 * S + 3 * 2]);
    expect(
      Buffer.compare(
        a,
        sample('b.png', '--steps', '5', '--n', '4', '--seed', '3', '--sampler', 'ddpm', '--threads', '2'),
      ),
    ).toBe(0);
    expect(
      Buffer.compare(
        a,
        sample(
          'c.png',
          '--steps',
          '5',
          '--n',
          '4',
          '--seed',
          '3',
          '--sampler',
          'ddpm',
          '--threads',
          '2',
          '--batch',
          '1',
        ),
      ),
    ).toBe(0);
    expect(Buffer.compare(a, sample('d.png', '--steps', '5', '--n', '4', '--seed', '4', '--sampler', 'ddpm'))).not.toBe(
      0,
    );
    // sample i does not depend on n either: the first 4 of 5 (3 columns) are the same images
    const five = sample('e.png', '--steps', '5', '--n', '5', '--seed', '3', '--sampler', 'ddpm', '--batch', '2');
    for (let i = 0; i < 4; i++) expect(cell(five, i, 3)).toEqual(cell(a, i, 2));
    // the noise is not all that was written: images differ from each other
    expect(cell(a, 0, 2)).not.toEqual(cell(a, 1, 2));
  });

  it('ddim with η = 0 is deterministic given x_T; --trajectory writes x_t over x̂_0 at the recorded steps', () => {
    const r = ddpm(
      'sample',
      '--model',
      model,
      '--out',
      'g.png',
      '--sampler',
      'ddim',
      '--steps',
      '5',
      '--n',
      '2',
      '--trajectory',
      'traj.png',
    );
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/wrote g\.png \(2 samples, ddim 5 steps, seed 0\) and traj\.png \(steps 1, 2, 3, 4, 5\)/);
    const t = decodePng(new Uint8Array(read('traj.png')), 'traj.png');
    const band = 2 + 2 * 5 + 1; // two lines of 5-pixel labels (step, t) above the cells
    expect([t.width, t.height]).toEqual([5 * S + 6 * 2, band + 2 * S + 3 * 2]);
    // the labels are drawn: the band is not all background
    expect(t.data.subarray(0, 4 * t.width * band).some((v, i) => i % 4 !== 3 && v !== 0)).toBe(true);
    // the last x_t is the final sample: the strip's top-right cell equals sample 0 of the grid
    expect(cell(read('traj.png'), 4, 5, band)).toEqual(cell(read('g.png'), 0, 2));
  });

  it('every sampler of issue 9 runs from the command line; --steps counts model calls (heun: 2n − 1)', () => {
    const seen = new Set<string>();
    for (const sampler of ['dpm++2m', 'dpm++3m', 'dpm++2m-sde', 'unipc', 'euler', 'euler-a', 'heun']) {
      const r = ddpm(
        'sample',
        '--model',
        model,
        '--out',
        `s-${sampler}.png`,
        '--steps',
        '5',
        '--n',
        '2',
        '--sampler',
        sampler,
        '--json',
      );
      expect(r.status, r.stderr).toBe(0);
      const j = JSON.parse(r.stdout);
      expect(j).toMatchObject({ sampler, modelCalls: 5, steps: sampler === 'heun' ? 3 : 5 });
      seen.add(read(`s-${sampler}.png`).toString('base64'));
    }
    expect(seen.size).toBe(7); // seven different chains, seven different grids
    const even = ddpm(
      'sample',
      '--model',
      model,
      '--out',
      'h6.png',
      '--steps',
      '6',
      '--n',
      '1',
      '--sampler',
      'heun',
      '--json',
    );
    expect(JSON.parse(even.stdout)).toMatchObject({ modelCalls: 5, steps: 3 }); // an even budget leaves one call unused
    const k = ddpm(
      'sample',
      '--model',
      model,
      '--out',
      'k.png',
      '--steps',
      '5',
      '--n',
      '2',
      '--sampler',
      'dpm++2m',
      '--karras',
      '--quiet',
    );
    expect(k.status, k.stderr).toBe(0);
    expect(Buffer.compare(read('k.png'), read('s-dpm++2m.png'))).not.toBe(0);
  });

  it('class-conditional models: --class required, --guidance with the unconditional label num_class_embeds − 1', () => {
    const run = (...a: string[]) => ddpm('sample', '--model', conditional, '--steps', '3', '--n', '2', '--quiet', ...a);
    expect(run('--out', 'k.png').stderr).toMatch(
      /^ddpm: .*is class-conditional \(num_class_embeds = 3\): pass --class K\n$/,
    );
    expect(run('--out', 'k1.png', '--class', '1').status).toBe(0);
    expect(run('--out', 'k1g.png', '--class', '1', '--guidance', '3').status).toBe(0);
    expect(Buffer.compare(read('k1.png'), read('k1g.png'))).not.toBe(0);
    // w = 1 is plain conditional sampling
    expect(run('--out', 'k1w1.png', '--class', '1', '--guidance', '1').status).toBe(0);
    expect(Buffer.compare(read('k1.png'), read('k1w1.png'))).toBe(0);
    expect(run('--out', 'x.png', '--class', '2', '--guidance', '2').stderr).toMatch(
      /^ddpm: --class must be an integer in \[0, 1\], found '2'\n$/,
    );
    expect(ddpm('sample', '--model', model, '--class', '1').stderr).toMatch(
      /^ddpm: --class\/--guidance: .* is not class-conditional/,
    );
  });

  it('user mistakes are one line on stderr and exit code 1', () => {
    const broken = join(root, 'broken');
    mkdirSync(broken);
    copyFileSync(join(model, 'config.json'), join(broken, 'config.json'));
    copyFileSync(join(model, 'scheduler_config.json'), join(broken, 'scheduler_config.json'));
    writeFileSync(join(broken, 'diffusion_pytorch_model.safetensors'), 'garbage');
    const cases: [string[], RegExp][] = [
      [['--model', join(root, 'nope')], /--model .*nope: no such folder/],
      [['--model', root], /not a model folder \(no config\.json/],
      [['--model', broken], /diffusion_pytorch_model\.safetensors/],
      [['--model', model, '--steps', '101'], /--steps must be an integer in \[1, 100\], found '101'/],
      [['--model', model, '--n', '0'], /--n must be an integer in \[1, 1000000\], found '0'/],
      [['--model', model, '--seed=-1'], /--seed must be an integer >= 0, found '-1'/],
      [['--model', model, '--seed', '1.5'], /--seed must be an integer >= 0, found '1.5'/],
      [['--model', model, '--sampler', 'eulr'], /--sampler must be one of ddpm, ddim, dpm\+\+2m, .*heun, found 'eulr'/],
      [['--model', model, '--sampler', 'ddim', '--karras'], /sampler ddim has no Karras sigmas/],
      [['--model', model, '--sampler', 'ddpm', '--eta', '0.5'], /--eta applies to --sampler ddim only/],
      [['--model', model, '--sampler', 'ddim', '--eta', 'x'], /--eta must be a number in \[0, 1\], found 'x'/],
      [['--model', model, '--threads', '0'], /--threads must be an integer in \[1, 256\]/],
      [['--model', model, '--bogus'], /unknown option --bogus/],
      [['--model', model, 'extra'], /unexpected argument 'extra'/],
      [['--model', model, '--steps', '2', '--n', '1', '--out', join(root, 'a.png', 'x.png')], /cannot write/],
    ];
    for (const [args, re] of cases) {
      const r = ddpm('sample', '--quiet', ...args);
      expect(r.status, args.join(' ')).toBe(1);
      expect(r.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
      expect(r.stderr).toMatch(/^ddpm: /);
      expect(r.stderr, args.join(' ')).toMatch(re);
    }
  });

  it('reads a diffusers pipeline folder (unet/, scheduler/) like a model folder', () => {
    const pipe = join(root, 'pipeline');
    mkdirSync(join(pipe, 'unet'), { recursive: true });
    mkdirSync(join(pipe, 'scheduler'));
    for (const f of ['config.json', 'diffusion_pytorch_model.safetensors'])
      copyFileSync(join(model, f), join(pipe, 'unet', f));
    copyFileSync(join(model, 'scheduler_config.json'), join(pipe, 'scheduler', 'scheduler_config.json'));
    const a = sample('flat.png', '--steps', '3', '--n', '2');
    expect(ddpm('sample', '--model', pipe, '--out', 'pipe.png', '--steps', '3', '--n', '2', '--quiet').status).toBe(0);
    expect(Buffer.compare(a, read('pipe.png'))).toBe(0);
  });

  it('accepts what the library saves: unet.save() (scheduler defaults, with a notice) and pipe.save() (a pipeline folder)', async () => {
    const engine = await Engine.create({ threads: 1 });
    const unetDir = join(root, 'unet-saved'),
      pipeDir = join(root, 'pipe-saved');
    const unet = UNet2DModel.create(engine, tiny, 1);
    await unet.save(unetDir);
    await new DDPMPipeline(engine, unet, new DDPMScheduler({ numTrainTimesteps: 100 })).save(pipeDir);
    engine.dispose();
    const r = ddpm('sample', '--model', unetDir, '--out', 'saved.png', '--steps', '3', '--n', '2', '--quiet');
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(
      /^ddpm: notice: .*scheduler_config\.json is missing: using diffusers' DDPMScheduler defaults/,
    );
    // pipe.save() keeps the scheduler (T = 100): the same pixels as the model folder with that config
    const a = sample('flat3.png', '--steps', '3', '--n', '2');
    expect(
      ddpm('sample', '--model', pipeDir, '--out', 'pipe3.png', '--steps', '3', '--n', '2', '--quiet'),
    ).toMatchObject({ status: 0, stderr: '' });
    expect(Buffer.compare(a, read('pipe3.png'))).toBe(0);
  });

  it('the default sampler is the one the quality sweep chose: dpm++2m-sde, 10 model calls', () => {
    const r = ddpm('sample', '--model', model, '--out', 'd.png', '--n', '1', '--json', '--quiet');
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ sampler: 'dpm++2m-sde', steps: 10, modelCalls: 10 });
    // another sampler without --steps keeps 50 calls
    const d = ddpm(
      'sample',
      '--model',
      model,
      '--out',
      'd2.png',
      '--n',
      '1',
      '--sampler',
      'unipc',
      '--json',
      '--quiet',
    );
    expect(JSON.parse(d.stdout)).toMatchObject({ sampler: 'unipc', steps: 50 });
  });

  it('--json prints what was written and timings; --scale enlarges', () => {
    const r = ddpm(
      'sample',
      '--model',
      model,
      '--out',
      'j.png',
      '--steps',
      '2',
      '--n',
      '3',
      '--scale',
      '3',
      '--json',
      '--quiet',
    );
    expect(r.status).toBe(0);
    const j = JSON.parse(r.stdout);
    const g = decodePng(new Uint8Array(read('j.png')), 'j.png');
    expect(j.written).toEqual([{ file: 'j.png', width: g.width, height: g.height, bytes: read('j.png').length }]);
    expect([g.width, g.height]).toEqual([3 * (2 * S + 3 * 2), 3 * (2 * S + 3 * 2)]);
    expect(j).toMatchObject({ sampler: 'dpm++2m-sde', steps: 2, n: 3, seed: 0, scale: 3 });
    expect(j.timingsMs.total).toBeGreaterThan(0);
    // the enlarged grid is the small one, each pixel repeated 3 × 3
    sample('j1.png', '--steps', '2', '--n', '3');
    const small = decodePng(new Uint8Array(read('j1.png')), 'j1.png');
    for (const [x, y] of [
      [0, 0],
      [5, 7],
      [small.width - 1, small.height - 1],
    ]) {
      expect(g.data[4 * ((3 * y + 2) * g.width + 3 * x + 1)]).toBe(small.data[4 * (y * small.width + x)]);
    }
  });

  it('--help prints the options', () => {
    const r = ddpm('sample', '--help');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/--trajectory FILE/);
  });
});
