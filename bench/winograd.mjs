// Winograd F(2×2,3×3) / F(4×4,3×3) against the direct conv (implicit-im2col GEMM) on the U-Net's 3×3
// stride-1 layer shapes, in one process, interleaved: each round times one block of calls per variant (the
// order rotates), and the figure is the median over rounds. Also the rounding error of each variant against a
// float64 direct convolution, on PyTorch-initialised weights and SiLU(N(0,1)) inputs (what a ResNet conv sees
// after GroupNorm + SiLU). docs/winograd.md has the results.
//   node bench/winograd.mjs [--threads T] [--rounds R] [--only mnist|cifar] [--errors-only | --no-errors]
//   node bench/winograd.mjs --net mnist|ddpm-cifar10 [--N 8] [--threads T] [--rounds R]
//     whole-network forward with the hook's rule ('measured') against the direct conv only ('never'),
//     interleaved in one process, and the relative L2 difference of their outputs.
import { Engine, kernels, UNet2DModel } from '../dist/index.js';
import { conv2dWinograd, setWinogradPolicy, winogradFilter, winogradFilterSize } from '../dist/kernels/winograd.js';
import { UNET_PRESETS } from '../dist/nn/presets.js';
import { NETWORKS } from './networks.mjs';

const argv = process.argv.slice(2);
const get = (f, d) => (argv.includes(f) ? argv[argv.indexOf(f) + 1] : d);
const threads = Number(get('--threads', 1));
const rounds = Number(get('--rounds', 7));
const only = get('--only', null);

/** [label, N, Cin, Cout, H] — the mnist preset (16/32 ch at 28/14/7) at N = 1 and 8, ddpm-cifar10-32 (128/256 at 32/16/8) at N = 8. */
/** @type {[string, number, number, number, number][]} */
const SHAPES = [];
for (const N of [1, 8]) {
  SHAPES.push(
    ['mnist', N, 1, 16, 28],
    ['mnist', N, 16, 1, 28],
    ['mnist', N, 16, 16, 28],
    ['mnist', N, 32, 32, 14],
    ['mnist', N, 32, 32, 7],
    ['mnist', N, 64, 32, 14],
  );
}
SHAPES.push(
  ['cifar', 8, 128, 128, 32],
  ['cifar', 8, 256, 256, 16],
  ['cifar', 8, 256, 256, 8],
  ['cifar', 8, 512, 256, 8],
  ['cifar', 1, 128, 128, 32],
  ['cifar', 1, 256, 256, 16],
  ['cifar', 1, 256, 256, 8],
);

function rng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
/** PyTorch's conv init U(−1/√fan_in, 1/√fan_in) and SiLU of standard normal inputs. */
function operands(N, Cin, Cout, H, seed) {
  const r = rng(seed);
  const bound = 1 / Math.sqrt(Cin * 9);
  const w = Float32Array.from({ length: Cout * Cin * 9 }, () => (2 * r() - 1) * bound);
  const b = Float32Array.from({ length: Cout }, () => (2 * r() - 1) * bound);
  const x = Float32Array.from({ length: N * Cin * H * H }, () => {
    const z = Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
    return z / (1 + Math.exp(-z));
  });
  return { x, w, b };
}

/** float64 direct conv, 3×3 stride 1 pad 1. */
function directF64(N, Cin, Cout, H, x, w, b) {
  const W = H;
  const y = new Float64Array(N * Cout * H * W);
  for (let n = 0; n < N; n++)
    for (let co = 0; co < Cout; co++) {
      const out = y.subarray((n * Cout + co) * H * W, (n * Cout + co + 1) * H * W);
      out.fill(b[co]);
      for (let ci = 0; ci < Cin; ci++) {
        const plane = (n * Cin + ci) * H * W;
        for (let ky = 0; ky < 3; ky++)
          for (let kx = 0; kx < 3; kx++) {
            const wv = w[((co * Cin + ci) * 3 + ky) * 3 + kx];
            for (let oy = 0; oy < H; oy++) {
              const iy = oy + ky - 1;
              if (iy < 0 || iy >= H) continue;
              for (let ox = 0; ox < W; ox++) {
                const ix = ox + kx - 1;
                if (ix >= 0 && ix < W) out[oy * W + ox] += wv * x[plane + iy * W + ix];
              }
            }
          }
      }
    }
  return y;
}

