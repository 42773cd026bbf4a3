// DDPMPipeline end to end on a tiny U-Net: every kind of source gives the same model, pipeline folders and
// fp16 variants load, the run is independent of batch size, maxBatch and threads, abort and onStep work,
// and the PNG toPng writes decodes (with pngjs, an independent decoder) to the pixels it was given.
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pngjs from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DDIMScheduler,
  DDPMPipeline,
  DDPMScheduler,
  DdpmError,
  Engine,
  MLPDenoiser,
  UNet2DModel,
  imageGrid,
  openSource,
  readSafetensors,
  toPng,
  type RgbaImage,
} from '../src/index';

const S = 8;
const tiny = {
  sample_size: S,
  in_channels: 1,
  out_channels: 1,
  block_out_channels: [8, 16],
  layers_per_block: 1,
  down_block_types: ['DownBlock2D', 'AttnDownBlock2D'],
  up_block_types: ['AttnUpBlock2D', 'UpBlock2D'],
  norm_num_groups: 4,
  attention_head_dim: null,
};
const D = S * S;
const root = mkdtempSync(join(tmpdir(), 'ddpm-pipeline-'));
const modelDir = join(root, 'model');
const condDir = join(root, 'cond');
const schedulerConfig = new DDPMScheduler({ numTrainTimesteps: 100 }).toConfig();
let engine: Engine;
let server: Server;
let base: string;
const hits = new Map<string, number>();
const files = (dir: string) => ({
  config: readFileSync(join(dir, 'config.json')),
  weights: readFileSync(join(dir, 'diffusion_pytorch_model.safetensors')),
  scheduler: readFileSync(join(dir, 'scheduler_config.json')),
});

beforeAll(async () => {
  engine = await Engine.create({ threads: 1 });
  await UNet2DModel.create(engine, tiny, 1).save(modelDir);
  writeFileSync(join(modelDir, 'scheduler_config.json'), JSON.stringify(schedulerConfig));
  await UNet2DModel.create(engine, { ...tiny, num_class_embeds: 3 }, 2).save(condDir);
  writeFileSync(join(condDir, 'scheduler_config.json'), JSON.stringify(schedulerConfig));
  // a static file server over root; /fail/* answers 500
  server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url!, 'http://x').pathname);
    hits.set(path, (hits.get(path) ?? 0) + 1);
    if (path.startsWith('/fail/')) return void res.writeHead(500).end('boom');
    try {
      const body = readFileSync(join(root, path));
      res.writeHead(200).end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  engine?.dispose();
  await new Promise((r) => server?.close(r));
  rmSync(root, { recursive: true, force: true });
});

const run = (pipe: DDPMPipeline, o: Parameters<DDPMPipeline['run']>[0] = {}) =>
  pipe.run({ batchSize: 2, numInferenceSteps: 3, seed: 5, ...o });

