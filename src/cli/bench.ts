// ddpm bench: a short table of this machine's speed with our kernels — GEMM and conv2d GFLOP/s and a
// U-Net forward (images/s) — on 1 and N threads. The comparison with other libraries is `npm run bench`.
import { availableParallelism } from 'node:os';
import { UNET_PRESETS } from '../nn/presets.js';
import { Engine } from '../engine/engine.js';
import type { Tensor } from '../engine/memory.js';
import { conv2d } from '../kernels/conv.js';
import { gemm } from '../kernels/gemm.js';
import { UNet2DModel } from '../nn/unet.js';
import { formatProfile, profile } from '../nn/profile.js';
import { Trainer } from '../train/trainer.js';
import { namedSchedule } from '../diffusion/schedule.js';
import { choiceOption, intOption, numberOption, parseCommand } from './args.js';

export const BENCH_HELP = `usage: ddpm bench [--threads N] [--seconds S] [--simd auto|simd|relaxed]
       ddpm bench --profile [--threads N] [--batch N] [--train-batch B] [--simd auto|simd|relaxed]

Times GEMM (256³, 512³), a 3×3 conv2d (8×64×32×32 → 64) and a U-Net forward (the mnist preset of
'ddpm train', batch 16 of 1×28×28) on 1 thread and on N threads (default: the available cores), and
prints the median rate of several timed runs after a warm-up. Takes about 5·S seconds per thread count, plus set-up.

  --threads N       the multi-threaded column. Default: available cores
  --seconds S       time per case and thread count (0.1 … 60). Default: 1
  --simd MODE       Wasm build: auto (default), simd or relaxed

--profile: where a forward pass (batch N, default 8) and a training step (batch B, default 32) of the
mnist preset spend their time — per layer kind (exclusive ms, calls, kernel dispatches) and per kernel —
on one thread count (--threads, default 1), after two warm-up runs.`;

interface Case {
  name: string;
  unit: string;
  /** Builds the case on an engine; returns one call and the work it does (flops or images). */
  setup(e: Engine): { run: () => void; work: number };
}

function randomTensor(e: Engine, shape: number[], name: string, seed: number): Tensor {
  const t = e.alloc(shape, name);
  const v = e.view(t);
  let s = seed >>> 0;
  for (let i = 0; i < v.length; i++) v[i] = ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32) * 2 - 1;
  return t;
}

const gemmCase = (M: number, K: number, N: number): Case => ({
  name: `GEMM ${M}×${K}×${N}`,
  unit: 'GFLOP/s',
  setup: (e) => {
    const A = randomTensor(e, [M, K], 'A', 1),
      B = randomTensor(e, [K, N], 'B', 2),
      C = e.alloc([M, N], 'C');
    return { run: () => gemm(e, { M, N, K, A, B, C }), work: (2 * M * N * K) / 1e9 };
  },
});

const CASES: Case[] = [
  gemmCase(256, 256, 256),
  gemmCase(512, 512, 512),
  {
    name: 'conv2d 3×3 8×64×32×32→64',
    unit: 'GFLOP/s',
    setup: (e) => {
      const [N, Cin, H, W, Cout] = [8, 64, 32, 32, 64];
      const x = randomTensor(e, [N, Cin, H, W], 'x', 3),
        weight = randomTensor(e, [Cout, Cin, 3, 3], 'w', 4),
        bias = randomTensor(e, [Cout], 'b', 5);
      const y = e.alloc([N, Cout, H, W], 'y');
      return {
        run: () => conv2d(e, { N, Cin, H, W, Cout, kernel: 3, stride: 1, pad: 1, x, weight, bias, y }),
        work: (2 * N * Cout * H * W * Cin * 9) / 1e9,
      };
    },
  },
  {
    name: 'U-Net forward, mnist preset, 16×1×28×28',
    unit: 'images/s',
    setup: (e) => {
      const unet = UNet2DModel.create(
        e,
        { sample_size: 28, in_channels: 1, out_channels: 1, ...UNET_PRESETS.mnist },
        0,
      );
      const x = randomTensor(e, [16, 1, 28, 28], 'x', 6);
      return { run: () => void unet.forwardTensor(x, 500), work: 16 };
    },
  },
];

/** Median rate over 5 timed runs of ~seconds/5 each, after a warm-up of a fifth of that (V8 tiers Wasm up late). */
function measure(run: () => void, work: number, seconds: number): number {
  const warm = performance.now();
  let calls = 0;
  while (performance.now() - warm < (seconds * 1000) / 5 || calls < 2) {
    run();
    calls++;
  }
  const perCall = (performance.now() - warm) / calls;
  const inner = Math.max(1, Math.round((seconds * 1000) / 5 / perCall));
  const rates: number[] = [];
  for (let r = 0; r < 5; r++) {
    const t0 = performance.now();
    for (let i = 0; i < inner; i++) run();
    rates.push((work * inner) / ((performance.now() - t0) / 1000));
  }
  return rates.sort((a, b) => a - b)[2];
}

