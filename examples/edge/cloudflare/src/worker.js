// GET /?seed=42&n=16&steps=20 → a PNG grid of digits sampled from the shipped model;
// add &format=json for the engine's choices and x_0's SHA-256 instead (what test/runtimes-edge.test.ts
// compares with Node). One thread (Workers have no Worker threads) and the plain-SIMD build: the same
// bits as every other runtime's plain build.
import { DDPMPipeline, Engine, toPng } from 'ddpm-wasm';
import wasm from 'ddpm-wasm/wasm/simd.wasm'; // a WebAssembly.Module ([[rules]] CompiledWasm)
import weights from 'ddpm-wasm/models/mnist/diffusion_pytorch_model.safetensors'; // an ArrayBuffer ([[rules]] Data)
import config from 'ddpm-wasm/models/mnist/config.json';
import schedulerConfig from 'ddpm-wasm/models/mnist/scheduler_config.json';

// The model as a map of file names to contents: what fromPretrained reads when there is no file system.
const model = {
  'config.json': JSON.stringify(config),
  'scheduler_config.json': JSON.stringify(schedulerConfig),
  'diffusion_pytorch_model.safetensors': weights,
};

export default {
  async fetch(request) {
    const q = new URL(request.url).searchParams;
    const seed = Number(q.get('seed') ?? 42);
    const batchSize = Math.min(16, Number(q.get('n') ?? 16));
    const numInferenceSteps = Math.min(50, Number(q.get('steps') ?? 20));
    const engine = await Engine.create({ wasm, memoryLimit: 96 * 2 ** 20 }); // an isolate has 128 MB
    try {
      const pipe = await DDPMPipeline.fromPretrained(engine, model, { scheduler: 'ddim' });
      const { images, tensor } = await pipe.run({ batchSize, numInferenceSteps, seed });
      if (q.get('format') === 'json') {
        const digest = await crypto.subtle.digest('SHA-256', tensor);
        const sha256 = [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
        return Response.json({ info: engine.info, sha256, shape: [batchSize, 1, 28, 28] });
      }
      return new Response(await toPng(images, { grid: true, scale: 4 }), { headers: { 'Content-Type': 'image/png' } });
    } finally {
      engine.dispose();
    }
  },
};
