// The CLI's bad-input table (issue 12): flags, folders and datasets a hostile or careless user gives. Each
// case must exit 1 at once with one "ddpm: …" line naming the problem, with bounded memory and time
// (peak RSS and wall time measured inside the child by test/helpers/measure-exit.mjs). The table is
// printed; docs/reliability.md quotes it. Runs dist/ (npm run build first).
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DDPMScheduler, Engine, UNet2DModel } from '../src/index';
import { encodePng } from '../src/io/png';
import { TINY_UNET } from './helpers/configs.js';

const cli = join(__dirname, '..', 'dist', 'cli.js');
const measure = pathToFileURL(join(__dirname, 'helpers', 'measure-exit.mjs')).href;
const root = mkdtempSync(join(tmpdir(), 'ddpm-cli-hostile-'));
const tiny = TINY_UNET;
const dir = (name: string) => join(root, name);

/** A copy of the good model folder with one file replaced (or made a FIFO / folder). */
function variant(name: string, file: string, how: { json?: unknown; fifo?: true; dir?: true }): string {
  const d = dir(name);
  mkdirSync(d);
  for (const f of ['config.json', 'diffusion_pytorch_model.safetensors', 'scheduler_config.json'])
    copyFileSync(join(dir('good'), f), join(d, f));
  rmSync(join(d, file));
  if (how.fifo) execFileSync('mkfifo', [join(d, file)]);
  else if (how.dir) mkdirSync(join(d, file));
  else writeFileSync(join(d, file), JSON.stringify(how.json));
  return d;
}

beforeAll(async () => {
  const engine = await Engine.create({ threads: 1 });
  await UNet2DModel.create(engine, tiny, 1).save(dir('good'));
  writeFileSync(
    join(dir('good'), 'scheduler_config.json'),
    JSON.stringify(new DDPMScheduler({ numTrainTimesteps: 100 }).toConfig()),
  );
  engine.dispose();
  mkdirSync(dir('pngs'));
  const big = encodePng({ width: 4096, height: 4096, data: new Uint8ClampedArray(4096 * 4096 * 4) });
  for (let i = 0; i < 8; i++) writeFileSync(join(dir('pngs'), `${i}.png`), big);
  writeFileSync(dir('plain-file'), 'x');
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('ddpm: the bad-input table', () => {
  it('every case is one line on stderr, exit 1, under 5 s and 400 MB peak RSS', () => {
    const sched = JSON.parse(readFileSync(join(dir('good'), 'scheduler_config.json'), 'utf8'));
    const cases: [string, string[], RegExp][] = [
      [
        'negative --seed',
        ['sample', '--model', dir('good'), '--seed', '-1'],
        /--seed must be an integer >= 0, found '-1'/,
      ],
      ['--steps not a number', ['sample', '--model', dir('good'), '--steps', 'ten'], /--steps must be an integer/],
      ['missing --model folder', ['sample', '--model', dir('nowhere')], /no such folder/],
      [
        'weights file is a FIFO',
        ['sample', '--model', variant('fifo', 'diffusion_pytorch_model.safetensors', { fifo: true })],
        /a FIFO \(named pipe\) where a regular file is expected/,
      ],
      [
        'config.json is a folder',
        ['sample', '--model', variant('cfgdir', 'config.json', { dir: true })],
        /config\.json: a directory where a regular file is expected/,
      ],
      [
        'layers_per_block 1e6',
        ['sample', '--model', variant('layers', 'config.json', { json: { ...tiny, layers_per_block: 1e6 } })],
        /layers_per_block must be a positive integer \(at most 32\)/,
      ],
      [
        'sample_size 100000',
        ['sample', '--model', variant('side', 'config.json', { json: { ...tiny, sample_size: 100000 } })],
        /sample_size must be a positive integer \(at most 4096\)/,
      ],
      [
        'num_train_timesteps 2^31',
        [
          'sample',
          '--model',
          variant('T', 'scheduler_config.json', { json: { ...sched, num_train_timesteps: 2 ** 31 } }),
        ],
        /scheduler_config\.json: DDPMScheduler: numTrainTimesteps must be an integer in \[1, 100000\]/,
      ],
      [
        'freq_shift = half width',
        ['sample', '--model', variant('freq', 'config.json', { json: { ...tiny, freq_shift: 4 } })],
        /freq_shift must be below half/,
      ],
      [
        'config key toString',
        ['sample', '--model', variant('proto', 'config.json', { json: { ...tiny, toString: 1 } })],
        /unsupported UNet2DModel key "toString"/,
      ],
      [
        'a 4096² model, --n 64 (was 17 s, 2 GB)',
        ['sample', '--model', variant('big', 'config.json', { json: { ...tiny, sample_size: 4096 } }), '--n', '64'],
        /DDPMPipeline\.run: 64 samples of \[1,4096,4096\] needs 8\.00 GiB outside Wasm memory/,
      ],
      [
        'a 4096² model, --n 1',
        ['sample', '--model', dir('big'), '--n', '1'],
        /DDPMPipeline\.run on batches of 1 .* needs .* GiB of Wasm memory/,
      ],
      [
        'eight 4096² PNGs (708 KB)',
        ['train', '--data', dir('pngs'), '--out', dir('out-pngs'), '--steps', '1'],
        /8 images of 4096×4096 needs .* over the 1\.00 GiB budget/,
      ],
      [
        '--data is a file',
        ['train', '--data', dir('plain-file'), '--out', dir('out-file'), '--steps', '1'],
        /plain-file: cannot read the image folder \(it is a file, not a folder\)/,
      ],
      [
        'eval --classifier <folder>',
        ['eval', '--classifier', root],
        /--classifier .*: a directory where a file is expected/,
      ],
      [
        'eval --json under a file',
        ['eval', '--json', join(dir('plain-file'), 'x.json')],
        /--json .*x\.json: cannot write: a parent of it is a file/,
      ],
    ];
    const table: string[] = ['| case | exit | peak RSS | time | message |', '| --- | --- | --- | --- | --- |'];
    for (const [name, args, re] of cases) {
      const r = spawnSync(process.execPath, ['--import', measure, cli, ...args], {
        encoding: 'utf8',
        timeout: 60_000,
        cwd: root,
      });
      const lines = r.stderr.split('\n').filter((l) => l.trim() !== '');
      const m = JSON.parse(lines.pop()!.replace(/^MEASURE /, '')) as { maxRssKB: number; ms: number };
      const where = `${name}: ${r.stderr}`;
      expect(r.status, where).toBe(1);
      expect(lines.length, where).toBe(1);
      expect(lines[0], where).toMatch(/^ddpm: /);
      expect(lines[0], where).toMatch(re);
      expect(lines[0], where).not.toMatch(/\[object Object\]|at .*\.js:\d+/);
      expect(m.ms, where).toBeLessThan(5000);
      expect(m.maxRssKB * 1024, where).toBeLessThan(400 * 2 ** 20);
      table.push(
        `| ${name} | ${r.status} | ${(m.maxRssKB / 1024).toFixed(0)} MB | ${m.ms} ms | ${lines[0].slice(0, 110).replace(root, '…')} |`,
      );
    }
    console.log(table.join('\n'));
  });
});
