// Before/after on a busy machine: this checkout's dist/ against another checkout's (built) dist/, both
// loaded into one process and timed interleaved (rounds alternate A and B), medians and the ratio.
//   node bench/ab.mjs --base /path/to/other/checkout [--threads T] [--case forward8|forward1|train32] [--rounds R]
// The other checkout needs its own `npm run build`; node_modules may be a symlink to this one's.
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { UNET_PRESETS } from '../dist/nn/presets.js';
import { randomF32 } from './common.mjs';

const argv = process.argv.slice(2);
const get = (f, d) => (argv.includes(f) ? argv[argv.indexOf(f) + 1] : d);
const base = get('--base', null);
if (!base) throw new Error('--base DIR (a built checkout to compare with) is required');
const threads = Number(get('--threads', 1));
const cases = get('--case', 'forward1,forward8,train32').split(',');
const rounds = Number(get('--rounds', 7));
const config = { sample_size: 28, in_channels: 1, out_channels: 1, ...UNET_PRESETS.mnist };

async function setup(dir) {
  const lib = await import(pathToFileURL(path.join(dir, 'dist/index.js')).href);
  const engine = await lib.Engine.create({ threads, simd: 'relaxed' });
  const unet = lib.UNet2DModel.create(engine, config, 0);
  const fns = {};
  for (const N of [1, 8]) {
    const x = engine.upload(randomF32(N * 784, 7), [N, 784], 'x');
    fns[`forward${N}`] = () => void unet.forwardTensor(x, 500);
  }
  const trainer = new lib.Trainer(unet, randomF32(4 * 32 * 784, 8), lib.namedSchedule('linear', 1000).alphasCumprod, {
    batchSize: 32,
    learningRate: 1e-4,
    seed: 1,
  });
  fns.train32 = () => void trainer.trainStep();
  const params = () => new Uint32Array(engine.read(unet.params.all).buffer);
  return { engine, fns, params };
}

const A = await setup(base);
const B = await setup(path.resolve(path.dirname(new URL(import.meta.url).pathname), '..'));
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
for (const c of cases) {
  const t = { before: [], after: [] };
  const cpu = { before: [], after: [] };
  for (const s of [A, B]) for (let i = 0; i < 2; i++) s.fns[c](); // warm-up
  const reps = c === 'train32' ? 1 : c === 'forward8' ? 3 : 10;
  for (let r = 0; r < rounds; r++) {
    for (const [name, s] of /** @type {[string, any][]} */ (
      r % 2
        ? [
            ['after', B],
            ['before', A],
          ]
        : [
            ['before', A],
            ['after', B],
          ]
    )) {
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      for (let k = 0; k < reps; k++) s.fns[c]();
      t[name].push((performance.now() - t0) / reps);
      const cu = process.cpuUsage(c0);
      cpu[name].push((cu.user + cu.system) / 1000 / reps);
    }
  }
  const b = median(t.before),
    a = median(t.after);
  const cb = median(cpu.before),
    ca = median(cpu.after);
  // CPU time (all threads of the process, spinning workers included) is steadier than wall time when other
  // processes take the cores; with 1 thread it is the work itself.
  console.log(
    `${c} threads ${threads}: wall before ${b.toFixed(2)} ms, after ${a.toFixed(2)} ms, ${(b / a).toFixed(2)}×; CPU before ${cb.toFixed(2)} ms, after ${ca.toFixed(2)} ms, ${(cb / ca).toFixed(2)}× (medians of ${rounds} interleaved rounds)`,
  );
}
// Both builds ran the same steps from the same seed: a training step that keeps its bits leaves the
// same parameters.
if (cases.includes('train32')) {
  const pa = A.params();
  const pb = B.params();
  const same = pa.length === pb.length && pa.every((v, i) => v === pb[i]);
  console.log(`parameters after the same training steps: ${same ? 'bit-identical' : 'DIFFERENT'}`);
}
A.engine.dispose();
B.engine.dispose();
process.exit(0);
