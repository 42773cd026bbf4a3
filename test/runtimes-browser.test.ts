// Chromium (Debian's, through playwright-core): the demo page (examples/browser) samples the 4 digits of
// test/runtimes/digits.mjs and its x_0 must hash to Node's bits for the same seed and build — on the main
// thread (the hand-written loop) and in the demo's Worker (the pipeline) of a page without cross-origin
// isolation (1 thread), and in the Worker with 2 threads under COOP/COEP. Plus the page's PNG download
// (the library's toPng) and its two-moons training. Chromium must
// start: a missing browser fails this file (.ci/run installs it), it is never skipped.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// @ts-expect-error: plain JS helpers
import { launchChromium } from './helpers/chromium.mjs';
// @ts-expect-error: plain JS helpers
import { serve } from '../examples/browser/server.mjs';

const root = join(__dirname, '..');
interface Digits {
  runtime: string;
  build: string;
  threads: number;
  fusedMadd: boolean | null;
  sha256: string;
  /** With the model's stored autoguidance (what the pipeline samples from the model's URL). */
  sha256Guided: string;
}
const node = (simd: string): Digits =>
  JSON.parse(
    execFileSync(process.execPath, [join(root, 'test/runtimes/digits-node.mjs'), simd, '1'], {
      encoding: 'utf8',
      timeout: 30_000,
    }).trim(),
  );

let browser: { context: BrowserContext; close(): Promise<void> };
let plain: { url: string; close(): Promise<void> };
let isolated: { url: string; close(): Promise<void> };
const reference: Record<string, Digits> = {};

beforeAll(async () => {
  reference.simd = node('simd');
  reference.relaxed = node('relaxed');
  [plain, isolated] = await Promise.all([serve({ port: 0, isolated: false }), serve({ port: 0, isolated: true })]);
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  await plain?.close();
  await isolated?.close();
});

async function open(base: string): Promise<Page> {
  const page = await browser.context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(base);
  // the sampler menu is filled from the library's SCHEDULER_NAMES
  await page.waitForFunction(
    () => (window as unknown as { demo?: { schedulers?: string[] } }).demo?.schedulers !== undefined,
  );
  expect(errors).toEqual([]);
  return page;
}

/** Fills the demo's controls as a user would, clicks Sample, waits for window.demo.last. */
async function sampleInDemo(page: Page, threads: string, simd: string) {
  await page.selectOption('select[name=sampler]', 'ddim');
  await page.fill('input[name=steps]', '10');
  await page.fill('input[name=seed]', '42');
  await page.fill('input[name=count]', '4');
  await page.selectOption('select[name=threads]', threads);
  await page.selectOption('select[name=simd]', simd);
  await page.click('#sample');
  await page.waitForFunction(() => (window as unknown as { demo: { last: unknown } }).demo.last, null, {
    timeout: 30_000,
  });
  return page.evaluate(
    () => (window as unknown as { demo: { last: { info: Digits; sha256: string; error?: string } } }).demo.last,
  );
}

describe('Chromium', () => {
  it("the main thread of a page without isolation: 1 thread, Node's bits for both builds", async () => {
    const page = await open(plain.url);
    expect(await page.evaluate(() => self.crossOriginIsolated)).toBe(false);
    // A string, not a function: vitest rewrites import() in this file's functions, the page must not see that.
    const got: Record<string, Digits> = await page.evaluate(`(async () => {
      const lib = await import('/dist/web/index.js');
      const { sampleDigits } = await import('/test/runtimes/digits.mjs');
      const base = '/models/mnist/';
      const files = {
        config: await (await fetch(base + 'config.json')).text(),
        scheduler: await (await fetch(base + 'scheduler_config.json')).text(),
        weights: await (await fetch(base + 'diffusion_pytorch_model.safetensors')).arrayBuffer(),
      };
      const out = {};
      for (const simd of ['simd', 'relaxed']) {
        const engine = await lib.Engine.create({ simd });
        out[simd] = await sampleDigits(lib, engine, files);
        engine.dispose();
      }
      return out;
    })()`);
    for (const simd of ['simd', 'relaxed']) {
      expect(got[simd]).toMatchObject({ runtime: 'browser', build: simd, threads: 1 });
      expect(got[simd].fusedMadd, 'Chromium and Node share V8 and this CPU').toBe(reference[simd].fusedMadd);
      expect(got[simd].sha256, simd).toBe(reference[simd].sha256);
    }
    await page.close();
  });

  it("the demo's Worker on a page without isolation: 1 thread (and why), Node's bits", async () => {
    const page = await open(plain.url);
    const last = await sampleInDemo(page, 'auto', 'simd');
    expect(last.error).toBeUndefined();
    expect(last.info).toMatchObject({ runtime: 'worker', build: 'simd', threads: 1 });
    expect((last.info as unknown as { why: string[] }).why.join('\n')).toMatch(/not cross-origin isolated/);
    // the demo loads the model from its URL: sampling_defaults.json and guide/ too, so the guided bits
    expect(last.sha256).toBe(reference.simd.sha256Guided);
    await page.close();
  });

  it("the demo's Worker under COOP/COEP: 2 threads, Node's bits for both builds; Save PNG downloads the grid", async () => {
    const page = await open(isolated.url);
    expect(await page.evaluate(() => self.crossOriginIsolated)).toBe(true);
    for (const simd of ['simd', 'relaxed']) {
      const last = await sampleInDemo(page, '2', simd);
      expect(last.error).toBeUndefined();
      expect(last.info).toMatchObject({ runtime: 'worker', build: `${simd}-mt`, threads: 2 });
      expect(last.sha256, simd).toBe(reference[simd].sha256Guided);
    }
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#save')]);
    const png = readFileSync(await download.path());
    expect(png.subarray(1, 4).toString()).toBe('PNG');
    // the library's toPng in the worker: a 2×2 grid of 28×28 digits, 2-pixel padding, scale 3: 3·(2·28 + 3·2)
    expect([png.readUInt32BE(16), png.readUInt32BE(20)]).toEqual([186, 186]);
    await page.close();
  });

  it('trains the two-moons MLP in the page: the loss falls and the sampled points are finite', async () => {
    const page = await open(plain.url);
    await page.fill('#train-form input[name=steps]', '300');
    await page.click('#train');
    await page.waitForFunction(() => (window as unknown as { demo: { trained: unknown } }).demo.trained, null, {
      timeout: 30_000,
    });
    const t = await page.evaluate(
      () =>
        (window as unknown as { demo: { trained: { error?: string; step: number; loss: number[]; points: number[] } } })
          .demo.trained,
    );
    expect(t.error).toBeUndefined();
    expect(t.step).toBe(300);
    expect(t.loss).toHaveLength(3);
    expect(t.loss[2]).toBeLessThan(t.loss[0]);
    expect(t.points).toHaveLength(1000);
    expect(t.points.every(Number.isFinite)).toBe(true);
    await page.close();
  });
});