const engine = await Engine.create({ threads, simd: 'relaxed' });
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

const netName = get('--net', null);
if (netName) {
  const config =
    netName === 'mnist'
      ? { sample_size: 28, in_channels: 1, out_channels: 1, ...UNET_PRESETS.mnist }
      : NETWORKS[netName].config;
  const unet = UNet2DModel.create(engine, config, 1);
  const N = Number(get('--N', 8));
  const D = config.in_channels * config.sample_size ** 2;
  const r = rng(7);
  const x = engine.upload(
    Float32Array.from({ length: N * D }, () => 2 * r() - 1),
    [N, D],
    'x',
  );
  const ts = Array.from({ length: N }, (_, i) => 17 + 113 * i);
  const policies = /** @type {('never' | 'measured')[]} */ (['never', 'measured']);
  const outs = {};
  for (const p of policies) {
    setWinogradPolicy(p);
    outs[p] = engine.read(unet.forwardTensor(x, ts)); // also the warm-up
  }
  let num = 0,
    den = 0;
  for (let i = 0; i < outs.never.length; i++) {
    num += (outs.measured[i] - outs.never[i]) ** 2;
    den += outs.never[i] ** 2;
  }
  // a block of calls per policy and round; CPU time (this process, all threads) beside wall time: on a
  // shared machine it is the steadier of the two with 1 thread
  const t1 = performance.now();
  unet.forwardTensor(x, ts);
  const reps = Math.max(1, Math.round(150 / (performance.now() - t1)));
  /** @type {Record<string, number[]>} */
  const wall = { never: [], measured: [] };
  /** @type {Record<string, number[]>} */
  const cpu = { never: [], measured: [] };
  for (let k = 0; k < rounds; k++) {
    for (const p of k % 2 ? [...policies].reverse() : policies) {
      setWinogradPolicy(p);
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      for (let i = 0; i < reps; i++) unet.forwardTensor(x, ts);
      wall[p].push((performance.now() - t0) / reps);
      const c = process.cpuUsage(c0);
      cpu[p].push((c.user + c.system) / 1000 / reps);
    }
  }
  const [a, b, ca, cb] = [median(wall.never), median(wall.measured), median(cpu.never), median(cpu.measured)];
  console.log(
    `${netName} forward N=${N} threads ${threads}: wall direct ${a.toFixed(1)} ms, with Winograd ${b.toFixed(1)} ms, ${(a / b).toFixed(2)}×; CPU ${ca.toFixed(1)} / ${cb.toFixed(1)} ms, ${(ca / cb).toFixed(2)}× (medians of ${rounds} interleaved rounds of ${reps} calls); outputs differ by relative L2 ${Math.sqrt(num / den).toExponential(2)}`,
  );
  engine.dispose();
  process.exit(0);
}

function variants(N, Cin, Cout, H, t) {
  const g = { N, Cin, H, W: H, Cout };
  const f = {};
  for (const m of /** @type {(2 | 4)[]} */ ([2, 4])) {
    f[m] = engine.alloc(winogradFilterSize(m, Cout, Cin), `filter${m}`);
    winogradFilter(engine, { tile: m, Cout, Cin, weight: t.w, filter: f[m] });
  }
  return {
    direct: () =>
      kernels.conv2d(engine, { ...g, kernel: 3, stride: 1, pad: 1, x: t.x, weight: t.w, bias: t.b, y: t.y }),
    'F2 cached': () => conv2dWinograd(engine, { tile: 2, ...g, x: t.x, filter: f[2], bias: t.b, y: t.y }),
    'F2 per call': () => conv2dWinograd(engine, { tile: 2, ...g, x: t.x, weight: t.w, bias: t.b, y: t.y }),
    'F4 cached': () => conv2dWinograd(engine, { tile: 4, ...g, x: t.x, filter: f[4], bias: t.b, y: t.y }),
    'F4 per call': () => conv2dWinograd(engine, { tile: 4, ...g, x: t.x, weight: t.w, bias: t.b, y: t.y }),
  };
}

