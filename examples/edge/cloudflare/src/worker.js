// GET /?seed=42&n=4&steps=10 → JSON: the engine's choices and the digits' x_0 (its SHA-256 and the
// 28×28 grey levels). One thread (Workers have no Worker threads), the plain-SIMD build: the same bits
// as every other runtime's plain build.
import { DDIMScheduler, Engine, SamplingChain, UNet2DModel } from 'ddpm-wasm';
import wasm from 'ddpm-wasm/wasm/simd.wasm'; // a WebAssembly.Module ([[rules]] CompiledWasm)
import weights from 'ddpm-wasm/models/mnist/diffusion_pytorch_model.safetensors'; // an ArrayBuffer ([[rules]] Data)
import config from 'ddpm-wasm/models/mnist/config.json';
import schedulerConfig from 'ddpm-wasm/models/mnist/scheduler_config.json';

export default {
  async fetch(request) {
    const q = new URL(request.url).searchParams;
    const seed = Number(q.get('seed') ?? 42);
    const n = Math.min(16, Number(q.get('n') ?? 4));
    const steps = Math.min(50, Number(q.get('steps') ?? 10));
    const engine = await Engine.create({ wasm, memoryLimit: 96 * 2 ** 20 }); // isolates have 128 MB
    try {
      const unet = UNet2DModel.fromFiles(engine, config, new Uint8Array(weights));
      const scheduler = DDIMScheduler.fromConfig(schedulerConfig, { engine });
      const chain = SamplingChain.start(engine, scheduler, { shape: [n, 1, 28, 28], numInferenceSteps: steps, seed });
      const x0 = engine.read(await chain.run((x, t) => unet.forwardTensor(x, t)));
      const sha256 = [...new Uint8Array(await crypto.subtle.digest('SHA-256', x0))].map((b) => b.toString(16).padStart(2, '0')).join('');
      const grey = Array.from(x0, (v) => Math.round((Math.max(-1, Math.min(1, v)) + 1) * 127.5));
      return Response.json({ info: engine.info, sha256, shape: [n, 1, 28, 28], grey });
    } finally {
      engine.dispose();
    }
  },
};
