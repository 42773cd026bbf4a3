// The demo's engine lives here, in a dedicated module Worker: the browser's main thread may not block in
// Atomics.wait, a worker may — so under COOP/COEP this worker runs the engine's threads, and the page
// stays responsive either way. Messages in: { type: 'sample' | 'train', ... }; out: 'info', 'step',
// 'done', 'train-progress', 'error'. The page stops a run by terminating this worker.
import * as ddpm from '../../dist/index.js';

const MODEL = new URL('../../models/mnist/', import.meta.url);

async function fetchBytes(url) {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return new Uint8Array(await res.arrayBuffer());
}

let model = null; // { config, scheduler, weights }, fetched once
async function modelFiles() {
  model ??= await Promise.all([
    fetch(new URL('config.json', MODEL)).then((r) => r.json()),
    fetch(new URL('scheduler_config.json', MODEL)).then((r) => r.json()),
    fetchBytes(new URL('diffusion_pytorch_model.safetensors', MODEL)),
  ]).then(([config, scheduler, weights]) => ({ config, scheduler, weights }));
  return model;
}

const threadsOption = (t) => (t === 'auto' ? 'auto' : Number(t));

/** Samples `count` digits; posts x̂₀ after every step and x_0 at the end (float32, N×1×28×28). */
async function sample({ sampler, steps, seed, count, threads, simd }) {
  const engine = await ddpm.Engine.create({ threads: threadsOption(threads), simd });
  try {
    postMessage({ type: 'info', info: engine.info, crossOriginIsolated: self.crossOriginIsolated === true });
    const files = await modelFiles();
    const unet = ddpm.UNet2DModel.fromFiles(engine, files.config, files.weights);
    const Scheduler = sampler === 'ddpm' ? ddpm.DDPMScheduler : ddpm.DDIMScheduler;
    const scheduler = Scheduler.fromConfig(files.scheduler, { engine });
    const chain = ddpm.SamplingChain.start(engine, scheduler, { shape: [count, 1, 28, 28], numInferenceSteps: steps, seed });
    const t0 = performance.now();
    const x0 = await chain.run((x, t) => unet.forwardTensor(x, t), {
      onStep: (i, t) => postMessage({ type: 'step', i, n: steps, t, x0: engine.read(chain.predOriginalSample), ms: performance.now() - t0 }),
    });
    const out = engine.read(x0);
    postMessage({ type: 'done', x0: out, ms: performance.now() - t0, info: engine.info }, [out.buffer]);
  } finally {
    engine.dispose();
  }
}

/**
 * Trains the MLP denoiser on two moons (as examples/train-two-moons.mjs does) and every `every` steps
 * samples 500 points with 50 DDPM steps for the page's scatter plot.
 */
async function train({ steps, every = 100 }) {
  const engine = await ddpm.Engine.create({ threads: 1 });
  try {
    postMessage({ type: 'info', info: engine.info, crossOriginIsolated: self.crossOriginIsolated === true });
    const data = ddpm.twoMoons(4000, 1);
    const schedule = ddpm.namedSchedule('linear', 1000);
    const mlp = ddpm.MLPDenoiser.create(engine, { data_dim: 2, hidden_dim: 64, num_blocks: 2 }, 0);
    const trainer = new ddpm.Trainer(mlp, data, schedule.alphasCumprod, { batchSize: 128, learningRate: 3e-3, lrScheduler: 'cosine', lrWarmupSteps: 50, maxTrainSteps: steps, ema: null, seed: 1 });
    const scheduler = new ddpm.DDPMScheduler({ clipSample: false });
    postMessage({ type: 'train-data', points: data.slice(0, 2000) });
    while (trainer.step < steps) {
      let loss = 0;
      const n = Math.min(every, steps - trainer.step);
      for (let i = 0; i < n; i++) loss += trainer.trainStep().loss;
      // 500 points from the weights as they are now
      const mark = engine.arena.mark();
      const chain = ddpm.SamplingChain.start(engine, scheduler, { shape: [500, 2], numInferenceSteps: 50, seed: 2 });
      const eps = engine.alloc([500, 2], 'eps');
      const x = engine.read(await chain.run(async (xt, t) => (engine.write(eps, await mlp.forward(engine.read(xt), t)), eps)));
      engine.arena.release(mark);
      postMessage({ type: 'train-progress', step: trainer.step, steps, loss: loss / n, points: x }, [x.buffer]);
      await new Promise((r) => setTimeout(r, 0)); // let the page's messages through
    }
  } finally {
    engine.dispose();
  }
}

self.onmessage = async (e) => {
  try {
    if (e.data.type === 'sample') await sample(e.data);
    else if (e.data.type === 'train') await train(e.data);
  } catch (err) {
    postMessage({ type: 'error', message: `${err.name}${err.code ? ` ${err.code}` : ''}: ${err.message}` });
  }
};
