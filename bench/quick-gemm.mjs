// Quick GEMM / conv2d throughput check for tuning the micro-kernel (not the peer benchmark suite).
//   npm run build && node bench/quick-gemm.mjs [gemm|conv|all] [simd|relaxed|both] [threads,...] [cpu]
// Each case: a time-based warm-up (V8 tiers Wasm up late), then the median GFLOP/s of several timed runs.
// With `cpu`, 1-thread rates use the process's CPU time instead of wall time: on a machine shared with
// other jobs that counts only the time this process actually ran (useful for tuning; not for threads).
import { Engine, kernels } from '../dist/index.js';

const what = process.argv[2] ?? 'all';
const buildArg = process.argv[3] ?? 'both';
if (!['both', 'simd', 'relaxed'].includes(buildArg)) throw new Error(`build: both, simd or relaxed, found ${buildArg}`);
/** @type {import('../dist/index.js').SimdLevel[]} */
const builds = buildArg === 'both' ? ['simd', 'relaxed'] : [/** @type {'simd' | 'relaxed'} */ (buildArg)];
const threadList = (process.argv[4] ?? '1,2').split(',').map(Number);
const useCpu = process.argv[5] === 'cpu';
const clock = () => {
  if (!useCpu) return performance.now();
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

function fill(e, t, seed) {
  const v = e.view(t);
  let s = seed;
  for (let i = 0; i < v.length; i++) v[i] = ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32) * 2 - 1;
}

/** Median GFLOP/s of `fn` (one call = `flops`), after warming up for `warmMs`. */
function measure(fn, flops, warmMs = 400, runs = 7) {
  const t0 = performance.now();
  let reps = 0;
  while (performance.now() - t0 < warmMs) {
    fn();
    reps++;
  }
  // each timed run lasts ~80 ms
  const perCall = (performance.now() - t0) / reps;
  const inner = Math.max(1, Math.round(80 / perCall));
  const rates = [];
  for (let r = 0; r < runs; r++) {
    const s = clock();
    for (let i = 0; i < inner; i++) fn();
    rates.push((flops * inner) / ((clock() - s) * 1e6));
  }
  rates.sort((a, b) => a - b);
  return { median: rates[runs >> 1], max: rates[runs - 1] };
}

const gemmShapes = [
  [256, 256, 256],
  [512, 512, 512],
  [1024, 576, 64],
  [256, 1152, 128],
  [64, 2304, 256],
]; // M×K×N
const convShapes = [
  [64, 32],
  [128, 16],
  [256, 8],
]; // C, H=W

for (const simd of builds) {
  for (const threads of threadList) {
    const e = await Engine.create({ threads, simd });
    const tag = `${simd.padEnd(7)} ${threads}t`;
    if (what === 'gemm' || what === 'all') {
      for (const [M, K, N] of gemmShapes) {
        const mark = e.arena.mark();
        const A = e.alloc([M, K], 'A'),
          B = e.alloc([K, N], 'B'),
          C = e.alloc([M, N], 'C');
        fill(e, A, 1);
        fill(e, B, 2);
        const g = measure(() => kernels.gemm(e, { M, N, K, A, B, C }), 2 * M * N * K);
        console.log(`${tag} gemm ${M}x${K}x${N}: ${g.median.toFixed(1)} GFLOP/s (max ${g.max.toFixed(1)})`);
        e.arena.release(mark);
      }
    }
    if (what === 'conv' || what === 'all') {
      for (const N of [1, 8]) {
        for (const [C, H] of convShapes) {
          const mark = e.arena.mark();
          const x = e.alloc([N, C, H, H], 'x'),
            w = e.alloc([C, C, 3, 3], 'w'),
            b = e.alloc(C, 'b');
          const y = e.alloc([N, C, H, H], 'y');
          fill(e, x, 1);
          fill(e, w, 2);
          fill(e, b, 3);
          const args = {
            x,
            weight: w,
            bias: b,
            y,
            N,
            Cin: C,
            H,
            W: H,
            Cout: C,
            kernel: /** @type {const} */ (3),
            stride: /** @type {const} */ (1),
            pad: 1,
          };
          const g = measure(() => kernels.conv2d(e, args), 2 * N * C * C * 9 * H * H);
          console.log(
            `${tag} conv3x3 N=${N} ${C}ch ${H}x${H}: ${g.median.toFixed(1)} GFLOP/s (max ${g.max.toFixed(1)})`,
          );
          if (what === 'conv' && N === 8) {
            // dx + dweight + dbias: two GEMMs of the forward's size (plus im2col/col2im)
            const dx = e.alloc([N, C, H, H], 'dx'),
              dw = e.alloc([C, C, 3, 3], 'dw'),
              db = e.alloc(C, 'db');
            const bw = { ...args, dy: y, dx, dweight: dw, dbias: db, accumulate: false };
            const gb = measure(() => kernels.conv2dBackward(e, bw), 4 * N * C * C * 9 * H * H);
            console.log(
              `${tag} conv3x3 backward N=${N} ${C}ch ${H}x${H}: ${gb.median.toFixed(1)} GFLOP/s (max ${gb.max.toFixed(1)})`,
            );
          }
          e.arena.release(mark);
        }
      }
    }
    e.dispose();
  }
}
