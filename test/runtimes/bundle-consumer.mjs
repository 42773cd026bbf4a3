// A consumer of the package as a bundler sees it (test/bundlers.test.ts bundles it with esbuild, no
// config but the platform and conditions): samples the 4 digits of digits.mjs with the model fetched
// from MODEL_BASE (a global in a page, argv[2] in Node) and leaves the result in globalThis.result.
import * as lib from 'ddpm-wasm';
import { sampleDigits } from './digits.mjs';

const base = globalThis.MODEL_BASE ?? globalThis.process?.argv?.[2];
async function main() {
  const get = async (name) => {
    const res = await fetch(new URL(name, base));
    if (!res.ok) throw new Error(`${name}: HTTP ${res.status}`);
    return res;
  };
  const files = {
    config: await (await get('config.json')).text(),
    scheduler: await (await get('scheduler_config.json')).text(),
    weights: await (await get('diffusion_pytorch_model.safetensors')).arrayBuffer(),
  };
  const engine = await lib.Engine.create({ threads: 1, simd: 'simd' });
  try {
    return await sampleDigits(lib, engine, files);
  } finally {
    engine.dispose();
  }
}
globalThis.result = await main().catch((e) => ({ error: `${e.name}: ${e.message}` }));
if (globalThis.process?.stdout) console.log(JSON.stringify(globalThis.result));
