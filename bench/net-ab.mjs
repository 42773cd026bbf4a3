// The mnist preset forward, before/after a change and against onnxruntime-web, in one process: this
// checkout's dist/, another built checkout's dist/ ("before") and onnxruntime-web on our ONNX export, timed
// interleaved (the order rotates every round); medians of the rounds, ratios.
//   node bench/net-ab.mjs --base /path/to/other/checkout [--threads T] [--batch 1,8] [--rounds R]
// With --scaling, "before" is this checkout on 1 thread and "after" on T threads (no --base needed).
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { UNET_PRESETS } from '../dist/nn/presets.js';
import { randomF32 } from './common.mjs';

const argv = process.argv.slice(2);
const get = (f, d) => (argv.includes(f) ? argv[argv.indexOf(f) + 1] : d);
const scaling = argv.includes('--scaling');
const here = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const base = scaling ? here : get('--base', null);
if (!base) throw new Error('--base DIR (a built checkout to compare with) or --scaling is required');
const threads = Number(get('--threads', 1));
const batches = get('--batch', '1,8').split(',').map(Number);
const rounds = Number(get('--rounds', 9));
const config = { sample_size: 28, in_channels: 1, out_channels: 1, ...UNET_PRESETS.mnist };

async function ours(dir, t) {
  const lib = await import(pathToFileURL(path.join(dir, 'dist/index.js')).href);
  const engine = await lib.Engine.create({ threads: t, simd: 'relaxed' });
  const unet = lib.UNet2DModel.create(engine, config, 1);
  return { engine, unet };
}

const A = await ours(base, scaling ? 1 : threads);
const B = await ours(here, threads);
const web = await import('onnxruntime-web');
web.env.wasm.wasmPaths = pathToFileURL(
  path.dirname(fileURLToPath(import.meta.resolve('onnxruntime-web'))) + path.sep,
).href;
web.env.wasm.numThreads = threads;
web.env.wasm.proxy = false;
web.env.logLevel = 'error';
const session = await web.InferenceSession.create(B.unet.toOnnx(), {
  executionProviders: ['wasm'],
  graphOptimizationLevel: 'all',
});
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
// 1 thread everywhere: this process's CPU time, the work itself even when other processes take the core
// (ort-web with numThreads 1 runs on this thread too). More threads: wall time.
const cpuClock = !scaling && threads === 1;
const now = cpuClock
  ? () => {
      const u = process.cpuUsage();
      return (u.user + u.system) / 1000;
    }
  : () => performance.now();

for (const N of batches) {
  const input = randomF32(N * 784, 7);
  const ts = Array.from({ length: N }, (_, i) => 17 + 113 * i);
  const feeds = {
    sample: new web.Tensor('float32', input, [N, 1, 28, 28]),
    timestep: new web.Tensor('float32', Float32Array.from(ts), [N]),
  };
  const xa = A.engine.upload(input, [N, 784], 'x');
  const xb = B.engine.upload(input, [N, 784], 'x');
  const ya = A.engine.read(A.unet.forwardTensor(xa, ts));
  const yb = B.engine.read(B.unet.forwardTensor(xb, ts));
  let same = ya.length === yb.length;
  for (let i = 0; same && i < ya.length; i++) same = Object.is(ya[i], yb[i]);
  const impls = {
    before: () => void A.unet.forwardTensor(xa, ts),
    after: () => void B.unet.forwardTensor(xb, ts),
    'ort-web': () => session.run(feeds),
  };
  const names = Object.keys(impls);
  /** @type {Record<string, number>} */
  const reps = {};
  for (const n of names) {
    for (let w = 0; w < 10; w++) await impls[n]();
    const t0 = performance.now();
    await impls[n]();
    reps[n] = Math.max(1, Math.round(200 / (performance.now() - t0)));
  }
  /** @type {Record<string, number[]>} */
  const times = Object.fromEntries(names.map((n) => [n, []]));
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < names.length; i++) {
      const n = names[(i + r) % names.length];
      const t0 = now();
      for (let k = 0; k < reps[n]; k++) await impls[n]();
      times[n].push((now() - t0) / reps[n]);
    }
  }
  const m = Object.fromEntries(names.map((n) => [n, median(times[n])]));
  const label = scaling ? `1 thread → ${threads}` : `${threads} thread(s)`;
  console.log(
    `mnist forward N=${N}, ${label}: before ${m.before.toFixed(2)} ms, after ${m.after.toFixed(2)} ms (${(m.before / m.after).toFixed(2)}×), ort-web ${m['ort-web'].toFixed(2)} ms; ort-web/before ${(m['ort-web'] / m.before).toFixed(2)}, ort-web/after ${(m['ort-web'] / m.after).toFixed(2)}; outputs ${same ? 'bit-identical' : 'differ'} (${cpuClock ? 'CPU' : 'wall'} ms, medians of ${rounds} rounds)`,
  );
}
A.engine.dispose();
B.engine.dispose();
process.exit(0);
