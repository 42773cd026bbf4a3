// The mnist preset's conv2d calls, before/after a kernel change: this checkout's dist/ against another
// built checkout's, in one process, interleaved (rounds alternate which build goes first); medians and ratios.
//   node bench/conv-ab.mjs --base /path/to/other/checkout [--threads T] [--batch N] [--rounds R]
// The shapes are recorded from one forward pass of the preset (each distinct conv geometry once, with the
// number of times a forward runs it), then every shape is timed through kernels.conv2d on both builds.
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { mnistConvShapes, randomF32 } from './common.mjs';

const argv = process.argv.slice(2);
const get = (f, d) => (argv.includes(f) ? argv[argv.indexOf(f) + 1] : d);
const base = get('--base', null);
if (!base) throw new Error('--base DIR (a built checkout to compare with) is required');
const threads = Number(get('--threads', 1));
const N = Number(get('--batch', 8));
const rounds = Number(get('--rounds', 9));

async function setup(dir, shapes) {
  const lib = await import(pathToFileURL(path.join(dir, 'dist/index.js')).href);
  const engine = await lib.Engine.create({ threads, simd: 'relaxed' });
  const fns = shapes.map((s, i) => {
    const bottom = (s.Ho - 1) * s.stride + s.k - s.H - s.top;
    const right = (s.Wo - 1) * s.stride + s.k - s.W - s.left;
    const x = engine.upload(randomF32(s.n * s.Cin * s.H * s.W, 10 + i), [s.n, s.Cin, s.H, s.W], 'x');
    const weight = engine.upload(randomF32(s.Cout * s.Cin * s.k * s.k, 20 + i), [s.Cout, s.Cin, s.k, s.k], 'w');
    const bias = engine.upload(randomF32(s.Cout, 30 + i), [s.Cout], 'b');
    const y = engine.alloc([s.n, s.Cout, s.Ho, s.Wo], 'y');
    const args = { N: s.n, Cin: s.Cin, H: s.H, W: s.W, Cout: s.Cout, kernel: s.k, stride: s.stride };
    const call = { ...args, pad: [s.top, s.left, bottom, right], x, weight, bias, y };
    return () => lib.kernels.conv2d(engine, call);
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
// With 1 thread CPU time is the work itself (steady when other processes take the core); with 2 it
// counts the workers' spinning too, so wall time is reported.
const clock = threads === 1 ? cpuMs : () => performance.now();
let totalA = 0;
let totalB = 0;
console.log(
  `conv2d A/B, mnist preset forward N=${N}, ${threads} thread(s), ${threads === 1 ? 'CPU' : 'wall'} ms per call, medians of ${rounds} rounds`,
);
for (let i = 0; i < shapes.length; i++) {
  const s = shapes[i];
  const flops = 2 * s.n * s.Cout * s.Ho * s.Wo * s.Cin * s.k * s.k;
  for (const side of [A, B]) for (let w = 0; w < 20; w++) side.fns[i]();
  const reps = Math.max(3, Math.round(3e8 / flops / 10));
  const t = { a: [], b: [] };
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 ? ['b', 'a'] : ['a', 'b'];
    for (const o of order) {
      const side = o === 'a' ? A : B;
      const t0 = clock();
      for (let k = 0; k < reps; k++) side.fns[i]();
      t[o].push((clock() - t0) / reps);
    }
  }
  const a = median(t.a);
  const b = median(t.b);
  totalA += a * s.count;
  totalB += b * s.count;
  const name = `${s.Cin}->${s.Cout} k${s.k} s${s.stride} ${s.H}x${s.W}`.padEnd(24);
  console.log(
    `${name} x${String(s.count).padStart(2)}  before ${a.toFixed(4)} (${(flops / a / 1e6).toFixed(1)} GFLOP/s)  after ${b.toFixed(4)} (${(flops / b / 1e6).toFixed(1)})  ${(a / b).toFixed(2)}×`,
  );
}
console.log(
  `all convs of one forward: before ${totalA.toFixed(2)} ms, after ${totalB.toFixed(2)} ms, ${(totalA / totalB).toFixed(2)}×`,
);
A.engine.dispose();
B.engine.dispose();
process.exit(0);
