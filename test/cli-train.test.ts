// `ddpm train` (and `nll` on what it exports) end to end (run `npm run build` first: the CLI runs from dist/).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pngjs from 'pngjs';
import { afterAll, describe, expect, it } from 'vitest';
import { decodePng } from '../src/io/png';

const cli = join(__dirname, '..', 'dist', 'cli.js');
const root = mkdtempSync(join(tmpdir(), 'ddpm-cli-train-'));
const ddpm = (...args: string[]) =>
  spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 60_000, cwd: root });
afterAll(() => rmSync(root, { recursive: true, force: true }));

const moons = [
  'train',
  '--data',
  'two-moons',
  '--threads',
  '1',
  '--checkpoint-every',
  '20',
  '--sample-every',
  '25',
  '--quiet',
];
const lossRows = (dir: string) =>
  readFileSync(join(root, dir, 'loss.csv'), 'utf8')
    .trim()
    .split('\n')
    .slice(1);

function expectOneLineError(r: ReturnType<typeof ddpm>, re: RegExp): void {
  expect(r.status).toBe(1);
  expect(r.stderr.trim().split('\n')).toHaveLength(1);
  expect(r.stderr).toMatch(/^ddpm: /);
  expect(r.stderr).toMatch(re);
}

describe('ddpm train', () => {
  it('two moons: checkpoints, samples, loss curve and an exported model; resuming equals a straight run', () => {
    expect(ddpm(...moons, '--out', 'a', '--steps', '50').status).toBe(0);
    for (const f of [
      'checkpoints/latest',
      'checkpoints/ckpt-000050/checkpoint.json',
      'model/config.json',
      'model/model.safetensors',
      'model/scheduler_config.json',
      'samples/step-25.png',
      'samples/step-50.png',
      'loss.svg',
    ]) {
      expect(existsSync(join(root, 'a', f)), f).toBe(true);
    }
    expect(readFileSync(join(root, 'a', 'loss.svg'), 'utf8')).toMatch(/^<svg [\s\S]*<polyline [\s\S]*<\/svg>\n$/);
    expect(lossRows('a')).toHaveLength(50);
    expect(JSON.parse(readFileSync(join(root, 'a', 'model', 'scheduler_config.json'), 'utf8'))).toMatchObject({
      _class_name: 'DDPMScheduler',
      num_train_timesteps: 1000,
      clip_sample: false,
    });

    const resumed = ddpm(...moons.filter((a) => a !== '--quiet'), '--out', 'a', '--steps', '70');
    expect(resumed.status).toBe(0);
    expect(resumed.stderr).toMatch(/^resuming a at step 50 /);
    expect(lossRows('a')).toHaveLength(70);
    expect(ddpm(...moons, '--out', 'b', '--steps', '70').status).toBe(0);
    expect(
      Buffer.compare(
        readFileSync(join(root, 'a', 'model', 'model.safetensors')),
        readFileSync(join(root, 'b', 'model', 'model.safetensors')),
      ),
    ).toBe(0);
    expect(lossRows('a')).toEqual(lossRows('b'));

    // the exported folder samples as a scatter plot
    const s = ddpm(
      'sample',
      '--model',
      join(root, 'a', 'model'),
      '--n',
      '200',
      '--batch',
      '200',
      '--steps',
      '10',
      '--out',
      'moons.png',
      '--quiet',
    );
    expect(s.status).toBe(0);
    expect(decodePng(new Uint8Array(readFileSync(join(root, 'moons.png'))), 'moons.png').width).toBe(400);

    // flags that would change the resumed run are refused
    expectOneLineError(
      ddpm(...moons, '--out', 'a', '--steps', '80', '--lr', '0.01'),
      /--lr 0\.01 differs from the run's 0\.003 .*use a new folder/,
    );
    expectOneLineError(
      ddpm(...moons.map((a) => (a === 'two-moons' ? 'swiss-roll' : a)), '--out', 'a', '--steps', '80'),
      /the run was trained on two-moons, not swiss-roll; use a new folder/,
    );
  });

  it('Ctrl-C stops at a step boundary with a checkpoint and an exported model, and the run resumes', async () => {
    const child = spawn(
      process.execPath,
      [
        cli,
        ...moons.filter((a) => a !== '--quiet'),
        '--out',
        'c',
        '--steps',
        '100000',
        '--checkpoint-every',
        '10',
        '--sample-every',
        '0',
      ],
      { cwd: root },
    );
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    // wait for training to be under way (a first checkpoint), then a little longer: usually mid-interval
    for (let i = 0; i < 400 && !existsSync(join(root, 'c', 'checkpoints', 'latest')); i++)
      await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 130));
    child.kill('SIGINT');
    const code = await new Promise((r) => child.on('exit', r));
    expect(code).toBe(130);
    const step = Number(/interrupted at step (\d+)/.exec(stderr)?.[1]);
    expect(step).toBeGreaterThan(0);
    expect(readFileSync(join(root, 'c', 'checkpoints', 'latest'), 'utf8').trim()).toBe(
      `ckpt-${String(step).padStart(6, '0')}`,
    );
    expect(existsSync(join(root, 'c', 'model', 'model.safetensors'))).toBe(true);
    const r = ddpm(
      ...moons.filter((a) => a !== '--quiet'),
      '--out',
      'c',
      '--steps',
      String(step + 5),
      '--sample-every',
      '0',
      '--checkpoint-every',
      '10',
    );
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(new RegExp(`resuming c at step ${step} `));
  });

  it('a folder of PNGs trains a U-Net whose exported diffusers folder samples and evaluates', () => {
    const data = join(root, 'pngs');
    mkdirSync(data);
    for (let n = 0; n < 6; n++) {
      const buf = Buffer.alloc(4 * 8 * 8);
      for (let p = 0; p < 64; p++)
        buf.set([(p * 7 + n * 40) % 256, (p * 7 + n * 40) % 256, (p * 7 + n * 40) % 256, 255], 4 * p);
      writeFileSync(
        join(data, `${n}.png`),
        pngjs.PNG.sync.write({ width: 8, height: 8, data: buf }, { colorType: 0, inputColorType: 6 }),
      );
    }
    writeFileSync(join(data, 'broken.png'), 'not a png');
    expectOneLineError(ddpm('train', '--data', data, '--out', 'u', '--steps', '3'), /broken\.png: not a PNG file/);
    const t = ddpm(
      'train',
      '--data',
      data,
      '--out',
      'u',
      '--preset',
      'tiny',
      '--steps',
      '3',
      '--batch',
      '4',
      '--threads',
      '1',
      '--sample-every',
      '0',
      '--bad-files',
      'skip',
    );
    expect(t.status).toBe(0);
    expect(t.stderr).toMatch(/skipped 1 unreadable file\(s\), e\.g\. .*broken\.png: not a PNG file/);
    const model = join(root, 'u', 'model');
    expect(readdirSync(model).sort()).toEqual([
      'config.json',
      'diffusion_pytorch_model.safetensors',
      'scheduler_config.json',
    ]);
    expect(JSON.parse(readFileSync(join(model, 'config.json'), 'utf8'))).toMatchObject({
      _class_name: 'UNet2DModel',
      sample_size: 8,
      in_channels: 1,
      block_out_channels: [16, 32],
    });
    expect(decodePng(new Uint8Array(readFileSync(join(root, 'u', 'samples', 'step-3.png'))), 'grid').width).toBe(
      4 * 8 + 5 * 2,
    );

    expect(ddpm('sample', '--model', model, '--steps', '2', '--n', '2', '--out', 'u.png', '--quiet').status).toBe(0);
    writeFileSync(join(data, 'broken.png'), readFileSync(join(data, '0.png')));
    const nll = ddpm(
      'nll',
      '--model',
      model,
      '--data',
      data,
      '--n',
      '4',
      '--timesteps',
      'samples:2',
      '--threads',
      '1',
      '--quiet',
    );
    expect(nll.stderr).toBe('');
    expect(nll.status).toBe(0);
    const bpd = /^bits\/dim {2}(\d+\.\d+) ± (\d+\.\d+) +\(4 images/.exec(nll.stdout);
    expect(bpd).not.toBeNull();
    expect(Number(bpd![1])).toBeGreaterThan(0);
    expectOneLineError(
      ddpm('nll', '--model', model, '--data', 'mnist', '--n', '2'),
      /images are 1×28×28, the model takes 1×8×8/,
    );
    expectOneLineError(
      ddpm('nll', '--model', model, '--data', data, '--timesteps', 'every:3'),
      /--timesteps must be all, stride:K or samples:K/,
    );
  });

  it('--class-conditional MNIST: 10 digits + the unconditional label, sampled with --class and --guidance', () => {
    const t = ddpm(
      'train',
      '--data',
      'mnist',
      '--class-conditional',
      '--preset',
      'tiny',
      '--out',
      'cc',
      '--steps',
      '1',
      '--batch',
      '2',
      '--threads',
      '1',
      '--sample-every',
      '0',
      '--quiet',
    );
    expect(t.status).toBe(0);
    expect(JSON.parse(readFileSync(join(root, 'cc', 'model', 'config.json'), 'utf8')).num_class_embeds).toBe(11);
    expect(
      ddpm(
        'sample',
        '--model',
        join(root, 'cc', 'model'),
        '--class',
        '3',
        '--guidance',
        '2',
        '--n',
        '1',
        '--steps',
        '2',
        '--out',
        'cc.png',
        '--quiet',
      ).status,
    ).toBe(0);
    expectOneLineError(
      ddpm('train', '--data', 'two-moons', '--class-conditional', '--out', 'x'),
      /--class-conditional needs labelled data/,
    );
  });

  it('user mistakes are one line on stderr and exit code 1', () => {
    mkdirSync(join(root, 'empty'));
    const cases: [string[], RegExp][] = [
      [['--out', 'x'], /--data is required/],
      [['--data', 'two-moons'], /--out DIR is required/],
      [['--data', 'two-moons', '--out', 'x', '--preset', 'mnist'], /--preset mnist is for images/],
      [['--data', 'two-moons', '--out', 'x', '--preset', 'huge'], /--preset must be one of tiny, small, mnist/],
      [['--data', 'two-moons', '--out', 'x', '--steps', '0'], /--steps must be an integer >= 1/],
      [['--data', 'two-moons', '--out', 'x', '--steps', '5', '--epochs', '1'], /give --steps or --epochs, not both/],
      [['--data', 'two-moons', '--out', 'x', '--ema', '1'], /--ema must be a number in \[0, 1\)/],
      [['--data', 'two-moons', '--out', 'x', '--lr', '0'], /--lr must be a number in \(0, 1\]/],
      [['--data', join(root, 'empty'), '--out', 'x'], /holds no \.png files/],
      [['--data', join(root, 'missing'), '--out', 'x'], /cannot read the image folder/],
    ];
    for (const [args, re] of cases) expectOneLineError(ddpm('train', '--quiet', ...args), re);
  });
});
