// Bundlers with zero configuration: esbuild (`--platform=browser`, and `--platform=neutral
// --conditions=worker,workerd`) bundles a consumer of the package (test/runtimes/bundle-consumer.mjs),
// Vite builds examples/vite, each in a scratch project whose node_modules/ddpm-wasm links to this
// repository (what `npm install <path>` makes); no build may stop on or warn about a `node:` import, and
// each bundle must run — in a Chromium page, or a Chromium Worker for the worker bundle — and give Node's
// plain-SIMD bits.
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// @ts-expect-error: plain JS helpers
import { launchChromium } from './helpers/chromium.mjs';
// @ts-expect-error: plain JS helpers
import { serve } from '../examples/browser/server.mjs';

const root = join(__dirname, '..');
const scratch = mkdtempSync(join(tmpdir(), 'ddpm-bundlers-'));
let browser: { context: BrowserContext; close(): Promise<void> };
let reference: { sha256: string };
const servers: { close(): Promise<void> }[] = [];

beforeAll(async () => {
  reference = JSON.parse(
    execFileSync(process.execPath, [join(root, 'test/runtimes/digits-node.mjs'), 'simd', '1'], {
      encoding: 'utf8',
      timeout: 30_000,
    }),
  );
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  await Promise.all(servers.map((s) => s.close()));
  rmSync(scratch, { recursive: true, force: true });
});

/** A scratch project: the given files, the model under models/mnist, node_modules/ddpm-wasm → this repo. */
function project(name: string, files: Record<string, string>): string {
  const dir = join(scratch, name);
  mkdirSync(join(dir, 'node_modules'), { recursive: true });
  symlinkSync(root, join(dir, 'node_modules/ddpm-wasm'), 'dir');
  for (const [to, from] of Object.entries(files)) cpSync(from, join(dir, to), { recursive: true });
  return dir;
}

/** Every import esbuild saw whose path starts with node: (the metafile lists each input's imports). */
function nodeImports(dir: string): string[] {
  const meta = JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8')) as {
    inputs: Record<string, { imports: { path: string }[] }>;
  };
  return Object.entries(meta.inputs).flatMap(([file, i]) =>
    i.imports.filter((m) => m.path.startsWith('node:')).map((m) => `${file}: ${m.path}`),
  );
}

function esbuild(dir: string, args: string[]): string {
  try {
    return execFileSync(
      join(root, 'node_modules/.bin/esbuild'),
      [
        'consumer.mjs',
        '--bundle',
        '--format=esm',
        '--outfile=out/bundle.js',
        '--metafile=meta.json',
        '--log-level=warning',
        ...args,
      ],
      { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
    );
  } catch (e) {
    throw new Error(`esbuild ${args.join(' ')} failed:\n${(e as { stderr?: string }).stderr}`);
  }
}

/** Serves dir (cross-origin isolated off), opens page, waits for window.result. */
async function runInChromium(
  dir: string,
  page: string,
): Promise<{ sha256?: string; error?: string; build?: string; threads?: number }> {
  const server = await serve({ port: 0, isolated: false, dir });
  servers.push(server);
  const tab = await browser.context.newPage();
  const errors: string[] = [];
  tab.on('pageerror', (e) => errors.push(e.message));
  await tab.goto(server.url + page);
  await tab
    .waitForFunction(() => (window as unknown as { result?: unknown }).result, null, { timeout: 30_000 })
    .catch(() => undefined);
  const result = await tab.evaluate(() => (window as unknown as { result?: unknown }).result);
  await tab.close();
  return (result ?? { error: `no result; page errors: ${errors.join('; ')}` }) as { sha256?: string; error?: string };
}

const consumerFiles = {
  'consumer.mjs': join(root, 'test/runtimes/bundle-consumer.mjs'),
  'digits.mjs': join(root, 'test/runtimes/digits.mjs'),
  'out/models/mnist': join(root, 'models/mnist'),
};

describe('esbuild, zero config', () => {
  it("--platform=browser: builds without node: imports; the bundle runs in Chromium with Node's bits", async () => {
    const dir = project('esbuild-browser', consumerFiles);
    const log = esbuild(dir, ['--platform=browser']);
    expect(log).not.toMatch(/node:/);
    expect(nodeImports(dir)).toEqual([]);
    writeFileSync(
      join(dir, 'out/index.html'),
      `<!doctype html><script>window.MODEL_BASE = new URL('models/mnist/', location.href).href</script><script type="module" src="bundle.js"></script>`,
    );
    const result = await runInChromium(join(dir, 'out'), 'index.html');
    expect(result.error).toBeUndefined();
    expect(result).toMatchObject({ runtime: 'browser', build: 'simd', threads: 1 });
    expect(result.sha256).toBe(reference.sha256);
  });

  it("--platform=neutral --conditions=worker,workerd: builds; the bundle runs in a Chromium Worker with Node's bits", async () => {
    const dir = project('esbuild-worker', consumerFiles);
    esbuild(dir, ['--platform=neutral', '--conditions=worker,workerd']);
    expect(nodeImports(dir)).toEqual([]);
    writeFileSync(
      join(dir, 'out/harness.js'),
      `self.MODEL_BASE = new URL('models/mnist/', location.href).href; await import('./bundle.js'); postMessage(globalThis.result);`,
    );
    writeFileSync(
      join(dir, 'out/index.html'),
      `<!doctype html><script>new Worker('harness.js', { type: 'module' }).onmessage = (e) => { window.result = e.data; };</script>`,
    );
    const result = await runInChromium(join(dir, 'out'), 'index.html');
    expect(result.error).toBeUndefined();
    expect(result).toMatchObject({ runtime: 'worker', build: 'simd', threads: 1 });
    expect(result.sha256).toBe(reference.sha256);
  });
});

describe('Vite, zero config', () => {
  it("builds examples/vite without node: warnings; the app runs in Chromium with Node's bits", async () => {
    const dir = project('vite', {
      'index.html': join(root, 'examples/vite/index.html'),
      'main.js': join(root, 'examples/vite/main.js'),
      'package.json': join(root, 'examples/vite/package.json'),
    });
    // NODE_ENV as a user's shell has it: under vitest's NODE_ENV=test, Vite stays quiet about node: imports
    const env = { ...process.env, NODE_ENV: 'production' };
    const out = execFileSync(process.execPath, [join(root, 'test/helpers/vite-build.mjs'), dir], {
      encoding: 'utf8',
      timeout: 60_000,
      env,
    });
    const { warnings } = JSON.parse(out.trim().split('\n').pop()!) as { warnings: string[] };
    expect(warnings.filter((w) => /node:/.test(w))).toEqual([]);
    const result = await runInChromium(join(dir, 'dist'), 'index.html?n=4&steps=10&seed=42&simd=simd');
    expect(result.error).toBeUndefined();
    expect((result as { info?: unknown }).info).toMatchObject({ runtime: 'browser', build: 'simd', threads: 1 });
    expect(result.sha256).toBe(reference.sha256);
  });
});
