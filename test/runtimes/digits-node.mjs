// `node|deno|bun digits-node.mjs <simd|relaxed> <threads>`: the 4 digits of digits.mjs from the model
// folder, through the built package (dist/); prints one JSON line.
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
console.log(JSON.stringify(await sampleDigits(lib, engine, files)));
engine.dispose();