describe('DDPMPipeline.fromPretrained: sources', () => {
  it('a folder, a URL, maps of Uint8Array / ArrayBuffer / Blob / Response and a FileSource give the same samples', async () => {
    const reference = (await run(await DDPMPipeline.fromPretrained(engine, modelDir))).tensor;
    expect(reference.length).toBe(2 * D);
    const f = files(modelDir);
    const ab = (b: Buffer) => b.buffer.slice(b.byteOffset, b.byteOffset + b.length) as ArrayBuffer;
    const sources = {
      url: `${base}/model`,
      urlObject: new URL(`${base}/model/`),
      fileUrl: new URL(`file://${modelDir}/`),
      bytes: new Map<string, Uint8Array>([
        ['config.json', f.config],
        ['diffusion_pytorch_model.safetensors', f.weights],
        ['scheduler_config.json', f.scheduler],
      ]),
      arrayBuffers: {
        'config.json': ab(f.config),
        'diffusion_pytorch_model.safetensors': ab(f.weights),
        'scheduler_config.json': ab(f.scheduler),
      },
      blobs: {
        'config.json': new Blob([f.config]),
        'diffusion_pytorch_model.safetensors': new Blob([f.weights]),
        'scheduler_config.json': new Blob([f.scheduler]),
      },
      responses: new Map([
        ['config.json', new Response(f.config)],
        ['diffusion_pytorch_model.safetensors', new Response(f.weights)],
        ['scheduler_config.json', new Response(f.scheduler)],
      ]),
      fileSource: { name: 'custom', get: (name: string) => openSource(modelDir).get(name) },
    };
    for (const [kind, source] of Object.entries(sources)) {
      const pipe = await DDPMPipeline.fromPretrained(engine, source);
      expect(Array.from((await run(pipe)).tensor), kind).toEqual(Array.from(reference));
    }
  });

  it('a URL source fetches each file once', async () => {
    hits.clear();
    await DDPMPipeline.fromPretrained(engine, `${base}/model/`);
    expect(Object.fromEntries(hits)).toEqual({
      '/model/model_index.json': 1,
      '/model/config.json': 1,
      '/model/diffusion_pytorch_model.safetensors': 1,
      '/model/scheduler_config.json': 1,
      '/model/sampling_defaults.json': 1, // absent (404), asked for once
    });
  });

  it("'mnist' is the package's models/mnist", async () => {
    const byName = await DDPMPipeline.fromPretrained(engine, 'mnist', { scheduler: 'ddim' });
    const byPath = await DDPMPipeline.fromPretrained(engine, join(__dirname, '..', 'models', 'mnist'), {
      scheduler: 'ddim',
    });
    expect(byName.sampleShape).toEqual([1, 28, 28]);
    expect(byName.scheduler).toBeInstanceOf(DDIMScheduler);
    const a = await byName.run({ batchSize: 1, numInferenceSteps: 2, seed: 1 });
    const b = await byPath.run({ batchSize: 1, numInferenceSteps: 2, seed: 1 });
    expect(a.tensor).toEqual(b.tensor);
    expect(a.images[0].width).toBe(28);
  });

  it('errors name the source and the file', async () => {
    await expect(DDPMPipeline.fromPretrained(engine, join(root, 'nope'))).rejects.toThrow(
      /nope: not a model folder \(no config\.json, no unet\/config\.json\)/,
    );
    await expect(DDPMPipeline.fromPretrained(engine, `${base}/fail/model`)).rejects.toMatchObject({
      code: 'IO',
      message: expect.stringMatching(/fail\/model\/model_index\.json: HTTP 500/),
    });
    await expect(DDPMPipeline.fromPretrained(engine, { 'config.json': '{"_class_name": "VQModel"}' })).rejects.toThrow(
      /_class_name "VQModel" is not supported \(UNet2DModel or MLPDenoiser\)/,
    );
    await expect(DDPMPipeline.fromPretrained(engine, { 'config.json': JSON.stringify(tiny) })).rejects.toThrow(
      /the given files: diffusion_pytorch_model\.safetensors is missing/,
    );
    await expect(DDPMPipeline.fromPretrained(engine, modelDir, { scheduler: 'euler2' })).rejects.toThrow(
      /scheduler "euler2" is not a known scheduler \(ddpm, ddim, dpm\+\+2m/,
    );
    await expect(DDPMPipeline.fromPretrained(engine, 42 as never)).rejects.toThrow(DdpmError);
    await expect(
      DDPMPipeline.fromPretrained(engine, {
        'config.json': 7 as never,
        'diffusion_pytorch_model.safetensors': 7 as never,
      }),
    ).rejects.toThrow(/config\.json: expected a Uint8Array, ArrayBuffer, Blob, Response or string, found number/);
  });

  it('fromFiles and readSafetensors take an ArrayBuffer (what fetch gives)', async () => {
    const f = files(modelDir);
    const ab = f.weights.buffer.slice(f.weights.byteOffset, f.weights.byteOffset + f.weights.length);
    const a = UNet2DModel.fromFiles(engine, f.config.toString(), ab);
    const b = await UNet2DModel.fromPretrained(engine, modelDir);
    expect(engine.read(a.params.all)).toEqual(engine.read(b.params.all));
    expect(readSafetensors(ab).tensors.size).toBe(readSafetensors(new Uint8Array(f.weights)).tensors.size);
  });

  it('schedulers load with fromPretrained from a model folder, a pipeline folder or bytes', async () => {
    const s = await DDIMScheduler.fromPretrained(modelDir);
    expect(s).toBeInstanceOf(DDIMScheduler);
    expect(s.numTrainTimesteps).toBe(100);
    const d = await DDPMScheduler.fromPretrained({
      'scheduler/scheduler_config.json': JSON.stringify(schedulerConfig),
      'model_index.json': '{}',
    });
    expect(d.toConfig()).toEqual(schedulerConfig);
    await expect(DDPMScheduler.fromPretrained({})).rejects.toThrow(/scheduler_config\.json is missing/);
  });

  it("a model folder without scheduler_config.json (unet.save()) gets diffusers' DDPMScheduler defaults and a notice", async () => {
    const dir = join(root, 'no-scheduler');
    await UNet2DModel.create(engine, tiny, 1).save(dir);
    const pipe = await DDPMPipeline.fromPretrained(engine, dir);
    expect(pipe.notices).toHaveLength(1);
    expect(pipe.notices[0]).toMatch(/no scheduler_config\.json; using diffusers' DDPMScheduler defaults/);
    expect(pipe.scheduler.toConfig()).toEqual(new DDPMScheduler().toConfig());
  });
});

describe('pipeline folders and variants', () => {
  it('pipe.save() writes model_index.json, unet/, scheduler/ and loads back (folder, URL, bytes) to the same samples', async () => {
    const pipe = await DDPMPipeline.fromPretrained(engine, modelDir, { scheduler: 'ddim' });
    const dir = join(root, 'saved-pipeline');
    await pipe.save(dir);
    const index = JSON.parse(readFileSync(join(dir, 'model_index.json'), 'utf8'));
    expect(index).toMatchObject({
      _class_name: 'DDPMPipeline',
      unet: ['diffusers', 'UNet2DModel'],
      scheduler: ['diffusers', 'DDIMScheduler'],
    });
    const want = (await run(pipe)).tensor;
    const back = await DDPMPipeline.fromPretrained(engine, dir);
    expect(back.scheduler).toBeInstanceOf(DDIMScheduler);
    expect((await run(back)).tensor).toEqual(want);
    expect((await run(await DDPMPipeline.fromPretrained(engine, `${base}/saved-pipeline/`))).tensor).toEqual(want);
    const map = new Map(
      [
        'model_index.json',
        'unet/config.json',
        'unet/diffusion_pytorch_model.safetensors',
        'scheduler/scheduler_config.json',
      ].map((n) => [n, readFileSync(join(dir, n))]),
    );
    expect((await run(await DDPMPipeline.fromPretrained(engine, map))).tensor).toEqual(want);
    // and the U-Net alone reads the pipeline folder's unet/
    expect(engine.read((await UNet2DModel.fromPretrained(engine, dir)).params.all)).toEqual(
      engine.read((pipe.unet as UNet2DModel).params.all),
    );
  });

  it("variant 'fp16' reads diffusion_pytorch_model.fp16.safetensors: F16 weights within half an ulp, as float32", async () => {
    const dir = join(root, 'fp16');
    mkdirSync(join(dir, 'unet'), { recursive: true });
    mkdirSync(join(dir, 'scheduler'));
    const f = files(modelDir);
    writeFileSync(
      join(dir, 'model_index.json'),
      JSON.stringify({
        _class_name: 'DDPMPipeline',
        unet: ['diffusers', 'UNet2DModel'],
        scheduler: ['diffusers', 'DDPMScheduler'],
      }),
    );
    writeFileSync(join(dir, 'unet', 'config.json'), f.config);
    writeFileSync(join(dir, 'scheduler', 'scheduler_config.json'), f.scheduler);
    const full = readSafetensors(new Uint8Array(f.weights)).tensors;
    writeFileSync(join(dir, 'unet', 'diffusion_pytorch_model.fp16.safetensors'), f16Safetensors(full));
    await expect(DDPMPipeline.fromPretrained(engine, dir)).rejects.toThrow(
      /unet: diffusion_pytorch_model\.safetensors is missing/,
    );
    const pipe = await DDPMPipeline.fromPretrained(engine, dir, { variant: 'fp16' });
    const unet = pipe.unet as UNet2DModel;
    let worst = 0;
    for (const [name, t] of full) {
      const got = engine.read(unet.params.get(name));
      t.data.forEach((v, i) => {
        // round to nearest: |error| ≤ half an ulp of the f16 value (2^-11 relative, 2^-25 absolute below 2^-14)
        const err = Math.abs(got[i] - v);
        expect(err).toBeLessThanOrEqual(Math.max(Math.abs(v) * 2 ** -11, 2 ** -25));
        worst = Math.max(worst, err);
      });
    }
    expect(worst).toBeGreaterThan(0); // the weights really went through f16
    const out = await run(pipe);
    expect(out.tensor.every(Number.isFinite)).toBe(true);
    await expect(DDPMPipeline.fromPretrained(engine, modelDir, { variant: 'fp16' })).rejects.toThrow(
      /diffusion_pytorch_model\.fp16\.safetensors is missing \(diffusion_pytorch_model\.safetensors is there: drop variant 'fp16'\)/,
    );
  });

  it('an MLPDenoiser folder samples points (no images)', async () => {
    const dir = join(root, 'mlp');
    const mlp = MLPDenoiser.create(engine, {}, 3);
    mkdirSync(dir);
    writeFileSync(join(dir, 'config.json'), mlp.configJson());
    writeFileSync(join(dir, 'model.safetensors'), mlp.weightsBytes());
    writeFileSync(join(dir, 'scheduler_config.json'), JSON.stringify(schedulerConfig));
    const pipe = await DDPMPipeline.fromPretrained(engine, dir);
    const out = await pipe.run({ batchSize: 5, numInferenceSteps: 4, maxBatch: 2 });
    expect(out.shape).toEqual([5, 2]);
    expect(out.images).toEqual([]);
    expect((await pipe.run({ batchSize: 5, numInferenceSteps: 4 })).tensor).toEqual(out.tensor);
  });
});

describe('DDPMPipeline.run', () => {
  it('sample i does not depend on batchSize, maxBatch or the thread count', async () => {
    const pipe = await DDPMPipeline.fromPretrained(engine, modelDir);
    const all = (await pipe.run({ batchSize: 3, numInferenceSteps: 4, seed: 9 })).tensor;
    expect(all.slice(0, D)).not.toEqual(all.slice(D, 2 * D));
    for (const maxBatch of [1, 2])
      expect((await pipe.run({ batchSize: 3, maxBatch, numInferenceSteps: 4, seed: 9 })).tensor).toEqual(all);
    expect((await pipe.run({ batchSize: 2, numInferenceSteps: 4, seed: 9 })).tensor).toEqual(all.slice(0, 2 * D));
    const e2 = await Engine.create({ threads: 2 });
    try {
      const p2 = await DDPMPipeline.fromPretrained(e2, modelDir);
      expect(e2.info.threads).toBe(2);
      expect((await p2.run({ batchSize: 3, maxBatch: 2, numInferenceSteps: 4, seed: 9 })).tensor).toEqual(all);
    } finally {
      e2.dispose();
    }
    expect((await pipe.run({ batchSize: 3, numInferenceSteps: 4, seed: 10 })).tensor).not.toEqual(all);
  });

  it('the samplers of the registry (by sampler or class name) run through the same loop, batch-independent', async () => {
    for (const name of ['dpm++2m', 'euler-a', 'heun', 'UniPCMultistepScheduler']) {
      const pipe = await DDPMPipeline.fromPretrained(engine, modelDir, { scheduler: name });
      let calls = 0;
      const all = (
        await pipe.run({
          batchSize: 3,
          numInferenceSteps: 4,
          seed: 9,
          onStep: (_s, total) => {
            calls++;
            expect(total).toBe(name === 'heun' ? 7 : 4);
          },
        })
      ).tensor;
      expect(calls, name).toBe(name === 'heun' ? 7 : 4); // heun: 2n − 1 scheduler steps
      expect((await pipe.run({ batchSize: 3, maxBatch: 1, numInferenceSteps: 4, seed: 9 })).tensor, name).toEqual(all);
      expect(all.every(Number.isFinite)).toBe(true);
    }
  });

  it('leaves the arena as it found it', async () => {
    const pipe = await DDPMPipeline.fromPretrained(engine, modelDir);
    const before = engine.arena.used;
    await run(pipe, { maxBatch: 1 });
    expect(engine.arena.used).toBe(before);
  });

  it("onStep(step, total, { x0 }) after every step, with the batch's x̂_0; the last x_t is the result", async () => {
    const pipe = await DDPMPipeline.fromPretrained(engine, modelDir, { scheduler: 'ddim' });
    const seen: {
      step: number;
      total: number;
      t: number;
      start: number;
      batch: number;
      batchStep: number;
      batchSteps: number;
      x0: Float32Array;
      sample: Float32Array;
    }[] = [];
    const out = await pipe.run({
      batchSize: 3,
      maxBatch: 2,
      numInferenceSteps: 4,
      seed: 2,
      onStep: (step, total, info) =>
        seen.push({
          step,
          total,
          t: info.t,
          start: info.batchStart,
          batch: info.batch,
          batchStep: info.batchStep,
          batchSteps: info.batchSteps,
          x0: info.x0,
          sample: info.sample,
        }),
    });
    expect(seen.map((s) => s.step)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(new Set(seen.map((s) => s.total))).toEqual(new Set([8]));
    expect(seen.map((s) => s.start)).toEqual([0, 0, 0, 0, 2, 2, 2, 2]);
    expect(seen.map((s) => [s.batch, s.batchStep, s.batchSteps])).toEqual(
      [1, 2, 3, 4, 1, 2, 3, 4].map((k, i) => [i < 4 ? 0 : 1, k, 4]),
    );
    expect(seen.slice(0, 4).map((s) => s.t)).toEqual(pipe.scheduler.timesteps);
    expect(seen[0].x0.length).toBe(2 * D);
    expect(seen[4].x0.length).toBe(D);
    expect(seen[0].x0.every((v) => v >= -1 && v <= 1)).toBe(true); // clip_sample
    expect(seen[3].sample).toEqual(out.tensor.slice(0, 2 * D));
    expect(seen[7].sample).toEqual(out.tensor.slice(2 * D));
    // DDIM's last step (t = 0, η = 0) returns x̂_0 itself
    expect(seen[3].x0).toEqual(seen[3].sample);
  });

  it('an aborted signal stops between model calls with DdpmError ABORTED; the pipeline still runs afterwards', async () => {
    const pipe = await DDPMPipeline.fromPretrained(engine, modelDir);
    const ac = new AbortController();
    let steps = 0;
    const err = await pipe
      .run({
        batchSize: 2,
        numInferenceSteps: 10,
        onStep: (s) => {
          steps = s;
          if (s === 3) ac.abort();
        },
        signal: ac.signal,
      })
      .catch((e) => e);
    expect(err).toBeInstanceOf(DdpmError);
    expect(err.code).toBe('ABORTED');
    expect(err.message).toMatch(/aborted after 3 of 10 steps/);
    expect(steps).toBe(3);
    await expect(pipe.run({ signal: AbortSignal.abort() })).rejects.toMatchObject({
      code: 'ABORTED',
      message: expect.stringMatching(/after 0 of 100 steps/),
    });
    // without onStep too: aborted from elsewhere (here: during the 4th model call)
    const ac2 = new AbortController();
    const slow = new DDPMPipeline(engine, pipe.unet, pipe.scheduler);
    let calls = 0;
    const orig = (pipe.unet as UNet2DModel).forwardTensor.bind(pipe.unet);
    (pipe.unet as UNet2DModel).forwardTensor = (...a: Parameters<UNet2DModel['forwardTensor']>) => {
      if (++calls === 4) ac2.abort();
      return orig(...a);
    };
    try {
      await expect(slow.run({ batchSize: 1, numInferenceSteps: 10, signal: ac2.signal })).rejects.toMatchObject({
        code: 'ABORTED',
        message: expect.stringMatching(/after 4 of 10 steps/),
      });
    } finally {
      (pipe.unet as UNet2DModel).forwardTensor = orig;
    }
    expect((await run(pipe)).tensor).toEqual((await run(pipe)).tensor);
  });

  it('class labels and classifier-free guidance (unconditional label num_class_embeds − 1); w = 1 is plain conditional', async () => {
    const pipe = await DDPMPipeline.fromPretrained(engine, condDir);
    await expect(run(pipe)).rejects.toThrow(/class-conditional \(num_class_embeds = 3\): pass classLabels/);
    const c1 = (await run(pipe, { classLabels: 1 })).tensor;
    expect((await run(pipe, { classLabels: [1, 1] })).tensor).toEqual(c1);
    expect((await run(pipe, { classLabels: 1, guidanceScale: 1 })).tensor).toEqual(c1);
    const g = (await run(pipe, { classLabels: 1, guidanceScale: 3 })).tensor;
    expect(g).not.toEqual(c1);
    expect((await run(pipe, { classLabels: 1, guidanceScale: 3, maxBatch: 1 })).tensor).toEqual(g);
    // per-sample labels: sample 1 with label 0 is sample 0 of a run with label 0 at offset D... so compare whole runs
    const mixed = (await run(pipe, { classLabels: [1, 0] })).tensor;
    expect(mixed.slice(0, D)).toEqual(c1.slice(0, D));
    expect(mixed.slice(D)).toEqual((await run(pipe, { classLabels: 0 })).tensor.slice(D));
    await expect(run(pipe, { classLabels: 2, guidanceScale: 2 })).rejects.toThrow(
      /classLabels\[0\] = 2 is not an integer in \[0, 1\] \(2 is the unconditional label\)/,
    );
    await expect(run(pipe, { classLabels: [0] })).rejects.toThrow(/1 classLabels for batchSize 2/);
    await expect(run(await DDPMPipeline.fromPretrained(engine, modelDir), { classLabels: 0 })).rejects.toThrow(
      /not class-conditional/,
    );
  });

  it('argument errors are typed and name the argument', async () => {
    const pipe = await DDPMPipeline.fromPretrained(engine, modelDir);
    await expect(pipe.run({ batchSize: 0 })).rejects.toThrow(/batchSize must be an integer in \[1, /);
    await expect(pipe.run({ eta: 0.5 })).rejects.toThrow(/eta applies to DDIMScheduler only/);
    await expect(pipe.run({ numInferenceSteps: 101 })).rejects.toMatchObject({ code: 'INVALID_TIMESTEP' });
  });
});

describe('toPng and imageGrid', () => {
  const decode = (png: Uint8Array) => pngjs.PNG.sync.read(Buffer.from(png));

  it('round-trips gray, RGB and RGBA images through pngjs with the same pixels and the smallest color type', () => {
    const w = 5,
      h = 3;
    const make = (f: (i: number, k: number) => number): RgbaImage => ({
      width: w,
      height: h,
      data: Uint8ClampedArray.from({ length: 4 * w * h }, (_, j) => f(j >> 2, j & 3)),
    });
    const cases: [RgbaImage, number][] = [
      [make((i, k) => (k === 3 ? 255 : (i * 37) % 256)), 0],
      [make((i, k) => (k === 3 ? 255 : (i * 37 + k * 91) % 256)), 2],
      [make((i, k) => (i * 37 + k * 91) % 256), 6],
    ];
    for (const [im, colorType] of cases) {
      const png = toPng(im);
      expect(png[25]).toBe(colorType); // IHDR color type
      const back = decode(png);
      expect([back.width, back.height]).toEqual([w, h]);
      expect(Array.from(back.data)).toEqual(Array.from(im.data));
      expect(toPng(im)).toEqual(png); // same image, same bytes
    }
  });

  it('a list of images is a grid (ceil(√n) columns, 2 px padding); scale repeats pixels', async () => {
    const pipe = await DDPMPipeline.fromPretrained(engine, modelDir);
    const { images } = await pipe.run({ batchSize: 5, numInferenceSteps: 2 });
    const grid = decode(toPng(images));
    expect([grid.width, grid.height]).toEqual([3 * S + 4 * 2, 2 * S + 3 * 2]);
    // image 4 sits in row 1, column 1
    for (let y = 0; y < S; y++)
      for (let x = 0; x < S; x++) {
        expect(grid.data[4 * ((2 + S + 2 + y) * grid.width + 2 + S + 2 + x)]).toBe(images[4].data[4 * (y * S + x)]);
      }
    const big = decode(toPng(images[0], { scale: 3 }));
    expect([big.width, big.height]).toEqual([3 * S, 3 * S]);
    for (let y = 0; y < 3 * S; y++)
      for (let x = 0; x < 3 * S; x++)
        expect(big.data[4 * (y * 3 * S + x)]).toBe(images[0].data[4 * (Math.floor(y / 3) * S + Math.floor(x / 3))]);
    expect(toPng(images, { grid: { cols: 5, padding: 0 } })).toEqual(toPng(imageGrid(images, 5, 0)));
    expect(() => toPng(images, { grid: false })).toThrow(/5 images with grid: false/);
    expect(() => toPng({ width: 2, height: 2, data: new Uint8ClampedArray(3) })).toThrow(
      /a 2×2 RGBA image needs 16 bytes, found 3/,
    );
  });
});

/** A safetensors file of the tensors as F16 (round to nearest even), in the given order. */
function f16Safetensors(tensors: Map<string, { shape: number[]; data: Float32Array }>): Uint8Array {
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const [name, t] of tensors) {
    header[name] = { dtype: 'F16', shape: t.shape, data_offsets: [offset, offset + 2 * t.data.length] };
    offset += 2 * t.data.length;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + offset);
  const dv = new DataView(out.buffer);
  dv.setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let at = 8 + json.length;
  for (const t of tensors.values())
    for (const v of t.data) {
      dv.setUint16(at, f32ToF16(v), true);
      at += 2;
    }
  return out;
}

/** IEEE 754 binary32 → binary16, round to nearest even (finite weights only). */
function f32ToF16(v: number): number {
  const u = new Uint32Array(new Float32Array([v]).buffer)[0];
  const sign = (u >>> 16) & 0x8000;
  const e = ((u >>> 23) & 0xff) - 127 + 15;
  let m = u & 0x7fffff;
  if (e >= 31) throw new Error(`${v} overflows f16`);
  const round = (h: number, rem: number, half: number) => (rem > half || (rem === half && h & 1) ? h + 1 : h);
  if (e <= 0) {
    if (e < -10) return sign;
    m |= 0x800000;
    const shift = 14 - e;
    return sign | round(m >>> shift, m & ((1 << shift) - 1), 1 << (shift - 1));
  }
  return sign | round((e << 10) | (m >>> 13), m & 0x1fff, 0x1000);
}
