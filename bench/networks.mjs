// Whole networks, ours against the same graph in other engines, interleaved in one process so that a busy
// machine slows every implementation alike:
//   ddpm-wasm (relaxed build)   UNet2DModel.forwardTensor / Trainer.trainStep
//   onnxruntime-web 1.30        our ONNX export (UNet2DModel.toOnnx), wasm execution provider
//   onnxruntime-node 1.30       the same bytes, native CPU execution provider
//   PyTorch CPU                 bench/torch_peer.py (plain torch, our safetensors), when python3 has torch
// Networks: the mnist preset, a cifar-like config (channels 32/64/64/64) and the google/ddpm-cifar10-32
// structure, all with seeded random weights. Cases: forward at N = 1 and 8, a training step at batch 32.
//   node bench/networks.mjs --threads T [--net mnist|cifar-like|ddpm-cifar10] [--op forward|train_step] [--quick]
// Each case: outputs cross-checked against ours (relative L2), a warm-up, then R rounds; in each round every
// implementation runs a block of calls (the order rotates between rounds); the figure is the median over
// rounds of the time per call. The FMA ceiling (assembly/bench.ts) is measured before and after the cases.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Engine, KERNEL, Trainer, UNet2DModel, namedSchedule } from '../dist/index.js';
import { UNET_PRESETS } from '../dist/nn/presets.js';
import { childSetup, machineBusySeconds, randomF32 } from './common.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));

export const NETWORKS = {
  mnist: {
    label: 'mnist preset 1x28x28',
    config: { sample_size: 28, in_channels: 1, out_channels: 1, ...UNET_PRESETS.mnist },
  },
  'cifar-like': {
    label: 'cifar-like 32/64/64/64 3x32x32',
    config: {
      sample_size: 32,
      in_channels: 3,
      out_channels: 3,
      block_out_channels: [32, 64, 64, 64],
      layers_per_block: 2,
      norm_num_groups: 8,
      attention_head_dim: null,
      down_block_types: ['DownBlock2D', 'AttnDownBlock2D', 'DownBlock2D', 'DownBlock2D'],
      up_block_types: ['UpBlock2D', 'UpBlock2D', 'AttnUpBlock2D', 'UpBlock2D'],
      flip_sin_to_cos: false,
      freq_shift: 1,
      downsample_padding: 0,
      norm_eps: 1e-6,
    },
  },
  // google/ddpm-cifar10-32's config.json (35.7M parameters), random weights
  'ddpm-cifar10': {
    label: 'ddpm-cifar10-32 3x32x32',
    config: {
      sample_size: 32,
      in_channels: 3,
      out_channels: 3,
      block_out_channels: [128, 256, 256, 256],
      layers_per_block: 2,
      norm_num_groups: 32,
      attention_head_dim: null,
      down_block_types: ['DownBlock2D', 'AttnDownBlock2D', 'DownBlock2D', 'DownBlock2D'],
      up_block_types: ['UpBlock2D', 'UpBlock2D', 'AttnUpBlock2D', 'UpBlock2D'],
      flip_sin_to_cos: false,
      freq_shift: 1,
      downsample_padding: 0,
      norm_eps: 1e-6,
    },
    noTrain: true, // a 35.7M-parameter training step at batch 32 takes tens of seconds per implementation
  },
};

/**
 * Multiply-add FLOPs (2 per MAC) of one forward pass of one image: convs, linears, attention's
 * projections and its two P×P products. Norms, activations and adds are left out (they are not FMA work).
 */
