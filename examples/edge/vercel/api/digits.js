// A Vercel Edge Function (`export const config = { runtime: 'edge' }`): GET /api/digits?seed=42&n=4
// → JSON with the engine's choices and the digits' x_0 (SHA-256 and 28×28 grey levels). Vercel Edge
// compiles no WebAssembly from bytes at run time: `?module` makes Vercel's bundler hand the .wasm in as a
// compiled WebAssembly.Module. The model's files are static files of the deployment (copy
// node_modules/ddpm-wasm/models/mnist to public/models/mnist), fetched from the function's own origin.
// test/runtimes-edge.test.ts runs this file in Vercel's edge-runtime with code generation disabled.
import { DDIMScheduler, Engine, SamplingChain, UNet2DModel } from 'ddpm-wasm';
import wasm from 'ddpm-wasm/wasm/simd.wasm?module';

export const config = { runtime: 'edge' };

export default async function handler(request) {
  const url = new URL(request.url);
  const seed = Number(url.searchParams.get('seed') ?? 42);
  const n = Math.min(16, Number(url.searchParams.get('n') ?? 4));
  const steps = Math.min(50, Number(url.searchParams.get('steps') ?? 10));
  const model = new URL('/models/mnist/', url);
  const get = async (name) => {
    const res = await fetch(new URL(name, model));
    if (!res.ok) throw new Error(`${name}: HTTP ${res.status}`);
    return res;
  };
  const [unetConfig, schedulerConfig, weights] = await Promise.all([
    get('config.json').then((r) => r.json()),
    get('scheduler_config.json').then((r) => r.json()),
    get('diffusion_pytorch_model.safetensors').then((r) => r.arrayBuffer()),
  ]);
  const engine = await Engine.create({ wasm, memoryLimit: 96 * 2 ** 20 });
  try {
    const unet = UNet2DModel.fromFiles(engine, unetConfig, new Uint8Array(weights));
    const scheduler = DDIMScheduler.fromConfig(schedulerConfig, { engine });
    const chain = SamplingChain.start(engine, scheduler, { shape: [n, 1, 28, 28], numInferenceSteps: steps, seed });
    const x0 = engine.read(await chain.run((x, t) => unet.forwardTensor(x, t)));
    const sha256 = [...new Uint8Array(await crypto.subtle.digest('SHA-256', x0))].map((b) => b.toString(16).padStart(2, '0')).join('');
    const grey = Array.from(x0, (v) => Math.round((Math.max(-1, Math.min(1, v)) + 1) * 127.5));
    return Response.json({ info: engine.info, sha256, shape: [n, 1, 28, 28], grey });
  } finally {
    engine.dispose();
  }
}
