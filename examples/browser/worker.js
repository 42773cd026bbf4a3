// The demo's engine lives here, in a dedicated module Worker: the browser's main thread may not block in
// Atomics.wait, a worker may — so under COOP/COEP this worker runs the engine's threads, and the page
// stays responsive either way. Messages in: { type: 'sample' | 'train', ... }; out: 'hello', 'info',
// 'step', 'done', 'train-data', 'train-progress', 'error'. The page stops a run by terminating this worker.
import * as ddpm from '../../dist/web/index.js'; // ddpm-wasm/web: the library as plain ES modules

// The shipped model, as the demo server serves the repository (a URL works in every runtime).
const MODEL = new URL('../../models/mnist/', import.meta.url);

const threadsOption = (t) => (t === 'auto' ? 'auto' : Number(t));

// The samplers the pipeline knows, for the page's menu (short names: 'ddpm', 'ddim', …).
postMessage({
  type: 'hello',
  schedulers: (ddpm.SCHEDULER_NAMES ?? ['ddpm', 'ddim']).filter((n) => n === n.toLowerCase()),
});

/** Samples `count` digits; posts x̂₀ after every step, then x_0 and the grid as PNG bytes. */
async function sample({ sampler, steps, seed, count, threads, simd }) {
  const engine = await ddpm.Engine.create({ threads: threadsOption(threads), simd });
  try {
    postMessage({ type: 'info', info: engine.info, crossOriginIsolated: self.crossOriginIsolated === true });
    const pipe = await ddpm.DDPMPipeline.fromPretrained(engine, MODEL, { scheduler: sampler });
    const t0 = performance.now();
    const { images, tensor } = await pipe.run({
      batchSize: count,
      maxBatch: count,
      numInferenceSteps: steps,
      seed,
      onStep: (i, n, { x0, t }) => postMessage({ type: 'step', i, n, t, x0, ms: performance.now() - t0 }),
    });
    const ms = performance.now() - t0;
    const png = await ddpm.toPng(images, { grid: true, scale: 3 });
    postMessage({ type: 'done', x0: tensor, png, ms, info: engine.info }, [tensor.buffer, png.buffer]);
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
    const trainer = new ddpm.Trainer(mlp, data, schedule.alphasCumprod, {
      batchSize: 128,
      learningRate: 3e-3,
      lrScheduler: 'cosine',
      lrWarmupSteps: 50,
      maxTrainSteps: steps,
      ema: null,
      seed: 1,
    });
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
      const x = engine.read(await chain.run((xt, t) => mlp.forwardTensor(xt, t, { out: eps })));
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