export function forwardFlops(c) {
  const boc = c.block_out_channels;
  const E = 4 * boc[0];
  let f = 2 * (boc[0] * E + E * E); // time embedding
  const conv = (cin, cout, k, side) => (f += 2 * cin * cout * k * k * side * side);
  const resnet = (cin, cout, side) => {
    conv(cin, cout, 3, side);
    f += 2 * E * cout;
    conv(cout, cout, 3, side);
    if (cin !== cout) conv(cin, cout, 1, side);
  };
  const attention = (C, side) => {
    const P = side * side;
    f += 4 * 2 * C * C * P + 2 * 2 * P * P * C;
  };
  let side = c.sample_size;
  conv(c.in_channels, boc[0], 3, side);
  let ch = boc[0];
  const skips = [ch];
  c.down_block_types.forEach((t, i) => {
    for (let l = 0; l < c.layers_per_block; l++) {
      resnet(ch, boc[i], side);
      ch = boc[i];
      if (t === 'AttnDownBlock2D') attention(ch, side);
      skips.push(ch);
    }
    if (i !== boc.length - 1) {
      side /= 2;
      conv(ch, ch, 3, side);
      skips.push(ch);
    }
  });
  resnet(ch, ch, side);
  attention(ch, side);
  resnet(ch, ch, side);
  const rev = [...boc].reverse();
  c.up_block_types.forEach((t, i) => {
    for (let l = 0; l < c.layers_per_block + 1; l++) {
      resnet(ch + skips.pop(), rev[i], side);
      ch = rev[i];
      if (t === 'AttnUpBlock2D') attention(ch, side);
    }
    if (i !== boc.length - 1) {
      side *= 2;
      conv(ch, ch, 3, side);
    }
  });
  conv(ch, c.out_channels, 3, side);
  return f;
}

/** ‖a − b‖₂ / ‖b‖₂. */
function relL2(a, b) {
  let num = 0,
    den = 0;
  for (let i = 0; i < b.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num / den);
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** The torch child: one JSON command per line in, one reply per line out. */
/** @returns {Promise<{ call?: ((cmd: any) => Promise<any>) | null, stop?: () => void, note?: string }>} */
async function startTorch() {
  const python = ['/usr/bin/python3', 'python3'].find((p) => {
    try {
      return spawnSyncOk(p);
    } catch {
      return false;
    }
  });
  if (!python) return { note: 'no python3 with torch (Debian: apt install python3-torch): PyTorch row skipped' };
  const child = spawn(python, [path.join(here, 'torch_peer.py')], { stdio: ['pipe', 'pipe', 'inherit'] });
  let buf = '';
  const waiting = [];
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      waiting.shift()(JSON.parse(line));
    }
  });
  let exited = false;
  child.on('exit', (code) => {
    exited = true;
    while (waiting.length) waiting.shift()({ ok: false, error: `exited with ${code}` });
  });
  const call = (cmd) =>
    new Promise((resolve, reject) => {
      if (exited) return reject(new Error('torch peer: not running'));
      waiting.push((r) => (r.ok ? resolve(r) : reject(new Error(`torch peer: ${r.error}`))));
      child.stdin.write(JSON.stringify(cmd) + '\n');
    });
  return { call, stop: () => child.kill() };
}

function spawnSyncOk(p) {
  return spawnSync(p, ['-c', 'import torch'], { stdio: 'ignore', timeout: 60_000 }).status === 0;
}

async function loadOrt(threads) {
  const web = await import('onnxruntime-web');
  const dist = path.dirname(fileURLToPath(import.meta.resolve('onnxruntime-web')));
  web.env.wasm.wasmPaths = pathToFileURL(dist + path.sep).href;
  web.env.wasm.numThreads = threads;
  web.env.wasm.proxy = false;
  web.env.logLevel = 'error';
  let node = null;
  try {
    node = await import('onnxruntime-node');
  } catch {
    // not installed: the row is skipped
  }
  return { web, node };
}

/** The FMA ceiling on all the engine's threads, GFLOP/s: best of a few 20 ms runs. */
function fmaCeiling(engine) {
  const out = engine.alloc(16 * engine.info.threads, 'fma.out');
  const iters = 2_000_000;
  let best = 0;
  for (let r = 0; r < 5; r++) {
    const t0 = performance.now();
    engine.run(KERNEL.fma_peak_f32, [iters, out.ptr]);
    const s = (performance.now() - t0) / 1000;
    best = Math.max(best, (96 * iters * engine.info.threads) / s / 1e9);
  }
  return best;
}

/** Seconds of one call: what the call reports (a peer in another process times itself), else wall time. */
async function timed(fn) {
  const t0 = performance.now();
  const v = await fn();
  return typeof v === 'number' ? v : (performance.now() - t0) / 1000;
}

/**
 * Times the implementations interleaved: `impls` maps a name to an async or sync function doing one call.
 * Returns per-implementation median seconds per call, the rounds and the other processes' load.
 */
