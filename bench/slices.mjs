// Where a T-thread forward would leave threads idle, measured on ONE core (so a busy machine does not
// distort it): every kernel dispatch of the mnist preset forward is run slice by slice on the calling
// thread (slice ith of nth = T, each timed with this process's CPU clock), and the dispatches the engine
// runs on the calling thread alone (parallel = false) are timed whole. Per kernel it reports
//   serial  the dispatches kept on the calling thread (the other threads idle through them),
//   sum     Σ over dispatches of Σ slices (= the 1-thread work),
//   crit    Σ over dispatches of the slowest slice (the T-thread time if the pool cost nothing),
// and for the forward: T-thread speed-up bound = sum / crit. What it leaves out: the pool's round trip
// (bench/ours.mjs "dispatch") and the cores' shared caches/memory.
//   node bench/slices.mjs [--threads 2] [--batch 1,8,16] [--rounds 15] [--top 20] [--by kernel|dispatch]
import { Engine, KERNELS, UNet2DModel, UNET_PRESETS } from '../dist/index.js';
import { randomF32 } from './common.mjs';

const argv = process.argv.slice(2);
const get = (f, d) => (argv.includes(f) ? argv[argv.indexOf(f) + 1] : d);
const T = Number(get('--threads', 2));
const batches = get('--batch', '1,8').split(',').map(Number);
const rounds = Number(get('--rounds', 15));
const top = Number(get('--top', 20));
const by = get('--by', 'kernel');
const config = { sample_size: 28, in_channels: 1, out_channels: 1, ...UNET_PRESETS.mnist };

const engine = await Engine.create({ threads: T, simd: 'relaxed' });
const unet = UNet2DModel.create(engine, config, 1);
const internals = /** @type {any} */ (engine); // (fns and recorder are internal)
const fns = internals.fns; // the bound kernels; called here directly, the workers stay asleep
// a recorder (that keeps nothing) turns the model's replays off: every forward runs its layers, and with
// them the patched engine.run below
internals.recorder = { push() {} };
const cpu = () => {
  const u = process.cpuUsage();
  return u.user + u.system; // µs
};
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

for (const N of batches) {
  const x = engine.upload(randomF32(N * 784, 7), [N, 1, 28, 28], 'x');
  const ts = Array.from({ length: N }, (_, i) => 17 + 113 * i);
  /** per dispatch index: { name, parallel, slices: number[T][rounds] } */
  const log = [];
  let d = 0;
  let wholeRound = false;
  const a = [];
  internals.run = (op, args, parallel = true) => {
    const n = args.length;
    a.length = n + 2;
    for (let i = 0; i < n; i++) a[i] = args[i];
    const rec = (log[d] ??= {
      name: KERNELS[op].name,
      what: `${KERNELS[op].name}(${args.slice(0, 4).join(',')})`,
      parallel,
      slices: Array.from({ length: parallel ? T : 1 }, () => []),
      whole: [],
    });
    d++;
    const nth = parallel && !wholeRound ? T : 1;
    if (wholeRound) {
      a[n] = 0;
      a[n + 1] = 1;
      const t0 = cpu();
      fns[op].apply(null, a);
      rec.whole.push(cpu() - t0);
      return;
    }
    for (let ith = 0; ith < nth; ith++) {
      a[n] = ith;
      a[n + 1] = nth;
      const t0 = cpu();
      fns[op].apply(null, a);
      rec.slices[ith].push(cpu() - t0);
    }
  };
  // the same forward on a 1-thread engine, uninstrumented (replayed), interleaved with the rounds: for
  // the JavaScript outside the kernels. Even rounds: slice by slice; odd rounds: every dispatch whole.
  const serialEngine = await Engine.create({ threads: 1, simd: 'relaxed' });
  const unet1 = UNet2DModel.create(serialEngine, config, 1);
  const x1 = serialEngine.upload(randomF32(N * 784, 7), [N, 1, 28, 28], 'x');
  const plainT = [];
  for (let r = 0; r < 2 * rounds + 6; r++) {
    d = 0;
    wholeRound = r % 2 === 1;
    unet.forwardTensor(x, ts);
    const t0 = cpu();
    unet1.forwardTensor(x1, ts);
    if (r >= 6) plainT.push(cpu() - t0);
    if (r < 6) {
      for (const rec of log) {
        for (const s of rec.slices) s.length = 0; // warm-up
        rec.whole.length = 0;
      }
    }
  }
  const plain = median(plainT);
  serialEngine.dispose();
  const groups = new Map();
  let sum = 0;
  let crit = 0;
  let one = 0;
  for (const rec of log) {
    const med = rec.slices.map(median);
    const s = med.reduce((p, q) => p + q, 0);
    const c = Math.max(...med);
    const w = median(rec.whole);
    sum += s;
    crit += c;
    one += w;
    const key = by === 'kernel' ? `${rec.name}${rec.parallel ? '' : ' (serial)'}` : rec.what;
    const g = groups.get(key) ?? { key, calls: 0, sum: 0, crit: 0, one: 0 };
    g.calls++;
    g.one += w;
    g.sum += s;
    g.crit += c;
    groups.set(key, g);
  }
  const js = plain - one;
  console.log(
    `\nmnist forward N = ${N}, ${T} slices: ${log.length} dispatches; 1-thread forward ${(plain / 1000).toFixed(2)} ms CPU = ` +
      `kernels ${(one / 1000).toFixed(2)} + JavaScript ${(js / 1000).toFixed(2)}; the kernels in ${T} slices: work ` +
      `${(sum / 1000).toFixed(2)} ms, critical path ${(crit / 1000).toFixed(2)} ms; ${T}-thread bound (no pool cost) ` +
      `${(plain / (crit + js)).toFixed(2)}×`,
  );
  console.log(`  ${'kernel'.padEnd(44)} calls  1-thr ms   work ms   crit ms   lost ms  (lost = crit − 1-thr/${T})`);
  const rows = [...groups.values()].sort((p, q) => q.crit - q.one / T - (p.crit - p.one / T));
  for (const g of rows.slice(0, top)) {
    console.log(
      `  ${g.key.padEnd(44)} ${String(g.calls).padStart(5)} ${(g.one / 1000).toFixed(3).padStart(9)} ` +
        `${(g.sum / 1000).toFixed(3).padStart(9)} ${(g.crit / 1000).toFixed(3).padStart(9)} ` +
        `${((g.crit - g.one / T) / 1000).toFixed(3).padStart(9)}`,
    );
  }
}
engine.dispose();
