// `node|deno|bun digits-pipeline.mjs <simd|relaxed> <threads>`: the 4 digits of digits.mjs through the
// pipeline, from the shipped model by name — what a user writes — and their PNG; prints one JSON line.
import { DDPMPipeline, Engine, toPng } from '../../dist/index.js';
import { DIGITS } from './digits.mjs';

const args = globalThis.Deno?.args ?? process.argv.slice(2);
const [simd = 'simd', threads = '1'] = args;
const engine = await Engine.create({ simd, threads: Number(threads) });
const pipe = await DDPMPipeline.fromPretrained(engine, 'mnist', { scheduler: 'ddim' });
const { images, tensor } = await pipe.run(DIGITS);
const digest = await crypto.subtle.digest('SHA-256', tensor);
const sha256 = Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
const png = await toPng(images, { grid: true });
const { runtime, build, fusedMadd } = engine.info;
console.log(
  JSON.stringify({
    runtime,
    build,
    threads: engine.info.threads,
    fusedMadd,
    sha256,
    png: Array.from(png.subarray(0, 8)),
  }),
);
engine.dispose();
