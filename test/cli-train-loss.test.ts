// `ddpm train --loss hybrid|vlb` end to end (run `npm run build` first: the CLI runs from dist/): the
// exported model has learned_range variance channels, and sample and nll read it.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pngjs from 'pngjs';
import { afterAll, describe, expect, it } from 'vitest';

const cli = join(__dirname, '..', 'dist', 'cli.js');
const root = mkdtempSync(join(tmpdir(), 'ddpm-cli-train-loss-'));
const ddpm = (...args: string[]) =>
  spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 60_000, cwd: root });
afterAll(() => rmSync(root, { recursive: true, force: true }));

function expectOneLineError(r: ReturnType<typeof ddpm>, re: RegExp): void {
  expect(r.status).toBe(1);
  expect(r.stderr.trim().split('\n')).toHaveLength(1);
  expect(r.stderr).toMatch(re);
}

describe('ddpm train --loss', () => {
  it('hybrid: a learned_range U-Net (2× channels) that sample and nll read; the loss is part of the run', () => {
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
    const args = [
      'train',
      '--data',
      data,
      '--out',
      'h',
      '--preset',
      'tiny',
      '--batch',
      '4',
      '--threads',
      '1',
      '--sample-every',
      '0',
      '--quiet',
    ];
    const t = ddpm(...args, '--loss', 'hybrid', '--steps', '3');
    expect(t.stderr).toBe('');
    expect(t.status).toBe(0);
    const model = join(root, 'h', 'model');
    expect(JSON.parse(readFileSync(join(model, 'config.json'), 'utf8'))).toMatchObject({
      in_channels: 1,
      out_channels: 2,
    });
    expect(JSON.parse(readFileSync(join(model, 'scheduler_config.json'), 'utf8'))).toMatchObject({
      _class_name: 'DDPMScheduler',
      variance_type: 'learned_range',
    });
    const rows = readFileSync(join(root, 'h', 'loss.csv'), 'utf8')
      .trim()
      .split('\n')
      .slice(1);
    expect(rows.map((r) => Number(r.split(',')[1])).every((l) => Number.isFinite(l) && l > 0)).toBe(true);
    // DDPM reads the variance channels; DDIM (the sample grids above, and here) skips them
    for (const sampler of ['ddpm', 'ddim']) {
      const s = ddpm(
        'sample',
        '--model',
        model,
        '--sampler',
        sampler,
        '--steps',
        '3',
        '--n',
        '2',
        '--out',
        `${sampler}.png`,
        '--quiet',
      );
      expect(s.stderr).toBe('');
      expect(s.status).toBe(0);
    }
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
    expect(nll.status).toBe(0);
    expect(Number(/^bits\/dim {2}(\d+\.\d+)/.exec(nll.stdout)?.[1])).toBeGreaterThan(0);
    // resuming keeps the loss: omitted is fine, a different one is refused
    expect(ddpm(...args, '--steps', '4').status).toBe(0);
    expectOneLineError(
      ddpm(...args, '--loss', 'simple', '--steps', '5'),
      /--loss simple differs from the run's "hybrid"/,
    );
  });

  it('refuses --loss for 2-D points and unknown losses', () => {
    expectOneLineError(ddpm('train', '--data', 'two-moons', '--out', 'x', '--loss', 'vlb'), /--loss vlb is for images/);
    expectOneLineError(
      ddpm('train', '--data', 'two-moons', '--out', 'x', '--loss', 'kl'),
      /--loss must be one of simple, hybrid, vlb/,
    );
  });
});
