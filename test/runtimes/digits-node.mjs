// `node|deno|bun digits-node.mjs <simd|relaxed> <threads>`: the 4 digits of digits.mjs from the model
// folder, through the built package (dist/); prints one JSON line: sha256 of the network alone,
// sha256Guided with the folder's autoguidance.
import { readFileSync } from 'node:fs';
import * as lib from '../../dist/index.js';
import { sampleDigits } from './digits.mjs';

const args = globalThis.Deno?.args ?? process.argv.slice(2);
const [simd = 'simd', threads = '1'] = args;
const dir = new URL('../../models/mnist/', import.meta.url);
const files = {
  config: readFileSync(new URL('config.json', dir), 'utf8'),
  scheduler: readFileSync(new URL('scheduler_config.json', dir), 'utf8'),
  weights: readFileSync(new URL('diffusion_pytorch_model.safetensors', dir)),
};
const engine = await lib.Engine.create({ simd, threads: Number(threads) });
// the network alone (what a page given the three files samples), and with the model's stored autoguidance
// (what the pipeline samples from the folder or its base URL: sampling_defaults.json and guide/)
const alone = await sampleDigits(lib, engine, files);
const guided = await sampleDigits(lib, engine, {
  ...files,
  defaults: readFileSync(new URL('sampling_defaults.json', dir), 'utf8'),
  guide: {
    config: readFileSync(new URL('guide/config.json', dir), 'utf8'),
    weights: readFileSync(new URL('guide/diffusion_pytorch_model.safetensors', dir)),
  },
});
console.log(JSON.stringify({ ...alone, sha256Guided: guided.sha256 }));
engine.dispose();
