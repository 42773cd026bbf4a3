// Shared by the bench runner and its child processes: the shapes, FLOP counts, inputs, timing, and the
// line protocol children use to hand rows back to bench/run.mjs.
import { readFileSync } from 'node:fs';
import b from 'benny';

/** GEMM C(M×N) = A(M×K)·B(K×N), row-major. */
export const GEMM_SHAPES = [
  { M: 256, K: 256, N: 256 },
  { M: 512, K: 512, N: 512 },
  { M: 1024, K: 576, N: 64 },
  { M: 256, K: 1152, N: 128 },
  { M: 64, K: 2304, N: 256 },
];

/** conv2d 3×3, stride 1, pad 1, with bias, Cin = Cout = C; NCHW, weight (Cout, Cin, 3, 3). */
export const CONV_SHAPES = [1, 8].flatMap((N) =>
  [
    { C: 64, HW: 32 },
    { C: 128, HW: 16 },
    { C: 256, HW: 8 },
  ].map(({ C, HW }) => ({ N, Cin: C, Cout: C, H: HW, W: HW, kernel: 3, stride: 1, pad: 1 })),
);

export const gemmLabel = (s) => `${s.M}x${s.K}x${s.N}`;
export const convLabel = (s) => `N${s.N} C${s.Cin} ${s.H}x${s.W}`;
export const convOut = (s) => ({
  Ho: Math.floor((s.H + 2 * s.pad - s.kernel) / s.stride) + 1,
  Wo: Math.floor((s.W + 2 * s.pad - s.kernel) / s.stride) + 1,
});
export const gemmFlops = (s) => 2 * s.M * s.N * s.K;
export const convFlops = (s) => {
  const { Ho, Wo } = convOut(s);
  return 2 * s.N * s.Cout * Ho * Wo * s.Cin * s.kernel * s.kernel;
};

/** Deterministic inputs in [-1, 1) (mulberry32), so every implementation multiplies the same numbers. */
export function randomF32(n, seed) {
  const out = new Float32Array(n);
  let a = seed >>> 0;
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    out[i] = ((t ^ (t >>> 14)) >>> 0) / 2 ** 31 - 1;
  }
  return out;
}

/** The same operands for every implementation: A, B for GEMM; x, weight (Cout,Cin,k,k), bias for conv. */
export function gemmInputs(s) {
  return { A: randomF32(s.M * s.K, 1), B: randomF32(s.K * s.N, 2) };
}
export function convInputs(s) {
  return {
    x: randomF32(s.N * s.Cin * s.H * s.W, 3),
    weight: randomF32(s.Cout * s.Cin * s.kernel * s.kernel, 4),
    bias: randomF32(s.Cout, 5),
  };
}

/**
 * A checksum of an output in the canonical layout (row-major C; NCHW y) with position-dependent weights,
 * so a transposed or shifted result does not pass for the right one. The runner compares these across
 * implementations; `abs` scales the tolerance.
 */
export function checksum(y) {
  let sum = 0;
  let abs = 0;
  for (let i = 0; i < y.length; i++) {
    const w = (i % 13) - 6;
    sum += w * y[i];
    abs += Math.abs(w * y[i]);
  }
  return { sum, abs };
}

/** Command-line options shared by the runner and the children. */
export function parseArgs(argv) {
  /** @type {{ quick: boolean, only: string | null, threads: number | null, build: 'simd' | 'relaxed' | null, net: string | null, op: string | null, help?: boolean }} */
  const opts = { quick: false, only: null, threads: null, build: null, net: null, op: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--quick') opts.quick = true;
    else if (a === '--only') opts.only = argv[++i];
    else if (a === '--threads') opts.threads = Number(argv[++i]);
    else if (a === '--build') opts.build = /** @type {'simd' | 'relaxed'} */ (argv[++i]);
    else if (a === '--net') opts.net = argv[++i];
    else if (a === '--op') opts.op = argv[++i];
    else if (a === '--help' || a === '-h') opts.help = true;
    else throw new Error(`unknown argument ${a} (see bench/README.md)`);
  }
  if (
    opts.only !== null &&
    !['gemm', 'conv2d', 'dispatch', 'unet_forward', 'train_step', 'networks'].includes(opts.only)
  ) {
    throw new Error(`--only takes gemm, conv2d, dispatch, unet_forward, train_step or networks, found ${opts.only}`);
  }
  if (opts.build !== null && !['simd', 'relaxed'].includes(opts.build))
    throw new Error(`--build takes simd or relaxed, found ${opts.build}`);
  if ((opts.net !== null || opts.op !== null) && opts.only === null) opts.only = 'networks';
  return opts;
}

