// A Vercel Edge Function (`export const config = { runtime: 'edge' }`): GET /api/digits?seed=42&n=16
// → a PNG grid of digits; &format=json for the engine's choices and x_0's SHA-256. Vercel Edge compiles
// no WebAssembly from bytes at run time: `?module` makes Vercel's bundler hand the .wasm in as a compiled
// WebAssembly.Module. The model's files are static files of the deployment (copy
// node_modules/ddpm-wasm/models/mnist to public/models/mnist), fetched from the function's own origin.
// test/runtimes-edge.test.ts runs this file in Vercel's edge-runtime with code generation disabled.
import { DDPMPipeline, Engine, toPng } from 'ddpm-wasm';
import wasm from 'ddpm-wasm/wasm/simd.wasm?module';

export const config = { runtime: 'edge' };

export default async function handler(request) {
  const url = new URL(request.url);
  const q = url.searchParams;
  const seed = Number(q.get('seed') ?? 42);
  const batchSize = Math.min(16, Number(q.get('n') ?? 16));
  const numInferenceSteps = Math.min(50, Number(q.get('steps') ?? 20));
  const engine = await Engine.create({ wasm, memoryLimit: 96 * 2 ** 20 });
  try {
    // a base URL: fromPretrained fetches config.json, scheduler_config.json and the weights under it, and
    // sampling_defaults.json with the guide/ it names: run() applies the model's autoguidance (docs/autoguidance.md)
    const pipe = await DDPMPipeline.fromPretrained(engine, new URL('/models/mnist/', url), { scheduler: 'ddim' });
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
}
