// The edge runtimes, for real: workerd (Cloudflare's runtime, npm `workerd`) runs examples/edge/cloudflare
// bundled as wrangler does — the engine's .wasm imported as a compiled module, the weights as a data
// module — and Vercel's edge-runtime (npm) runs examples/edge/vercel with code generation from strings
// and Wasm bytes disabled, the module handed in, the weights fetched by the pipeline from a base URL.
// Both must give Node's plain-SIMD bits for the same 4 digits (Vercel's, from the base URL, with the
// model's stored autoguidance: Node's hand-combined bits), and answer a PNG; the engine's error
// paths (no module, wrong build, threads) run in both too. Neither runtime is
// ever skipped: one that does not start fails this file.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// @ts-expect-error: plain JS helpers
import { bundleWorker } from './helpers/wrangler-build.mjs';
// @ts-expect-error: plain JS helpers
import { startWorkerd } from './helpers/workerd.mjs';
// @ts-expect-error: plain JS helpers
import { loadEdgeFunction } from './helpers/edge-runtime.mjs';
// @ts-expect-error: plain JS helpers
import { serve } from '../examples/browser/server.mjs';
// @ts-expect-error: plain JS helpers
import { DIGITS } from './runtimes/digits.mjs';

const root = join(__dirname, '..');
// Nothing external: the package's worker/workerd/edge-light conditions reach no node: import.
const external: string[] = [];
const nodeSimd = () =>
  JSON.parse(
    execFileSync(process.execPath, [join(root, 'test/runtimes/digits-node.mjs'), 'simd', '1'], {
      encoding: 'utf8',
      timeout: 30_000,
    }).trim(),
  );

type Check = {
  ok: boolean;
  code?: string;
  message?: string;
  info?: { runtime: string; build: string; threads: number; fusedMadd: boolean | null };
  result?: number[];
};
function expectChecks(r: Record<string, Check>, runtime: string) {
  expect(r['no wasm']).toMatchObject({ ok: false, code: 'UNSUPPORTED' });
  expect(r['no wasm'].message).toMatch(
    /does not compile WebAssembly at run time \(CompileError: .*disallowed by embedder\).*import wasm from 'ddpm-wasm\/wasm\/simd\.wasm'/,
  );
  expect(r['relaxed module']).toMatchObject({
    ok: true,
    result: [3, 6, 9, 12],
    info: { runtime, build: 'relaxed', threads: 1 },
  });
  // V8 on x86 with FMA fuses; read from the module's madd_probe, nothing compiled
  expect(typeof r['relaxed module'].info!.fusedMadd).toBe('boolean');
  expect(r['relaxed module, simd asked']).toMatchObject({ ok: false, code: 'UNSUPPORTED' });
  expect(r['relaxed module, simd asked'].message).toContain(
    "options.wasm is the relaxed build, but simd: 'simd' was asked for",
  );
  for (const k of ['simd module, threads 2', 'simd-mt module, threads 2']) {
    expect(r[k], k).toMatchObject({
      ok: false,
      code: 'UNSUPPORTED',
      message: `threads: 2 needs worker threads, but this runtime has no Worker (${runtime}); use threads: 1 or 'auto'`,
    });
  }
}

/** The PNG answer: a 2×2 grid of 28×28 digits, 2-pixel padding, scale 4: 4·(2·28 + 3·2) = 248. */
async function expectPng(res: Response) {
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe('image/png');
  const bytes = Buffer.from(await res.arrayBuffer());
  expect(bytes.subarray(1, 4).toString()).toBe('PNG');
  expect([bytes.readUInt32BE(16), bytes.readUInt32BE(20)]).toEqual([248, 248]);
}

const { batchSize: n, numInferenceSteps: steps, seed } = DIGITS;
const query = `?seed=${seed}&n=${n}&steps=${steps}&format=json`;
const png = `?seed=${seed}&n=${n}&steps=${steps}`;
let reference: { sha256: string; sha256Guided: string };
beforeAll(() => {
  reference = nodeSimd();
});

describe('workerd (Cloudflare Workers)', () => {
  const dirs: string[] = [];
  const servers: { close(): Promise<void> }[] = [];
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.close()));
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
  async function run(project: string) {
    const out = mkdtempSync(join(tmpdir(), 'ddpm-workerd-'));
    dirs.push(out);
    const bundle = await bundleWorker(join(root, project), out, { external });
    const server = await startWorkerd(out, bundle);
    servers.push(server);
    return { bundle, server };
  }

  it("examples/edge/cloudflare: wasm as a module, weights as a data module, Node's plain-SIMD bits", async () => {
    const { bundle, server } = await run('examples/edge/cloudflare');
    expect(bundle.modules).toEqual([
      { name: '0-simd.wasm', type: 'wasm' },
      { name: '1-diffusion_pytorch_model.safetensors', type: 'data' },
    ]);
    const res = await fetch(server.url + query);
    const body = await res.json();
    expect(res.status, JSON.stringify(body)).toBe(200);
    expect(body.info).toMatchObject({ runtime: 'workerd', build: 'simd', threads: 1 });
    expect(body.shape).toEqual([n, 1, 28, 28]);
    expect(body.sha256).toBe(reference.sha256);
    await expectPng(await fetch(server.url + png));
  });

  it("the engine's checks: the fix named when no module is given, wrong build, threads without Worker", async () => {
    const { server } = await run('test/runtimes/workerd-checks');
    expectChecks(await (await fetch(server.url)).json(), 'workerd');
  });
});

describe("Vercel's edge-runtime, code generation disabled", () => {
  let files: { url: string; close(): Promise<void> };
  beforeAll(async () => {
    files = await serve({ port: 0, isolated: false }); // the deployment's static files (public/models/mnist)
  });
  afterAll(() => files?.close());

  it("examples/edge/vercel: the module handed in, weights fetched, Node's plain-SIMD bits", async () => {
    const runtime = await loadEdgeFunction(join(root, 'examples/edge/vercel/api/digits.js'), { external });
    // the sandbox really refuses to compile
    expect(
      runtime.evaluate(
        '(() => { try { new WebAssembly.Module(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0])); return "compiled" } catch (e) { return e.message } })()',
      ),
    ).toMatch(/disallowed by embedder/);
    const res = await runtime.dispatchFetch(`${files.url}api/digits${query}`);
    const body = await res.json();
    expect(res.status, JSON.stringify(body)).toBe(200);
    expect(body.info).toMatchObject({ runtime: 'edge-light', build: 'simd', threads: 1 });
    // a base URL: the pipeline reads sampling_defaults.json and guide/ too, and applies the autoguidance
    expect(body.sha256).toBe(reference.sha256Guided);
    await expectPng(await runtime.dispatchFetch(`${files.url}api/digits${png}`));
  });

  it("the engine's checks: the fix named when no module is given, wrong build, threads without Worker", async () => {
    const runtime = await loadEdgeFunction(join(root, 'test/runtimes/vercel-checks.js'), { external });
    expectChecks(await (await runtime.dispatchFetch('http://localhost/')).json(), 'edge-light');
  });
});