/** Busy CPU seconds of the whole machine so far (Linux /proc/stat, USER_HZ = 100), or null elsewhere. */
export function machineBusySeconds() {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const [user, nice, system, _idle, _iowait, irq, softirq, steal] = f;
    return (user + nice + system + irq + softirq + steal) / 100;
  } catch {
    return null;
  }
}

/**
 * Median seconds per call of fn (sync, or async returning a promise). A time-based warm-up first (JIT,
 * operator caches, worker wake-up), then a benny suite with one case; the median of benchmark.js's
 * samples (each the mean of a timed cycle of calls) is steadier than its mean when other processes share
 * the cores. Also returns, over the sampling: `cpuPerWall`, this process's CPU seconds per second (about
 * the thread count when all its threads ran; below 1 when it was waiting for a core), and `otherLoad`,
 * the cores busy with other processes on the machine (null where /proc/stat is missing).
 */
export async function measure(name, fn, { quick }) {
  const warmupMs = quick ? 50 : 200;
  const t0 = performance.now();
  do await fn();
  while (performance.now() - t0 < warmupMs);

  const cpu0 = process.cpuUsage();
  const busy0 = machineBusySeconds();
  const w0 = performance.now();
  const summary = await b.suite(
    name,
    b.add(name, fn, quick ? { minSamples: 3, maxTime: 0.25, delay: 0 } : { minSamples: 10, maxTime: 1, delay: 0 }),
  );
  const wall = (performance.now() - w0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const own = (cpu.user + cpu.system) / 1e6;
  const busy1 = machineBusySeconds();
  const r = summary.results[0];
  return {
    seconds: r.details.median,
    samples: r.samples,
    cpuPerWall: own / wall,
    otherLoad: busy0 === null || busy1 === null ? null : Math.max(0, (busy1 - busy0 - own) / wall),
  };
}

/**
 * A measurement is disturbed when its process got less than STARVED of its threads' cores, or other
 * processes kept more than BUSY_ELSEWHERE cores busy meanwhile (on a shared host even a neighbour on
 * the other core slowed single-threaded peers down 3×).
 */
export const STARVED = 0.85;
export const BUSY_ELSEWHERE = 0.5;
export const disturbed = (m, threads) => m.cpuPerWall < STARVED * threads || (m.otherLoad ?? 0) > BUSY_ELSEWHERE;

/** Waits until other processes keep less than a quarter of a core busy for 250 ms, at most `maxMs`. */
async function waitForQuiet(maxMs) {
  const end = performance.now() + maxMs;
  while (performance.now() < end) {
    const b0 = machineBusySeconds();
    if (b0 === null) return;
    await new Promise((r) => setTimeout(r, 250));
    if (((machineBusySeconds() ?? b0) - b0) / 0.25 < 0.25) return;
  }
}

/** Seconds a child may spend waiting for quiet and measuring disturbed cases again. */
const RETRY_BUDGET_S = 30;

const ROW_MARK = 'BENCH_ROW ';

/**
 * Child side of the protocol: rows go to stdout as `BENCH_ROW {json}` lines; everything else a child or
 * its libraries print goes to stderr (benny and Emscripten use console.log).
 */
export function childSetup() {
  const write = process.stdout.write.bind(process.stdout);
  console.log = (...args) => console.error(...args);
  console.info = (...args) => console.error(...args);
  return (row) => write(`${ROW_MARK}${JSON.stringify(row)}\n`);
}

export function parseRows(stdout) {
  return stdout
    .split('\n')
    .filter((l) => l.startsWith(ROW_MARK))
    .map((l) => JSON.parse(l.slice(ROW_MARK.length)));
}

/**
 * Runs one implementation's cases in this process. `impl` has `gemm(shape, inputs)` and
 * `conv2d(shape, inputs)`, each resolving to { run, output } (run: one call; output: the result in
 * canonical layout after a call) or to a string saying why the case is not available; optionally
 * `dispatch()` → run. Emits one row per case.
 */
export async function runCases(impl, { opts, emit, base }) {
  const retryBudget = { left: RETRY_BUDGET_S };
  const say = (m) => console.error(`[${base.impl}${base.build ? ` ${base.build}` : ''} t${base.threads}] ${m}`);
  const cases = [];
  if (opts.only === null || opts.only === 'gemm') {
    for (const s of GEMM_SHAPES)
      cases.push({ op: 'gemm', shape: gemmLabel(s), flops: gemmFlops(s), make: () => impl.gemm(s, gemmInputs(s)) });
  }
  if (opts.only === null || opts.only === 'conv2d') {
    for (const s of CONV_SHAPES)
      cases.push({ op: 'conv2d', shape: convLabel(s), flops: convFlops(s), make: () => impl.conv2d(s, convInputs(s)) });
  }
  if ((opts.only === null || opts.only === 'dispatch') && impl.dispatch) {
    cases.push({ op: 'dispatch', shape: 'empty kernel', flops: null, make: () => impl.dispatch() });
  }
  for (const c of cases) {
    /** @type {{ op: string, shape: string, threads: number, build: string, impl: string, gflops: number | null, us: number | null }} */
    const row = {
      op: c.op,
      shape: c.shape,
      threads: base.threads,
      build: base.build,
      impl: base.impl,
      gflops: null,
      us: null,
    };
    let made;
    let check;
    let m;
    try {
      made = await c.make();
      if (typeof made === 'string') {
        say(`${c.op} ${c.shape}: not available: ${made}`);
        emit({ ...row, note: made });
        continue;
      }
      await made.run();
      check = made.output ? checksum(await made.output()) : null;
      m = await measure(`${base.impl} ${c.op} ${c.shape}`, made.run, opts);
      if (!opts.quick && disturbed(m, base.threads) && retryBudget.left > 0) {
        // Noise only ever slows a run down: after waiting (briefly) for the machine to be quiet, measure
        // once more and keep the faster. The budget keeps a run on a busy machine within its time.
        say(
          `${c.op} ${c.shape}: disturbed (cpu/wall ${m.cpuPerWall.toFixed(2)}, other load ${m.otherLoad?.toFixed(2)}), measuring again`,
        );
        const r0 = performance.now();
        await waitForQuiet(3000);
        const again = await measure(`${base.impl} ${c.op} ${c.shape}`, made.run, opts);
        retryBudget.left -= (performance.now() - r0) / 1000;
        m = { ...(again.seconds < m.seconds ? again : m), retried: true };
      }
    } catch (e) {
      // One failing case (an unsupported shape, a wrapper rejecting its arguments) must not cost the rest.
      const note = `failed: ${e instanceof Error ? e.message : e}`;
      say(`${c.op} ${c.shape}: ${note}`);
      emit({ ...row, note });
      continue;
    } finally {
      if (made && typeof made !== 'string') await made.dispose?.();
      globalThis.gc?.();
    }
    const us = m.seconds * 1e6;
    row.us = us;
    if (c.flops !== null) row.gflops = c.flops / m.seconds / 1e9;
    say(
      `${c.op} ${c.shape}: ${us.toFixed(1)} µs${row.gflops !== null ? `, ${row.gflops.toFixed(2)} GFLOP/s` : ''} (${m.samples} samples, cpu/wall ${m.cpuPerWall.toFixed(2)}${m.otherLoad === null ? '' : `, other load ${m.otherLoad.toFixed(2)} cores`})`,
    );
    emit({
      ...row,
      check,
      samples: m.samples,
      cpuPerWall: m.cpuPerWall,
      otherLoad: m.otherLoad,
      retried: m.retried ?? false,
    });
  }
}

/**
 * The distinct conv2d geometries of one forward of the mnist preset at batch N, with the number of times a
 * forward runs each (recorded by wrapping engine.run; lib is a built checkout's dist/index.js).
 */
export async function mnistConvShapes(lib, N) {
  const engine = await lib.Engine.create({ threads: 1, simd: 'relaxed' });
  const config = { sample_size: 28, in_channels: 1, out_channels: 1, ...lib.UNET_PRESETS.mnist };
  const unet = lib.UNet2DModel.create(engine, config, 0);
  const x = engine.upload(randomF32(N * 784, 7), [N, 784], 'x');
  const seen = new Map();
  const run = engine.run.bind(engine);
  engine.run = (name, args, parallel) => {
    // by id since the generated bindings (by name before)
    if (name === 'conv2d_f32' || name === lib.KERNEL?.conv2d_f32) {
      const [n, Cin, H, W, Cout, k, stride, top, left, Ho, Wo] = args;
      const key = [n, Cin, H, W, Cout, k, stride, top, left, Ho, Wo].join(',');
      const s = seen.get(key) ?? { n, Cin, H, W, Cout, k, stride, top, left, Ho, Wo, count: 0 };
      s.count++;
      seen.set(key, s);
    }
    return run(name, args, parallel);
  };
  unet.forwardTensor(x, 500);
  engine.dispose();
  return [...seen.values()];
}