if (!argv.includes('--no-errors')) {
  // Errors: one image per shape (N does not change the per-element arithmetic), max over outputs of
  // |y − y64| relative to max |y64| (normwise), and the median over outputs of |y − y64| / |y64|.
  const seen = new Set();
  console.log('| shape (Cin→Cout, H×W) | direct max | F2 max | F4 max | direct median | F2 median | F4 median |');
  console.log('| --- | --- | --- | --- | --- | --- | --- |');
  for (const [, , Cin, Cout, H] of SHAPES) {
    const key = `${Cin} ${Cout} ${H}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const mark = engine.arena.mark();
    const o = operands(1, Cin, Cout, H, Cin * 7 + H);
    const ref = directF64(1, Cin, Cout, H, o.x, o.w, o.b);
    const t = {
      x: engine.upload(o.x, o.x.length, 'x'),
      w: engine.upload(o.w, o.w.length, 'w'),
      b: engine.upload(o.b, Cout, 'b'),
      y: engine.alloc(ref.length, 'y'),
    };
    const v = variants(1, Cin, Cout, H, t);
    const peak = ref.reduce((a, q) => Math.max(a, Math.abs(q)), 0);
    const cols = [];
    const meds = [];
    for (const name of ['direct', 'F2 cached', 'F4 cached']) {
      v[name]();
      const y = engine.read(t.y);
      let worst = 0;
      const rel = new Float64Array(y.length);
      for (let i = 0; i < y.length; i++) {
        const e = Math.abs(y[i] - ref[i]);
        worst = Math.max(worst, e);
        rel[i] = e / Math.abs(ref[i]);
      }
      cols.push((worst / peak).toExponential(1));
      meds.push(median(rel).toExponential(1));
    }
    console.log(`| ${Cin}→${Cout}, ${H}×${H} | ${cols.join(' | ')} | ${meds.join(' | ')} |`);
    engine.arena.release(mark);
  }
}

if (!argv.includes('--errors-only')) {
  console.log(
    `\nthreads ${threads}, relaxed build, medians of ${rounds} interleaved rounds (CPU ms per call; ratio = direct / variant)`,
  );
  console.log('| net | N | Cin→Cout | H×W | direct ms | F2 cached | F2 per call | F4 cached | F4 per call |');
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const [net, N, Cin, Cout, H] of SHAPES) {
    if (only && net !== only) continue;
    const mark = engine.arena.mark();
    const o = operands(N, Cin, Cout, H, 1);
    const t = {
      x: engine.upload(o.x, o.x.length, 'x'),
      w: engine.upload(o.w, o.w.length, 'w'),
      b: engine.upload(o.b, Cout, 'b'),
      y: engine.alloc(N * Cout * H * H, 'y'),
    };
    const v = variants(N, Cin, Cout, H, t);
    const names = Object.keys(v);
    // block size: about 40 ms of the direct conv
    for (const n of names) v[n]();
    const t0 = performance.now();
    v.direct();
    const reps = Math.max(1, Math.round(40 / Math.max(performance.now() - t0, 0.01)));
    // CPU time of this process per call (1 thread: the work itself, steadier than wall time on a shared machine)
    /** @type {Record<string, number[]>} */
    const times = Object.fromEntries(names.map((n) => [n, []]));
    for (let r = 0; r < rounds; r++) {
      for (let k = 0; k < names.length; k++) {
        const n = names[(k + r) % names.length];
        const c0 = process.cpuUsage();
        for (let i = 0; i < reps; i++) v[n]();
        const c = process.cpuUsage(c0);
        times[n].push((c.user + c.system) / 1000 / reps);
      }
    }
    const d = median(times.direct);
    const cell = (n) => `${median(times[n]).toFixed(3)} (${(d / median(times[n])).toFixed(2)}×)`;
    console.log(
      `| ${net} | ${N} | ${Cin}→${Cout} | ${H}×${H} | ${d.toFixed(3)} | ${names.slice(1).map(cell).join(' | ')} |`,
    );
    engine.arena.release(mark);
  }
}
engine.dispose();
process.exit(0);
