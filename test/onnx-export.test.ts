// ONNX export (src/nn/onnx.ts) run in onnxruntime-web (Wasm) and onnxruntime-node (native CPU) against our
// own forward: the mnist preset, a tiny config with attention heads, class labels, centred input and the
// (0, 1, 0, 1) down-sampling pad, and the MLP — each at two batch sizes through one exported graph (the
// batch dimension is dynamic).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as ortNode from 'onnxruntime-node';
import * as ortWeb from 'onnxruntime-web';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine, MLPDenoiser, UNet2DModel } from '../src/index.js';
import { UNET_PRESETS } from '../src/nn/presets.js';

const dist = path.dirname(fileURLToPath(import.meta.resolve('onnxruntime-web')));
ortWeb.env.wasm.wasmPaths = pathToFileURL(dist + path.sep).href;
ortWeb.env.wasm.numThreads = 1;
ortWeb.env.logLevel = 'error';

/** ‖a − b‖₂ / ‖b‖₂ in float64. */
function relL2(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0,
    den = 0;
  for (let i = 0; i < b.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num / den);
}

function random(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32) * 2 - 1);
}

type Feeds = { sample: Float32Array; dims: number[]; timesteps: number[]; labels?: number[] };

/** Runs the exported bytes in both runtimes; returns their outputs. */
async function runOnnx(bytes: Uint8Array, f: Feeds): Promise<{ web: Float32Array; node: Float32Array }> {
  const out: Record<string, Float32Array> = {};
  for (const [name, ort] of [
    ['web', ortWeb],
    ['node', ortNode],
  ] as const) {
    const opts = name === 'web' ? { executionProviders: ['wasm'] } : { intraOpNumThreads: 1 };
    const s = await (ort as typeof ortWeb).InferenceSession.create(bytes, opts);
    const feeds: Record<string, ortWeb.Tensor> = {
      sample: new ort.Tensor('float32', f.sample, f.dims) as ortWeb.Tensor,
      timestep: new ort.Tensor('float32', Float32Array.from(f.timesteps), [f.timesteps.length]) as ortWeb.Tensor,
    };
    if (f.labels)
      feeds.class_labels = new ort.Tensor('int64', BigInt64Array.from(f.labels.map(BigInt)), [
        f.labels.length,
      ]) as ortWeb.Tensor;
    const r = await s.run(feeds);
    out[name] = r.out.data as Float32Array;
    await s.release();
  }
  return { web: out.web, node: out.node };
}

