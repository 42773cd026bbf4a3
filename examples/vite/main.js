// A Vite app that samples digits from the shipped model, with no vite.config: the model's JSON files are
// imported as JSON, the weights as an asset URL (`?url`, Vite copies the file into the build), and the
// pipeline reads them as a map of file names to contents. Parameters from the page's query:
// ?n=16&steps=20&seed=42&simd=auto. window.result holds engine.info and x_0's SHA-256 for
// test/bundlers.test.ts.
import { DDPMPipeline, Engine, toPng } from 'ddpm-wasm';
import config from 'ddpm-wasm/models/mnist/config.json';
import schedulerConfig from 'ddpm-wasm/models/mnist/scheduler_config.json';
import weightsUrl from 'ddpm-wasm/models/mnist/diffusion_pytorch_model.safetensors?url';

const q = new URLSearchParams(location.search);
const batchSize = Number(q.get('n') ?? 16);
const numInferenceSteps = Number(q.get('steps') ?? 20);
const seed = Number(q.get('seed') ?? 42);
const simd = q.get('simd') ?? 'auto';

async function main() {
  const engine = await Engine.create({ simd }); // the page's main thread: one thread
  const pipe = await DDPMPipeline.fromPretrained(
    engine,
    {
      'config.json': JSON.stringify(config),
      'scheduler_config.json': JSON.stringify(schedulerConfig),
      'diffusion_pytorch_model.safetensors': await fetch(weightsUrl),
    },
    { scheduler: 'ddim' },
  );
  const { images, tensor } = await pipe.run({ batchSize, numInferenceSteps, seed });
  const png = await toPng(images, { grid: true, scale: 3 });
  document.getElementById('digits').src = URL.createObjectURL(new Blob([png], { type: 'image/png' }));
  const digest = await crypto.subtle.digest('SHA-256', tensor);
  const sha256 = Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
  document.getElementById('status').textContent = `${batchSize} digits, ${numInferenceSteps} DDIM steps`;
  document.getElementById('info').textContent = JSON.stringify(engine.info, null, 2);
  window.result = { info: engine.info, sha256 };
  engine.dispose();
}

main().catch((e) => {
  document.getElementById('status').textContent = `${e.name}: ${e.message}`;
  window.result = { error: `${e.name}: ${e.message}` };
});
