// The mnist preset's conv2dBackward calls of a training step, before/after a kernel change: this
// checkout's dist/ against another built checkout's, in one process, interleaved; medians and ratios.
//   node bench/convbwd-ab.mjs --base /path/to/other/checkout [--threads T] [--batch N] [--rounds R] [--part all|dx|dw]
// The shapes are recorded from one forward pass of the preset at batch N (each distinct conv geometry once,
// with its count); every shape's backward is timed through kernels.conv2dBackward on both builds: `all`
// (dx, dweight, dbias, as the layer calls it; no dx for a 1-channel input, as for conv_in), `dx` or `dw` only.
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { mnistConvShapes, randomF32 } from './common.mjs';

const argv = process.argv.slice(2);
const get = (f, d) => (argv.includes(f) ? argv[argv.indexOf(f) + 1] : d);
const base = get('--base', null);
if (!base) throw new Error('--base DIR (a built checkout to compare with) is required');
const threads = Number(get('--threads', 1));
const N = Number(get('--batch', 32));
const rounds = Number(get('--rounds', 7));
const part = get('--part', 'all');

async function setup(dir, shapes) {
  const lib = await import(pathToFileURL(path.join(dir, 'dist/index.js')).href);
  const engine = await lib.Engine.create({ threads, simd: 'relaxed' });
  const fns = shapes.map((s, i) => {
    const bottom = (s.Ho - 1) * s.stride + s.k - s.H - s.top;
    const right = (s.Wo - 1) * s.stride + s.k - s.W - s.left;
    const x = engine.upload(randomF32(s.n * s.Cin * s.H * s.W, 10 + i), [s.n, s.Cin, s.H, s.W], 'x');
    const weight = engine.upload(randomF32(s.Cout * s.Cin * s.k * s.k, 20 + i), [s.Cout, s.Cin, s.k, s.k], 'w');
    const dy = engine.upload(randomF32(s.n * s.Cout * s.Ho * s.Wo, 30 + i), [s.n, s.Cout, s.Ho, s.Wo], 'dy');
    const dx = engine.alloc([s.n, s.Cin, s.H, s.W], 'dx');
    const dweight = engine.alloc([s.Cout, s.Cin, s.k, s.k], 'dw');
    const dbias = engine.alloc([s.Cout], 'db');
    const args = { N: s.n, Cin: s.Cin, H: s.H, W: s.W, Cout: s.Cout, kernel: s.k, stride: s.stride };
    const call = {
      ...args,
      pad: [s.top, s.left, bottom, right],
      x,
      weight,
      dy,
      accumulate: false,
      dx: part !== 'dw' && s.Cin > 1 ? dx : undefined,
      dweight: part !== 'dx' ? dweight : undefined,
      dbias: part === 'all' ? dbias : undefined,
    };
    const fn = () => lib.kernels.conv2dBackward(engine, call);
    fn.outs = () => [call.dx, call.dweight, call.dbias].map((t) => (t ? new Uint32Array(engine.read(t).buffer) : null));
    return fn;
  });
  return { engine, fns };
}

const here = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const shapes = await mnistConvShapes(await import(pathToFileURL(path.join(here, 'dist/index.js')).href), N);
const A = await setup(base, shapes);
const B = await setup(here, shapes);
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const clock = threads === 1 ? cpuMs : () => performance.now();
let totalA = 0;
let totalB = 0;
console.log(
  `conv2dBackward (${part}) A/B, mnist preset batch ${N}, ${threads} thread(s), ${threads === 1 ? 'CPU' : 'wall'} ms per call, medians of ${rounds} rounds`,
);
for (let i = 0; i < shapes.length; i++) {
  const s = shapes[i];
  const macs = s.n * s.Cout * s.Ho * s.Wo * s.Cin * s.k * s.k;
  const gemms = part === 'all' ? (s.Cin > 1 ? 2 : 1) : part === 'dx' ? (s.Cin > 1 ? 1 : 0) : 1;
  const flops = 2 * macs * gemms;
  for (const side of [A, B]) for (let w = 0; w < 2; w++) side.fns[i]();
  const reps = Math.max(1, Math.round(2e8 / Math.max(flops, 1) / 4));
  const t = { a: [], b: [] };
  for (let r = 0; r < rounds; r++) {
    for (const o of r % 2 ? ['b', 'a'] : ['a', 'b']) {
      const side = o === 'a' ? A : B;
      const t0 = clock();
      for (let k = 0; k < reps; k++) side.fns[i]();
      t[o].push((clock() - t0) / reps);
    }
  }
  const a = median(t.a);
  const b = median(t.b);
  const oa = A.fns[i].outs();
  const ob = B.fns[i].outs();
  const same = oa.every((o, j) => o === null || o.every((v, m) => v === ob[j][m]));
  totalA += a * s.count;
  totalB += b * s.count;
  const name = `${s.Cin}->${s.Cout} k${s.k} s${s.stride} ${s.H}x${s.W}`.padEnd(24);
  console.log(
    `${name} x${String(s.count).padStart(2)}  before ${a.toFixed(3)} (${(flops / a / 1e6).toFixed(1)} GFLOP/s)  after ${b.toFixed(3)} (${(flops / b / 1e6).toFixed(1)})  ${(a / b).toFixed(2)}×${same ? '' : '  OUTPUTS DIFFER'}`,
  );
}
console.log(
  `all conv backwards of one step: before ${totalA.toFixed(2)} ms, after ${totalB.toFixed(2)} ms, ${(totalA / totalB).toFixed(2)}×`,
);
A.engine.dispose();
B.engine.dispose();
process.exit(0);