async function interleave(impls, { rounds, blockSeconds }) {
  const names = Object.keys(impls);
  // warm-up and calibration: calls per block so that a block takes about blockSeconds
  const reps = {};
  for (const n of names) {
    await impls[n]();
    const s = await timed(impls[n]);
    reps[n] = Math.max(1, Math.round(blockSeconds / s));
  }
  /** @type {Record<string, number[]>} */
  const times = Object.fromEntries(names.map((n) => [n, []]));
  const busy0 = machineBusySeconds();
  const cpu0 = process.cpuUsage();
  const w0 = performance.now();
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < names.length; i++) {
      const n = names[(i + r) % names.length];
      let total = 0;
      for (let k = 0; k < reps[n]; k++) total += await timed(impls[n]);
      times[n].push(total / reps[n]);
    }
  }
  const wall = (performance.now() - w0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const busy1 = machineBusySeconds();
  // torch runs in its own process: its CPU time is "other" here, so otherLoad is only indicative
  const otherLoad =
    busy0 === null || busy1 === null ? null : Math.max(0, (busy1 - busy0 - (cpu.user + cpu.system) / 1e6) / wall);
  return { median: Object.fromEntries(names.map((n) => [n, median(times[n])])), times, reps, otherLoad };
}

export async function main() {
  const emit = childSetup();
  const argv = process.argv.slice(2);
  const get = (flag) => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : null;
  };
  const threads = Number(get('--threads') ?? 1);
  const quick = argv.includes('--quick');
  const nets = /** @type {string[]} */ (get('--net') ? [get('--net')] : Object.keys(NETWORKS));
  const ops = /** @type {string[]} */ (get('--op') ? [get('--op')] : ['forward', 'train_step']);
  for (const n of nets)
    if (!NETWORKS[n]) throw new Error(`--net takes ${Object.keys(NETWORKS).join(', ')}, found ${n}`);
  for (const o of ops)
    if (!['forward', 'train_step'].includes(o)) throw new Error(`--op takes forward or train_step, found ${o}`);

  const engine = await Engine.create({ threads, simd: 'relaxed' });
  const ort = await loadOrt(threads);
  const torch = await startTorch();
  const tmp = mkdtempSync(path.join(tmpdir(), 'ddpm-bench-'));
  const base = { threads, build: 'relaxed' };
  const ceilings = [fmaCeiling(engine)];
  const log = (s) => console.error(`[networks t${threads}] ${s}`);
  log(`FMA ceiling ${ceilings[0].toFixed(1)} GFLOP/s on ${threads} thread(s)`);
  if (torch.note) log(torch.note);

  try {
    for (const netName of nets) {
      const net = NETWORKS[netName];
      const unet = UNet2DModel.create(engine, net.config, 1);
      const c = unet.config;
      const D = unet.sampleSize;
      const flops = forwardFlops(c);
      const onnx = unet.toOnnx();
      const webSession = await ort.web.InferenceSession.create(onnx, {
        executionProviders: ['wasm'],
        graphOptimizationLevel: 'all',
      });
      const nodeSession = ort.node
        ? await ort.node.InferenceSession.create(onnx, {
            intraOpNumThreads: threads,
            interOpNumThreads: 1,
            graphOptimizationLevel: 'all',
          })
        : null;
      const weightsPath = path.join(tmp, `${netName}.safetensors`);
      writeFileSync(weightsPath, unet.weightsBytes());
      if (torch.call) {
        try {
          await torch.call({ cmd: 'load', config: c, weights: weightsPath, threads });
        } catch (e) {
          log(`PyTorch row skipped from here on: ${/** @type {Error} */ (e).message}`);
          torch.call = null;
        }
      }
      const big = flops > 1e9;
      const rounds = quick ? 3 : big ? 5 : 9;
      const blockSeconds = quick ? 0.05 : big ? 0.3 : 0.15;

      if (ops.includes('forward')) {
        for (const N of [1, 8]) {
          const mark = engine.arena.mark();
          const input = randomF32(N * D, 7);
          const ts = Array.from({ length: N }, (_, i) => 17 + 113 * i);
          const x = engine.upload(input, [N, D], 'x');
          const dims = [N, c.in_channels, c.sample_size, c.sample_size];
          const ours = engine.read(unet.forwardTensor(x, ts));
          const impls = { 'ddpm-wasm': () => void unet.forwardTensor(x, ts) };
          const checks = {};
          const feed = (o) => ({
            sample: new o.Tensor('float32', input, dims),
            timestep: new o.Tensor('float32', Float32Array.from(ts), [N]),
          });
          const webFeeds = feed(ort.web);
          checks['ort-web'] = relL2((await webSession.run(webFeeds)).out.data, ours);
          impls['ort-web'] = () => webSession.run(webFeeds);
          if (nodeSession) {
            const nodeFeeds = feed(ort.node);
            checks['ort-node'] = relL2((await nodeSession.run(nodeFeeds)).out.data, ours);
            impls['ort-node'] = () => nodeSession.run(nodeFeeds);
          }
          if (torch.call) {
            const inPath = path.join(tmp, 'in.f32'),
              outPath = path.join(tmp, 'out.f32');
            writeFileSync(inPath, input);
            await torch.call({ cmd: 'forward', N, input: inPath, timesteps: ts, output: outPath });
            const b = readFileSync(outPath);
            checks.pytorch = relL2(new Float32Array(b.buffer, b.byteOffset, b.length / 4), ours);
            // one call per block on the torch side: it times its own reps
            impls.pytorch = async () =>
              (await /** @type {(cmd: any) => Promise<any>} */ (torch.call)({ cmd: 'time_forward', N, reps: 1 }))
                .seconds;
          }
          const r = await interleave(impls, { rounds, blockSeconds });
          for (const [impl, s] of Object.entries(r.median)) {
            const gflops = (N * flops) / s / 1e9;
            emit({
              ...base,
              op: 'net_forward',
              net: netName,
              shape: `${net.label} N${N}`,
              impl,
              build: impl === 'ddpm-wasm' ? 'relaxed' : null,
              us: s * 1e6,
              gflops,
              imagesPerSecond: N / s,
              relErr: checks[impl] ?? 0,
              rounds,
              reps: r.reps[impl],
              otherLoad: r.otherLoad,
              samples: r.times[impl].map((t) => t * 1e6),
            });
            log(
              `${netName} forward N${N} ${impl}: ${(s * 1e3).toFixed(2)} ms, ${gflops.toFixed(1)} GFLOP/s${checks[impl] !== undefined ? `, rel err ${checks[impl].toExponential(1)}` : ''}`,
            );
          }
          engine.arena.release(mark);
        }
      }
      if (ops.includes('train_step') && !net.noTrain) {
        const B = 32;
        const trainer = new Trainer(unet, randomF32(4 * B * D, 8), namedSchedule('linear', 1000).alphasCumprod, {
          batchSize: B,
          learningRate: 1e-4,
          seed: 1,
        });
        const impls = { 'ddpm-wasm': () => void trainer.trainStep() };
        if (torch.call) {
          await torch.call({ cmd: 'train_setup', B });
          impls.pytorch = async () =>
            (await /** @type {(cmd: any) => Promise<any>} */ (torch.call)({ cmd: 'time_train', reps: 1 })).seconds;
        }
        const r = await interleave(impls, { rounds: quick ? 3 : 5, blockSeconds: 0 });
        for (const [impl, s] of Object.entries(r.median)) {
          const gflops = (3 * B * flops) / s / 1e9; // forward + input gradients + weight gradients
          emit({
            ...base,
            op: 'net_train_step',
            net: netName,
            shape: `${net.label} B${B}`,
            impl,
            build: impl === 'ddpm-wasm' ? 'relaxed' : null,
            us: s * 1e6,
            gflops,
            imagesPerSecond: B / s,
            rounds,
            otherLoad: r.otherLoad,
            samples: r.times[impl].map((t) => t * 1e6),
          });
          log(`${netName} train step B${B} ${impl}: ${(s * 1e3).toFixed(1)} ms, ${gflops.toFixed(1)} GFLOP/s`);
        }
      }
      await webSession.release();
      if (nodeSession) await nodeSession.release();
    }
    ceilings.push(fmaCeiling(engine));
    emit({
      ...base,
      op: 'fma_ceiling',
      net: null,
      shape: `${threads} thread(s)`,
      impl: 'ddpm-wasm',
      us: null,
      gflops: Math.max(...ceilings),
      samples: ceilings,
    });
    log(`FMA ceiling ${ceilings.map((c) => c.toFixed(1)).join(', ')} GFLOP/s (before, after)`);
  } finally {
    torch.stop?.();
    rmSync(tmp, { recursive: true, force: true });
    engine.dispose();
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  await main();
  process.exit(0);
}
