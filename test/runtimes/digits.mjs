// Samples the same 4 digits from the shipped model (models/mnist) in whatever runtime imports this file
// — Node, Deno, Bun, Chromium (page and Worker), workerd, edge-runtime — and hashes the float32 output, so
// test/runtimes-*.test.ts can compare every runtime's bits with Node's. It takes the library and the
// model's files as arguments and imports nothing: each runtime gets them its own way (a folder, fetch,
// modules bundled into a worker).
export const DIGITS = { batchSize: 4, numInferenceSteps: 10, seed: 42 };

/**
 * lib: the ddpm-wasm exports; engine: an Engine; files: { config, scheduler } (objects or JSON text) and
 * weights (safetensors bytes). Returns the engine's choices and the SHA-256 of x_0's float32 bytes.
 */
export async function sampleDigits(lib, engine, files, onStep) {
  const json = (v) => (typeof v === 'string' ? JSON.parse(v) : v);
  const unet = lib.UNet2DModel.fromFiles(engine, json(files.config), new Uint8Array(files.weights));
  const scheduler = lib.DDIMScheduler.fromConfig(json(files.scheduler), { engine });
  const { batchSize, numInferenceSteps, seed } = DIGITS;
  const chain = lib.SamplingChain.start(engine, scheduler, { shape: [batchSize, 1, 28, 28], numInferenceSteps, seed });
  const x0 = await chain.run((x, t) => unet.forwardTensor(x, t), { onStep });
  const out = engine.read(x0);
  const digest = await crypto.subtle.digest('SHA-256', out);
  const sha256 = Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
  const { runtime, build, threads, fusedMadd } = engine.info;
  // a few pixels in the clear, for a human reading a failure
  return { runtime, build, threads, fusedMadd, sha256, first: Array.from(out.subarray(300, 304)) };
}