describe('ONNX export', () => {
  let engine: Engine;
  beforeAll(async () => {
    engine = await Engine.create({ threads: 1 });
  });
  afterAll(() => engine.dispose());

  const unets = {
    'mnist preset': { sample_size: 28, in_channels: 1, out_channels: 1, ...UNET_PRESETS.mnist },
    'tiny, 2 heads, class labels, centred input, pad (0, 1, 0, 1), mid scale 2': {
      sample_size: 8,
      in_channels: 3,
      out_channels: 2,
      block_out_channels: [8, 16],
      layers_per_block: 1,
      norm_num_groups: 4,
      attention_head_dim: 8,
      down_block_types: ['DownBlock2D', 'AttnDownBlock2D'],
      up_block_types: ['AttnUpBlock2D', 'UpBlock2D'],
      num_class_embeds: 5,
      center_input_sample: true,
      downsample_padding: 0,
      mid_block_scale_factor: 2,
      flip_sin_to_cos: false,
      freq_shift: 1,
      norm_eps: 1e-6,
    },
  };

  for (const [label, config] of Object.entries(unets)) {
    it(`UNet2DModel ${label}: onnxruntime-web and -node match our forward (≤ 1e-5 relative), N = 1 and 3`, async () => {
      const model = UNet2DModel.create(engine, config, 3);
      // non-trivial norm weights and output conv (a fresh model has ones/zeros there)
      for (const { name } of model.params.specs) {
        if (/norm.*\.(weight|bias)$/.test(name))
          engine
            .view(model.params.get(name))
            .set(random(model.params.get(name).size, name.length).map((v) => 1 + 0.5 * v));
      }
      const bytes = model.toOnnx();
      const c = model.config;
      for (const N of [1, 3]) {
        const sample = random(N * model.sampleSize, 11 + N);
        const timesteps = Array.from({ length: N }, (_, i) => 7 + 311 * i);
        const labels =
          c.num_class_embeds !== null
            ? Array.from({ length: N }, (_, i) => (2 * i + 1) % c.num_class_embeds!)
            : undefined;
        const ours = await model.forward(sample, timesteps, { classLabels: labels });
        const { web, node } = await runOnnx(bytes, {
          sample,
          dims: [N, c.in_channels, c.sample_size, c.sample_size],
          timesteps,
          labels,
        });
        expect(web.length).toBe(ours.length);
        expect(node.length).toBe(ours.length);
        expect(relL2(web, ours)).toBeLessThanOrEqual(1e-5);
        expect(relL2(node, ours)).toBeLessThanOrEqual(1e-5);
      }
    });
  }

  it('MLPDenoiser: onnxruntime-web and -node match our forward (≤ 1e-5 relative)', async () => {
    const model = MLPDenoiser.create(engine, { data_dim: 3, hidden_dim: 32, num_blocks: 2, time_proj_dim: 16 }, 5);
    const bytes = model.toOnnx();
    for (const N of [1, 5]) {
      const sample = random(N * 3, 3 + N);
      const timesteps = Array.from({ length: N }, (_, i) => 999 - 100 * i);
      const ours = await model.forward(sample, timesteps);
      const { web, node } = await runOnnx(bytes, { sample, dims: [N, 3], timesteps });
      expect(relL2(web, ours)).toBeLessThanOrEqual(1e-5);
      expect(relL2(node, ours)).toBeLessThanOrEqual(1e-5);
    }
  });

  it('a graph with a wrong parameter fails the comparison (the check can fail)', async () => {
    const model = UNet2DModel.create(engine, unets['mnist preset'], 3);
    const sample = random(model.sampleSize, 1);
    const ours = await model.forward(sample, [10]);
    const v = engine.view(model.params.get('up_blocks.2.resnets.1.conv2.weight'));
    v[0] += 0.5;
    const { node } = await runOnnx(model.toOnnx(), { sample, dims: [1, 1, 28, 28], timesteps: [10] });
    expect(relL2(node, ours)).toBeGreaterThan(1e-5);
  });

  it('ddpm export --format onnx writes the shipped model, which onnxruntime-node runs as we do', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'ddpm-export-'));
    try {
      const out = path.join(dir, 'model.onnx');
      const cli = path.join(__dirname, '../dist/cli.js');
      const r = spawnSync(process.execPath, [cli, 'export', '--format', 'onnx', '--out', out], {
        encoding: 'utf8',
        timeout: 60_000,
      });
      expect(r.stderr).toBe('');
      expect(r.stdout).toMatch(/^wrote .*model\.onnx/);
      const model = await UNet2DModel.fromPretrained(engine, path.join(__dirname, '../models/mnist'));
      const sample = random(2 * model.sampleSize, 9);
      const ours = await model.forward(sample, [5, 900]);
      const s = await ortNode.InferenceSession.create(readFileSync(out), { intraOpNumThreads: 1 });
      const res = await s.run({
        sample: new ortNode.Tensor('float32', sample, [2, 1, 28, 28]),
        timestep: new ortNode.Tensor('float32', Float32Array.of(5, 900), [2]),
      });
      expect(relL2(res.out.data as Float32Array, ours)).toBeLessThanOrEqual(1e-5);
      const bad = spawnSync(process.execPath, [cli, 'export', '--format', 'tflite', '--out', out], {
        encoding: 'utf8',
        timeout: 60_000,
      });
      expect(bad.status).toBe(1);
      expect(bad.stderr).toMatch(/--format/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
