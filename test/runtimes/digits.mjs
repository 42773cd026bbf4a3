// Samples the same 4 digits from the shipped model (models/mnist) in whatever runtime imports this file
// — Node, Deno, Bun, Chromium (page and Worker), workerd, edge-runtime — and hashes the float32 output, so
// test/runtimes-*.test.ts can compare every runtime's bits with Node's. It takes the library and the
// model's files as arguments and imports nothing: each runtime gets them its own way (a folder, fetch,
// modules bundled into a worker).
export const DIGITS = { batchSize: 4, numInferenceSteps: 10, seed: 42 };

/**
 * lib: the ddpm-wasm exports; engine: an Engine; files: { config, scheduler } (objects or JSON text) and
 * weights (safetensors bytes). Returns the engine's choices and the SHA-256 of x_0's float32 bytes.
 * With files.defaults (sampling_defaults.json) and files.guide ({ config, weights } of its guide/), the
 * model's autoguidance by hand — D = D_g + W·(D − D_g) at t ≤ max_timestep, combined here in JS — which
 * is what the pipeline does by default for a model with those files.
 */
export async function sampleDigits(lib, engine, files, onStep) {
  const json = (v) => (typeof v === 'string' ? JSON.parse(v) : v);
  const unet = lib.UNet2DModel.fromFiles(engine, json(files.config), new Uint8Array(files.weights));
  const scheduler = lib.DDIMScheduler.fromConfig(json(files.scheduler), { engine });
  const { batchSize, numInferenceSteps, seed } = DIGITS;
  const chain = lib.SamplingChain.start(engine, scheduler, { shape: [batchSize, 1, 28, 28], numInferenceSteps, seed });
  let model = (x, t) => unet.forwardTensor(x, t);
  if (files.guide) {
    const ag = json(files.defaults).autoguidance;
    const guide = lib.UNet2DModel.fromFiles(engine, json(files.guide.config), new Uint8Array(files.guide.weights));
    model = (x, t) => {
      if (t > (ag.max_timestep ?? Number.POSITIVE_INFINITY)) return unet.forwardTensor(x, t);
      const d = engine.read(unet.forwardTensor(x, t));
      const g = engine.read(guide.forwardTensor(x, t));
      for (let i = 0; i < d.length; i++) d[i] = g[i] + ag.scale * (d[i] - g[i]);
      return engine.upload(d, [batchSize, 28 * 28], 'digits.guided');
    };
  }
  const x0 = await chain.run(model, { onStep });
  const out = engine.read(x0);
  const digest = await crypto.subtle.digest('SHA-256', out);
  const sha256 = Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
  const { runtime, build, threads, fusedMadd } = engine.info;
  // a few pixels in the clear, for a human reading a failure
  return { runtime, build, threads, fusedMadd, sha256, first: Array.from(out.subarray(300, 304)) };
}