async function profileCommand(threads: number, simd: 'auto' | 'simd' | 'relaxed', N: number, B: number): Promise<void> {
  const e = await Engine.create({ threads, simd });
  try {
    const config = { sample_size: 28, in_channels: 1, out_channels: 1, ...UNET_PRESETS.mnist };
    const unet = UNet2DModel.create(e, config, 0);
    console.log(`ddpm-wasm profile: mnist preset, ${e.info.build} build, ${e.info.threads} thread(s)`);
    const x = randomTensor(e, [N, 1, 28, 28], 'x', 6);
    const forward = () => void unet.forwardTensor(x, 500);
    forward();
    forward();
    const clock = threads === 1 ? 'cpu' : 'wall';
    console.log(
      `times: ${clock === 'cpu' ? 'CPU time of this process (1 thread: steady on a busy machine)' : 'wall time'}`,
    );
    // (a profile runs every layer: forwardTensor's replays, and with threads its split of the batch into
    // one whole forward per thread, are off while the layer hook is set — docs/scaling-notes.md)
    console.log(
      'forward: every layer run and dispatched on all threads (replays and batch splitting are off while profiling)',
    );
    console.log(formatProfile(`forward, batch ${N}`, profile(e, forward, { clock })));
    const data = new Float32Array(4 * B * 784);
    let s = 7;
    for (let i = 0; i < data.length; i++) data[i] = ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32) * 2 - 1;
    const trainer = new Trainer(unet, data, namedSchedule('linear', 1000).alphasCumprod, {
      batchSize: B,
      learningRate: 1e-4,
      seed: 1,
    });
    trainer.trainStep();
    trainer.trainStep();
    console.log('');
    console.log(
      formatProfile(
        `training step, batch ${B}`,
        profile(e, () => void trainer.trainStep(), { clock }),
      ),
    );
  } finally {
    e.dispose();
  }
}

export async function benchCommand(argv: string[]): Promise<void> {
  const v = parseCommand(
    argv,
    {
      threads: { type: 'string' },
      seconds: { type: 'string' },
      simd: { type: 'string' },
      profile: { type: 'boolean' },
      batch: { type: 'string' },
      'train-batch': { type: 'string' },
    },
    BENCH_HELP,
  );
  if (!v) return;
  if (v.profile) {
    const simdP = choiceOption('simd', v.simd, 'auto', ['auto', 'simd', 'relaxed'] as const);
    return profileCommand(
      intOption('threads', v.threads, 1, 1, 256),
      simdP,
      intOption('batch', v.batch, 8, 1, 4096),
      intOption('train-batch', v['train-batch'], 32, 1, 4096),
    );
  }
  const nMax = intOption('threads', v.threads, availableParallelism(), 1, 256);
  const seconds = numberOption('seconds', v.seconds, 1, 0.1, 60);
  const simd = choiceOption('simd', v.simd, 'auto', ['auto', 'simd', 'relaxed'] as const);
  const counts = nMax === 1 ? [1] : [1, nMax];
  const results: number[][] = CASES.map(() => []);
  let build = '';
  for (const threads of counts) {
    const e = await Engine.create({ threads, simd });
    build = e.info.build.replace(/-mt$/, '');
    try {
      CASES.forEach((c, i) => {
        const mark = e.arena.mark();
        const { run, work } = c.setup(e);
        results[i].push(measure(run, work, seconds));
        e.arena.release(mark);
      });
    } finally {
      e.dispose();
    }
  }
  const nameW = Math.max(...CASES.map((c) => c.name.length));
  const head = counts.map((t) => `${t} thread${t > 1 ? 's' : ''}`.padStart(12)).join('');
  console.log(`ddpm-wasm bench: ${build} build, median of 5 runs (${seconds} s per case)`);
  console.log(`${'case'.padEnd(nameW)}  ${'unit'.padEnd(8)}${head}${counts.length > 1 ? '     speed-up' : ''}`);
  CASES.forEach((c, i) => {
    const cols = results[i].map((r) => r.toFixed(r < 100 ? 1 : 0).padStart(12)).join('');
    const speedup = counts.length > 1 ? `${(results[i][1] / results[i][0]).toFixed(2).padStart(12)}×` : '';
    console.log(`${c.name.padEnd(nameW)}  ${c.unit.padEnd(8)}${cols}${speedup}`);
  });
}
