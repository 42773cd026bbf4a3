// A Vite app that samples digits from the shipped model, with no vite.config: the config is imported as
// JSON and the weights as an asset URL (`?url`), which Vite copies into the build. Parameters from the
// page's query: ?n=16&steps=20&seed=42&simd=auto. window.result holds engine.info and x_0's SHA-256 for
// test/bundlers.test.ts.
import { DDIMScheduler, Engine, SamplingChain, UNet2DModel } from 'ddpm-wasm';
import config from 'ddpm-wasm/models/mnist/config.json';
import schedulerConfig from 'ddpm-wasm/models/mnist/scheduler_config.json';
import weightsUrl from 'ddpm-wasm/models/mnist/diffusion_pytorch_model.safetensors?url';

const q = new URLSearchParams(location.search);
const n = Number(q.get('n') ?? 16);
const steps = Number(q.get('steps') ?? 20);
const seed = Number(q.get('seed') ?? 42);
const simd = q.get('simd') ?? 'auto';

async function main() {
  const engine = await Engine.create({ simd }); // the page's main thread: one thread
  const weights = new Uint8Array(await (await fetch(weightsUrl)).arrayBuffer());
  const unet = UNet2DModel.fromFiles(engine, config, weights);
  const scheduler = DDIMScheduler.fromConfig(schedulerConfig, { engine });
  const chain = SamplingChain.start(engine, scheduler, { shape: [n, 1, 28, 28], numInferenceSteps: steps, seed });
  const x0 = engine.read(await chain.run((x, t) => unet.forwardTensor(x, t)));
  const info = engine.info;
  engine.dispose();

  // n digits side by side in rows of 4
  const cols = Math.min(4, n);
  const rows = Math.ceil(n / cols);
  const canvas = document.getElementById('digits');
  canvas.width = cols * 28;
  canvas.height = rows * 28;
  const img = new ImageData(cols * 28, rows * 28);
  for (let k = 0; k < n; k++) {
    for (let i = 0; i < 784; i++) {
      const v = Math.round((Math.max(-1, Math.min(1, x0[k * 784 + i])) + 1) * 127.5);
      const p = 4 * (((Math.floor(k / cols) * 28 + Math.floor(i / 28)) * cols * 28) + (k % cols) * 28 + (i % 28));
      img.data.set([v, v, v, 255], p);
    }
  }
  canvas.getContext('2d').putImageData(img, 0, 0);
  const digest = await crypto.subtle.digest('SHA-256', x0);
  const sha256 = Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
  document.getElementById('status').textContent = `${n} digits, ${steps} DDIM steps`;
  document.getElementById('info').textContent = JSON.stringify(info, null, 2);
  window.result = { info, sha256 };
}

main().catch((e) => {
  document.getElementById('status').textContent = `${e.name}: ${e.message}`;
  window.result = { error: `${e.name}: ${e.message}` };
});
